// AVX2 index_map: the same gather as index_map_scalar, with the block copies done by inline
// 32/16/8/4-byte moves (overlapping at the end) instead of a memcpy call per block: Swin's
// window partition and head split copy thousands of 16..192-byte blocks per op.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "swinq/kernels_f32.h"

namespace swinq {

namespace {
// Copies n bytes (n >= 1) between non-overlapping buffers.
inline void copy_small(uint8_t* d, const uint8_t* s, size_t n) {
  if (n >= 32) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      _mm256_storeu_si256((__m256i*)(d + i), _mm256_loadu_si256((const __m256i*)(s + i)));
    if (i < n) _mm256_storeu_si256((__m256i*)(d + n - 32), _mm256_loadu_si256((const __m256i*)(s + n - 32)));
  } else if (n >= 16) {
    const __m128i a = _mm_loadu_si128((const __m128i*)s), b = _mm_loadu_si128((const __m128i*)(s + n - 16));
    _mm_storeu_si128((__m128i*)d, a);
    _mm_storeu_si128((__m128i*)(d + n - 16), b);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(d, &a, 4);
    std::memcpy(d + n - 4, &b, 4);
  } else {
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
  }
}
}  // namespace

void index_map_avx2(const uint8_t* x, const int32_t* idx, uint8_t* y, int64_t esize, int64_t block,
                    int64_t x_item, int64_t y_item, int64_t i0, int64_t i1) {
  const int64_t bytes = block * esize;
  if (bytes < 4 || bytes > 4096) return index_map_scalar(x, idx, y, esize, block, x_item, y_item, i0, i1);
  const int64_t rows = y_item / block;
  int64_t t = i0 / rows, r = i0 % rows;
  for (int64_t i = i0; i < i1;) {
    const int64_t r_end = std::min(rows, r + (i1 - i));
    const uint8_t* xt = x + t * x_item * esize;
    uint8_t* yt = y + t * y_item * esize;
    for (int64_t q = r; q < r_end; ++q) {
      uint8_t* dst = yt + q * bytes;
      if (idx[q] < 0) std::memset(dst, 0, (size_t)bytes);
      else copy_small(dst, xt + (int64_t)idx[q] * esize, (size_t)bytes);
    }
    i += r_end - r;
    r = 0;
    ++t;
  }
}

}  // namespace swinq
