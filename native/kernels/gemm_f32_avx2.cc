// AVX2+FMA fp32 GEMM on the packed-B layout of gemm_f32.cc: a 6x16 register tile (12 ymm
// accumulators, 2 B loads and 1 broadcast per k), the whole K kept in registers so the fused
// epilogue (bias, act, residual) runs once per tile. B panels are read from L1/L2; the executor
// sizes its tasks so a task's panels stay in L2.
#include <immintrin.h>

#include <algorithm>

#include "swinq/kernels_f32.h"
#include "vmath_f32_avx2.h"

namespace swinq {
namespace f32 {

namespace {

template <int ACT>
inline __m256 act_v(__m256 v) {
  if (ACT == act_relu) return _mm256_max_ps(v, _mm256_setzero_ps());
  if (ACT == act_gelu_erf) return v8::gelu_erf(v);
  if (ACT == act_gelu_tanh) return v8::gelu_tanh(v);
  return v;
}

// Masked epilogue for one 8-column half of a tile row with nn (< 8) valid columns.
template <int ACT>
inline void store8_tail(const GemmArgs& a, __m256 v, int64_t row, int64_t col, int64_t nn) {
  if (nn <= 0) return;
  if (nn == 8) {
    if (a.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a.bias + col));
    v = act_v<ACT>(v);
    if (a.residual) v = _mm256_add_ps(v, _mm256_loadu_ps(a.residual + row * a.N + col));
    _mm256_storeu_ps(a.y + row * a.N + col, v);
    return;
  }
  const __m256i m = v8::tail_mask(nn);
  if (a.bias) v = _mm256_add_ps(v, _mm256_maskload_ps(a.bias + col, m));
  v = act_v<ACT>(v);
  if (a.residual) v = _mm256_add_ps(v, _mm256_maskload_ps(a.residual + row * a.N + col, m));
  // vmaskmovps stores are slow on AMD cores: go through a buffer instead.
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  float* y = a.y + row * a.N + col;
  for (int64_t j = 0; j < nn; ++j) y[j] = t[j];
}

// Rows m..m+MR of panel p over k in [k0, k1). acc (MR×16 floats) carries partial sums between
// K blocks: read unless `first`, written unless `last`; the epilogue runs on the last block only.
template <int MR, int ACT>
void tile(const GemmArgs& a, int64_t m, int64_t p, int64_t k0, int64_t k1, float* acc, bool first, bool last) {
  const int64_t K = a.K;
  const float* b = a.packed_b + p * K * kGemmNr;
  const float* x = a.x + m * K;
  __m256 c0[MR], c1[MR];
  if (first) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  } else {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      c0[r] = _mm256_loadu_ps(acc + r * kGemmNr);
      c1[r] = _mm256_loadu_ps(acc + r * kGemmNr + 8);
    }
  }
  for (int64_t k = k0; k < k1; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kGemmNr);
    const __m256 b1 = _mm256_loadu_ps(b + k * kGemmNr + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(x + r * K + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  if (!last) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(acc + r * kGemmNr, c0[r]);
      _mm256_storeu_ps(acc + r * kGemmNr + 8, c1[r]);
    }
    return;
  }
  // Epilogue straight from the registers (fully unrolled, so the accumulators never touch memory).
  const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(kGemmNr, a.N - n0);
  if (nn == kGemmNr) {
    const __m256 bias0 = a.bias ? _mm256_loadu_ps(a.bias + n0) : _mm256_setzero_ps();
    const __m256 bias1 = a.bias ? _mm256_loadu_ps(a.bias + n0 + 8) : _mm256_setzero_ps();
    float* y = a.y + m * a.N + n0;
    const float* res = a.residual ? a.residual + m * a.N + n0 : nullptr;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      __m256 v0 = act_v<ACT>(_mm256_add_ps(c0[r], bias0));
      __m256 v1 = act_v<ACT>(_mm256_add_ps(c1[r], bias1));
      if (res) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res + r * a.N));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + r * a.N + 8));
      }
      _mm256_storeu_ps(y + r * a.N, v0);
      _mm256_storeu_ps(y + r * a.N + 8, v1);
    }
  } else {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      if (nn >= 8) {
        __m256 v0 = c0[r];
        if (a.bias) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(a.bias + n0));
        v0 = act_v<ACT>(v0);
        if (a.residual) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(a.residual + (m + r) * a.N + n0));
        _mm256_storeu_ps(a.y + (m + r) * a.N + n0, v0);
        store8_tail<ACT>(a, c1[r], m + r, n0 + 8, nn - 8);
      } else {
        store8_tail<ACT>(a, c0[r], m + r, n0, nn);
      }
    }
  }
}

// A panel with at most 8 valid columns (the N tail): half the FMAs of a full tile.
template <int MR, int ACT>
void tile8(const GemmArgs& a, int64_t m, int64_t p) {
  const int64_t K = a.K;
  const float* b = a.packed_b + p * K * kGemmNr;
  const float* x = a.x + m * K;
  __m256 c[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) c[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kGemmNr);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) c[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * K + k), b0, c[r]);
  }
  const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(8, a.N - n0);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) store8_tail<ACT>(a, c[r], m + r, n0, nn);
}

constexpr int64_t kKc = 256, kKcMax = 512, kMc = 48;

// Row tiles m0..m1 of panel p over k in [k0, k1); acc holds (m1-m0)×16 partial sums.
template <int ACT>
void rows(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p, int64_t k0, int64_t k1, float* acc, bool first,
          bool last) {
  int64_t m = m0;
  auto at = [&](int64_t row) { return acc ? acc + (row - m0) * kGemmNr : nullptr; };
  for (; m + 6 <= m1; m += 6) tile<6, ACT>(a, m, p, k0, k1, at(m), first, last);
  switch (m1 - m) {
    case 5: tile<5, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 4: tile<4, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 3: tile<3, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 2: tile<2, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    case 1: tile<1, ACT>(a, m, p, k0, k1, at(m), first, last); break;
    default: break;
  }
}

template <int ACT>
void gemm(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = m0;
    if (a.N - p * kGemmNr <= 8) {
      for (; m + 6 <= m1; m += 6) tile8<6, ACT>(a, m, p);
      switch (m1 - m) {
        case 5: tile8<5, ACT>(a, m, p); break;
        case 4: tile8<4, ACT>(a, m, p); break;
        case 3: tile8<3, ACT>(a, m, p); break;
        case 2: tile8<2, ACT>(a, m, p); break;
        case 1: tile8<1, ACT>(a, m, p); break;
        default: break;
      }
      continue;
    }
    if (a.K <= kKcMax) {  // the whole K in one pass: B panel and x rows stay in L1/L2
      rows<ACT>(a, m, m1, p, 0, a.K, nullptr, true, true);
      continue;
    }
    // Large K: blocks of kKc so the panel slice (kKc·64 bytes) stays in L1 across the row tiles;
    // partial sums of up to kMc rows live in a small stack buffer.
    alignas(32) float acc[kMc * kGemmNr];
    for (int64_t mc = m0; mc < m1; mc += kMc) {
      const int64_t mc1 = std::min(m1, mc + kMc);
      for (int64_t k0 = 0; k0 < a.K; k0 += kKc) {
        const int64_t k1 = std::min(a.K, k0 + kKc);
        rows<ACT>(a, mc, mc1, p, k0, k1, acc, k0 == 0, k1 == a.K);
      }
    }
  }
}

}  // namespace

void gemm_f32_6x16_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  with_act(a.act, [&](auto act) { gemm<decltype(act)::value>(a, m0, m1, p0, p1); });
}

}  // namespace f32
}  // namespace swinq
