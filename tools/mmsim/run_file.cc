// File jobs' page accesses, through the page cache (read, write) or a
// mapping of the file (mmap-shared, mmap-private); see run_file.h.
// Everything here runs on the process's own thread (or the set-up thread),
// bound to a CPU, with the process's FileTable.
#include "run_file.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <cerrno>
#include <system_error>

#include "filemap/filemap.h"
#include "page_access.h"
#include "vm/mm.h"

namespace mmsim {
namespace {

std::string errno_text(int64_t err) {
  return std::generic_category().message(static_cast<int>(-err));
}

FilePageId page_id(const RunShared& sh, const JobRun& job, const ProcSlot& slot, uint64_t page) {
  return FilePageId{sh.seed, job.name_hash, slot.index, page};
}

std::string host_path(RunShared& sh, const ProcSlot& slot) {
  return mmkit::fs_host_path(sh.m, slot.file);
}

bool killed(const ProcSlot& slot) {
  return slot.proc->oom_killed.load(std::memory_order_relaxed);
}

// A read or write that did not move a whole page: ENOMEM, or a process the
// OOM killer chose meanwhile, ends it as an OOM kill; anything else is an
// error. Always false (the process stops).
bool failed(RunShared& sh, ProcSlot& slot, int64_t n, const char* what, uint64_t page) {
  if (n == -ENOMEM || killed(slot)) {
    slot.oom_killed = true;
  } else {
    slot.error = fmt::format("{} of page {:#x} of {} failed: {}", what, page, host_path(sh, slot),
                             n < 0 ? errno_text(n) : fmt::format("{} bytes of {}", n, kPageBytes));
  }
  return false;
}

bool fsync_file(RunShared& sh, ProcSlot& slot) {
  if (const int err = mmkit::sys_fsync(sh.m, slot.proc->files, slot.fd); err) {
    slot.error = fmt::format("fsync of {} failed: {}", host_path(sh, slot), errno_text(err));
    return false;
  }
  ++slot.fsyncs;
  slot.unsynced = 0;
  return true;
}

// An mmap job's mapping of its open file: the whole of it, read-write,
// shared or private. The page versions: an mmap-shared job's count from 0
// (zeros); an mmap-private job's count its own writes over version 1.
std::string map_file(RunShared& sh, JobRun& job, ProcSlot& slot) {
  const JobSpec& spec = *job.spec;
  const int flags = spec.kind == JobKind::kMmapPrivate ? mmkit::MAP_PRIVATE : mmkit::MAP_SHARED;
  const int64_t a = mmkit::do_mmap_fd(slot.proc->mm, slot.proc->files, 0, spec.size,
                                      mmkit::PROT_READ | mmkit::PROT_WRITE, flags, slot.fd, 0);
  if (a < 0)
    return fmt::format("mmap of {} ({} bytes, {}) failed: {}", host_path(sh, slot), spec.size,
                       kind_name(spec.kind), errno_text(a));
  slot.base = static_cast<uint64_t>(a);
  slot.versions = PageVersions(job.pages);
  return "";
}

// An mmap job's version of a page as the process sees it.
uint32_t map_version(const JobRun& job, ProcSlot& slot, uint64_t page) {
  return slot.versions[page] + (job.spec->kind == JobKind::kMmapPrivate ? 1 : 0);
}

bool msync_file(RunShared& sh, JobRun& job, ProcSlot& slot) {
  if (const int err = mmkit::do_msync(slot.proc->mm, slot.base, job.spec->size, mmkit::MS_SYNC);
      err) {
    slot.error = fmt::format("msync of {} failed: {}", host_path(sh, slot), errno_text(err));
    return false;
  }
  ++slot.fsyncs;
  slot.unsynced = 0;
  return true;
}

}  // namespace

std::string setup_file(RunShared& sh, JobRun& job, ProcSlot& slot) {
  const JobSpec& spec = *job.spec;
  slot.file = job_file_name(spec, slot.index);
  if (spec.kind == JobKind::kRead && spec.verify) return "";  // opened by the worker
  mmkit::FileTable& ft = slot.proc->files;
  if (spec.kind == JobKind::kShmem) {
    // A memfd named as the job's file would be, mapped shared: its pages
    // are shmem's, and go to swap (not to a file) under pressure.
    const int fd = mmkit::sys_memfd_create(sh.m, ft, slot.file, 0);
    if (fd < 0) return fmt::format("memfd_create({}) failed: {}", slot.file, errno_text(fd));
    slot.fd = fd;
    if (const int err = mmkit::sys_ftruncate(sh.m, ft, fd, spec.size); err)
      return fmt::format("cannot size memfd {} to {} bytes: {}", slot.file, spec.size,
                         errno_text(err));
    return map_file(sh, job, slot);
  }
  const int fd = mmkit::sys_open(sh.m, ft, slot.file, O_CREAT | O_RDWR | O_TRUNC);
  if (fd < 0) return fmt::format("cannot create {}: {}", host_path(sh, slot), errno_text(fd));
  slot.fd = fd;
  if (const int err = mmkit::sys_ftruncate(sh.m, ft, fd, spec.size); err)
    return fmt::format("cannot size {} to {} bytes: {}", host_path(sh, slot), spec.size,
                       errno_text(err));
  if (spec.kind == JobKind::kWrite) {
    slot.versions = PageVersions(job.pages);
    return "";
  }
  if (spec.kind == JobKind::kMmapShared) return map_file(sh, job, slot);
  // A read or mmap-private job's file: every page once, version 1, then fsync.
  alignas(64) char buf[kPageBytes];
  for (uint64_t page = 0; page < job.pages; ++page) {
    fill_file_page(buf, page_id(sh, job, slot, page), 1);
    const int64_t n = mmkit::sys_pwrite(sh.m, ft, fd, buf, kPageBytes, page * kPageBytes);
    if (n != kPageBytes || killed(slot)) {
      if (n == -ENOMEM || killed(slot)) {
        slot.oom_killed = true;
        finish_process(slot);
        return "";
      }
      return fmt::format("laying out {}: write of page {:#x} failed: {}", host_path(sh, slot), page,
                         n < 0 ? errno_text(n) : "short write");
    }
  }
  if (const int err = mmkit::sys_fsync(sh.m, ft, fd); err)
    return fmt::format("fsync of {} failed: {}", host_path(sh, slot), errno_text(err));
  // fio's invalidate=1: the job starts on a cold file, as one read from
  // disk (laid out just now, it would start cached, and every read of a
  // page reclaim took meanwhile would look like a refault).
  if (const int err = mmkit::sys_fadvise(sh.m, ft, fd, 0, 0, POSIX_FADV_DONTNEED); err)
    return fmt::format("cannot drop the cache of {}: {}", host_path(sh, slot), errno_text(err));
  if (spec.kind == JobKind::kMmapPrivate) return map_file(sh, job, slot);
  return "";
}

std::string open_file_to_verify(RunShared& sh, JobRun& job, ProcSlot& slot) {
  const std::string path = host_path(sh, slot);
  mmkit::FileTable& ft = slot.proc->files;
  const int fd = mmkit::sys_open(sh.m, ft, slot.file, O_RDONLY);
  if (fd < 0) return fmt::format("cannot open {} to verify it: {}", path, errno_text(fd));
  slot.fd = fd;
  const int64_t end = mmkit::sys_lseek(sh.m, ft, fd, 0, SEEK_END);
  if (end < 0) return fmt::format("cannot find the size of {}: {}", path, errno_text(end));
  if (static_cast<uint64_t>(end) < job.spec->size)
    return fmt::format(
        "{} holds {} bytes, fewer than the job's size ({}): a write job of the same name must "
        "write it first",
        path, end, job.spec->size);
  return "";
}

bool file_access(RunShared& sh, JobRun& job, ProcSlot& slot, uint64_t page, bool write, char* buf) {
  if (killed(slot)) {  // chosen by the OOM killer during someone else's allocation
    slot.oom_killed = true;
    return false;
  }
  const JobSpec& spec = *job.spec;
  mmkit::FileTable& ft = slot.proc->files;
  const FilePageId id = page_id(sh, job, slot, page);
  const uint64_t pos = page * kPageBytes;
  if (write) {
    uint32_t& version = slot.versions[page];
    fill_file_page(buf, id, version + 1);
    const int64_t n = mmkit::sys_pwrite(sh.m, ft, slot.fd, buf, kPageBytes, pos);
    if (n != kPageBytes) return failed(sh, slot, n, "write", page);
    ++version;
    ++slot.writes;
    slot.bytes_written += kPageBytes;
    slot.unsynced += kPageBytes;
    if (spec.fsync_every && slot.unsynced >= spec.fsync_every) return fsync_file(sh, slot);
    return true;
  }
  const int64_t n = mmkit::sys_pread(sh.m, ft, slot.fd, buf, kPageBytes, pos);
  if (n != kPageBytes) return failed(sh, slot, n, "read", page);
  ++slot.reads;
  slot.bytes_read += kPageBytes;
  uint8_t expected = 0, actual = 0;
  uint32_t version = 1;
  int bad;
  if (spec.kind == JobKind::kWrite) {
    version = slot.versions[page];
    bad = check_file_page(buf, id, version, &expected, &actual);
  } else if (!spec.verify) {
    bad = check_file_page(buf, id, version, &expected, &actual);
  } else {
    bad = check_file_page_any(buf, id, &version, &expected, &actual);
  }
  if (bad >= 0) {
    ++slot.verify_errors;
    sh.log.report(fmt::format(
        "mmsim: run: verify: job \"{}\" process {} (pid {}): file {} page {:#x} (version {}): "
        "byte {} is {:#04x}, expected {:#04x}",
        spec.name, slot.index, slot.pid, slot.file, page, version, bad, actual, expected));
  }
  return true;
}

void end_fsync(RunShared& sh, ProcSlot& slot) {
  if (slot.proc && slot.fd >= 0) fsync_file(sh, slot);
}

bool map_access(RunShared& sh, JobRun& job, ProcSlot& slot, uint64_t page, bool write) {
  if (killed(slot)) {
    slot.oom_killed = true;
    return false;
  }
  const JobSpec& spec = *job.spec;
  mmkit::MmStruct* mm = slot.proc->mm;
  const FilePageId id = page_id(sh, job, slot, page);
  const uint64_t vaddr = slot.base + page * kPageBytes;
  const uint32_t version = map_version(job, slot, page);
  mmkit::FaultResult fault;
  char* host = mmkit::user_page_begin(mm, vaddr,
                                      write ? mmkit::Access::kWrite : mmkit::Access::kRead, &fault);
  if (!host) {
    if (fault.status == mmkit::FaultStatus::kKilled || fault.status == mmkit::FaultStatus::kOom ||
        killed(slot))
      slot.oom_killed = true;
    else
      slot.error = fmt::format("{} of page {:#x} of {}: {}", write ? "write" : "read", page,
                               host_path(sh, slot), describe_fault(fault));
    return false;
  }
  if (write) {
    fill_file_page(host, id, version + 1);
    mmkit::user_page_end(mm);
    ++slot.versions[page];
    ++slot.writes;
    slot.bytes_written += kPageBytes;
    slot.unsynced += kPageBytes;
    if (spec.kind == JobKind::kMmapShared && spec.fsync_every && slot.unsynced >= spec.fsync_every)
      return msync_file(sh, job, slot);
    return true;
  }
  uint8_t expected = 0, actual = 0;
  const int bad = check_file_page(host, id, version, &expected, &actual);
  mmkit::user_page_end(mm);
  ++slot.reads;
  slot.bytes_read += kPageBytes;
  if (bad >= 0) {
    ++slot.verify_errors;
    sh.log.report(fmt::format(
        "mmsim: run: verify: job \"{}\" process {} (pid {}): file {} page {:#x} at {:#x} "
        "(version {}): byte {} is {:#04x}, expected {:#04x}",
        spec.name, slot.index, slot.pid, slot.file, page, vaddr, version, bad, actual, expected));
  }
  return true;
}

void end_map(RunShared& sh, JobRun& job, ProcSlot& slot) {
  if (!slot.proc || slot.fd < 0) return;
  if (job.spec->kind == JobKind::kMmapShared) {
    msync_file(sh, job, slot);
    return;
  }
  if (job.spec->kind == JobKind::kShmem) {
    // Read back through the memfd: every page as the mapping last left it,
    // from memory or from swap.
    alignas(64) char buf[kPageBytes];
    for (uint64_t page = 0; page < job.pages; ++page) {
      const int64_t n =
          mmkit::sys_pread(sh.m, slot.proc->files, slot.fd, buf, kPageBytes, page * kPageBytes);
      if (n != kPageBytes) {
        failed(sh, slot, n, "read-back", page);
        return;
      }
      const uint32_t version = slot.versions[page];
      uint8_t expected = 0, actual = 0;
      const int bad =
          check_file_page(buf, page_id(sh, job, slot, page), version, &expected, &actual);
      if (bad >= 0) {
        ++slot.verify_errors;
        sh.log.report(fmt::format(
            "mmsim: run: verify: job \"{}\" process {} (pid {}): memfd {} page {:#x} read back "
            "through its fd: byte {} is {:#04x}, expected {:#04x} (version {})",
            job.spec->name, slot.index, slot.pid, slot.file, page, bad, actual, expected, version));
      }
    }
    return;
  }
  // mmap-private: every write went to a private copy, so the file still
  // holds version 1 of every page, as the set-up laid it out.
  alignas(64) char buf[kPageBytes];
  for (uint64_t page = 0; page < job.pages; ++page) {
    const int64_t n =
        mmkit::sys_pread(sh.m, slot.proc->files, slot.fd, buf, kPageBytes, page * kPageBytes);
    if (n != kPageBytes) {
      failed(sh, slot, n, "read-back", page);
      return;
    }
    uint8_t expected = 0, actual = 0;
    const int bad = check_file_page(buf, page_id(sh, job, slot, page), 1, &expected, &actual);
    if (bad >= 0) {
      ++slot.verify_errors;
      sh.log.report(fmt::format(
          "mmsim: run: verify: job \"{}\" process {} (pid {}): file {} page {:#x} changed under "
          "a private mapping: byte {} is {:#04x}, expected {:#04x} (version 1)",
          job.spec->name, slot.index, slot.pid, slot.file, page, bad, actual, expected));
    }
  }
}

}  // namespace mmsim
