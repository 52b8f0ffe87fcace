// AVX2 batched matmul for attention-sized problems (e.g. 49x32x49): y rows in 4x16 register
// tiles, B rows read directly (trans_b = 0) or from a per-call transposed copy (trans_b = 1).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "swinq/kernels_f32.h"
#include "vmath_f32_avx2.h"

namespace swinq {
namespace f32 {

namespace {

// Y[M,N] = alpha · A[M,K] · B[K,N] (row-major, leading dims K, N, N).
template <int MR>
inline void rows(const float* A, const float* B, float* Y, int64_t K, int64_t N, float alpha) {
  const __m256 al = _mm256_set1_ps(alpha);
  int64_t n = 0;
  for (; n + 16 <= N; n += 16) {
    __m256 c0[MR], c1[MR];
    for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      const __m256 b0 = _mm256_loadu_ps(B + k * N + n), b1 = _mm256_loadu_ps(B + k * N + n + 8);
      for (int r = 0; r < MR; ++r) {
        const __m256 av = _mm256_broadcast_ss(A + r * K + k);
        c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(Y + r * N + n, _mm256_mul_ps(c0[r], al));
      _mm256_storeu_ps(Y + r * N + n + 8, _mm256_mul_ps(c1[r], al));
    }
  }
  for (; n < N; n += 8) {
    const __m256i m = v8::tail_mask(std::min<int64_t>(8, N - n));
    __m256 c[MR];
    for (int r = 0; r < MR; ++r) c[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      const __m256 b0 = _mm256_maskload_ps(B + k * N + n, m);
      for (int r = 0; r < MR; ++r) c[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(A + r * K + k), b0, c[r]);
    }
    for (int r = 0; r < MR; ++r) _mm256_maskstore_ps(Y + r * N + n, m, _mm256_mul_ps(c[r], al));
  }
}

void one(const float* A, const float* B, float* Y, int64_t M, int64_t K, int64_t N, float alpha) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4) rows<4>(A + i * K, B, Y + i * N, K, N, alpha);
  switch (M - i) {
    case 3: rows<3>(A + i * K, B, Y + i * N, K, N, alpha); break;
    case 2: rows<2>(A + i * K, B, Y + i * N, K, N, alpha); break;
    case 1: rows<1>(A + i * K, B, Y + i * N, K, N, alpha); break;
    default: break;
  }
}

}  // namespace

void matmul_f32_avx2(const MatmulArgs& a, int64_t t0, int64_t t1) {
  const int64_t M = a.M, K = a.K, N = a.N;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(a.y + t0 * M * N, a.y + t1 * M * N, 0.0f);
    return;
  }
  // trans_b: transpose b[t] ([N,K]) once per batch into a thread-local [K,N] buffer (reused
  // across runs, so no allocation in steady state).
  thread_local std::vector<float> bt;
  const float* last_b = nullptr;
  for (int64_t t = t0; t < t1; ++t) {
    const float* A = a.a + t * a.a_stride;
    const float* B = a.b + t * a.b_stride;
    if (a.trans_b) {
      if (B != last_b) {  // broadcast b: transpose once
        if ((int64_t)bt.size() < K * N) bt.resize((size_t)(K * N));
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) bt[(size_t)(k * N + n)] = B[n * K + k];
        last_b = B;
      }
      one(A, bt.data(), a.y + t * M * N, M, K, N, a.alpha);
    } else {
      one(A, B, a.y + t * M * N, M, K, N, a.alpha);
    }
  }
}

}  // namespace f32
}  // namespace swinq
