// Data movement ops: copy, index_map (every reshape/transpose/slice/pad/roll/window partition as
// one gather), cast. Contracts: ops.def.
#include <cstring>
#include <limits>
#include <type_traits>

#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- copy ----

void copy_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(0, "[]");
  if (c.t(c.in(0)).nbytes() != c.t(c.out()).nbytes())
    c.fail("x has " + str(c.t(c.in(0)).nbytes()) + " bytes, y has " + str(c.t(c.out()).nbytes()) +
           "; copy needs equal byte sizes");
  c.no_overlap(c.in(0), "x", true);
}

void copy_run(const OpRun& r) {
  const int64_t n = r.out_t().nbytes();
  if (r.in(0) != r.out() && n) std::memmove(r.out(), r.in(0), (size_t)n);
}

// ---- index_map ----

void index_map_validate(const OpCheck& c) {
  c.arity(2, 2, {"x", "idx"});
  c.ints_len(4, "[block, items, x_item_elems, y_item_elems]");
  c.nonneg({"block", "items", "x_item_elems", "y_item_elems"});
  const int64_t block = c.I(0), items = c.I(1), xi = c.I(2), yi = c.I(3);
  if (block < 1) c.fail("ints[0] block = " + str(block) + " must be >= 1");
  if (yi % block) c.fail("y_item_elems = " + str(yi) + " is not a multiple of block = " + str(block));
  const int32_t x = c.in(0), idx = c.in(1), y = c.out();
  if (c.t(x).dtype != c.t(y).dtype)
    c.fail(std::string("x is ") + dtype_name(c.t(x).dtype) + " but y is " + dtype_name(c.t(y).dtype));
  c.dtype(idx, "idx", {DType::i32});
  if (c.t(idx).storage != Storage::constant) c.fail("idx (tensor #" + str(idx) + ") must be a constant");
  c.elems(x, "x", c.prod({items, xi}, "items·x_item_elems"), "items·x_item_elems");
  c.elems(y, "y", c.prod({items, yi}, "items·y_item_elems"), "items·y_item_elems");
  c.elems(idx, "idx", yi / block, "y_item_elems/block");
  const int32_t* iv = c.cdata<int32_t>(idx);
  for (int64_t r = 0; r < yi / block; ++r) {
    int32_t v;
    std::memcpy(&v, iv + r, 4);
    if (v >= 0 && (int64_t)v + block > xi)
      c.fail("idx[" + str(r) + "] = " + str(v) + " reads past the x item (" + str(v) + " + block " + str(block) +
             " > x_item_elems " + str(xi) + ")");
  }
  c.no_overlap(x, "x", false);
}

void index_map_run(const OpRun& r) {
  const auto& I = r.op.ints;
  const int64_t es = (int64_t)dtype_size(r.in_t(0).dtype), block = I[0], items = I[1], xi = I[2], yi = I[3];
  const int64_t total = items * (yi / block);
  const uint8_t* x = static_cast<const uint8_t*>(r.in(0));
  const int32_t* idx = static_cast<const int32_t*>(r.in(1));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  auto kern = r.k.index_map;
  r.pool.parallel_for(total, chunk_for(block * es + 16, 65536),
                      [&](int64_t b, int64_t e) { kern(x, idx, y, es, block, xi, yi, b, e); });
}

// ---- cast ----

template <class S, class D>
void convert(const void* xs, void* ys, int64_t b, int64_t e) {
  const S* x = static_cast<const S*>(xs);
  D* y = static_cast<D*>(ys);
  for (int64_t i = b; i < e; ++i) {
    if constexpr (std::is_floating_point<S>::value && !std::is_floating_point<D>::value) {
      // ONNX truncates toward zero; out-of-range and NaN saturate instead of being UB.
      const double v = (double)x[i];
      if (!(v == v)) y[i] = 0;
      else if (v <= (double)std::numeric_limits<D>::min()) y[i] = std::numeric_limits<D>::min();
      else if (v >= (double)std::numeric_limits<D>::max()) y[i] = std::numeric_limits<D>::max();
      else y[i] = (D)v;
    } else if constexpr (!std::is_floating_point<S>::value && !std::is_floating_point<D>::value) {
      y[i] = (D)(int64_t)x[i];  // integer narrowing wraps (two's complement), as ONNX Cast does
    } else {
      y[i] = (D)x[i];
    }
  }
}

using ConvertFn = void (*)(const void*, void*, int64_t, int64_t);
template <class S>
ConvertFn convert_from(DType d) {
  switch (d) {
    case DType::f32: return convert<S, float>;
    case DType::i32: return convert<S, int32_t>;
    case DType::i8: return convert<S, int8_t>;
    case DType::u8: return convert<S, uint8_t>;
    case DType::i16: return convert<S, int16_t>;
    case DType::i64: return convert<S, int64_t>;
  }
  return nullptr;
}
ConvertFn convert_fn(DType s, DType d) {
  switch (s) {
    case DType::f32: return convert_from<float>(d);
    case DType::i32: return convert_from<int32_t>(d);
    case DType::i8: return convert_from<int8_t>(d);
    case DType::u8: return convert_from<uint8_t>(d);
    case DType::i16: return convert_from<int16_t>(d);
    case DType::i64: return convert_from<int64_t>(d);
  }
  return nullptr;
}

void cast_validate(const OpCheck& c) {
  c.arity(1, 1, {"x"});
  c.ints_len(0, "[]");
  c.elems(c.out(), "y", c.t(c.in(0)).elements(), "x elements");
  c.no_overlap(c.in(0), "x", dtype_size(c.t(c.in(0)).dtype) == dtype_size(c.t(c.out()).dtype));
}

void cast_run(const OpRun& r) {
  const TensorDesc& xt = r.in_t(0);
  const TensorDesc& yt = r.out_t();
  const int64_t n = yt.elements();
  void* out = r.out();
  const void* x = r.in(0);
  if (xt.dtype == yt.dtype) {
    if (x != out && n) std::memmove(out, x, (size_t)yt.nbytes());
    return;
  }
  ConvertFn f = convert_fn(xt.dtype, yt.dtype);
  // Same element size may alias exactly (validated): element i is read before it is written.
  r.pool.parallel_for(n, chunk_for(1, 65536), [&](int64_t b, int64_t e) { f(x, out, b, e); });
}

}  // namespace

extern const OpDef op_copy{copy_validate, nullptr, copy_run};
extern const OpDef op_index_map{index_map_validate, nullptr, index_map_run};
extern const OpDef op_cast{cast_validate, nullptr, cast_run};

}  // namespace swinq
