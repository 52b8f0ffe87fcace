// Integer boundary and requantization ops: quantize (f32 → codes), dequantize (codes → f32),
// requant (int32 → 8/16-bit). Contracts: ops.def; kernels: kernels/int/qconvert*.cc, qkernels.
#include <cmath>

#include "int_common.h"
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/qplan_kernels.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- quantize ----

void quantize_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(1, "[zero_point]");
  c.floats_len(1, "[scale]");
  c.dtype(c.in(0), "x", {DType::f32});
  c.dtype(c.out(), "y", {DType::i8, DType::u8, DType::i16, DType::i32});
  c.zp(0, "zero_point", c.t(c.out()).dtype);
  c.scale(0, "scale");
  c.elems(c.out(), "y", c.t(c.in(0)).elements(), "x elements");
  c.no_overlap(c.in(0), "x");
}

void quantize_run(const OpRun& r) {
  const int64_t n = r.out_t().elements();
  if (!n) return;
  const float* x = r.inf(0);
  void* y = r.out();
  const float s = r.op.floats[0];
  const int32_t zp = (int32_t)r.op.ints[0];
  const q::QType t = qt(r.out_t().dtype);
  const Isa isa = r.isa;
  r.pool.parallel_for(n, 16384, [&](int64_t b, int64_t e) { q::quantize_f32(x, t, y, b, e, s, zp, isa); });
}

// ---- dequantize ----

void dequantize_validate(const OpCheck& c) {
  c.arity(1, 2, {"x", "scales"});
  c.ints_len(1, "[zero_point]");
  c.floats_len(1, "[scale]");
  c.dtype(c.in(0), "x", {DType::i8, DType::u8, DType::i16, DType::i32});
  c.dtype(c.out(), "y", {DType::f32});
  c.zp(0, "zero_point", c.t(c.in(0)).dtype);
  c.scale(0, "scale");
  c.elems(c.out(), "y", c.t(c.in(0)).elements(), "x elements");
  if (c.in(1) >= 0) {
    c.dtype(c.in(1), "scales", {DType::f32});
    c.constant(c.in(1), "scales");
    const int64_t C = c.t(c.in(1)).elements();
    if (C < 1) c.fail("scales is empty");
    if (c.t(c.in(0)).elements() % C)
      c.fail("x has " + str(c.t(c.in(0)).elements()) + " elements, not a multiple of scales' " + str(C));
    const float* s = c.cdata<float>(c.in(1));
    for (int64_t i = 0; i < C; ++i)
      if (!std::isfinite(s[i])) c.fail("scales[" + str(i) + "] is not finite");
  }
  c.no_overlap(c.in(0), "x");
}

void dequantize_run(const OpRun& r) {
  const int64_t n = r.out_t().elements();
  if (!n) return;
  const void* x = r.in(0);
  const float* scales = r.inf(1);
  const int64_t C = scales ? r.in_t(1).elements() : 1;
  const float s = r.op.floats[0];
  const int32_t zp = (int32_t)r.op.ints[0];
  float* y = static_cast<float*>(r.out());
  const q::QType t = qt(r.in_t(0).dtype);
  const Isa isa = r.isa;
  r.pool.parallel_for(n, 16384, [&](int64_t b, int64_t e) { q::dequantize_f32(t, x, y, b, e, zp, s, scales, C, isa); });
}

// ---- requant ----

void requant_validate(const OpCheck& c) {
  c.arity(3, 3, {"x", "mult", "shift"});
  c.ints_len(4, "[rows, C, y_zp, relu]");
  c.nonneg({"rows", "C"});
  const int64_t rows = c.I(0), C = c.I(1);
  if (C < 1 || C > (1 << 24)) c.fail("ints[1] C = " + str(C) + " is outside [1, 2^24]");
  const int32_t x = c.in(0), y = c.out();
  c.dtype(x, "x", {DType::i32});
  c.dtype(y, "y", k8_16);
  c.elems(x, "x", c.prod({rows, C}, "rows·C"), "rows·C");
  c.elems(y, "y", c.prod({rows, C}, "rows·C"), "rows·C");
  c.zp(2, "y_zp", c.t(y).dtype);
  if (c.I(3) != 0 && c.I(3) != 1) c.fail("ints[3] relu = " + str(c.I(3)) + " must be 0 or 1");
  c.requant_tensors(c.in(1), c.in(2), C, c.I(3) != 0);
  c.no_overlap(x, "x");
}

void requant_run(const OpRun& r) {
  const auto& I = r.op.ints;
  const int64_t rows = I[0], C = I[1];
  if (!rows) return;
  q::Requant rq;
  rq.mult = static_cast<const int32_t*>(r.in(1));
  rq.shift = static_cast<const int32_t*>(r.in(2));
  rq.channels = (int32_t)r.in_t(1).elements();
  rq.zero_point = (int32_t)I[2];
  if (I[3]) rq.qmin = rq.zero_point;  // ReLU (mult > 0 checked at load)
  const q::QType qo = qt(r.out_t().dtype);
  rq = q::for_type(rq, qo);
  const int32_t* x = static_cast<const int32_t*>(r.in(0));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const int64_t ey = (int64_t)dtype_size(r.out_t().dtype);
  const Isa isa = r.isa;
  r.pool.parallel_for(rows, chunk_for(C * 2), [&](int64_t b, int64_t e) {
    q::requantize(x + b * C, e - b, C, rq, qo, y + b * C * ey, isa);
  });
}

}  // namespace

extern const OpDef op_quantize{quantize_validate, nullptr, quantize_run};
extern const OpDef op_dequantize{dequantize_validate, nullptr, dequantize_run};
extern const OpDef op_requant{requant_validate, nullptr, requant_run};

}  // namespace swinq
