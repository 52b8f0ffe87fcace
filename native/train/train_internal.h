// Helpers shared by the training forward (ops.cc) and backward (backward.cc) files.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/kernels_f32.h"
#include "swinq/threadpool.h"
#include "swinq/train.h"

namespace swinq {
namespace train {

[[noreturn]] inline void fail(const Op& op, const std::string& msg) {
  throw std::invalid_argument(std::string("train op ") + kind_name(op.kind) + ": " + msg);
}

template <class F>
inline void par(ThreadPool* pool, int64_t n, int64_t chunk, F&& f) {
  if (pool && n > chunk) {
    auto body = f;  // the pool's template wants an rvalue callable
    pool->parallel_for(n, chunk, std::move(body));
  }
  else {
    f(0, n);
  }
}

// The plan's fp32 kernel table for the active Isa: training forward runs the same kernels as the
// inference ops it shares a name with (one LayerNorm, one softmax, ...), picked in one place.
inline const f32::Kernels& kern() { return f32::kernels(active_isa()); }

// y[T][M,N] = alpha·a[T][M,K]·op(b[T]); b is [K,N] or [N,K] (trans_b). Overwrites y.
inline void mm(const float* a, const float* b, float* y, int64_t T, int64_t M, int64_t K, int64_t N, bool trans_b,
               float alpha, ThreadPool* pool) {
  if (T <= 0 || M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < T * M * N; ++i) y[i] = 0.f;
    return;
  }
  auto matmul = kern().matmul;
  if (T == 1) {
    // split rows: each chunk is a smaller one-batch problem
    const int64_t chunk = std::max<int64_t>(6, (int64_t)(16384 / std::max<int64_t>(1, K * N / 64 + 1)) / 6 * 6);
    par(pool, M, chunk, [&](int64_t m0, int64_t m1) {
      f32::MatmulArgs args{a + m0 * K, b, y + m0 * N, 1, m1 - m0, K, N, 0, 0, trans_b, alpha};
      matmul(args, 0, 1);
    });
    return;
  }
  f32::MatmulArgs args{a, b, y, T, M, K, N, M * K, K * N, trans_b, alpha};
  par(pool, T, 1, [&](int64_t t0, int64_t t1) { matmul(args, t0, t1); });
}

// dst[c, r] = src[r, c] for T stacked [R, C] matrices.
inline void transpose(const float* src, float* dst, int64_t T, int64_t R, int64_t C) {
  for (int64_t t = 0; t < T; ++t) {
    const float* s = src + t * R * C;
    float* d = dst + t * R * C;
    for (int64_t r0 = 0; r0 < R; r0 += 32)
      for (int64_t c0 = 0; c0 < C; c0 += 32)
        for (int64_t r = r0; r < std::min(R, r0 + 32); ++r)
          for (int64_t c = c0; c < std::min(C, c0 + 32); ++c) d[c * R + r] = s[r * C + c];
  }
}

// one past the largest element offset a binary operand is read at
inline size_t binary_extent(const Op& op, const int64_t* st) {
  size_t e = 1;
  for (int d = 0; d < op.rank; ++d) e += (size_t)((op.odims[d] - 1) * st[d]);
  return e;
}

// calls f(i, offset_a, offset_b, n) for each innermost run of n outputs starting at output i
template <class F>
inline void binary_runs(const Op& op, F&& f) {
  const int R = op.rank;
  int64_t idx[8] = {0};
  const int64_t n = op.odims[R - 1];
  int64_t outer = 1;
  for (int d = 0; d < R - 1; ++d) outer *= op.odims[d];
  for (int64_t o = 0; o < outer; ++o) {
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < R - 1; ++d) oa += idx[d] * op.sa[d], ob += idx[d] * op.sb[d];
    f(o * n, oa, ob, n);
    for (int d = R - 2; d >= 0; --d) {
      if (++idx[d] < op.odims[d]) break;
      idx[d] = 0;
    }
  }
}
// Mean and 1/σ of one LayerNorm row in float64: what the backward rule normalizes with (from x),
// and the 1/σ the memory-sharing LayerNorm saves (layernorm_rstd).
inline void row_stats(const float* x, int64_t D, float eps, double* mu, double* rstd) {
  double m = 0, var = 0;
  for (int64_t i = 0; i < D; ++i) m += x[i];
  m /= D;
  for (int64_t i = 0; i < D; ++i) var += (x[i] - m) * (x[i] - m);
  *mu = m;
  *rstd = 1.0 / std::sqrt(var / D + eps);
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x), in float (the exact-backward baseline few-bit is compared with)
inline float gelu_deriv(float x) {
  const float cdf = 0.5f * (1.f + std::erf(x * 0.70710678f));
  const float pdf = 0.39894228f * std::exp(-0.5f * x * x);
  return cdf + x * pdf;
}

}  // namespace train
}  // namespace swinq
