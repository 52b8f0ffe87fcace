// fp32 row ops: layernorm and softmax (with an optional periodic bias). Contracts: ops.def;
// kernels: kernels/norm_f32*.cc.
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

void layernorm_validate(const OpCheck& c) {
  c.arity(1, 3, {"x", "gamma", "beta"});
  c.ints_len(2, "[rows, D]");
  c.nonneg({"rows", "D"});
  c.floats_len(1, "[eps]");
  if (!(c.op.floats[0] >= 0.0f)) c.fail("eps = " + std::to_string(c.op.floats[0]) + " must be >= 0");
  const int64_t rows = c.I(0), D = c.I(1);
  if (D == 0 && rows > 0) c.fail("D = 0 with " + str(rows) + " rows");
  const int32_t x = c.in(0), g = c.in(1), b = c.in(2), y = c.out();
  c.all_f32({{x, "x"}, {g, "gamma"}, {b, "beta"}, {y, "y"}});
  c.elems(x, "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(y, "y", c.prod({rows, D}, "rows·D"), "rows·D");
  if (g >= 0) c.elems(g, "gamma", D, "D");
  if (b >= 0) c.elems(b, "beta", D, "D");
  c.no_overlap(x, "x", true);
  c.no_overlap(g, "gamma", false);
  c.no_overlap(b, "beta", false);
}

void layernorm_run(const OpRun& r) {
  const int64_t D = r.op.ints[1];
  const float *x = r.inf(0), *g = r.inf(1), *bt = r.inf(2);
  float* y = static_cast<float*>(r.out());
  const float eps = r.op.floats[0];
  auto kern = r.k.layernorm;
  r.pool.parallel_for(r.op.ints[0], chunk_for(D * 4), [&](int64_t b, int64_t e) { kern(x, g, bt, y, D, eps, b, e); });
}

void softmax_validate(const OpCheck& c) {
  c.arity(1, 2, {"x", "bias"});
  c.ints_len(3, "[rows, D, bias_rows]");
  c.nonneg({"rows", "D", "bias_rows"});
  const int64_t rows = c.I(0), D = c.I(1), br = c.I(2);
  const int32_t x = c.in(0), b = c.in(1), y = c.out();
  c.all_f32({{x, "x"}, {b, "bias"}, {y, "y"}});
  c.elems(x, "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(y, "y", c.prod({rows, D}, "rows·D"), "rows·D");
  if (b >= 0) {
    if (br < 1) c.fail("ints[2] bias_rows = " + str(br) + " must be >= 1 when bias is given");
    c.elems(b, "bias", c.prod({br, D}, "bias_rows·D"), "bias_rows·D");
  }
  c.no_overlap(x, "x", true);
  c.no_overlap(b, "bias", false);
}

void softmax_run(const OpRun& r) {
  const int64_t D = r.op.ints[1], br = r.op.ints[2];
  const float *x = r.inf(0), *bias = r.inf(1);
  float* y = static_cast<float*>(r.out());
  auto kern = r.k.softmax;
  r.pool.parallel_for(r.op.ints[0], chunk_for(D * 8), [&](int64_t b, int64_t e) { kern(x, bias, br, y, D, b, e); });
}

}  // namespace

extern const OpDef op_layernorm{layernorm_validate, nullptr, layernorm_run};
extern const OpDef op_softmax{softmax_validate, nullptr, softmax_run};

}  // namespace swinq
