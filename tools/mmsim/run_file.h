// The file side of `mmsim run`: read and write jobs, whose processes access
// a file through the page cache (filemap/filemap.h) instead of a mapping.
//
// Process I of a file job uses the file job_file_name(spec, I) below the
// machine's fs root, opened in its own FileTable (charged to the job's
// cgroup through files.memcg). Every access is one whole page at the
// pattern's page index, by sys_pwrite or sys_pread, and every page is
// self-describing (page_data.h):
//
//   write   set-up: O_CREAT|O_RDWR|O_TRUNC, ftruncate to `size`. A write
//           stores the page's next version; a read checks the version the
//           process last wrote (0: zeros). sys_fsync after every
//           `fsync_every` bytes written, and once at the end (fio's
//           end_fsync), so the host file holds everything.
//   read    verify = false: the set-up lays the file out (every page
//           written once as version 1, then fsync; not counted as
//           accesses) and every read checks version 1.
//           verify = true: the file must exist with at least `size` bytes
//           (a write job's of the same name, earlier in the run or in an
//           earlier machine's); it is opened when the worker starts, and
//           every page read must be zeros or this file's page at any
//           version.
//
// The mmap jobs map the file (do_mmap_fd, PROT_READ|PROT_WRITE) and
// access it through the process's MMU, a whole page per access, as an
// anon job does its region, with the same self-describing pages:
//
//   mmap-shared   set-up as a write job's (O_TRUNC, ftruncate to `size`),
//                 then MAP_SHARED. A write stores the page's next version
//                 in the page-cache page (it reaches the file by
//                 writeback); a read checks the version last written (0:
//                 zeros). msync(MS_SYNC) of the whole mapping after every
//                 `fsync_every` bytes written, and once at the end, so a
//                 verifying read job can check the file (fsyncs counts
//                 the msyncs).
//   mmap-private  set-up as a read job's without verify (every page
//                 version 1, fsync), then MAP_PRIVATE. A write stores the
//                 next version in the process's copy-on-write copy; a read
//                 checks the version the process last wrote, or version 1.
//                 At the end every page of the file is read back (sys_pread,
//                 not counted as accesses) and must still be version 1.
//
// bytes_read and bytes_written count the bytes moved through the mapping.
//
// A read or write failing with ENOMEM (the cgroup's charge, or no page to
// be had), or a process the OOM killer chose, stops the process as a fatal
// fault does an anon job's: counted as an OOM kill, not an error.
#pragma once

#include <string>

#include "run_worker.h"

namespace mmsim {

// Opens (and for a write job sizes, for a read job without verify lays out)
// the slot's file; "" or what went wrong. The caller is bound to a CPU. A
// process killed while laying out is exited and marked oom_killed.
std::string setup_file(RunShared& sh, JobRun& job, ProcSlot& slot);
// A verifying read job's process opens its file at its worker's start: ""
// or what is wrong (the file is missing or too short), naming the host path.
std::string open_file_to_verify(RunShared& sh, JobRun& job, ProcSlot& slot);
// One page access of a file job through `buf` (kPageBytes); false when the
// process must stop (slot.oom_killed or slot.error says why). A mismatch
// is counted and reported, and the process goes on.
bool file_access(RunShared& sh, JobRun& job, ProcSlot& slot, uint64_t page, bool write, char* buf);
// A write job's last fsync (bound caller).
void end_fsync(RunShared& sh, ProcSlot& slot);
// One page access of an mmap job through its mapping (as file_access).
bool map_access(RunShared& sh, JobRun& job, ProcSlot& slot, uint64_t page, bool write);
// An mmap job's end (bound caller): an mmap-shared job's last msync; an
// mmap-private job's check that its file is unchanged.
void end_map(RunShared& sh, JobRun& job, ProcSlot& slot);

}  // namespace mmsim
