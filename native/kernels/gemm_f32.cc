// fp32 GEMM: B packing and the scalar reference (the AVX2 kernel is gemm_f32_avx2.cc).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "swinq/kernels_f32.h"

namespace swinq {
namespace f32 {

float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
float gelu_tanh(float x) {
  const float c = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

void pack_b_f32(const float* w, int64_t K, int64_t N, float* packed) {
  const int64_t panels = gemm_panels(N);
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = packed + p * K * kGemmNr;
    const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(kGemmNr, N - n0);
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t j = 0; j < nn; ++j) dst[k * kGemmNr + j] = w[k * N + n0 + j];
      for (int64_t j = nn; j < kGemmNr; ++j) dst[k * kGemmNr + j] = 0.0f;
    }
  }
}

static inline float apply_act(int act, float v) {
  switch (act) {
    case act_relu: return v > 0.0f ? v : 0.0f;
    case act_gelu_erf: return gelu_erf(v);
    case act_gelu_tanh: return gelu_tanh(v);
    default: return v;
  }
}

void gemm_f32_scalar(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const int64_t K = a.K, N = a.N;
  for (int64_t i = m0; i < m1; ++i) {
    const float* xr = a.x + i * K;
    for (int64_t p = p0; p < p1; ++p) {
      float acc[kGemmNr] = {};
      const float* b = a.packed_b + p * K * kGemmNr;
      for (int64_t k = 0; k < K; ++k) {
        const float xv = xr[k];
        for (int j = 0; j < kGemmNr; ++j) acc[j] += xv * b[k * kGemmNr + j];
      }
      const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(kGemmNr, N - n0);
      for (int64_t j = 0; j < nn; ++j) {
        float v = acc[j] + (a.bias ? a.bias[n0 + j] : 0.0f);
        v = apply_act(a.act, v);
        if (a.residual) v += a.residual[i * N + n0 + j];
        a.y[i * N + n0 + j] = v;
      }
    }
  }
}

void matmul_f32_scalar(const MatmulArgs& a, int64_t t0, int64_t t1) {
  const int64_t M = a.M, K = a.K, N = a.N;
  for (int64_t t = t0; t < t1; ++t) {
    const float* A = a.a + t * a.a_stride;
    const float* B = a.b + t * a.b_stride;
    float* Y = a.y + t * M * N;
    for (int64_t i = 0; i < M; ++i) {
      float* yr = Y + i * N;
      if (a.trans_b) {
        for (int64_t n = 0; n < N; ++n) {
          float s = 0.0f;
          for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * B[n * K + k];
          yr[n] = a.alpha * s;
        }
      } else {
        for (int64_t n = 0; n < N; ++n) yr[n] = 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const float av = A[i * K + k];
          const float* br = B + k * N;
          for (int64_t n = 0; n < N; ++n) yr[n] += av * br[n];
        }
        for (int64_t n = 0; n < N; ++n) yr[n] *= a.alpha;
      }
    }
  }
}

}  // namespace f32
}  // namespace swinq
