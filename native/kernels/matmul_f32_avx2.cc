// AVX2 batched matmul for attention-sized problems (e.g. 49x32x49): b[t] is packed (scaled by
// alpha) into the GEMM panel layout, then the 6x16 GEMM micro-kernel does the work.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "swinq/kernels_f32.h"

namespace swinq {
namespace f32 {

void matmul_f32_avx2(const MatmulArgs& a, int64_t t0, int64_t t1) {
  const int64_t M = a.M, K = a.K, N = a.N;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(a.y + t0 * M * N, a.y + t1 * M * N, 0.0f);
    return;
  }
  // Pack alpha·b[t] into the GEMM panel layout (either orientation) and run the 6x16 GEMM tiles:
  // no masked B loads for odd N, and trans_b costs one pass over b. The buffer is thread-local
  // and only grows, so steady-state runs do not allocate.
  thread_local std::vector<float> packed;
  const int64_t panels = gemm_panels(N);
  if ((int64_t)packed.size() < panels * K * kGemmNr) packed.resize((size_t)(panels * K * kGemmNr));
  const float* last_b = nullptr;
  for (int64_t t = t0; t < t1; ++t) {
    const float* B = a.b + t * a.b_stride;
    if (B != last_b) {  // a broadcast b is packed once
      float* dst = packed.data();
      const __m256 al = _mm256_set1_ps(a.alpha);
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t n0 = p * kGemmNr, nn = std::min<int64_t>(kGemmNr, N - n0);
        float* pp = dst + p * K * kGemmNr;
        if (!a.trans_b && nn == kGemmNr) {
          for (int64_t k = 0; k < K; ++k) {
            _mm256_storeu_ps(pp + k * kGemmNr, _mm256_mul_ps(al, _mm256_loadu_ps(B + k * N + n0)));
            _mm256_storeu_ps(pp + k * kGemmNr + 8, _mm256_mul_ps(al, _mm256_loadu_ps(B + k * N + n0 + 8)));
          }
        } else if (!a.trans_b) {
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < kGemmNr; ++j) pp[k * kGemmNr + j] = j < nn ? a.alpha * B[k * N + n0 + j] : 0.0f;
        } else {
          for (int64_t k = 0; k < K; ++k)
            for (int64_t j = nn; j < kGemmNr; ++j) pp[k * kGemmNr + j] = 0.0f;
          for (int64_t j = 0; j < nn; ++j) {
            const float* br = B + (n0 + j) * K;
            for (int64_t k = 0; k < K; ++k) pp[k * kGemmNr + j] = a.alpha * br[k];
          }
        }
      }
      last_b = B;
    }
    GemmArgs g{a.a + t * a.a_stride, packed.data(), nullptr, nullptr, a.y + t * M * N, M, K, N, act_none};
    gemm_f32_6x16_avx2(g, 0, M, 0, panels);
  }
}

}  // namespace f32
}  // namespace swinq
