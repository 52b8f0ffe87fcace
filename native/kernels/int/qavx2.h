// Internal AVX2 helpers shared by the *_avx2.cc files of the integer kernels (include only there).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace swinq {
namespace q {
namespace detail {

// The weights of the next columns into L2 while these columns' tiles run, in equal shares, one
// before each tile: with weights larger than the caches the first tile of each column group
// otherwise waits for DRAM (ViT-B/16: 84 MB a run; docs/integer-kernels.md). Off (no bytes) for
// K > 1024, where each tile streams its weights long enough for the hardware prefetcher and the
// extra prefetches measured slower.
struct NextWeights {
  const char* p = nullptr;
  int64_t bytes = 0, step = 0, done = 0;
  // bytes [offset, offset + nbytes) of the weights w (total bytes in all), clipped; `tiles` shares
  NextWeights(const int8_t* w, int64_t total, int64_t offset, int64_t nbytes, int64_t K, int64_t tiles) {
    if (K > 1024 || tiles <= 0 || offset >= total) return;
    p = reinterpret_cast<const char*>(w + offset);
    bytes = total - offset < nbytes ? total - offset : nbytes;
    step = (bytes / 64 + tiles - 1) / tiles * 64;
  }
  void share() {
    for (const int64_t e = done + step < bytes ? done + step : bytes; done < e; done += 64) _mm_prefetch(p + done, _MM_HINT_T1);
  }
};

static inline __m256i clamp64_avx2(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

// Arithmetic (floor) right shift of 64-bit lanes by per-lane counts in [0, 63]: AVX2 has only
// the logical one, so bias to unsigned and subtract the shifted bias.
static inline __m256i srav64_avx2(__m256i v, __m256i s) {
  const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
  return _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), s), _mm256_srlv_epi64(sign, s));
}

// The library's requantization on 8 int32 lanes, without the zero point:
// clamp(((int64)x·m + 2^(s−1)) >> s, lo, hi) with per-lane m, s (int32) and 64-bit bounds.
static inline __m256i requant8_avx2(__m256i x, __m256i m, __m256i s, __m256i lo, __m256i hi) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i se = _mm256_and_si256(s, _mm256_set1_epi64x(0xffffffff)), so = _mm256_srli_epi64(s, 32);
  __m256i pe = _mm256_mul_epi32(x, m);
  __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32));
  pe = _mm256_add_epi64(pe, _mm256_srli_epi64(_mm256_sllv_epi64(one, se), 1));
  po = _mm256_add_epi64(po, _mm256_srli_epi64(_mm256_sllv_epi64(one, so), 1));
  pe = clamp64_avx2(srav64_avx2(pe, se), lo, hi);
  po = clamp64_avx2(srav64_avx2(po, so), lo, hi);
  return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

// Fast form of the same rule when every shift is ≥ 32 (the usual GEMM case: ratio < 2^-1):
// floor((x·m + 2^(s−1)) / 2^s) = floor(floor((x·m + 2^(s−1)) / 2^32) / 2^(s−32)), and the inner
// value fits int32, so: 64-bit products, take the high dwords, vpsravd, 32-bit clamp. ~10 ops / 8.
struct Rq8Fast {
  __m256i m, mo, re, ro, s2;
};
static inline Rq8Fast rq8_fast_prepare(__m256i m, __m256i s) {
  const __m256i one = _mm256_set1_epi64x(1);
  Rq8Fast r;
  r.m = m;
  r.mo = _mm256_srli_epi64(m, 32);
  r.re = _mm256_srli_epi64(_mm256_sllv_epi64(one, _mm256_and_si256(s, _mm256_set1_epi64x(0xffffffff))), 1);
  r.ro = _mm256_srli_epi64(_mm256_sllv_epi64(one, _mm256_srli_epi64(s, 32)), 1);
  r.s2 = _mm256_sub_epi32(s, _mm256_set1_epi32(32));
  return r;
}
// The same without the clamp, |result| < 2^30: for outputs whose clamp is the pack's own saturation.
static inline __m256i requant8_fast_noclamp_avx2(__m256i x, const Rq8Fast& r) {
  const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, r.m), r.re);
  const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), r.mo), r.ro);
  return _mm256_srav_epi32(_mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA), r.s2);
}
static inline __m256i requant8_fast_avx2(__m256i x, const Rq8Fast& r, __m256i lo32, __m256i hi32) {
  return _mm256_min_epi32(_mm256_max_epi32(requant8_fast_noclamp_avx2(x, r), lo32), hi32);
}

// Horizontal reductions of the 8 int32 lanes (the sum wraps as int32 addition does).
static inline int32_t hmax_epi32_avx2(__m256i v) {
  __m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4E));
  return _mm_cvtsi128_si32(_mm_max_epi32(m, _mm_shuffle_epi32(m, 0xB1)));
}
static inline int32_t hsum_epi32_avx2(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
}

static inline uint64_t hsum_epi64_avx2(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
}

// Σ of K u8 codes (vpsadbw against zero: 32, then 16 codes a step, the rest one by one)
static inline uint32_t rowsum_u8_avx2(const uint8_t* a, int64_t K) {
  __m256i s = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32)
    s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_loadu_si256((const __m256i*)(a + k)), _mm256_setzero_si256()));
  if (k + 16 <= K) {
    s = _mm256_add_epi64(s, _mm256_zextsi128_si256(_mm_sad_epu8(_mm_loadu_si128((const __m128i*)(a + k)), _mm_setzero_si128())));
    k += 16;
  }
  uint32_t r = (uint32_t)hsum_epi64_avx2(s);
  for (; k < K; ++k) r += a[k];
  return r;
}

// The 4×24 ymm tiles' asm (gemm_u8s8_s32_4x24_avx2, gemm_u8s8_s32_4x24_avxvnni): the locals (rows
// a0 … a3 of A from a, lda; the k and k-quad byte counters; twelve accumulators c00 … c32, row r
// and 8-column slab j), the accumulators as early-clobbered asm outputs zeroed by the asm first,
// the rows, the slabs s0 … s2 and K as inputs; afterwards acc[r][j] = crj.
#define SWQ_YMM12_LOCALS(a, lda)                                                                 \
  const uint8_t *a0 = (a), *a1 = (a) + (lda), *a2 = (a) + 2 * (lda), *a3 = (a) + 3 * (lda);      \
  int64_t k = 0, kb = 0;                                                                         \
  __m256i c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32
#define SWQ_YMM12_ZERO                                                                          \
  "vpxor %[c00], %[c00], %[c00]\n\t" "vpxor %[c01], %[c01], %[c01]\n\t" "vpxor %[c02], %[c02], %[c02]\n\t" \
  "vpxor %[c10], %[c10], %[c10]\n\t" "vpxor %[c11], %[c11], %[c11]\n\t" "vpxor %[c12], %[c12], %[c12]\n\t" \
  "vpxor %[c20], %[c20], %[c20]\n\t" "vpxor %[c21], %[c21], %[c21]\n\t" "vpxor %[c22], %[c22], %[c22]\n\t" \
  "vpxor %[c30], %[c30], %[c30]\n\t" "vpxor %[c31], %[c31], %[c31]\n\t" "vpxor %[c32], %[c32], %[c32]\n\t"
#define SWQ_YMM12_OUTPUTS                                                                                      \
  [c00] "=&x"(c00), [c01] "=&x"(c01), [c02] "=&x"(c02), [c10] "=&x"(c10), [c11] "=&x"(c11), [c12] "=&x"(c12), \
      [c20] "=&x"(c20), [c21] "=&x"(c21), [c22] "=&x"(c22), [c30] "=&x"(c30), [c31] "=&x"(c31), [c32] "=&x"(c32)
#define SWQ_YMM12_INPUTS \
  [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2), [K] "r"(K)
#define SWQ_YMM12_TO(acc)                                                                                      \
  acc[0][0] = c00, acc[0][1] = c01, acc[0][2] = c02, acc[1][0] = c10, acc[1][1] = c11, acc[1][2] = c12;     \
  acc[2][0] = c20, acc[2][1] = c21, acc[2][2] = c22, acc[3][0] = c30, acc[3][1] = c31, acc[3][2] = c32

}  // namespace detail
}  // namespace q
}  // namespace swinq
