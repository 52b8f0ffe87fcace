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

inline __m256 act_v(int act, __m256 v) {
  switch (act) {
    case act_relu: return _mm256_max_ps(v, _mm256_setzero_ps());
    case act_gelu_erf: return v8::gelu_erf(v);
    case act_gelu_tanh: return v8::gelu_tanh(v);
    default: return v;
  }
}

// Epilogue for one 8-column half of a tile row: bias, act, residual, store (nn = valid columns).
inline void store8(const GemmArgs& a, __m256 v, int64_t row, int64_t col, int64_t nn) {
  float* y = a.y + row * a.N + col;
  if (nn >= 8) {
    if (a.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(a.bias + col));
    v = act_v(a.act, v);
    if (a.residual) v = _mm256_add_ps(v, _mm256_loadu_ps(a.residual + row * a.N + col));
    _mm256_storeu_ps(y, v);
  } else if (nn > 0) {
    const __m256i m = v8::tail_mask(nn);
    if (a.bias) v = _mm256_add_ps(v, _mm256_maskload_ps(a.bias + col, m));
    v = act_v(a.act, v);
    if (a.residual) v = _mm256_add_ps(v, _mm256_maskload_ps(a.residual + row * a.N + col, m));
    _mm256_maskstore_ps(y, m, v);
  }
}

template <int MR>
void tile(const GemmArgs& a, int64_t m, int64_t p) {
  const int64_t K = a.K;
  const float* b = a.packed_b + p * K * kGemmNr;
  const float* x = a.x + m * K;
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kGemmNr);
    const __m256 b1 = _mm256_loadu_ps(b + k * kGemmNr + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(x + r * K + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  // Spill once through a buffer: indexing the accumulators in the (not unrolled) epilogue loop
  // would make the compiler keep them in memory inside the k loop.
  alignas(32) float t[MR][kGemmNr];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(t[r], c0[r]);
    _mm256_store_ps(t[r] + 8, c1[r]);
  }
  const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(kGemmNr, a.N - n0);
  for (int r = 0; r < MR; ++r) {
    store8(a, _mm256_load_ps(t[r]), m + r, n0, nn);
    store8(a, _mm256_load_ps(t[r] + 8), m + r, n0 + 8, nn - 8);
  }
}

}  // namespace

void gemm_f32_6x16_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    int64_t m = m0;
    for (; m + 6 <= m1; m += 6) tile<6>(a, m, p);
    switch (m1 - m) {
      case 5: tile<5>(a, m, p); break;
      case 4: tile<4>(a, m, p); break;
      case 3: tile<3>(a, m, p); break;
      case 2: tile<2>(a, m, p); break;
      case 1: tile<1>(a, m, p); break;
      default: break;
    }
  }
}

}  // namespace f32
}  // namespace swinq
