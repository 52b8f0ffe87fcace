// Internal AVX-512 helpers shared by the *_avx512.cc files of the integer kernels (include only there).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "swinq/qkernels.h"

// GCC 12.2's AVX-512 intrinsics pass _mm512_undefined_epi32() as the unmasked forms' pass-through
// operand, which -Wmaybe-uninitialized reports at every inlined call (GCC PR 105593, fixed later).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace swinq {
namespace q {
namespace detail {

// The halves of a zmm as __builtin_shufflevector: GCC 12's cast / extract intrinsics pass an
// undefined operand that -Wuninitialized flags in every caller.
typedef long long v8di_t __attribute__((vector_size(64)));
static inline __m256i lo256(__m512i v) { return (__m256i)__builtin_shufflevector((v8di_t)v, (v8di_t)v, 0, 1, 2, 3); }
static inline __m256i hi256(__m512i v) { return (__m256i)__builtin_shufflevector((v8di_t)v, (v8di_t)v, 4, 5, 6, 7); }

// 32 codes of an 8- or 16-bit type → 32 int16 lanes; lanes outside the mask read nothing and are 0.
static inline __m512i load32_i16_avx512(QType t, const void* src, __mmask32 m) {
  switch (t) {
    case QType::s8: return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, src));
    case QType::u8: return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, src));
    default: return _mm512_maskz_loadu_epi16(m, src);
  }
}
static inline __mmask32 first_lanes32(int64_t n) {  // the first min(n, 32) lanes
  return n >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << n) - 1);
}

// The requantization of 16 int32 lanes on zmm, the same integer steps as requant8_fast_noclamp_avx2
// (shift ≥ 32): 64-bit products of the even and odd lanes plus the rounding term, their high
// dwords, then an arithmetic shift by shift − 32.
struct Rq16 {
  __m512i m, mo, re, ro, s2;
};
// m, sv: per-lane multipliers and shifts (every shift ≥ 32)
static inline Rq16 rq16_prepare(__m512i m, __m512i sv, int64_t zp_fold) {
  const __m512i one = _mm512_set1_epi64(1), se = _mm512_and_si512(sv, _mm512_set1_epi64(0xffffffff)),
                so = _mm512_srli_epi64(sv, 32), z = _mm512_set1_epi64(zp_fold);
  Rq16 r;
  r.m = m;
  r.mo = _mm512_srli_epi64(m, 32);
  // zp_fold ≠ 0: the zero point in the rounding term, floor((x·m + r + zp·2^s) / 2^s) = … + zp
  r.re = _mm512_add_epi64(_mm512_srli_epi64(_mm512_sllv_epi64(one, se), 1), _mm512_sllv_epi64(z, se));
  r.ro = _mm512_add_epi64(_mm512_srli_epi64(_mm512_sllv_epi64(one, so), 1), _mm512_sllv_epi64(z, so));
  r.s2 = _mm512_sub_epi32(sv, _mm512_set1_epi32(32));
  return r;
}
static inline __m512i requant16_fast_noclamp_avx512(__m512i x, const Rq16& r) {
  const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, r.m), r.re);
  const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r.mo), r.ro);
  return _mm512_srav_epi32(_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po), r.s2);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
