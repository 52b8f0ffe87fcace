// AVX-512 fp32 GEMM (the avx512vnni set's) on the packed-B layout of gemm_f32.cc: one k of a
// 16-column panel is one zmm, so an 8-row × 2-panel register tile is 16 accumulators, 2 B loads
// and 8 broadcast operands per k (folded into vfmadd231ps as {1to16}); the whole K in registers
// when K ≤ 512 so the fused epilogue (bias, act, residual) runs once per tile, else K blocks of
// 256 with partial sums in a stack buffer, as the AVX2 kernel (gemm_f32_avx2.cc) does. GELU runs
// the AVX2 vector math on the two halves (vmath_f32_avx2.h); ragged columns use lane masks.
#include <immintrin.h>

#include <algorithm>

#include "int/qavx512.h"
#include "swinq/kernels_f32.h"
#include "vmath_f32_avx2.h"

namespace swinq {
namespace f32 {

namespace {

typedef float v16sf_t __attribute__((vector_size(64)));
inline __m256 lo8(__m512 v) { return (__m256)__builtin_shufflevector((v16sf_t)v, (v16sf_t)v, 0, 1, 2, 3, 4, 5, 6, 7); }
inline __m256 hi8(__m512 v) {
  return (__m256)__builtin_shufflevector((v16sf_t)v, (v16sf_t)v, 8, 9, 10, 11, 12, 13, 14, 15);
}
inline __m512 join(__m256 lo, __m256 hi) {  // AVX-512 F only (insertf32x8 is DQ)
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

template <int ACT>
inline __m512 act_v(__m512 v) {
  if (ACT == act_relu) return _mm512_max_ps(v, _mm512_setzero_ps());
  if (ACT == act_gelu_erf) return join(v8::gelu_erf(lo8(v)), v8::gelu_erf(hi8(v)));
  if (ACT == act_gelu_tanh) return join(v8::gelu_tanh(lo8(v)), v8::gelu_tanh(hi8(v)));
  return v;
}

// bias, act, residual and the store of one 16-column panel row; m: its valid lanes
template <int ACT>
inline void finish(const GemmArgs& a, __m512 v, int64_t row, int64_t n0, __mmask16 m) {
  if (a.bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, a.bias + n0));
  v = act_v<ACT>(v);
  if (a.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, a.residual + row * a.N + n0));
  _mm512_mask_storeu_ps(a.y + row * a.N + n0, m, v);
}

inline __mmask16 cols_mask(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

// Rows m..m+MR of panels p..p+NP over k in [k0, k1). acc (MR × 32 floats) carries partial sums
// between K blocks: read unless `first`, written unless `last`; the epilogue runs on the last only.
template <int MR, int NP, int ACT>
void tile(const GemmArgs& a, int64_t m, int64_t p, int64_t k0, int64_t k1, float* acc, bool first, bool last) {
  const int64_t K = a.K;
  const float* b0 = a.packed_b + p * K * kGemmNr;
  const float* b1 = b0 + K * kGemmNr;  // read only when NP == 2
  const float* x = a.x + m * K;
  __m512 c[MR][NP];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NP; ++j) c[r][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * 32 + 16 * j);
  for (int64_t k = k0; k < k1; ++k) {
    const __m512 v0 = _mm512_loadu_ps(b0 + k * kGemmNr);
    const __m512 v1 = NP == 2 ? _mm512_loadu_ps(b1 + k * kGemmNr) : v0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * K + k]);
      c[r][0] = _mm512_fmadd_ps(xv, v0, c[r][0]);
      if (NP == 2) c[r][NP - 1] = _mm512_fmadd_ps(xv, v1, c[r][NP - 1]);
    }
  }
  if (!last) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NP; ++j) _mm512_storeu_ps(acc + r * 32 + 16 * j, c[r][j]);
    return;
  }
  const int64_t n0 = p * kGemmNr;
  const __mmask16 m0 = cols_mask(a.N - n0), m1 = NP == 2 ? cols_mask(a.N - n0 - 16) : 0;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    finish<ACT>(a, c[r][0], m + r, n0, m0);
    if (NP == 2) finish<ACT>(a, c[r][NP - 1], m + r, n0 + 16, m1);
  }
}

constexpr int64_t kKc = 256, kKcMax = 512, kMc = 48;

// Row tiles m0..m1 of panels p..p+NP over k in [k0, k1); acc holds (m1 − m0) × 32 partial sums.
template <int NP, int ACT>
void rows(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p, int64_t k0, int64_t k1, float* acc, bool first,
          bool last) {
  int64_t m = m0;
  auto at = [&](int64_t row) { return acc ? acc + (row - m0) * 32 : nullptr; };
  for (; m + 8 <= m1; m += 8) tile<8, NP, ACT>(a, m, p, k0, k1, at(m), first, last);
  switch (m1 - m) {
    case 7: tile<7, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 6: tile<6, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 5: tile<5, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 4: tile<4, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 3: tile<3, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 2: tile<2, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 1: tile<1, NP, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    default: break;
  }
}

template <int NP, int ACT>
void panels(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p) {
  if (a.K <= kKcMax) {  // the whole K in one pass: B panels and x rows stay in L1/L2
    rows<NP, ACT>(a, m0, m1, p, 0, a.K, nullptr, true, true);
    return;
  }
  // Large K: blocks of kKc so the panels' slice (kKc · 128 bytes) stays in L1 across the row tiles
  alignas(64) float acc[kMc * 32];
  for (int64_t mc = m0; mc < m1; mc += kMc) {
    const int64_t mc1 = std::min(m1, mc + kMc);
    for (int64_t k0 = 0; k0 < a.K; k0 += kKc) {
      const int64_t k1 = std::min(a.K, k0 + kKc);
      rows<NP, ACT>(a, mc, mc1, p, k0, k1, acc, k0 == 0, k1 == a.K);
    }
  }
}

template <int ACT>
void gemm(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) panels<2, ACT>(a, m0, m1, p);
  if (p < p1) panels<1, ACT>(a, m0, m1, p);
}

}  // namespace

void gemm_f32_8x32_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  with_act(a.act, [&](auto act) { gemm<decltype(act)::value>(a, m0, m1, p0, p1); });
}

}  // namespace f32
}  // namespace swinq
