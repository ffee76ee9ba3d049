// What a verified page holds. Every page a workload writes is filled whole
// with a pattern derived from a 64-bit key, and the key from (seed, job,
// writer, page, version): a page read back after reclaim, swap or a
// copy-on-write break must show the key of the last version written to it
// by that address space, byte for byte. Version 0 (never written) must read
// as zeros. A stale, foreign or torn page differs from the first word on.
//
// A file page (read and write jobs) also describes itself, so that a page
// read from a file some other run wrote can be checked without knowing its
// version: its first 16 bytes are a header, little-endian,
//
//   bytes 0-3    kFilePageMagic
//   bytes 4-7    the version (>= 1)
//   bytes 8-15   the page's index in its file
//
// and the rest is fill_page's pattern of file_page_key(): the same words
// from word 2 on, keyed by (seed, FNV-1a of the job's name, process, page,
// version). The name and not the job's index, so that a later run with
// another job list computes the same pages.
#pragma once

#include <cstdint>
#include <string_view>

namespace mmsim {

inline constexpr unsigned kPageBytes = 4096;

// The key of one version of one page (never 0 for version > 0; 0 for
// version 0, which means "all zeros").
uint64_t page_key(uint64_t seed, uint64_t job, uint64_t writer, uint64_t page, uint64_t version);

// Fills kPageBytes at `dst` with key's pattern (key 0: zeros).
void fill_page(char* dst, uint64_t key);

// The first byte of `src` that differs from key's pattern, or -1. On a
// difference *expected and *actual hold that byte of each.
int check_page(const char* src, uint64_t key, uint8_t* expected, uint8_t* actual);

// --- file pages -----------------------------------------------------------------------
inline constexpr uint32_t kFilePageMagic = 0x666d6d5c;  // bytes 5c 6d 6d 66: "\mmf"
inline constexpr unsigned kFileHeaderBytes = 16;

// 64-bit FNV-1a.
uint64_t fnv1a64(std::string_view s);

// Which page of which file: process `process` of the job whose name hashes
// to `name_hash`, page `page` of its file.
struct FilePageId {
  uint64_t seed = 0;
  uint64_t name_hash = 0;
  uint64_t process = 0;
  uint64_t page = 0;
};

// The pattern's key of one version (0 for version 0).
uint64_t file_page_key(const FilePageId& id, uint32_t version);
// The page of `version` (version 0: zeros) into kPageBytes at `dst`.
void fill_file_page(char* dst, const FilePageId& id, uint32_t version);
// The first byte of `src` that differs from that page, or -1 (as check_page).
int check_file_page(const char* src, const FilePageId& id, uint32_t version, uint8_t* expected,
                    uint8_t* actual);
// The same when any version may be there (a file an earlier writer left):
// a page of zeros passes (never written, *version 0); any other is checked
// against the version its header names (*version; version 1 if the header
// says 0), so a torn, foreign or corrupted page fails at its first wrong
// byte. Only a stale version of the right page cannot be told.
int check_file_page_any(const char* src, const FilePageId& id, uint32_t* version, uint8_t* expected,
                        uint8_t* actual);

}  // namespace mmsim
