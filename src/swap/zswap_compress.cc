// zswap's compressors, on Debian's liblz4 and libzstd (crypto/lz4.c and
// crypto/zstd.c are Linux's wrappers of the same libraries).
//
// lz4 is LZ4_compress_default (acceleration 1), as crypto/lz4.c calls it;
// zstd runs at level 3 (crypto/zstd.c's ZSTD_DEF_LEVEL). zstd's contexts
// are per thread (Linux keeps one per CPU, crypto_acomp_ctx), made on first
// use and freed when the thread ends.
#include <lz4.h>
#include <zstd.h>

#include "swap/zswap.h"

namespace mmkit {
namespace {

constexpr int kZstdLevel = 3;

struct ZstdContexts {
  ZSTD_CCtx* c = nullptr;
  ZSTD_DCtx* d = nullptr;
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

ZstdContexts& zstd_contexts() {
  thread_local ZstdContexts ctx;
  return ctx;
}

}  // namespace

std::string_view zswap_compressor_name(ZswapCompressor c) {
  return c == ZswapCompressor::kZstd ? "zstd" : "lz4";
}

size_t zswap_compress(ZswapCompressor c, const void* src, void* dst, size_t dst_cap) {
  if (c == ZswapCompressor::kLz4) {
    const int n = LZ4_compress_default(static_cast<const char*>(src), static_cast<char*>(dst),
                                       static_cast<int>(PAGE_SIZE), static_cast<int>(dst_cap));
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  ZstdContexts& ctx = zstd_contexts();
  if (!ctx.c && !(ctx.c = ZSTD_createCCtx())) return 0;
  const size_t n = ZSTD_compressCCtx(ctx.c, dst, dst_cap, src, PAGE_SIZE, kZstdLevel);
  return ZSTD_isError(n) ? 0 : n;
}

bool zswap_decompress(ZswapCompressor c, const void* src, size_t len, void* dst) {
  if (c == ZswapCompressor::kLz4)
    return LZ4_decompress_safe(static_cast<const char*>(src), static_cast<char*>(dst),
                               static_cast<int>(len),
                               static_cast<int>(PAGE_SIZE)) == static_cast<int>(PAGE_SIZE);
  ZstdContexts& ctx = zstd_contexts();
  if (!ctx.d && !(ctx.d = ZSTD_createDCtx())) return false;
  const size_t n = ZSTD_decompressDCtx(ctx.d, dst, PAGE_SIZE, src, len);
  return !ZSTD_isError(n) && n == PAGE_SIZE;
}

}  // namespace mmkit
