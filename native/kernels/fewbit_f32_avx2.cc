// Few-bit codec, AVX2: 8 codes (exactly B bytes) per step; the tail (< 8 elements, byte-aligned)
// goes to the scalar kernel, so both paths write the same bytes.
#include <immintrin.h>

#include <cstring>

#include "fewbit_bits.h"
#include "swinq/fewbit.h"

namespace swinq {
namespace {

// Horizontal OR of 8 disjoint bit fields.
inline uint32_t hor_or(__m256i v) {
  __m128i x = _mm_or_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_or_si128(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
  x = _mm_or_si128(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
  return (uint32_t)_mm_cvtsi128_si32(x);
}

template <int B>
void encode_avx2(const FewbitCodec& c, const float* x, size_t n, uint8_t* out) {
  __m256 s[15];
  __m256i st[15];
  const int m = c.nborders;
  for (int i = 0; i < m; ++i) s[i] = _mm256_set1_ps(c.borders[i]), st[i] = _mm256_set1_epi32(c.steps[i]);
  const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(c.fold ? 0x7fffffff : -1));
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + g), absmask);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < m; ++i) {
      // ordered compare: NaN > s is false, as in the scalar `x > s`
      const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(v, s[i], _CMP_GT_OQ));
      acc = _mm256_add_epi32(acc, _mm256_and_si256(gt, st[i]));
    }
    const uint32_t w = hor_or(_mm256_sllv_epi32(acc, shifts));
    uint8_t* dst = out + g / 8 * B;
    if (B == 3 && g + 8 < n) std::memcpy(dst, &w, 4);  // byte 4 is rewritten by the next group
    else std::memcpy(dst, &w, B);
  }
  if (g < n) fewbit_encode_f32_scalar(c, x + g, n - g, out + g / 8 * B);
}

// Sorted borders: branch-free binary search, B steps of (look up border code+step-1, compare, add)
// instead of 2^B - 1 compares. Missing borders are +inf (never below x).
template <int B>
void encode_bsearch_avx2(const FewbitCodec& c, const float* x, size_t n, uint8_t* out) {
  alignas(32) float tbl[16];
  for (int i = 0; i < 16; ++i) tbl[i] = i < c.nborders ? c.borders[i] : __builtin_inff();
  const __m256 t0 = _mm256_load_ps(tbl), t1 = _mm256_load_ps(tbl + 8);
  const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(c.fold ? 0x7fffffff : -1));
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + g), absmask);
    __m256i code = _mm256_setzero_si256();
    for (int step = 1 << (B - 1); step >= 1; step >>= 1) {
      const __m256i idx = _mm256_sub_epi32(_mm256_add_epi32(code, _mm256_set1_epi32(step)), one);
      __m256 s = _mm256_permutevar8x32_ps(t0, idx);
      if (B == 4) s = _mm256_blendv_ps(s, _mm256_permutevar8x32_ps(t1, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
      const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(v, s, _CMP_GT_OQ));
      code = _mm256_add_epi32(code, _mm256_and_si256(gt, _mm256_set1_epi32(step)));
    }
    const uint32_t w = hor_or(_mm256_sllv_epi32(code, shifts));
    uint8_t* dst = out + g / 8 * B;
    if (B == 3 && g + 8 < n) std::memcpy(dst, &w, 4);
    else std::memcpy(dst, &w, B);
  }
  if (g < n) fewbit_encode_f32_scalar(c, x + g, n - g, out + g / 8 * B);
}

template <int B>
void decode_avx2(const FewbitCodec& c, const uint8_t* codes, const float* go, size_t n, float* gi) {
  const __m256 lv0 = _mm256_loadu_ps(c.levels), lv1 = _mm256_loadu_ps(c.levels + 8);
  const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
  const __m256i mask = _mm256_set1_epi32((1 << B) - 1);
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    uint32_t w = 0;
    const uint8_t* src = codes + g / 8 * B;
    if (B == 3 && g + 8 < n) std::memcpy(&w, src, 4);  // the 4th byte exists (next group) and is shifted out
    else std::memcpy(&w, src, B);
    const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), shifts), mask);
    __m256 lv = _mm256_permutevar8x32_ps(lv0, idx);  // uses idx & 7
    if (B == 4) {
      const __m256 hi = _mm256_permutevar8x32_ps(lv1, idx);
      lv = _mm256_blendv_ps(lv, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 -> sign
    }
    _mm256_storeu_ps(gi + g, _mm256_mul_ps(_mm256_loadu_ps(go + g), lv));
  }
  if (g < n) fewbit_decode_mul_f32_scalar(c, codes + g / 8 * B, go + g, n - g, gi + g);
}

}  // namespace

void fewbit_encode_f32_avx2(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes) {
  if (c.sorted && c.bits >= 3) {  // at 2 bits three compares are as fast
    switch (c.bits) {
      case 3: return encode_bsearch_avx2<3>(c, x, n, codes);
      case 4: return encode_bsearch_avx2<4>(c, x, n, codes);
    }
  }
  with_fewbit_bits(c.bits, [&](auto b) { encode_avx2<decltype(b)::value>(c, x, n, codes); });
}

void fewbit_decode_mul_f32_avx2(const FewbitCodec& c, const uint8_t* codes, const float* grad_out, size_t n,
                                float* grad_in) {
  with_fewbit_bits(c.bits, [&](auto b) { decode_avx2<decltype(b)::value>(c, codes, grad_out, n, grad_in); });
}

}  // namespace swinq
