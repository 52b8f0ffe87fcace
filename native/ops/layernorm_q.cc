// Integer LayerNorm: exact integer mean/variance, the float affine folded into integer
// parameters at load. Contract: ops.def; kernel: kernels/int/qkernels.cc, qops_avx2.cc.
#include <algorithm>
#include <vector>

#include "int_common.h"
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

void layernorm_q_validate(const OpCheck& c) {
  c.arity(1, 4, {"x", "gamma", "beta", "y_rows"});
  c.ints_len_in(3, 4, "[rows, D, y_zp(, y_max)]");
  c.floats_len(1, "[y_scale]");
  c.nonneg({"rows", "D"});
  const int64_t rows = c.I(0), D = c.I(1);
  if (D < 1 || D > 32768) c.fail("ints[1] D = " + str(D) + " is outside [1, 32768]");
  const int32_t x = c.in(0), g = c.in(1), b = c.in(2), y = c.out();
  c.dtype(x, "x", {DType::i8, DType::i16});
  c.dtype(y, "y", k8_16);
  c.elems(x, "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(y, "y", c.prod({rows, D}, "rows·D"), "rows·D");
  for (int k = 0; k < 2; ++k) {
    const int32_t id = k ? b : g;
    if (id < 0) continue;
    c.dtype(id, k ? "beta" : "gamma", {DType::f32});
    c.constant(id, k ? "beta" : "gamma");
    c.elems(id, k ? "beta" : "gamma", D, "D");
  }
  const int32_t yzp = c.zp(2, "y_zp", c.t(y).dtype);
  c.scale(0, "y_scale");
  if (c.op.ints.size() == 4) c.y_max(3, yzp, c.t(y).dtype);
  c.no_overlap(x, "x");
  const int32_t yr = c.in(3);
  if (yr >= 0) c.row_permutation(yr, "y_rows", rows, "rows");  // a permutation of y's rows
}

struct LayerNormQState : OpState {
  q::LayerNormParams ln;
};

std::unique_ptr<OpState> layernorm_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<LayerNormQState>();
  const int32_t g = c.in(1), b = c.in(2);
  const DType yt = c.t(c.out()).dtype;
  const double ys = c.scale(0, "y_scale");
  st->ln = c.kernel("gamma/beta", [&] {
    return q::layernorm_params((int32_t)c.I(1), g >= 0 ? c.cdata<float>(g) : nullptr,
                               b >= 0 ? c.cdata<float>(b) : nullptr, ys, (int32_t)c.I(2), qt(yt));
  });
  if (c.op.ints.size() == 4) st->ln.qmax = (int32_t)c.I(3);
  return st;
}

// Rows [b, e) of the LayerNorm on the calling thread.
void layernorm_q_run_rows(const OpRun& r, int64_t b, int64_t e) {
  const int64_t D = r.op.ints[1];
  if (b >= e) return;
  const q::LayerNormParams& ln = r.st<LayerNormQState>().ln;
  const q::QType qi = qt(r.in_t(0).dtype);
  const int64_t ex = (int64_t)q::qtype_size(qi), ey = (int64_t)dtype_size(r.out_t().dtype);
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const int32_t* y_rows = static_cast<const int32_t*>(r.in(3));
  if (y_rows) q::layernorm(qi, x + b * D * ex, e - b, ln, y, r.isa, y_rows + b);
  else q::layernorm(qi, x + b * D * ex, e - b, ln, y + b * D * ey, r.isa);
}

void layernorm_q_run(const OpRun& r) {
  const int64_t rows = r.op.ints[0], D = r.op.ints[1];
  // ≈ 20–80 ns per row: one contiguous share of the rows per thread, the same rows the row-wise ops
  // around it give that thread (parallel_for_static); 10 claimed chunks of micro-Swin's 196 × 48
  // took 0.81× of 1 thread
  r.pool.parallel_for_static(rows, std::max<int64_t>(1, 1024 / D), [&](int64_t b, int64_t e) { layernorm_q_run_rows(r, b, e); });
}

RowSplit layernorm_q_row_split(const OpDesc& op) { return {op.ints[0], 1, op.inputs.size() > 3 && op.inputs[3] >= 0}; }

}  // namespace

extern const OpDef op_layernorm_q{layernorm_q_validate, layernorm_q_prepare, layernorm_q_run, layernorm_q_row_split,
                                  layernorm_q_run_rows};

}  // namespace swinq
