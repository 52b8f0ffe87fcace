// fp32 elementwise and reduction ops: binary (strided broadcast), unary, reduce, argmax.
// Contracts: ops.def; kernels: kernels/elementwise_f32*.cc.
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- binary ----

// The iteration shape after dropping size-1 dims and merging dims contiguous in a, b and y.
struct BinaryState : OpState {
  int rank = 0;  // >= 1
  int64_t dims[kMaxRank] = {};
  int64_t as[kMaxRank] = {}, bs[kMaxRank] = {};
  int64_t rows = 1;  // product of all dims but the last
};

void binary_validate(const OpCheck& c) {
  c.arity(2, 2, {"a", "b"});
  if (c.op.ints.size() < 2)
    c.fail("ints has " + str((int64_t)c.op.ints.size()) + " values, expected [op, rank, dims, a_strides, b_strides]");
  if (c.I(0) < 0 || c.I(0) >= f32::b_count) c.fail("ints[0] op = " + str(c.I(0)) + " is unknown (0..6)");
  const int64_t rank = c.I(1);
  if (rank < 0 || rank > kMaxRank) c.fail("ints[1] rank = " + str(rank) + " is out of range [0, 8]");
  c.ints_len((size_t)(2 + 3 * rank), "[op, rank, dims[rank], a_strides[rank], b_strides[rank]]");
  const int32_t a = c.in(0), b = c.in(1), y = c.out();
  c.all_f32({{a, "a"}, {b, "b"}, {y, "y"}});
  int64_t n = 1, amax = 0, bmax = 0;
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t dim = c.I(2 + k), as = c.I(2 + rank + k), bs = c.I(2 + 2 * rank + k);
    if (dim < 0) c.fail("dims[" + str(k) + "] = " + str(dim) + " is negative");
    if (as < 0) c.fail("a_strides[" + str(k) + "] = " + str(as) + " is negative");
    if (bs < 0) c.fail("b_strides[" + str(k) + "] = " + str(bs) + " is negative");
    n = c.prod({n, dim}, "element count");
    if (dim > 0) {
      amax += c.prod({dim - 1, as}, "a extent");
      bmax += c.prod({dim - 1, bs}, "b extent");
      if (amax > kMaxBytes || bmax > kMaxBytes) c.fail("strides overflow");
    }
  }
  c.elems(y, "y", n, "prod(dims)");
  if (n > 0) {
    if (amax >= c.t(a).elements())
      c.fail("a has " + str(c.t(a).elements()) + " elements, but its strides reach element " + str(amax));
    if (bmax >= c.t(b).elements())
      c.fail("b has " + str(c.t(b).elements()) + " elements, but its strides reach element " + str(bmax));
  }
  // Exact alias only when that input is read with the output's own layout.
  for (int s = 0; s < 2; ++s) {
    const int32_t id = s ? b : a;
    if (!tensors_overlap(c.t(id), c.t(y))) continue;
    bool dense = tensors_alias(c.t(id), c.t(y));
    int64_t expect = 1;
    for (int64_t k = rank - 1; k >= 0 && dense; --k) {
      if (c.I(2 + k) > 1 && c.I(2 + (s ? 2 : 1) * rank + k) != expect) dense = false;
      expect *= c.I(2 + k);
    }
    if (!dense)
      c.fail(std::string("output tensor #") + str(y) + " overlaps " + (s ? "b" : "a") + " (tensor #" + str(id) +
             ") other than as an exact same-layout alias");
  }
}

std::unique_ptr<OpState> binary_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<BinaryState>();
  BinaryState& bs = *st;
  const int64_t rank = c.I(1);
  int64_t n = 1;
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t dim = c.I(2 + k), as = c.I(2 + rank + k), bst = c.I(2 + 2 * rank + k);
    n *= dim;
    if (dim == 1) continue;
    if (bs.rank > 0) {
      const int j = bs.rank - 1;
      if (bs.as[j] == as * dim && bs.bs[j] == bst * dim) {
        bs.dims[j] *= dim;
        bs.as[j] = as;
        bs.bs[j] = bst;
        continue;
      }
    }
    bs.dims[bs.rank] = dim;
    bs.as[bs.rank] = as;
    bs.bs[bs.rank] = bst;
    ++bs.rank;
  }
  if (bs.rank == 0) {
    bs.rank = 1;
    bs.dims[0] = 1;
    bs.as[0] = bs.bs[0] = 0;
  }
  bs.rows = 1;
  for (int k = 0; k + 1 < bs.rank; ++k) bs.rows *= bs.dims[k];
  if (n == 0) bs.rows = 0;
  return st;
}

void binary_run(const OpRun& r) {
  const BinaryState& s = r.st<BinaryState>();
  const int bop = (int)r.op.ints[0];
  const float *A = r.inf(0), *B = r.inf(1);
  float* y = static_cast<float*>(r.out());
  const int rk = s.rank;
  const int64_t inner = s.dims[rk - 1], ias = s.as[rk - 1], ibs = s.bs[rk - 1];
  const int64_t per = bop == f32::b_pow ? 16 : 1;
  auto bin = r.k.binary;
  if (rk == 1) {
    r.pool.parallel_for(inner, chunk_for(per, 65536), [&](int64_t b, int64_t e) {
      bin(bop, A + b * ias, ias, B + b * ibs, ibs, y + b, e - b);
    });
    return;
  }
  r.pool.parallel_for(s.rows, chunk_for(inner * per, 65536), [&](int64_t b, int64_t e) {
    // coordinates of row b in the outer dims (all but the last)
    int64_t c[kMaxRank] = {};
    int64_t rem = b, ao = 0, bo = 0;
    for (int k = rk - 2; k >= 0; --k) {
      c[k] = rem % s.dims[k];
      rem /= s.dims[k];
      ao += c[k] * s.as[k];
      bo += c[k] * s.bs[k];
    }
    for (int64_t row = b; row < e; ++row) {
      bin(bop, A + ao, ias, B + bo, ibs, y + row * inner, inner);
      for (int k = rk - 2; k >= 0; --k) {  // odometer increment
        ao += s.as[k];
        bo += s.bs[k];
        if (++c[k] < s.dims[k]) break;
        ao -= c[k] * s.as[k];
        bo -= c[k] * s.bs[k];
        c[k] = 0;
      }
    }
  });
}

// ---- unary ----

void unary_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(1, "[op]");
  const int64_t u = c.I(0);
  if (u < 0 || u >= f32::u_count) c.fail("ints[0] op = " + str(u) + " is unknown (0..23)");
  if (c.op.floats.size() > 2)
    c.fail("floats has " + str((int64_t)c.op.floats.size()) + " values, expected at most 2 [p0, p1]");
  size_t need = 0;
  if (u == f32::u_clip || u == f32::u_hardsigmoid || u == f32::u_scale_shift) need = 2;
  if (u == f32::u_leaky_relu || u == f32::u_elu) need = 1;
  if (c.op.floats.size() < need)
    c.fail("floats has " + str((int64_t)c.op.floats.size()) + " values, this unary op needs " + str((int64_t)need));
  const int32_t x = c.in(0), y = c.out();
  c.all_f32({{x, "x"}, {y, "y"}});
  c.elems(y, "y", c.t(x).elements(), "x elements");
  c.no_overlap(x, "x", true);
}

void unary_run(const OpRun& r) {
  const int u = (int)r.op.ints[0];
  const auto& fl = r.op.floats;
  const float p0 = fl.size() > 0 ? fl[0] : 0.0f, p1 = fl.size() > 1 ? fl[1] : 0.0f;
  const float* x = r.inf(0);
  float* y = static_cast<float*>(r.out());
  const int64_t n = r.out_t().elements();
  const bool cheap = u == f32::u_relu || u == f32::u_neg || u == f32::u_abs || u == f32::u_scale_shift || u == f32::u_clip;
  auto kern = r.k.unary;
  r.pool.parallel_for(n, chunk_for(cheap ? 1 : 16, 65536), [&](int64_t b, int64_t e) { kern(u, p0, p1, x + b, y + b, e - b); });
}

// ---- reduce ----

void reduce_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(4, "[outer, red, inner, op]");
  c.nonneg({"outer", "red", "inner"});
  if (c.I(3) < f32::r_mean || c.I(3) > f32::r_min) c.fail("ints[3] op = " + str(c.I(3)) + " is unknown (0 mean, 1 sum, 2 max, 3 min)");
  const int64_t outer = c.I(0), red = c.I(1), inner = c.I(2);
  const int32_t x = c.in(0), y = c.out();
  c.all_f32({{x, "x"}, {y, "y"}});
  if (red == 0 && outer > 0 && inner > 0) c.fail("red = 0: nothing to reduce");
  c.elems(x, "x", c.prod({outer, red, inner}, "outer·red·inner"), "outer·red·inner");
  c.elems(y, "y", c.prod({outer, inner}, "outer·inner"), "outer·inner");
  c.no_overlap(x, "x", false);
}

void reduce_run(const OpRun& r) {
  const int64_t outer = r.op.ints[0], red = r.op.ints[1], inner = r.op.ints[2];
  const float* x = r.inf(0);
  float* y = static_cast<float*>(r.out());
  const int rop = (int)r.op.ints[3];
  r.pool.parallel_for(outer, chunk_for(red * inner),
                      [&](int64_t b, int64_t e) { f32::reduce_f32(rop, x, y, outer, red, inner, b, e); });
}

// ---- argmax ----

void argmax_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(2, "[rows, D]");
  c.nonneg({"rows", "D"});
  const int64_t rows = c.I(0), D = c.I(1);
  if (D == 0 && rows > 0) c.fail("D = 0 with " + str(rows) + " rows");
  c.dtype(c.in(0), "x", {DType::f32});
  c.dtype(c.out(), "y", {DType::i64});
  c.elems(c.in(0), "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(c.out(), "y", rows, "rows");
  c.no_overlap(c.in(0), "x", false);
}

void argmax_run(const OpRun& r) {
  const int64_t D = r.op.ints[1];
  const float* x = r.inf(0);
  int64_t* y = static_cast<int64_t*>(r.out());
  r.pool.parallel_for(r.op.ints[0], chunk_for(D), [&](int64_t b, int64_t e) { f32::argmax_f32(x, y, D, b, e); });
}

}  // namespace

extern const OpDef op_binary{binary_validate, binary_prepare, binary_run};
extern const OpDef op_unary{unary_validate, nullptr, unary_run};
extern const OpDef op_reduce{reduce_validate, nullptr, reduce_run};
extern const OpDef op_argmax{argmax_validate, nullptr, argmax_run};

}  // namespace swinq
