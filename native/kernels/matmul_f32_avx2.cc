// AVX2 batched matmul for attention-sized problems (e.g. 49x32x49): b[t] is packed (scaled by
// alpha) into the GEMM panel layout, then the 6x16 GEMM micro-kernel does the work.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>

#include "swinq/kernels_f32.h"

namespace swinq {
namespace f32 {

namespace {
// A grow-only scratch buffer. Not std::vector: its out-of-line members would be emitted here with
// AVX2 code as weak symbols the linker may pick for scalar callers too (crash on pre-AVX2 CPUs).
struct Scratch {
  float* p = nullptr;
  int64_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(int64_t want) {
    if (want > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, (size_t)((want * 4 + 63) / 64 * 64)));
      n = p ? want : 0;
    }
    return p;
  }
};

// dst[t*kGemmNr + i] = alpha·src[i*lds + t] for i, t < 8.
inline void transpose8x8(const float* src, int64_t lds, float* dst, __m256 alpha) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(alpha, _mm256_loadu_ps(src + i * lds));
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * kGemmNr, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * kGemmNr, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * kGemmNr, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * kGemmNr, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * kGemmNr, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * kGemmNr, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * kGemmNr, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * kGemmNr, _mm256_permute2f128_ps(u3, u7, 0x31));
}
}  // namespace

void matmul_f32_avx2(const MatmulArgs& a, int64_t t0, int64_t t1) {
  const int64_t M = a.M, K = a.K, N = a.N;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = t0 * M * N; i < t1 * M * N; ++i) a.y[i] = 0.0f;
    return;
  }
  // Pack alpha·b[t] into the GEMM panel layout (either orientation) and run the 6x16 GEMM tiles:
  // no masked B loads for odd N, and trans_b costs one pass over b. The buffer is thread-local
  // and only grows, so steady-state runs do not allocate.
  thread_local Scratch scratch;
  const int64_t panels = gemm_panels(N);
  float* const packed = scratch.get(panels * K * kGemmNr);
  if (!packed) return matmul_f32_scalar(a, t0, t1);  // out of memory: never throw inside a pool worker
  const float* last_b = nullptr;
  for (int64_t t = t0; t < t1; ++t) {
    const float* B = a.b + t * a.b_stride;
    if (B != last_b) {  // a broadcast b is packed once
      float* dst = packed;
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
          // 8x8 blocks by register transpose, the ragged edges element by element
          const int64_t j8 = nn / 8 * 8, k8 = K / 8 * 8;
          for (int64_t jb = 0; jb < j8; jb += 8)
            for (int64_t kb = 0; kb < k8; kb += 8) transpose8x8(B + (n0 + jb) * K + kb, K, pp + kb * kGemmNr + jb, al);
          for (int64_t j = 0; j < nn; ++j) {
            const float* br = B + (n0 + j) * K;
            for (int64_t k = j < j8 ? k8 : 0; k < K; ++k) pp[k * kGemmNr + j] = a.alpha * br[k];
          }
        }
      }
      last_b = B;
    }
    GemmArgs g{a.a + t * a.a_stride, packed, nullptr, nullptr, a.y + t * M * N, M, K, N, act_none};
    gemm_f32_6x16_avx2(g, 0, M, 0, panels);
  }
}

}  // namespace f32
}  // namespace swinq
