// Every backward rule, one function per op kind (the only place gradients are defined).
// Saved state: the op's inputs and output (act with bits > 0 keeps only its few-bit codes).
#include <cmath>
#include <vector>

#include "train_internal.h"

namespace swinq {
namespace train {
namespace {

using Grads = std::vector<float*>;

// y = x·w + b:  dx = dy·wᵀ,  dw = xᵀ·dy,  db = Σ_rows dy
void linear_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool* pool) {
  const int64_t K = op.K, N = op.N, M = (int64_t)(s.in_n[0] / K);
  if (g[0]) mm(dy, s.in[1], g[0], 1, M, N, K, true, 1.f, pool);
  if (g[1]) {
    std::vector<float> xt((size_t)(M * K));
    transpose(s.in[0], xt.data(), 1, M, K);
    mm(xt.data(), dy, g[1], 1, K, M, N, false, 1.f, pool);
  }
  if (g[2]) {
    std::vector<double> acc((size_t)N, 0.0);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) acc[n] += dy[m * N + n];
    for (int64_t n = 0; n < N; ++n) g[2][n] = (float)acc[n];
  }
}

// x̂ = (x-μ)·rstd, y = x̂·γ + β:  dx = rstd·(dx̂ - mean(dx̂) - x̂·mean(dx̂·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
// From the input x, or (memory-sharing LayerNorm, Approx-BP: x not kept) from the output y and 1/σ
// per row: x̂ = (y − β)/γ.
void layernorm_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  const int64_t D = op.D, R = (int64_t)(s.in_n[0] / D);
  const float* gamma = s.in[1];
  std::vector<double> dg((size_t)D, 0.0), db((size_t)D, 0.0), xh((size_t)D), dxh((size_t)D);
  for (int64_t r = 0; r < R; ++r) {
    const float* d = dy + r * D;
    double rstd;
    if (s.in[0]) {
      const float* x = s.in[0] + r * D;
      double mu;
      row_stats(x, D, op.eps, &mu, &rstd);
      for (int64_t i = 0; i < D; ++i) xh[i] = (x[i] - mu) * rstd;
    } else {
      const float* y = s.out + r * D;
      rstd = s.aux[r];
      for (int64_t i = 0; i < D; ++i) xh[i] = ((double)y[i] - s.in[2][i]) / gamma[i];
    }
    double m1 = 0, m2 = 0;
    for (int64_t i = 0; i < D; ++i) {
      dxh[i] = (double)d[i] * gamma[i];
      m1 += dxh[i];
      m2 += dxh[i] * xh[i];
      dg[i] += d[i] * xh[i];
      db[i] += d[i];
    }
    m1 /= D;
    m2 /= D;
    if (g[0])
      for (int64_t i = 0; i < D; ++i) g[0][r * D + i] = (float)(rstd * (dxh[i] - m1 - xh[i] * m2));
  }
  if (g[1]) for (int64_t i = 0; i < D; ++i) g[1][i] = (float)dg[i];
  if (g[2]) for (int64_t i = 0; i < D; ++i) g[2][i] = (float)db[i];
}

// y = α·a·op(b):  da = α·dy·op(b)ᵀ;  db = α·aᵀ·dy  (or α·dyᵀ·a when b is stored transposed)
void matmul_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool* pool) {
  const int64_t M = op.M, K = op.K, N = op.N, T = (int64_t)(s.in_n[0] / (M * K));
  if (g[0]) {
    if (op.trans_b) {  // op(b)ᵀ = b [N,K] as stored: da[M,K] = dy[M,N]·b[N,K]
      mm(dy, s.in[1], g[0], T, M, N, K, false, op.alpha, pool);
    } else {           // op(b)ᵀ = bᵀ: b stored [K,N] is "transposed [N,K]"
      mm(dy, s.in[1], g[0], T, M, N, K, true, op.alpha, pool);
    }
  }
  if (g[1]) {
    if (op.trans_b) {  // db[N,K] = dyᵀ[N,M]·a[M,K]
      std::vector<float> dyt((size_t)(T * M * N));
      transpose(dy, dyt.data(), T, M, N);
      mm(dyt.data(), s.in[0], g[1], T, N, M, K, false, op.alpha, pool);
    } else {           // db[K,N] = aᵀ[K,M]·dy[M,N]
      std::vector<float> at((size_t)(T * M * K));
      transpose(s.in[0], at.data(), T, M, K);
      mm(at.data(), dy, g[1], T, K, M, N, false, op.alpha, pool);
    }
  }
}

// y = softmax(x):  dx = y·(dy - Σ dy·y)  (a row's Σ is taken before the row is written: dx may be dy)
void softmax_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool* pool) {
  if (!g[0]) return;
  const int64_t D = op.D, R = (int64_t)(s.in_n[0] / D);
  par(pool, R, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* y = s.out + r * D;
      const float* d = dy + r * D;
      double dot = 0;
      for (int64_t i = 0; i < D; ++i) dot += (double)d[i] * y[i];
      for (int64_t i = 0; i < D; ++i) g[0][r * D + i] = (float)(y[i] * (d[i] - dot));
    }
  });
}

// y = a + b:  da = db = dy
void add_backward(const Op&, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  for (int k = 0; k < 2; ++k)
    if (g[k]) std::copy(dy, dy + s.in_n[0], g[k]);
}

// y = a + broadcast(b):  da = dy, db = dy summed over the broadcast dims
void add_bcast_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  if (g[0]) std::copy(dy, dy + s.in_n[0], g[0]);
  if (!g[1]) return;
  const int64_t A1 = op.adims[1], A2 = op.adims[2], A3 = op.adims[3];
  const int64_t A0 = (int64_t)(s.in_n[0] / (A1 * A2 * A3));
  const int64_t s1 = op.bdims[1] == 1 ? 0 : op.bdims[2] * op.bdims[3];
  const int64_t s2 = op.bdims[2] == 1 ? 0 : op.bdims[3];
  const int64_t s3 = op.bdims[3] == 1 ? 0 : 1;
  std::vector<double> acc(s.in_n[1], 0.0);
  size_t k = 0;
  for (int64_t i0 = 0; i0 < A0; ++i0)
    for (int64_t i1 = 0; i1 < A1; ++i1)
      for (int64_t i2 = 0; i2 < A2; ++i2) {
        double* b = acc.data() + i1 * s1 + i2 * s2;
        for (int64_t i3 = 0; i3 < A3; ++i3, ++k) b[i3 * s3] += dy[k];
      }
  for (size_t i = 0; i < acc.size(); ++i) g[1][i] = (float)acc[i];
}

// y[t, r, j] = x[t, idx[r] + j]:  scatter-add (an index may be read many times, e.g. the
// relative-position table), padded (idx < 0) rows send nothing back.
void gather_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  if (!g[0]) return;
  const int64_t R = (int64_t)op.idx.size(), B = op.block, T = (int64_t)(s.in_n[0] / op.x_item);
  std::fill(g[0], g[0] + s.in_n[0], 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < R; ++r) {
      const int64_t i = op.idx[r];
      if (i < 0) continue;
      float* d = g[0] + t * op.x_item + i;
      const float* src = dy + (t * R + r) * B;
      for (int64_t j = 0; j < B; ++j) d[j] += src[j];
    }
}

// y = f(x):  dx = dy·f'(x), or dy·level[code] from the few-bit codes (x not kept)
void act_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  if (!g[0]) return;
  const size_t n = s.in_n[0];
  if (op.bits > 0) {
    if (!s.codes) fail(op, "few-bit codes missing in backward");
    fewbit_decode_mul(op.codec, s.codes, s.codes_n, dy, n, g[0]);
    return;
  }
  const float* x = s.in[0];
  if (!x) fail(op, "input x missing in backward (bits = 0 keeps x)");
  if (op.fn == "relu") for (size_t i = 0; i < n; ++i) g[0][i] = x[i] > 0.f ? dy[i] : 0.f;
  else if (op.fn == "gelu") for (size_t i = 0; i < n; ++i) g[0][i] = dy[i] * gelu_deriv(x[i]);
  else for (size_t i = 0; i < n; ++i) g[0][i] = dy[i] * (float)fewbit_eval_deriv(op.fn, x[i]);
}

// fake quantization: the clipped straight-through estimator (the rounding's derivative is taken as 1
// inside the code range, 0 where the input was clamped)
void fakequant_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool* pool) {
  if (!g[0]) return;
  const float inv = 1.f / op.q_scale, lo = (float)op.q_min - 0.5f, hi = (float)op.q_max + 0.5f, zp = (float)op.q_zp;
  par(pool, (int64_t)s.in_n[0], 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float c = s.in[0][i] * inv + zp;
      g[0][i] = c >= lo && c <= hi ? dy[i] : 0.f;
    }
  });
}

// y[t, c] = mean_l x[t, l, c]:  dx[t, l, c] = dy[t, c] / L
void mean_pool_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  if (!g[0]) return;
  const int64_t L = op.M, C = op.D, T = (int64_t)(s.in_n[0] / (L * C));
  const float inv = 1.f / (float)L;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t c = 0; c < C; ++c) g[0][(t * L + l) * C + c] = dy[t * C + c] * inv;
}

// y = a ∘ b with broadcast strides: each operand's gradient is summed over the outputs that read it
//   add: da = dy, db = dy;  sub: db = −dy;  mul: da = dy·b, db = dy·a;  div: da = dy/b, db = −dy·a/b²
void binary_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  const float* a = s.in[0];
  const float* b = s.in[1];
  if (op.bop >= 2 && (!a || !b)) fail(op, "saved inputs missing (mul/div read both)");
  for (int k = 0; k < 2; ++k)
    if (g[k]) std::fill(g[k], g[k] + s.in_n[k], 0.f);
  const int64_t ia = op.sa[op.rank - 1], ib = op.sb[op.rank - 1];
  binary_runs(op, [&](int64_t i, int64_t oa, int64_t ob, int64_t n) {
    const float* d = dy + i;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t pa = oa + j * ia, pb = ob + j * ib;
      float ga, gb;
      switch (op.bop) {
        case 0: ga = d[j]; gb = d[j]; break;
        case 1: ga = d[j]; gb = -d[j]; break;
        case 2: ga = d[j] * b[pb]; gb = d[j] * a[pa]; break;
        default: ga = d[j] / b[pb]; gb = -d[j] * a[pa] / (b[pb] * b[pb]); break;
      }
      if (g[0]) g[0][pa] += ga;
      if (g[1]) g[1][pb] += gb;
    }
  });
}

// y = α·x + β:  dx = α·dy
void scale_shift_backward(const Op& op, const Saved& s, const float* dy, const Grads& g, ThreadPool*) {
  if (g[0]) for (size_t i = 0; i < s.in_n[0]; ++i) g[0][i] = op.alpha * dy[i];
}

}  // namespace

void layernorm_rstd(const Op& op, const float* x, size_t n, float* rstd) {
  if (op.kind != Kind::layernorm) fail(op, "1/σ per row is a layernorm quantity");
  if (n % (size_t)op.D) fail(op, "x has " + std::to_string(n) + " elements, not a multiple of D = " + std::to_string(op.D));
  for (size_t r = 0; r < n / (size_t)op.D; ++r) {
    double mu, rs;
    row_stats(x + r * op.D, op.D, op.eps, &mu, &rs);
    rstd[r] = (float)rs;
  }
}

int input_count(Kind k) {
  switch (k) {
    case Kind::linear: case Kind::layernorm: return 3;
    case Kind::matmul: case Kind::add: case Kind::add_bcast: case Kind::binary: return 2;
    default: return 1;
  }
}

Reads reads(const Op& op, const std::vector<bool>& need, bool from_output) {
  const int n = input_count(op.kind);
  if ((int)need.size() != n) fail(op, "need has " + std::to_string(need.size()) + " entries, the op " + std::to_string(n) + " inputs");
  if (from_output && op.kind != Kind::layernorm) fail(op, "only layernorm runs backward from its output");
  Reads r;
  r.in.assign((size_t)n, false);
  bool any = false;
  for (bool b : need) any = any || b;
  if (!any) return r;
  switch (op.kind) {
    case Kind::linear: case Kind::matmul:  // dx (dA) reads W (B) only, dW (dB) reads x (A) only
      r.in[1] = need[0];
      r.in[0] = need[1];
      break;
    case Kind::layernorm:  // x̂ from x, or from y, β and 1/σ; every gradient reads γ
      r.in[1] = true;
      if (from_output) r.in[2] = r.out = r.aux = true; else r.in[0] = true;
      break;
    case Kind::softmax: r.out = true; break;
    case Kind::act: if (op.bits > 0) r.codes = true; else r.in[0] = true; break;
    case Kind::fakequant: r.in[0] = true; break;
    case Kind::binary: if (op.bop >= 2) r.in[0] = r.in[1] = true; break;  // mul / div read both
    case Kind::add: case Kind::add_bcast: case Kind::gather: case Kind::mean_pool: case Kind::scale_shift: break;
  }
  return r;
}

void backward(const Op& op, const Saved& s, const float* dy, const std::vector<float*>& grads, ThreadPool* pool) {
  std::vector<size_t> sizes = s.in_n;
  output_size(op, sizes);  // checks the saved sizes again
  if (grads.size() != s.in_n.size()) fail(op, "one gradient slot per input expected");
  std::vector<bool> need;
  for (float* g : grads) need.push_back(g != nullptr);
  // a LayerNorm without its input runs from its output; everything else is checked against reads()
  const bool from_output = op.kind == Kind::layernorm && !s.in[0];
  const Reads r = reads(op, need, from_output);
  for (size_t i = 0; i < r.in.size(); ++i)
    if (r.in[i] && !s.in[i])
      fail(op, "saved input " + std::to_string(i) + " missing" + (from_output && i == 2 ? " (β, for backward from the output)" : ""));
  if (r.out && !s.out) fail(op, from_output ? "saved input 0 missing (or the output y with 1/σ per row)" : "saved output missing");
  if (r.codes && !s.codes) fail(op, "few-bit codes missing in backward");
  if (r.aux && s.aux_n != s.in_n[0] / (size_t)op.D)
    fail(op, "1/σ has " + std::to_string(s.aux_n) + " rows, expected " + std::to_string(s.in_n[0] / (size_t)op.D));
  switch (op.kind) {
    case Kind::linear: return linear_backward(op, s, dy, grads, pool);
    case Kind::layernorm: return layernorm_backward(op, s, dy, grads, pool);
    case Kind::matmul: return matmul_backward(op, s, dy, grads, pool);
    case Kind::softmax: return softmax_backward(op, s, dy, grads, pool);
    case Kind::add: return add_backward(op, s, dy, grads, pool);
    case Kind::add_bcast: return add_bcast_backward(op, s, dy, grads, pool);
    case Kind::gather: return gather_backward(op, s, dy, grads, pool);
    case Kind::act: return act_backward(op, s, dy, grads, pool);
    case Kind::mean_pool: return mean_pool_backward(op, s, dy, grads, pool);
    case Kind::fakequant: return fakequant_backward(op, s, dy, grads, pool);
    case Kind::binary: return binary_backward(op, s, dy, grads, pool);
    case Kind::scale_shift: return scale_shift_backward(op, s, dy, grads, pool);
  }
}

}  // namespace train
}  // namespace swinq
