// Training forward: attribute checks, output sizes and the forward kernel of every op kind.
#include <cmath>
#include <memory>
#include <mutex>

#include "train_internal.h"

namespace swinq {
namespace train {

#define X(name, wire)
#define SWINQ_TRAIN_OP(kind, plan_op) #kind,
static const char* kNames[] = {
#include "swinq/ops.def"
};
#undef SWINQ_TRAIN_OP
#define SWINQ_TRAIN_OP(kind, plan_op) #plan_op,
static const char* kPlanOps[] = {
#include "swinq/ops.def"
};
#undef SWINQ_TRAIN_OP
#undef X

const char* kind_name(Kind k) { return kNames[(int)k]; }
const char* plan_op_of(Kind k) { return kPlanOps[(int)k]; }

Kind kind_from_name(const std::string& name) {
  for (int i = 0; i < (int)(sizeof(kNames) / sizeof(kNames[0])); ++i)
    if (name == kNames[i]) return (Kind)i;
  std::string all;
  for (const char* n : kNames) all += std::string(all.empty() ? "" : ", ") + n;
  throw std::invalid_argument("train: unknown op '" + name + "' (expected one of " + all + ")");
}

static void positive(const Op& op, const char* field, int64_t v) {
  if (v <= 0 || v > (int64_t(1) << 31)) fail(op, std::string(field) + " must be in 1..2^31, got " + std::to_string(v));
}

// act: the fixed table of op.table_borders / op.table_levels (J by the solver's quadrature, w ≡ 1)
static std::shared_ptr<const FewbitTable> fixed_table(const Op& op) {
  const size_t k = size_t(1) << op.bits;
  if (op.table_borders.size() != k - 1 || op.table_levels.size() != k)
    fail(op, "a fixed " + std::to_string(op.bits) + "-bit table needs " + std::to_string(k - 1) + " borders and " + std::to_string(k) +
                 " levels, got " + std::to_string(op.table_borders.size()) + " and " + std::to_string(op.table_levels.size()));
  for (size_t i = 0; i < k - 1; ++i)
    if (!std::isfinite(op.table_borders[i]) || (i > 0 && !(op.table_borders[i] > op.table_borders[i - 1])))
      fail(op, "fixed table borders must be finite and strictly ascending (border " + std::to_string(i) + ")");
  for (double l : op.table_levels)
    if (!std::isfinite(l)) fail(op, "fixed table levels must be finite");
  auto t = std::make_shared<FewbitTable>();
  t->fn = op.fn;
  t->bits = op.bits;
  t->borders = op.table_borders;
  t->steps.assign(k - 1, 1);
  t->levels = op.table_levels;
  for (double b : t->borders) t->borders_f32.push_back((float)b);
  for (double l : t->levels) t->levels_f32.push_back((float)l);
  t->error = fewbit_objective(op.fn, t->borders, t->levels);
  return t;
}

// act: the plan's unary op for fn with the few-bit functions' (PyTorch) default parameters, if it has one
static void unary_of(Op& op) {
  struct U { const char* fn; int u; float p0, p1; };
  static const U table[] = {
      {"relu", f32::u_relu, 0, 0}, {"gelu", f32::u_gelu_erf, 0, 0}, {"gelu_tanh", f32::u_gelu_tanh, 0, 0},
      {"silu", f32::u_silu, 0, 0}, {"mish", f32::u_mish, 0, 0}, {"elu", f32::u_elu, 1.f, 0},
      {"softplus", f32::u_softplus, 0, 0}, {"sigmoid", f32::u_sigmoid, 0, 0}, {"tanh", f32::u_tanh, 0, 0},
      {"hardswish", f32::u_hardswish, 0, 0}, {"leaky_relu", f32::u_leaky_relu, 0.01f, 0},
      {"hardsigmoid", f32::u_hardsigmoid, 1.f / 6.f, 0.5f}, {"relu6", f32::u_clip, 0.f, 6.f}, {"hardtanh", f32::u_clip, -1.f, 1.f},
  };
  op.unary = -1;
  for (const U& t : table)
    if (op.fn == t.fn) op.unary = t.u, op.unary_p0 = t.p0, op.unary_p1 = t.p1;
}

void prepare(Op& op) {
  switch (op.kind) {
    case Kind::linear: positive(op, "K", op.K); positive(op, "N", op.N); break;
    case Kind::layernorm:
      positive(op, "D", op.D);
      if (!(op.eps > 0) || !std::isfinite(op.eps)) fail(op, "eps must be a positive finite number");
      break;
    case Kind::matmul:
      positive(op, "M", op.M); positive(op, "K", op.K); positive(op, "N", op.N);
      if (!std::isfinite(op.alpha)) fail(op, "alpha must be finite");
      break;
    case Kind::softmax: positive(op, "D", op.D); break;
    case Kind::add: break;
    case Kind::add_bcast:
      for (int i = 1; i < 4; ++i) {
        positive(op, "dims", op.adims[i]);
        if (op.bdims[i] != 1 && op.bdims[i] != op.adims[i])
          fail(op, "bdims[" + std::to_string(i) + "] must be 1 or " + std::to_string(op.adims[i]) + ", got " + std::to_string(op.bdims[i]));
      }
      op.bdims[0] = 1;
      break;
    case Kind::gather:
      positive(op, "x_item", op.x_item); positive(op, "block", op.block);
      if (op.idx.empty()) fail(op, "idx must not be empty");
      for (size_t r = 0; r < op.idx.size(); ++r) {
        const int64_t i = op.idx[r];
        if (i >= 0 && i + op.block > op.x_item)
          fail(op, "idx[" + std::to_string(r) + "] = " + std::to_string(i) + " reads past x_item " + std::to_string(op.x_item) +
                       " (block " + std::to_string(op.block) + ")");
      }
      break;
    case Kind::act:
      if (!fewbit_has_function(op.fn)) fail(op, "unknown activation fn '" + op.fn + "'");
      if (op.bits < 0 || op.bits > 4) fail(op, "bits must be 0..4, got " + std::to_string(op.bits));
      unary_of(op);
      if (op.bits > 0 && !op.table_borders.empty()) {
        op.table = fixed_table(op);
        op.codec = fewbit_codec(*op.table);
      } else if (op.bits > 0) {
        op.table = fewbit_table(op.fn, op.bits);
        op.codec = fewbit_codec(*op.table);
      } else if (!op.table_borders.empty() || !op.table_levels.empty()) {
        fail(op, "a fixed table needs bits > 0");
      }
      break;
    case Kind::mean_pool: positive(op, "L", op.M); positive(op, "C", op.D); break;
    case Kind::fakequant:
      if (!(op.q_scale > 0) || !std::isfinite(op.q_scale)) fail(op, "scale must be a positive finite number");
      if (op.q_min >= op.q_max || op.q_min < -32768 || op.q_max > 65535)
        fail(op, "qmin < qmax within 16 bits required, got " + std::to_string(op.q_min) + ", " + std::to_string(op.q_max));
      if (op.q_zp < op.q_min || op.q_zp > op.q_max) fail(op, "zp must lie in [qmin, qmax], got " + std::to_string(op.q_zp));
      break;
    case Kind::binary: {
      if (op.bop < 0 || op.bop > 3) fail(op, "bop must be 0 (add), 1 (sub), 2 (mul) or 3 (div), got " + std::to_string(op.bop));
      if (op.rank < 1 || op.rank > 8) fail(op, "rank must be 1..8, got " + std::to_string(op.rank));
      int64_t total = 1;
      for (int d = 0; d < op.rank; ++d) {
        positive(op, "odims", op.odims[d]);
        if (op.sa[d] < 0 || op.sb[d] < 0 || op.sa[d] > (int64_t(1) << 31) || op.sb[d] > (int64_t(1) << 31))
          fail(op, "strides must be in 0..2^31, got " + std::to_string(op.sa[d]) + ", " + std::to_string(op.sb[d]));
        total *= op.odims[d];
        if (total > (int64_t(1) << 34)) fail(op, "output has more than 2^34 elements");
      }
      break;
    }
    case Kind::scale_shift:
      if (!std::isfinite(op.alpha) || !std::isfinite(op.shift)) fail(op, "scale and shift must be finite");
      break;
  }
}



static size_t rows_of(const Op& op, size_t n, int64_t row, const char* what) {
  if (n % (size_t)row) fail(op, std::string(what) + " has " + std::to_string(n) + " elements, not a multiple of " + std::to_string(row));
  return n / (size_t)row;
}

static void want(const Op& op, const std::vector<size_t>& s, size_t count) {
  if (s.size() != count) fail(op, "expects " + std::to_string(count) + " inputs, got " + std::to_string(s.size()));
}

static void exact(const Op& op, size_t got, size_t need, const char* what) {
  if (got != need) fail(op, std::string(what) + " has " + std::to_string(got) + " elements, expected " + std::to_string(need));
}

size_t output_size(const Op& op, const std::vector<size_t>& s) {
  switch (op.kind) {
    case Kind::linear: {
      want(op, s, 3);
      const size_t M = rows_of(op, s[0], op.K, "x");
      exact(op, s[1], (size_t)(op.K * op.N), "w");
      exact(op, s[2], (size_t)op.N, "b");
      return M * op.N;
    }
    case Kind::layernorm:
      want(op, s, 3);
      rows_of(op, s[0], op.D, "x");
      exact(op, s[1], op.D, "gamma");
      exact(op, s[2], op.D, "beta");
      return s[0];
    case Kind::matmul: {
      want(op, s, 2);
      const size_t T = rows_of(op, s[0], op.M * op.K, "a");
      exact(op, s[1], T * op.K * op.N, "b");
      return T * op.M * op.N;
    }
    case Kind::softmax: want(op, s, 1); rows_of(op, s[0], op.D, "x"); return s[0];
    case Kind::add: want(op, s, 2); exact(op, s[1], s[0], "b"); return s[0];
    case Kind::add_bcast:
      want(op, s, 2);
      rows_of(op, s[0], op.adims[1] * op.adims[2] * op.adims[3], "a");
      exact(op, s[1], op.bdims[1] * op.bdims[2] * op.bdims[3], "b");
      return s[0];
    case Kind::gather: want(op, s, 1); return rows_of(op, s[0], op.x_item, "x") * op.idx.size() * op.block;
    case Kind::act: want(op, s, 1); return s[0];
    case Kind::mean_pool: want(op, s, 1); return rows_of(op, s[0], op.M * op.D, "x") * op.D;
    case Kind::fakequant: want(op, s, 1); return s[0];
    case Kind::binary: {
      want(op, s, 2);
      if (binary_extent(op, op.sa) > s[0]) fail(op, "a has " + std::to_string(s[0]) + " elements, the strides read " + std::to_string(binary_extent(op, op.sa)));
      if (binary_extent(op, op.sb) > s[1]) fail(op, "b has " + std::to_string(s[1]) + " elements, the strides read " + std::to_string(binary_extent(op, op.sb)));
      size_t n = 1;
      for (int d = 0; d < op.rank; ++d) n *= (size_t)op.odims[d];
      return n;
    }
    case Kind::scale_shift: want(op, s, 1); return s[0];
  }
  fail(op, "bad kind");
}

// Every forward but fakequant and the few-bit codes runs a plan op's fp32 kernel (ops.def
// SWINQ_TRAIN_OP: the plan op each train op is): values equal the inference engine's.
void forward(const Op& op, const std::vector<const float*>& in, const std::vector<size_t>& in_n, float* y,
             uint8_t* codes, ThreadPool* pool) {
  const size_t ny = output_size(op, in_n);
  const f32::Kernels& k = kern();
  switch (op.kind) {
    case Kind::linear: {  // plan linear: x·w, then + bias (the matmul kernel: w changes every step, no packing)
      const int64_t M = (int64_t)(in_n[0] / op.K), N = op.N;
      mm(in[0], in[1], y, 1, M, op.K, N, false, 1.f, pool);
      par(pool, M, 256, [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) k.binary(f32::b_add, y + m * N, 1, in[2], 1, y + m * N, N);
      });
      break;
    }
    case Kind::layernorm: {
      const int64_t R = (int64_t)(in_n[0] / op.D);
      par(pool, R, 64, [&](int64_t r0, int64_t r1) { k.layernorm(in[0], in[1], in[2], y, op.D, op.eps, r0, r1); });
      break;
    }
    case Kind::matmul:
      mm(in[0], in[1], y, (int64_t)(in_n[0] / (op.M * op.K)), op.M, op.K, op.N, op.trans_b, op.alpha, pool);
      break;
    case Kind::softmax: {
      const int64_t D = op.D, R = (int64_t)(in_n[0] / D);
      par(pool, R, 256, [&](int64_t r0, int64_t r1) { k.softmax(in[0], nullptr, 1, y, D, r0, r1); });
      break;
    }
    case Kind::add:
      par(pool, (int64_t)ny, 16384, [&](int64_t i0, int64_t i1) { k.binary(f32::b_add, in[0] + i0, 1, in[1] + i0, 1, y + i0, i1 - i0); });
      break;
    case Kind::add_bcast: {  // plan binary add, b broadcast: one contiguous run per (i0, i1, i2)
      const int64_t A1 = op.adims[1], A2 = op.adims[2], A3 = op.adims[3];
      const int64_t rows = (int64_t)(in_n[0] / A3);
      const int64_t s1 = op.bdims[1] == 1 ? 0 : op.bdims[2] * op.bdims[3];
      const int64_t s2 = op.bdims[2] == 1 ? 0 : op.bdims[3];
      const int64_t s3 = op.bdims[3] == 1 ? 0 : 1;
      par(pool, rows, std::max<int64_t>(1, 16384 / A3), [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t i1 = (q / A2) % A1, i2 = q % A2;
          k.binary(f32::b_add, in[0] + q * A3, 1, in[1] + i1 * s1 + i2 * s2, s3, y + q * A3, A3);
        }
      });
      break;
    }
    case Kind::gather: {  // plan index_map over (item, row) pairs
      const int64_t R = (int64_t)op.idx.size(), B = op.block, T = (int64_t)(in_n[0] / op.x_item);
      par(pool, T * R, std::max<int64_t>(1, 16384 / B), [&](int64_t i0, int64_t i1) {
        k.index_map(reinterpret_cast<const uint8_t*>(in[0]), op.idx.data(), reinterpret_cast<uint8_t*>(y), 4, B, op.x_item, R * B, i0, i1);
      });
      break;
    }
    case Kind::act:
      // codes first, then y elementwise: y may be x's own buffer (in-place, the trainer's peak memory)
      if (op.bits > 0) {
        if (!codes) fail(op, "codes buffer missing for bits > 0");
        fewbit_encode(op.codec, in[0], ny, codes, fewbit_packed_bytes(ny, op.bits));
      }
      if (op.unary >= 0) {  // the plan's unary op (the values the exported model runs)
        par(pool, (int64_t)ny, 16384, [&](int64_t i0, int64_t i1) { k.unary(op.unary, op.unary_p0, op.unary_p1, in[0] + i0, y + i0, i1 - i0); });
      } else {  // celu, selu, softsign, tanhshrink, logsigmoid, threshold: the few-bit reference
        fewbit_apply_f32(op.fn, FewbitOptions{}, in[0], ny, y);
      }
      break;
    case Kind::mean_pool: {  // plan reduce mean over L
      const int64_t L = op.M, C = op.D, T = (int64_t)(in_n[0] / (L * C));
      par(pool, T, 1, [&](int64_t t0, int64_t t1) { f32::reduce_f32(f32::r_mean, in[0], y, T, L, C, t0, t1); });
      break;
    }
    case Kind::fakequant: {
      const float inv = 1.f / op.q_scale, lo = (float)op.q_min, hi = (float)op.q_max, zp = (float)op.q_zp;
      par(pool, (int64_t)ny, 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const float q = std::min(hi, std::max(lo, std::nearbyint(in[0][i] * inv) + zp));
          y[i] = (q - zp) * op.q_scale;
        }
      });
      break;
    }
    case Kind::binary: {  // plan binary: contiguous or broadcast runs through the kernel, other strides one by one
      const float* a = in[0];
      const float* b = in[1];
      const int64_t ia = op.sa[op.rank - 1], ib = op.sb[op.rank - 1];
      binary_runs(op, [&](int64_t i, int64_t oa, int64_t ob, int64_t n) {
        if (ia <= 1 && ib <= 1) return k.binary(op.bop, a + oa, ia, b + ob, ib, y + i, n);
        for (int64_t j = 0; j < n; ++j) y[i + j] = f32::binary_one(op.bop, a[oa + j * ia], b[ob + j * ib]);
      });
      break;
    }
    case Kind::scale_shift:  // plan unary scale_shift: p0·x + p1
      par(pool, (int64_t)ny, 16384, [&](int64_t i0, int64_t i1) { k.unary(f32::u_scale_shift, op.alpha, op.shift, in[0] + i0, y + i0, i1 - i0); });
      break;
  }
}

ThreadPool* pool(int threads) {
  static std::mutex mu;
  static std::unique_ptr<ThreadPool> p;
  std::lock_guard<std::mutex> lock(mu);
  if (threads < 1) threads = 1;
  if (!p) p = std::make_unique<ThreadPool>(threads);
  else if (p->threads() != threads) p->set_threads(threads);
  return p.get();
}

}  // namespace train
}  // namespace swinq
