// Integer elementwise and pooling ops: gelu_q (a 256-entry table), relu_q, add_q (dyadic
// rescale of both inputs), avgpool_q, argmax_q. Contracts: ops.def; kernels: kernels/int/
// qkernels.cc, qops_avx2.cc.
#include "int_common.h"
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- gelu_q ----

void gelu_q_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(2, "[x_zp, y_zp]");
  c.floats_len(2, "[x_scale, y_scale]");
  const int32_t x = c.in(0), y = c.out();
  c.dtype(x, "x", k8);
  c.dtype(y, "y", k8);
  c.elems(y, "y", c.t(x).elements(), "x elements");
  c.zp(0, "x_zp", c.t(x).dtype);
  c.zp(1, "y_zp", c.t(y).dtype);
  c.scale(0, "x_scale");
  c.scale(1, "y_scale");
  c.no_overlap(x, "x", true);
}

struct GeluQState : OpState {
  uint8_t table[256] = {};
};

std::unique_ptr<OpState> gelu_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<GeluQState>();
  const DType xt = c.t(c.in(0)).dtype, yt = c.t(c.out()).dtype;
  const double xs = c.scale(0, "x_scale"), ys = c.scale(1, "y_scale");
  c.kernel("table", [&] {
    q::gelu_table(xs, (int32_t)c.I(0), qt(xt), ys, (int32_t)c.I(1), qt(yt), st->table);
    return 0;
  });
  return st;
}

void gelu_q_run(const OpRun& r) {
  const int64_t n = r.out_t().elements();
  if (!n) return;
  const uint8_t* table = r.st<GeluQState>().table;
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const Isa isa = r.isa;
  r.pool.parallel_for(n, 65536, [&](int64_t b, int64_t e) { q::lookup_u8(x + b, e - b, table, y + b, isa); });
}

// ---- relu_q ----

void relu_q_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(1, "[zero_point]");
  const int32_t x = c.in(0), y = c.out();
  c.dtype(x, "x", k8);
  if (c.t(y).dtype != c.t(x).dtype)
    c.fail(std::string("y is ") + dtype_name(c.t(y).dtype) + " but x is " + dtype_name(c.t(x).dtype));
  c.elems(y, "y", c.t(x).elements(), "x elements");
  c.zp(0, "zero_point", c.t(x).dtype);
  c.no_overlap(x, "x", true);
}

void relu_q_run(const OpRun& r) {
  const int64_t n = r.out_t().elements();
  if (!n) return;
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const q::QType t = qt(r.out_t().dtype);
  const int32_t zp = (int32_t)r.op.ints[0];
  const Isa isa = r.isa;
  r.pool.parallel_for(n, 65536, [&](int64_t b, int64_t e) { q::relu_q8(t, x + b, e - b, zp, y + b, isa); });
}

// ---- add_q ----

void add_q_validate(const OpCheck& c) {
  c.arity(2, 2, {"a", "b"});
  c.ints_len(3, "[a_zp, b_zp, y_zp]");
  c.floats_len(3, "[a_scale, b_scale, y_scale]");
  const int32_t a = c.in(0), b = c.in(1), y = c.out();
  c.dtype(a, "a", k8_16);
  c.dtype(b, "b", k8_16);
  c.dtype(y, "y", k8_16);
  c.elems(b, "b", c.t(a).elements(), "a elements");
  c.elems(y, "y", c.t(a).elements(), "a elements");
  c.zp(0, "a_zp", c.t(a).dtype, true);
  c.zp(1, "b_zp", c.t(b).dtype, true);
  c.zp(2, "y_zp", c.t(y).dtype);
  c.scale(0, "a_scale");
  c.scale(1, "b_scale");
  c.scale(2, "y_scale");
  c.no_overlap(a, "a", true);
  c.no_overlap(b, "b", true);
}

struct AddQState : OpState {
  q::AddParams add;
};

std::unique_ptr<OpState> add_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<AddQState>();
  const double sa = c.scale(0, "a_scale"), sb = c.scale(1, "b_scale"), sy = c.scale(2, "y_scale");
  const int32_t za = (int32_t)c.I(0), zb = (int32_t)c.I(1), zy = (int32_t)c.I(2);
  st->add = c.kernel("scales", [&] { return q::add_params(sa, za, sb, zb, sy, zy, qt(c.t(c.out()).dtype)); });
  return st;
}

void add_q_run(const OpRun& r) {
  const int64_t n = r.out_t().elements();
  if (!n) return;
  const q::AddParams& p = r.st<AddQState>().add;
  const q::QType ta = qt(r.in_t(0).dtype), tb = qt(r.in_t(1).dtype), ty = qt(r.out_t().dtype);
  const int64_t ea = q::qtype_size(ta), eb = q::qtype_size(tb), ey = q::qtype_size(ty);
  const uint8_t* a = static_cast<const uint8_t*>(r.in(0));
  const uint8_t* b = static_cast<const uint8_t*>(r.in(1));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const Isa isa = r.isa;
  // ≈ 0.1–0.3 ns per element: from 8192 elements up one contiguous share per thread (multiples of
  // 64), the rows the row-wise ops around it give that thread (micro-Swin's 196 × 48 was split
  // 8192 + 1216 before)
  auto add = [&](int64_t i0, int64_t i1) {
    q::add_q(ta, a + i0 * ea, tb, b + i0 * eb, i1 - i0, p, ty, y + i0 * ey, isa);
  };
  if (n < 8192) add(0, n);
  else r.pool.parallel_for_static(n, 64, add);
}

// ---- avgpool_q ----

void avgpool_q_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(5, "[batch, T, C, x_zp, y_zp]");
  c.floats_len(2, "[x_scale, y_scale]");
  c.nonneg({"batch", "T", "C"});
  const int64_t B = c.I(0), T = c.I(1), C = c.I(2);
  if (T < 1 || T > 16384) c.fail("ints[1] T = " + str(T) + " is outside [1, 16384]");
  if (C < 1) c.fail("ints[2] C = " + str(C) + " must be >= 1");
  const int32_t x = c.in(0), y = c.out();
  c.dtype(x, "x", k8_16);
  c.dtype(y, "y", k8_16);
  c.elems(x, "x", c.prod({B, T, C}, "batch·T·C"), "batch·T·C");
  c.elems(y, "y", c.prod({B, C}, "batch·C"), "batch·C");
  c.zp(3, "x_zp", c.t(x).dtype, true);
  c.zp(4, "y_zp", c.t(y).dtype);
  c.scale(0, "x_scale");
  c.scale(1, "y_scale");
  c.no_overlap(x, "x");
}

struct AvgpoolQState : OpState {
  int32_t mult = 0, shift = 0;  // x_scale/(T·y_scale) as a dyadic multiplier
};

std::unique_ptr<OpState> avgpool_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<AvgpoolQState>();
  const double ratio = c.scale(0, "x_scale") / ((double)c.I(1) * c.scale(1, "y_scale"));
  c.kernel("x_scale/(T·y_scale)", [&] {
    q::quantize_multiplier(ratio, &st->mult, &st->shift);
    return 0;
  });
  return st;
}

void avgpool_q_run(const OpRun& r) {
  const auto& I = r.op.ints;
  const int64_t B = I[0], T = I[1], C = I[2];
  if (!B) return;
  const AvgpoolQState& st = r.st<AvgpoolQState>();
  const q::QType ti = qt(r.in_t(0).dtype), ty = qt(r.out_t().dtype);
  const int64_t ex = q::qtype_size(ti), ey = q::qtype_size(ty);
  q::Requant rq;
  rq.mult = &st.mult;
  rq.shift = &st.shift;
  rq.zero_point = (int32_t)I[4];
  const int32_t xzp = (int32_t)I[3];
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const Isa isa = r.isa;
  r.pool.parallel_for(B, chunk_for(T * C), [&](int64_t b, int64_t e) {
    q::avgpool(ti, x + b * T * C * ex, e - b, T, C, xzp, rq, ty, y + b * C * ey, isa);
  });
}

// ---- argmax_q ----

void argmax_q_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(2, "[rows, D]");
  c.nonneg({"rows", "D"});
  const int64_t rows = c.I(0), D = c.I(1);
  if (D < 1) c.fail("ints[1] D = " + str(D) + " must be >= 1");
  c.dtype(c.in(0), "x", {DType::i8, DType::u8, DType::i16, DType::i32});
  c.dtype(c.out(), "y", {DType::i64});
  c.elems(c.in(0), "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(c.out(), "y", rows, "rows");
  c.no_overlap(c.in(0), "x");
}

void argmax_q_run(const OpRun& r) {
  const int64_t rows = r.op.ints[0], D = r.op.ints[1];
  if (!rows) return;
  const q::QType ti = qt(r.in_t(0).dtype);
  const int64_t ex = q::qtype_size(ti);
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  int64_t* y = static_cast<int64_t*>(r.out());
  const Isa isa = r.isa;
  r.pool.parallel_for(rows, chunk_for(D), [&](int64_t b, int64_t e) { q::argmax(ti, x + b * D * ex, e - b, D, y + b, isa); });
}

}  // namespace

extern const OpDef op_gelu_q{gelu_q_validate, gelu_q_prepare, gelu_q_run};
extern const OpDef op_relu_q{relu_q_validate, nullptr, relu_q_run};
extern const OpDef op_add_q{add_q_validate, add_q_prepare, add_q_run};
extern const OpDef op_avgpool_q{avgpool_q_validate, avgpool_q_prepare, avgpool_q_run};
extern const OpDef op_argmax_q{argmax_q_validate, nullptr, argmax_q_run};

}  // namespace swinq
