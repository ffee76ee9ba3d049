// The page patterns (see page_data.h). Word i of a page is key + i * an odd
// constant: two different keys differ in every word, and the fill and the
// check are one pass of adds and compares the compiler vectorises (the
// check ORs the differences and looks for the first only when there is one).
// A file page is the same pattern under a 16-byte header.
#include "page_data.h"

#include <cstring>
#include <initializer_list>

namespace mmsim {
namespace {

constexpr uint64_t kStep = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio, odd
constexpr unsigned kWords = kPageBytes / 8;

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t page_key(uint64_t seed, uint64_t job, uint64_t writer, uint64_t page, uint64_t version) {
  if (version == 0) return 0;
  uint64_t k = mix(seed ^ 0x6d6d73696d);
  for (uint64_t v : {job, writer, page, version}) k = mix(k ^ v) + kStep;
  return k ? k : 1;
}

void fill_page(char* dst, uint64_t key) {
  if (key == 0) {
    std::memset(dst, 0, kPageBytes);
    return;
  }
  for (unsigned i = 0; i < kWords; ++i) {
    const uint64_t w = key + i * kStep;
    std::memcpy(dst + i * 8, &w, 8);
  }
}

namespace {

// The first differing byte of words [first, kWords) of `src` against key's
// pattern, or -1.
int check_words(const char* src, uint64_t key, unsigned first, uint8_t* expected, uint8_t* actual) {
  auto word = [src](unsigned i) {
    uint64_t w;
    std::memcpy(&w, src + i * 8, 8);
    return w;
  };
  const uint64_t step = key ? kStep : 0;
  uint64_t diff = 0;
  for (unsigned i = first; i < kWords; ++i) diff |= word(i) ^ (key + i * step);
  if (diff == 0) return -1;
  for (unsigned i = first; i < kWords; ++i) {
    const uint64_t want = key + i * step;
    const uint64_t got = word(i);
    if (got == want) continue;
    uint8_t w[8], a[8];
    std::memcpy(w, &want, 8);
    std::memcpy(a, &got, 8);
    for (unsigned b = 0; b < 8; ++b) {
      if (w[b] != a[b]) {
        *expected = w[b];
        *actual = a[b];
        return static_cast<int>(i * 8 + b);
      }
    }
  }
  return -1;
}

void file_header(char* dst, const FilePageId& id, uint32_t version) {
  const uint32_t magic = kFilePageMagic;
  const uint64_t page = id.page;
  std::memcpy(dst, &magic, 4);
  std::memcpy(dst + 4, &version, 4);
  std::memcpy(dst + 8, &page, 8);
}

}  // namespace

int check_page(const char* src, uint64_t key, uint8_t* expected, uint8_t* actual) {
  return check_words(src, key, 0, expected, actual);
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t file_page_key(const FilePageId& id, uint32_t version) {
  return page_key(id.seed, id.name_hash, id.process, id.page, version);
}

void fill_file_page(char* dst, const FilePageId& id, uint32_t version) {
  fill_page(dst, file_page_key(id, version));
  if (version) file_header(dst, id, version);
}

int check_file_page(const char* src, const FilePageId& id, uint32_t version, uint8_t* expected,
                    uint8_t* actual) {
  if (version == 0) return check_words(src, 0, 0, expected, actual);
  char header[kFileHeaderBytes];
  file_header(header, id, version);
  for (unsigned b = 0; b < kFileHeaderBytes; ++b) {
    if (src[b] != header[b]) {
      *expected = static_cast<uint8_t>(header[b]);
      *actual = static_cast<uint8_t>(src[b]);
      return static_cast<int>(b);
    }
  }
  return check_words(src, file_page_key(id, version), kFileHeaderBytes / 8, expected, actual);
}

int check_file_page_any(const char* src, const FilePageId& id, uint32_t* version, uint8_t* expected,
                        uint8_t* actual) {
  uint32_t magic = 0, v = 0;
  std::memcpy(&magic, src, 4);
  std::memcpy(&v, src + 4, 4);
  *version = v;
  if (magic != kFilePageMagic || v == 0) {
    // Never written (zeros), or not a page of this file at all.
    if (check_words(src, 0, 0, expected, actual) < 0) {
      *version = 0;
      return -1;
    }
    if (v == 0) v = 1;
  }
  return check_file_page(src, id, v, expected, actual);
}

}  // namespace mmsim
