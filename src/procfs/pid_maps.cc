// /proc/<pid>/maps, as Linux 6.1's fs/proc/task_mmu.c show_map_vma() prints
// it: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " (show_vma_header_prefix,
// seq_put_hex_ll with a minimum of 8 digits), then, for a named mapping,
// spaces up to column 72 (seq_setwidth(25 + 6 * sizeof(void *) - 1) and
// seq_pad) and the name. Private anonymous memory has offset 0, device
// 00:00 and inode 0; the heap ([heap]: the VMA reaching from start_brk to
// brk) and the stack ([stack]: the VMA holding start_stack) are named. A
// shmem file (a shared anonymous mapping's, a memfd's) shows as Linux shows
// it: device 00:01, the inode, the offset in the file, and
// "/dev/zero (deleted)" or "/memfd:NAME (deleted)".
// A file mapping shows the machine's file system: device 08:01 (mmkit's
// fixed stand-in for the disk the root lives on, "sda1"), the file's
// inode number, vm_pgoff << PAGE_SHIFT, and the file's path inside the
// machine ("/NAME" below the root; seq_file_path escapes a newline as
// "\012", and d_path appends " (deleted)" once the file is unlinked).
// On i386 sizeof(void *) is 4, so the name column is 48.
#include <fmt/format.h>

#include "filemap/filemap.h"
#include "procfs/procfs.h"
#include "vm/process.h"

namespace mmkit {
namespace {

// The device of the machine's one file system (s_dev): MKDEV(8, 1).
constexpr unsigned kFsDevMajor = 8, kFsDevMinor = 1;

// The path of a mapped file as /proc/<pid>/maps shows it.
std::string file_path(const Inode& inode) {
  std::string out = "/";
  for (char c : inode.name) {
    if (c == '\n')
      out += "\\012";
    else
      out.push_back(c);
  }
  if (inode.unlinked) out += " (deleted)";
  return out;
}

}  // namespace

namespace procfs_internal {

// show_vma_header_prefix() and the padding before a name.
void vma_header(fmt::memory_buffer& out, const Machine& m, uint64_t start, uint64_t end,
                uint64_t flags, uint64_t pgoff, unsigned major, unsigned minor, uint64_t ino,
                std::string_view name) {
  const size_t line_start = out.size();
  fmt::format_to(std::back_inserter(out), "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ", start,
                 end, flags & VM_READ ? 'r' : '-', flags & VM_WRITE ? 'w' : '-',
                 flags & VM_EXEC ? 'x' : '-', flags & VM_MAYSHARE ? 's' : 'p', pgoff, major, minor,
                 ino);
  if (!name.empty()) {
    const size_t width = 25 + (m.arch() == Arch::i386 ? 4 : 8) * 6 - 1;
    while (out.size() - line_start < width) out.push_back(' ');
    out.push_back(' ');
    out.append(name);
  }
  out.push_back('\n');
}

}  // namespace procfs_internal

std::string render_pid_maps(Machine& m, int pid) {
  Process* p = find_process(m, pid);
  if (!p) return "";
  MmStruct* mm = p->mm;
  fmt::memory_buffer out;
  std::lock_guard g(mm->mmap_lock);
  for (auto& [end, vma] : mm->mm_mt) {
    std::string_view name;
    std::string path;
    unsigned major = 0, minor = 0;
    uint64_t ino = 0, pgoff = 0;
    if (vma->vm_file && !vma->vm_file->shmem) {
      path = file_path(*vma->vm_file);
      name = path;
      major = kFsDevMajor;
      minor = kFsDevMinor;
      ino = vma->vm_file->ino;
      pgoff = vma->vm_pgoff << PAGE_SHIFT;
    } else if (vma->vm_file) {
      // The internal shm mount's files: device 00:01, nameless ("deleted").
      path = fmt::format("/{} (deleted)", vma->vm_file->name);
      name = path;
      minor = 1;
      ino = vma->vm_file->ino;
      pgoff = vma->vm_pgoff << PAGE_SHIFT;
    } else if (vma->vm_start <= mm->brk && vma->vm_end >= mm->start_brk) {
      name = "[heap]";
    } else if (vma->vm_start <= mm->start_stack && vma->vm_end >= mm->start_stack) {
      name = "[stack]";
    }
    procfs_internal::vma_header(out, m, vma->vm_start, vma->vm_end, vma->vm_flags, pgoff, major,
                                minor, ino, name);
  }
  return fmt::to_string(out);
}

}  // namespace mmkit
