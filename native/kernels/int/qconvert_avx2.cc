// AVX2 quantize / dequantize blocks of 8, bit-exact with the scalar references in qconvert.cc:
// quantize does the same IEEE division, round half to even (vroundps), NaN → 0, and clamps to
// [lo − zp, hi − zp] while still integral floats; dequantize's x − zp is exact in int32 and in
// float, then one IEEE multiply. The tails (< 8), s32 and per-channel scales go to the scalar kernels.
#include <immintrin.h>

#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {

void quantize_f32_q_avx2(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp) {
  if (t == QType::s32) return quantize_f32_q_scalar(x, t, y, i0, i1, scale, zp);
  const int32_t qmin = t == QType::s16 ? -32768 : t == QType::u8 ? 0 : -128;
  const int32_t qmax = t == QType::s16 ? 32767 : t == QType::u8 ? 255 : 127;
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps((float)(qmin - zp)), hi = _mm256_set1_ps((float)(qmax - zp));
  const __m256i vz = _mm256_set1_epi32(zp);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    const __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(r), vz);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    if (t == QType::s16) _mm_storeu_si128((__m128i*)((int16_t*)y + i), p16);
    else if (t == QType::u8) _mm_storel_epi64((__m128i*)((uint8_t*)y + i), _mm_packus_epi16(p16, p16));
    else _mm_storel_epi64((__m128i*)((int8_t*)y + i), _mm_packs_epi16(p16, p16));
  }
  if (i < i1) quantize_f32_q_scalar(x, t, y, i, i1, scale, zp);
}

namespace {
template <class TX>
int64_t dequantize_block(const TX* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vz = _mm256_set1_epi32(zp);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m256i v;
    if constexpr (sizeof(TX) == 2) v = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(x + i)));
    else if constexpr (TX(-1) < TX(0)) v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + i)));
    else v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x + i)));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz)), vs));
  }
  return i;
}
}  // namespace

void dequantize_q_f32_avx2(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                           const float* scales, int64_t C) {
  int64_t i = i0;  // per-channel scales and s32: all scalar
  if (!scales) {
    if (t == QType::s16) i = dequantize_block((const int16_t*)x, y, i0, i1, zp, scale);
    else if (t == QType::s8) i = dequantize_block((const int8_t*)x, y, i0, i1, zp, scale);
    else if (t == QType::u8) i = dequantize_block((const uint8_t*)x, y, i0, i1, zp, scale);
  }
  if (i < i1) dequantize_q_f32_scalar(t, x, y, i, i1, zp, scale, scales, C);
}

}  // namespace q
}  // namespace swinq
