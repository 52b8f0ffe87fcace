// Integer ops of the plan executor (contracts: ops.def). Everything that needs a float — scales,
// LayerNorm affine, GELU tables, softmax/add multipliers — is turned into integer parameters here
// at plan load; run_int_op only moves integers through the qkernels.
#include "swinq/executor_int.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "swinq/qkernels.h"
#include "swinq/qplan_kernels.h"
#include "swinq/threadpool.h"

namespace swinq {

struct IntOpState {
  q::PackedB packed;        // linear_q
  q::LayerNormParams ln;    // layernorm_q
  q::SoftmaxParams sm;      // softmax_q
  q::AttentionParams att;   // attention_q
  int32_t y_max = 255;      // linear_q: clamp of an 8-bit y
  q::AddParams add;         // add_q
  int32_t mult = 0, shift = 0;  // avgpool_q
  uint8_t table[256] = {};  // gelu_q
};

namespace {

using q::QType;
constexpr int64_t kMaxBytes = int64_t(1) << 40;

std::string str(int64_t v) { return std::to_string(v); }

QType qt(DType t) {
  switch (t) {
    case DType::i8: return QType::s8;
    case DType::u8: return QType::u8;
    case DType::i16: return QType::s16;
    default: return QType::s32;
  }
}
int32_t dmin(DType t) { return q::qtype_min(qt(t)); }
int32_t dmax(DType t) { return q::qtype_max(qt(t)); }

// Items per parallel chunk so that each chunk is ~`work` units of `per_item` cost.
inline int64_t chunk_for(int64_t per_item, int64_t work = 32768) {
  return std::max<int64_t>(1, work / std::max<int64_t>(1, per_item));
}

struct Check {
  const PlanDesc& d;
  size_t index;
  const OpDesc& op;

  [[noreturn]] void op_fail(const std::string& msg) const {
    std::ostringstream s;
    s << "plan op #" << index << " " << op_name(op.kind);
    if (!op.name.empty()) s << " (node '" << op.name << "')";
    throw std::runtime_error(s.str() + ": " + msg);
  }
  const TensorDesc& t(int32_t id) const { return d.tensors[(size_t)id]; }
  int32_t in(size_t i) const { return i < op.inputs.size() ? op.inputs[i] : -1; }
  int32_t out() const { return op.outputs[0]; }
  int64_t I(size_t i) const { return op.ints[i]; }

  void arity(size_t min_in, size_t max_in, std::initializer_list<const char*> names) {
    std::vector<const char*> nm(names);
    if (op.inputs.size() < min_in || op.inputs.size() > max_in)
      op_fail("has " + str((int64_t)op.inputs.size()) + " inputs, expected " +
              (min_in == max_in ? str((int64_t)min_in) : str((int64_t)min_in) + ".." + str((int64_t)max_in)));
    if (op.outputs.size() != 1) op_fail("has " + str((int64_t)op.outputs.size()) + " outputs, expected 1");
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const int32_t id = op.inputs[i];
      if (id == -1 && i >= min_in) continue;
      if (id < 0 || id >= (int32_t)d.tensors.size())
        op_fail(std::string("input ") + nm[i] + " = " + str(id) + " is not a tensor id" +
                (i >= min_in ? " (or -1 for absent)" : ""));
    }
    const int32_t o = op.outputs[0];
    if (o < 0 || o >= (int32_t)d.tensors.size()) op_fail("output = " + str(o) + " is not a tensor id");
    const Storage s = t(o).storage;
    if (s == Storage::constant || s == Storage::input)
      op_fail("output tensor #" + str(o) + " is a " + (s == Storage::constant ? "constant" : "graph input") +
              " and cannot be written");
  }
  void ints_len(size_t n, const char* layout) {
    if (op.ints.size() != n)
      op_fail("ints has " + str((int64_t)op.ints.size()) + " values, expected " + str((int64_t)n) + " " + layout);
  }
  void ints_len_in(size_t lo, size_t hi, const char* layout) {
    if (op.ints.size() < lo || op.ints.size() > hi)
      op_fail("ints has " + str((int64_t)op.ints.size()) + " values, expected " + str((int64_t)lo) + " or " +
              str((int64_t)hi) + " " + layout);
  }
  void floats_len(size_t n, const char* layout) {
    if (op.floats.size() != n)
      op_fail("floats has " + str((int64_t)op.floats.size()) + " values, expected " + str((int64_t)n) + " " + layout);
  }
  void nonneg(std::initializer_list<const char*> names) {
    size_t i = 0;
    for (const char* n : names) {
      if (I(i) < 0) op_fail("ints[" + str((int64_t)i) + "] " + n + " = " + str(I(i)) + " is negative");
      ++i;
    }
  }
  void dtype(int32_t id, const char* name, std::initializer_list<DType> ok) {
    std::string list;
    for (DType x : ok) {
      if (t(id).dtype == x) return;
      list += (list.empty() ? "" : " or ") + std::string(dtype_name(x));
    }
    op_fail(std::string(name) + " is " + dtype_name(t(id).dtype) + ", expected " + list);
  }
  void elems(int32_t id, const char* name, int64_t want, const std::string& formula) {
    if (t(id).elements() != want)
      op_fail(std::string(name) + " has " + str(t(id).elements()) + " elements, expected " + formula + " = " +
              str(want));
  }
  void constant(int32_t id, const char* name) {
    if (t(id).storage != Storage::constant) op_fail(std::string(name) + " (tensor #" + str(id) + ") must be a constant");
  }
  int64_t prod(std::initializer_list<int64_t> v, const char* what) {
    int64_t r = 1;
    for (int64_t x : v)
      if (__builtin_mul_overflow(r, x, &r) || r > kMaxBytes) op_fail(std::string(what) + " overflows");
    return r;
  }
  // zero point value ints[i] must fit `t` (and be 0 for i16 when zero_only16)
  int32_t zp(size_t i, const char* name, DType ty, bool zero_only16 = false) {
    const int64_t v = I(i);
    if (v < dmin(ty) || v > dmax(ty))
      op_fail("ints[" + str((int64_t)i) + "] " + name + " = " + str(v) + " is outside " + dtype_name(ty) + " [" +
              str(dmin(ty)) + ", " + str(dmax(ty)) + "]");
    if (zero_only16 && ty == DType::i16 && v != 0)
      op_fail("ints[" + str((int64_t)i) + "] " + name + " = " + str(v) + " must be 0 for an int16 tensor");
    return (int32_t)v;
  }
  // ints[i] = y_max, an optional clamp of y codes: y_zp ≤ y_max ≤ the dtype's max
  int32_t y_max(size_t i, int64_t y_zp, DType ty) {
    if (I(i) < y_zp || I(i) > dmax(ty))
      op_fail("ints[" + str((int64_t)i) + "] y_max = " + str(I(i)) + " is outside [y_zp, " + str(dmax(ty)) + "]");
    return (int32_t)I(i);
  }
  double scale(size_t i, const char* name) {
    const float f = op.floats[i];
    if (!(std::isfinite(f) && f > 0.0f))
      op_fail("floats[" + str((int64_t)i) + "] " + name + " = " + std::to_string(f) + " must be finite and > 0");
    return (double)f;
  }
  template <class T>
  const T* cdata(int32_t id) const {
    return reinterpret_cast<const T*>(d.constants.data() + t(id).offset);
  }

  // The output must not overlap an input, except an exact alias where `alias_ok`.
  void no_overlap(int32_t input, const char* name, bool alias_ok = false) {
    if (input < 0) return;
    if (!tensors_overlap(t(input), t(out()))) return;
    if (alias_ok && tensors_alias(t(input), t(out()))) return;
    op_fail("output tensor #" + str(out()) + (alias_ok ? " partially overlaps " : " overlaps ") + name + " (tensor #" +
            str(input) + ")" + (alias_ok ? "; only an exact alias is allowed" : ""));
  }
  // mult/shift const i32 tensors with 1 or `channels` entries; shift in [0, 62]; mult > 0 when `positive`.
  void requant_tensors(int32_t m, int32_t s, int64_t channels, bool positive) {
    dtype(m, "mult", {DType::i32});
    dtype(s, "shift", {DType::i32});
    constant(m, "mult");
    constant(s, "shift");
    const int64_t n = t(m).elements();
    if (n != 1 && n != channels)
      op_fail("mult has " + str(n) + " elements, expected 1 (per tensor) or " + str(channels) + " (per channel)");
    elems(s, "shift", n, "mult elements");
    const int32_t* mv = cdata<int32_t>(m);
    const int32_t* sv = cdata<int32_t>(s);
    for (int64_t c = 0; c < n; ++c) {
      if (sv[c] < 0 || sv[c] > 62) op_fail("shift[" + str(c) + "] = " + str(sv[c]) + " is outside [0, 62]");
      if (positive && mv[c] <= 0) op_fail("mult[" + str(c) + "] = " + str(mv[c]) + " must be > 0 with relu");
    }
  }
  template <class F>
  auto kernel(const char* what, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      op_fail(std::string(what) + ": " + e.what());
    }
  }
};

const std::initializer_list<DType> k8_16 = {DType::i8, DType::u8, DType::i16};
const std::initializer_list<DType> k8 = {DType::i8, DType::u8};

}  // namespace

bool is_int_op(OpKind k) { return (int)k >= (int)OpKind::quantize && (int)k < (int)OpKind::count_; }

std::shared_ptr<IntOpState> prepare_int_op(const PlanDesc& d, size_t op_index, bool sparse_a) {
  const OpDesc& op = d.ops[op_index];
  Check c{d, op_index, op};
  auto st = std::make_shared<IntOpState>();
  switch (op.kind) {
    case OpKind::quantize: {
      c.arity(1, 1, {"x"});
      c.ints_len(1, "[zero_point]");
      c.floats_len(1, "[scale]");
      c.dtype(c.in(0), "x", {DType::f32});
      c.dtype(c.out(), "y", {DType::i8, DType::u8, DType::i16, DType::i32});
      c.zp(0, "zero_point", c.t(c.out()).dtype);
      c.scale(0, "scale");
      c.elems(c.out(), "y", c.t(c.in(0)).elements(), "x elements");
      c.no_overlap(c.in(0), "x");
      break;
    }
    case OpKind::dequantize: {
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
        if (C < 1) c.op_fail("scales is empty");
        if (c.t(c.in(0)).elements() % C)
          c.op_fail("x has " + str(c.t(c.in(0)).elements()) + " elements, not a multiple of scales' " + str(C));
        const float* s = c.cdata<float>(c.in(1));
        for (int64_t i = 0; i < C; ++i)
          if (!std::isfinite(s[i])) c.op_fail("scales[" + str(i) + "] is not finite");
      }
      c.no_overlap(c.in(0), "x");
      break;
    }
    case OpKind::linear_q: {
      c.arity(2, 6, {"x", "w", "bias", "mult", "shift", "table"});
      c.ints_len_in(8, 9, "[M, K, N, x_zp, w_zp, y_zp, relu, x_max(, y_max)]");
      c.nonneg({"M", "K", "N"});
      const int64_t M = c.I(0), K = c.I(1), N = c.I(2);
      if (K < 1 || K > 65536) c.op_fail("ints[1] K = " + str(K) + " is outside [1, 65536]");
      if (N < 1 || N > (1 << 24)) c.op_fail("ints[2] N = " + str(N) + " is outside [1, 2^24]");
      const int32_t x = c.in(0), w = c.in(1), b = c.in(2), m = c.in(3), s = c.in(4), tb = c.in(5), y = c.out();
      c.dtype(x, "x", {DType::u8});
      c.dtype(w, "w", {DType::i8});
      c.dtype(y, "y", {DType::i32, DType::i8, DType::u8, DType::i16});
      c.constant(w, "w");
      c.elems(x, "x", c.prod({M, K}, "M·K"), "M·K");
      c.elems(w, "w", c.prod({K, N}, "K·N"), "K·N");
      c.elems(y, "y", c.prod({M, N}, "M·N"), "M·N");
      const int32_t x_zp = c.zp(3, "x_zp", DType::u8);
      const int32_t w_zp = c.zp(4, "w_zp", DType::i8);
      const DType yt = c.t(y).dtype;
      c.zp(5, "y_zp", yt);
      if (c.I(6) != 0 && c.I(6) != 1) c.op_fail("ints[6] relu = " + str(c.I(6)) + " must be 0 or 1");
      if (c.I(7) < 1 || c.I(7) > 255) c.op_fail("ints[7] x_max = " + str(c.I(7)) + " is outside [1, 255]");
      if (c.op.ints.size() == 9) {
        if (yt != DType::i8 && yt != DType::u8) c.op_fail("ints[8] y_max needs an int8 or uint8 y");
        if (tb >= 0) c.op_fail("ints[8] y_max and a table exclude each other (the table sets the codes)");
        st->y_max = c.y_max(8, c.I(5), yt);
      } else {
        st->y_max = (int32_t)dmax(yt);
      }
      if (b >= 0) {
        c.dtype(b, "bias", {DType::i32});
        c.elems(b, "bias", N, "N");
      }
      if (yt == DType::i32) {
        if (m >= 0 || s >= 0 || tb >= 0) c.op_fail("an int32 y takes no mult, shift or table");
        if (c.I(5) != 0) c.op_fail("ints[5] y_zp = " + str(c.I(5)) + " must be 0 for an int32 y");
      } else {
        if (m < 0 || s < 0) c.op_fail(std::string("a ") + dtype_name(yt) + " y needs mult and shift (inputs 3, 4)");
        c.requant_tensors(m, s, N, false);
      }
      if (tb >= 0) {
        if (yt != DType::i8 && yt != DType::u8) c.op_fail("a table needs an int8 or uint8 y");
        c.dtype(tb, "table", {DType::u8});
        c.constant(tb, "table");
        c.elems(tb, "table", 256, "256");
      }
      c.no_overlap(x, "x");
      c.no_overlap(b, "bias");
      q::PackOptions po;
      po.w_zero_point = w_zp;
      po.a_max = (int32_t)c.I(7);
      po.a_pair_max = std::min(510, 2 * po.a_max);
      // maybe a ReLU output: keep the K-major copy for the sparse-A path (qkernels.h), unless the
      // plan was created with sparse_a = false
      po.kmajor = x_zp == 0 && sparse_a;
      st->packed = c.kernel("packing w", [&] { return q::pack_b(c.cdata<int8_t>(w), (int32_t)K, (int32_t)N, N, false, po); });
      break;
    }
    case OpKind::matmul_q: {
      c.arity(2, 4, {"a", "b", "mult", "shift"});
      c.ints_len(10, "[batch, M, K, N, trans_b, a_batch_stride, b_batch_stride, a_zp, b_zp, y_zp]");
      c.nonneg({"batch", "M", "K", "N", "trans_b", "a_batch_stride", "b_batch_stride"});
      const int64_t batch = c.I(0), M = c.I(1), K = c.I(2), N = c.I(3);
      if (c.I(4) > 1) c.op_fail("ints[4] trans_b = " + str(c.I(4)) + " must be 0 or 1");
      if (K > 32768) c.op_fail("ints[2] K = " + str(K) + " exceeds 32768 (int32 sums could overflow)");
      const int32_t a = c.in(0), b = c.in(1), m = c.in(2), s = c.in(3), y = c.out();
      c.dtype(a, "a", {DType::u8});
      c.dtype(b, "b", k8);
      c.dtype(y, "y", {DType::i32, DType::i8, DType::u8, DType::i16});
      c.zp(7, "a_zp", DType::u8);
      c.zp(8, "b_zp", c.t(b).dtype);
      const DType yt = c.t(y).dtype;
      c.zp(9, "y_zp", yt);
      c.elems(y, "y", c.prod({batch, M, N}, "batch·M·N"), "batch·M·N");
      if (batch > 0) {
        for (int k = 0; k < 2; ++k) {
          const int64_t stride = c.I(5 + k), mat = c.prod({k ? K : M, k ? N : K}, "matrix size");
          const int64_t need = c.prod({batch - 1, stride}, "batch stride") + mat;
          const int64_t have = c.t(k ? b : a).elements();
          if (need > have)
            c.op_fail(std::string(k ? "b" : "a") + " has " + str(have) + " elements, but batch " + str(batch) +
                      " × stride " + str(stride) + " needs " + str(need));
        }
      }
      if (yt == DType::i32) {
        if (m >= 0 || s >= 0) c.op_fail("an int32 y takes no mult or shift");
        if (c.I(9) != 0) c.op_fail("ints[9] y_zp = " + str(c.I(9)) + " must be 0 for an int32 y");
      } else {
        if (m < 0 || s < 0) c.op_fail(std::string("a ") + dtype_name(yt) + " y needs mult and shift (inputs 2, 3)");
        c.requant_tensors(m, s, 1, false);
      }
      c.no_overlap(a, "a");
      c.no_overlap(b, "b");
      break;
    }
    case OpKind::softmax_q: {
      c.arity(1, 2, {"x", "table"});
      c.ints_len(3, "[rows, D, table_rows]");
      c.floats_len(1, "[x_scale]");
      c.nonneg({"rows", "D", "table_rows"});
      const int64_t rows = c.I(0), D = c.I(1), tr = c.I(2);
      if (D < 1 || D > (1 << 24)) c.op_fail("ints[1] D = " + str(D) + " is outside [1, 2^24]");
      const int32_t x = c.in(0), tb = c.in(1), y = c.out();
      c.dtype(x, "x", {DType::i32});
      c.dtype(y, "y", {DType::u8});
      c.elems(x, "x", c.prod({rows, D}, "rows·D"), "rows·D");
      c.elems(y, "y", c.prod({rows, D}, "rows·D"), "rows·D");
      if (tb >= 0) {
        if (tr < 1) c.op_fail("ints[2] table_rows = " + str(tr) + " must be >= 1 with a table");
        c.dtype(tb, "table", {DType::i32});
        c.constant(tb, "table");
        c.elems(tb, "table", c.prod({tr, D}, "table_rows·D"), "table_rows·D");
      }
      const double sc = c.scale(0, "x_scale");
      st->sm = c.kernel("x_scale", [&] { return q::softmax_params(sc); });
      c.no_overlap(x, "x");
      break;
    }
    case OpKind::layernorm_q: {
      c.arity(1, 3, {"x", "gamma", "beta"});
      c.ints_len_in(3, 4, "[rows, D, y_zp(, y_max)]");
      c.floats_len(1, "[y_scale]");
      c.nonneg({"rows", "D"});
      const int64_t rows = c.I(0), D = c.I(1);
      if (D < 1 || D > 32768) c.op_fail("ints[1] D = " + str(D) + " is outside [1, 32768]");
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
      const double ys = c.scale(0, "y_scale");
      st->ln = c.kernel("gamma/beta", [&] {
        return q::layernorm_params((int32_t)D, g >= 0 ? c.cdata<float>(g) : nullptr, b >= 0 ? c.cdata<float>(b) : nullptr,
                                   ys, yzp, qt(c.t(y).dtype));
      });
      if (c.op.ints.size() == 4) {
        st->ln.qmax = c.y_max(3, yzp, c.t(y).dtype);
      }
      c.no_overlap(x, "x");
      break;
    }
    case OpKind::gelu_q: {
      c.arity(1, 1, {"x"});
      c.ints_len(2, "[x_zp, y_zp]");
      c.floats_len(2, "[x_scale, y_scale]");
      const int32_t x = c.in(0), y = c.out();
      c.dtype(x, "x", k8);
      c.dtype(y, "y", k8);
      c.elems(y, "y", c.t(x).elements(), "x elements");
      const int32_t xz = c.zp(0, "x_zp", c.t(x).dtype), yz = c.zp(1, "y_zp", c.t(y).dtype);
      const double xs = c.scale(0, "x_scale"), ys = c.scale(1, "y_scale");
      c.kernel("table", [&] { q::gelu_table(xs, xz, qt(c.t(x).dtype), ys, yz, qt(c.t(y).dtype), st->table); return 0; });
      c.no_overlap(x, "x", true);
      break;
    }
    case OpKind::relu_q: {
      c.arity(1, 1, {"x"});
      c.ints_len(1, "[zero_point]");
      const int32_t x = c.in(0), y = c.out();
      c.dtype(x, "x", k8);
      if (c.t(y).dtype != c.t(x).dtype)
        c.op_fail(std::string("y is ") + dtype_name(c.t(y).dtype) + " but x is " + dtype_name(c.t(x).dtype));
      c.elems(y, "y", c.t(x).elements(), "x elements");
      c.zp(0, "zero_point", c.t(x).dtype);
      c.no_overlap(x, "x", true);
      break;
    }
    case OpKind::requant: {
      c.arity(3, 3, {"x", "mult", "shift"});
      c.ints_len(4, "[rows, C, y_zp, relu]");
      c.nonneg({"rows", "C"});
      const int64_t rows = c.I(0), C = c.I(1);
      if (C < 1 || C > (1 << 24)) c.op_fail("ints[1] C = " + str(C) + " is outside [1, 2^24]");
      const int32_t x = c.in(0), y = c.out();
      c.dtype(x, "x", {DType::i32});
      c.dtype(y, "y", k8_16);
      c.elems(x, "x", c.prod({rows, C}, "rows·C"), "rows·C");
      c.elems(y, "y", c.prod({rows, C}, "rows·C"), "rows·C");
      c.zp(2, "y_zp", c.t(y).dtype);
      if (c.I(3) != 0 && c.I(3) != 1) c.op_fail("ints[3] relu = " + str(c.I(3)) + " must be 0 or 1");
      c.requant_tensors(c.in(1), c.in(2), C, c.I(3) != 0);
      c.no_overlap(x, "x");
      break;
    }
    case OpKind::add_q: {
      c.arity(2, 2, {"a", "b"});
      c.ints_len(3, "[a_zp, b_zp, y_zp]");
      c.floats_len(3, "[a_scale, b_scale, y_scale]");
      const int32_t a = c.in(0), b = c.in(1), y = c.out();
      c.dtype(a, "a", k8_16);
      c.dtype(b, "b", k8_16);
      c.dtype(y, "y", k8_16);
      c.elems(b, "b", c.t(a).elements(), "a elements");
      c.elems(y, "y", c.t(a).elements(), "a elements");
      const int32_t za = c.zp(0, "a_zp", c.t(a).dtype, true), zb = c.zp(1, "b_zp", c.t(b).dtype, true);
      const int32_t zy = c.zp(2, "y_zp", c.t(y).dtype);
      const double sa = c.scale(0, "a_scale"), sb = c.scale(1, "b_scale"), sy = c.scale(2, "y_scale");
      st->add = c.kernel("scales", [&] { return q::add_params(sa, za, sb, zb, sy, zy, qt(c.t(y).dtype)); });
      c.no_overlap(a, "a", true);
      c.no_overlap(b, "b", true);
      break;
    }
    case OpKind::avgpool_q: {
      c.arity(1, 1, {"x"});
      c.ints_len(5, "[batch, T, C, x_zp, y_zp]");
      c.floats_len(2, "[x_scale, y_scale]");
      c.nonneg({"batch", "T", "C"});
      const int64_t B = c.I(0), T = c.I(1), C = c.I(2);
      if (T < 1 || T > 16384) c.op_fail("ints[1] T = " + str(T) + " is outside [1, 16384]");
      if (C < 1) c.op_fail("ints[2] C = " + str(C) + " must be >= 1");
      const int32_t x = c.in(0), y = c.out();
      c.dtype(x, "x", k8_16);
      c.dtype(y, "y", k8_16);
      c.elems(x, "x", c.prod({B, T, C}, "batch·T·C"), "batch·T·C");
      c.elems(y, "y", c.prod({B, C}, "batch·C"), "batch·C");
      c.zp(3, "x_zp", c.t(x).dtype, true);
      c.zp(4, "y_zp", c.t(y).dtype);
      const double ratio = c.scale(0, "x_scale") / ((double)T * c.scale(1, "y_scale"));
      c.kernel("x_scale/(T·y_scale)", [&] { q::quantize_multiplier(ratio, &st->mult, &st->shift); return 0; });
      c.no_overlap(x, "x");
      break;
    }
    case OpKind::attention_q: {
      c.arity(1, 4, {"qkv", "bias", "mult", "shift"});
      if (c.op.inputs.size() != 4) c.op_fail("has " + str((int64_t)c.op.inputs.size()) + " inputs, expected 4 (qkv, bias or -1, mult, shift)");
      c.ints_len(8, "[W, N, H, dh, zp, y_zp, y_max, bias_rows]");
      c.floats_len(1, "[logit_scale]");
      c.nonneg({"W", "N", "H", "dh"});
      const int64_t W = c.I(0), N = c.I(1), H = c.I(2), dh = c.I(3);
      if (N < 1 || N > q::kAttentionMaxN) c.op_fail("ints[1] N = " + str(N) + " is outside [1, " + str(q::kAttentionMaxN) + "]");
      if (H < 1 || H > 4096) c.op_fail("ints[2] H = " + str(H) + " is outside [1, 4096]");
      if (dh < 1 || dh > q::kAttentionMaxDh) c.op_fail("ints[3] dh = " + str(dh) + " is outside [1, " + str(q::kAttentionMaxDh) + "]");
      const int32_t x = c.in(0), b = c.in(1), m = c.in(2), s = c.in(3), y = c.out();
      if (m < 0 || s < 0) c.op_fail("needs mult and shift (inputs 2, 3)");
      c.dtype(x, "qkv", {DType::u8});
      c.dtype(y, "y", {DType::u8});
      c.elems(x, "qkv", c.prod({W, N, 3, H, dh}, "W·N·3·H·dh"), "W·N·3·H·dh");
      c.elems(y, "y", c.prod({W, H, N, dh}, "W·H·N·dh"), "W·H·N·dh");
      c.requant_tensors(m, s, 1, false);
      q::AttentionParams& a = st->att;
      a.W = W, a.N = N, a.H = H, a.dh = dh;
      a.zp = c.zp(4, "zp", DType::u8);
      a.y_zp = c.zp(5, "y_zp", DType::u8);
      a.y_max = c.y_max(6, a.y_zp, DType::u8);
      a.mult = c.cdata<int32_t>(m)[0];
      a.shift = c.cdata<int32_t>(s)[0];
      if (a.mult == 0) c.op_fail("mult[0] must be non-zero");
      if (b >= 0) {
        const int64_t br = c.I(7);
        if (br < 1) c.op_fail("ints[7] bias_rows = " + str(br) + " must be >= 1 with a bias");
        c.dtype(b, "bias", {DType::i32});
        c.constant(b, "bias");
        c.elems(b, "bias", c.prod({br, N}, "bias_rows·N"), "bias_rows·N");
        a.bias_rows = br;  // the pointer is taken at run time (constants may move after prepare)
      } else if (c.I(7) != 0) {
        c.op_fail("ints[7] bias_rows = " + str(c.I(7)) + " must be 0 without a bias");
      }
      const double sc = c.scale(0, "logit_scale");
      a.sm = c.kernel("logit_scale", [&] { return q::softmax_params(sc); });
      c.no_overlap(x, "qkv");
      break;
    }
    case OpKind::argmax_q: {
      c.arity(1, 1, {"x"});
      c.ints_len(2, "[rows, D]");
      c.nonneg({"rows", "D"});
      const int64_t rows = c.I(0), D = c.I(1);
      if (D < 1) c.op_fail("ints[1] D = " + str(D) + " must be >= 1");
      c.dtype(c.in(0), "x", {DType::i8, DType::u8, DType::i16, DType::i32});
      c.dtype(c.out(), "y", {DType::i64});
      c.elems(c.in(0), "x", c.prod({rows, D}, "rows·D"), "rows·D");
      c.elems(c.out(), "y", rows, "rows");
      c.no_overlap(c.in(0), "x");
      break;
    }
    default:
      c.op_fail("is not an integer op");
  }
  return st;
}

void run_int_op(const PlanDesc& d, size_t op_index, const IntOpState& st, void* const* ptr, Isa isa, ThreadPool& pool) {
  const OpDesc& op = d.ops[op_index];
  auto in = [&](size_t k) -> void* { return k < op.inputs.size() && op.inputs[k] >= 0 ? ptr[op.inputs[k]] : nullptr; };
  auto dt = [&](size_t k) { return d.tensors[(size_t)op.inputs[k]].dtype; };
  void* out = ptr[op.outputs[0]];
  const TensorDesc& yt = d.tensors[(size_t)op.outputs[0]];
  const int64_t ny = yt.elements();
  const int64_t ey = (int64_t)dtype_size(yt.dtype);
  const auto& I = op.ints;
  uint8_t* y8 = static_cast<uint8_t*>(out);
  switch (op.kind) {
    case OpKind::quantize: {
      if (!ny) break;
      const float* x = static_cast<const float*>(in(0));
      const float s = op.floats[0];
      const int32_t zp = (int32_t)I[0];
      const QType t = qt(yt.dtype);
      pool.parallel_for(ny, 16384, [&](int64_t b, int64_t e) { q::quantize_f32(x, t, out, b, e, s, zp, isa); });
      break;
    }
    case OpKind::dequantize: {
      if (!ny) break;
      const void* x = in(0);
      const float* scales = static_cast<const float*>(in(1));
      const int64_t C = scales ? d.tensors[(size_t)op.inputs[1]].elements() : 1;
      const float s = op.floats[0];
      const int32_t zp = (int32_t)I[0];
      float* y = static_cast<float*>(out);
      const DType xd = dt(0);
      const QType t = qt(xd);
      pool.parallel_for(ny, 16384, [&](int64_t b, int64_t e) { q::dequantize_f32(t, x, y, b, e, zp, s, scales, C, isa); });
      break;
    }
    case OpKind::linear_q: {
      const int64_t M = I[0], N = I[2];
      if (!M) break;
      q::GemmEpilogue ep;
      ep.bias = static_cast<const int32_t*>(in(2));
      ep.a_zero_point = (int32_t)I[3];
      ep.relu = I[6] != 0;
      ep.out = qt(yt.dtype);
      if (ep.out != QType::s32) {
        const int32_t mult_id = op.inputs[3];
        ep.rq.mult = static_cast<const int32_t*>(in(3));
        ep.rq.shift = static_cast<const int32_t*>(in(4));
        ep.rq.channels = (int32_t)d.tensors[(size_t)mult_id].elements();
        ep.rq.zero_point = (int32_t)I[5];
        ep.rq.qmax = st.y_max;
        ep.table = static_cast<const uint8_t*>(in(5));
      }
      q::gemm_u8s8(M, static_cast<const uint8_t*>(in(0)), I[1], st.packed, ep, out, N, 1, isa, &pool);
      break;
    }
    case OpKind::matmul_q: {
      const int64_t batch = I[0], M = I[1], K = I[2], N = I[3], as = I[5], bs = I[6];
      if (!batch || !M || !N) break;
      const bool tb = I[4] != 0, b_u8 = dt(1) == DType::u8;
      const int32_t za = (int32_t)I[7], zb = (int32_t)I[8];
      const uint8_t* a = static_cast<const uint8_t*>(in(0));
      const uint8_t* b = static_cast<const uint8_t*>(in(1));
      const QType qo = qt(yt.dtype);
      q::Requant rq;
      if (qo != QType::s32) {
        rq.mult = static_cast<const int32_t*>(in(2));
        rq.shift = static_cast<const int32_t*>(in(3));
        rq.channels = 1;
        rq.zero_point = (int32_t)I[9];
        rq = q::for_type(rq, qo);
      }
      pool.parallel_for(batch, chunk_for(M * N * std::max<int64_t>(K, 1), 100000), [&](int64_t t0, int64_t t1) {
        thread_local std::vector<int32_t> acc;
        for (int64_t t = t0; t < t1; ++t) {
          int32_t* c = qo == QType::s32 ? static_cast<int32_t*>(out) + t * M * N : nullptr;
          if (!c) {
            if ((int64_t)acc.size() < M * N) acc.resize((size_t)(M * N));
            c = acc.data();
          }
          if (K == 0) std::fill(c, c + M * N, 0);
          else q::matmul_u8x8_s32(a + t * as, za, b + t * bs, b_u8, zb, tb, M, K, N, c, isa);
          if (qo != QType::s32) q::requantize(c, M, N, rq, qo, y8 + t * M * N * ey, isa);
        }
      });
      break;
    }
    case OpKind::softmax_q: {
      const int64_t rows = I[0], D = I[1], tr = I[2];
      if (!rows) break;
      const int32_t* x = static_cast<const int32_t*>(in(0));
      const int32_t* table = static_cast<const int32_t*>(in(1));
      pool.parallel_for(rows, chunk_for(D * 8), [&](int64_t b, int64_t e) {
        // table row = r mod table_rows: split the chunk where the period wraps
        for (int64_t r = b; r < e;) {
          int64_t len = e - r;
          const int32_t* tp = nullptr;
          int64_t tn = 0;
          if (table) {
            const int64_t off = r % tr;
            len = std::min(len, tr - off);
            tp = table + off * D;
            tn = tr - off;
          }
          q::softmax_u8(x + r * D, len, D, tp, tn, st.sm, y8 + r * D, isa);
          r += len;
        }
      });
      break;
    }
    case OpKind::layernorm_q: {
      const int64_t rows = I[0], D = I[1];
      if (!rows) break;
      const QType qi = qt(dt(0));
      const int64_t ex = (int64_t)q::qtype_size(qi);
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      pool.parallel_for(rows, chunk_for(D * 4), [&](int64_t b, int64_t e) {
        q::layernorm(qi, x + b * D * ex, e - b, st.ln, y8 + b * D * ey, isa);
      });
      break;
    }
    case OpKind::gelu_q: {
      if (!ny) break;
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      pool.parallel_for(ny, 65536, [&](int64_t b, int64_t e) { q::lookup_u8(x + b, e - b, st.table, y8 + b, isa); });
      break;
    }
    case OpKind::relu_q: {
      if (!ny) break;
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      const QType t = qt(yt.dtype);
      pool.parallel_for(ny, 65536, [&](int64_t b, int64_t e) { q::relu_q8(t, x + b, e - b, (int32_t)I[0], y8 + b, isa); });
      break;
    }
    case OpKind::requant: {
      const int64_t rows = I[0], C = I[1];
      if (!rows) break;
      q::Requant rq;
      rq.mult = static_cast<const int32_t*>(in(1));
      rq.shift = static_cast<const int32_t*>(in(2));
      rq.channels = (int32_t)d.tensors[(size_t)op.inputs[1]].elements();
      rq.zero_point = (int32_t)I[2];
      if (I[3]) rq.qmin = rq.zero_point;  // ReLU (mult > 0 checked at load)
      const QType qo = qt(yt.dtype);
      rq = q::for_type(rq, qo);
      const int32_t* x = static_cast<const int32_t*>(in(0));
      pool.parallel_for(rows, chunk_for(C * 2), [&](int64_t b, int64_t e) {
        q::requantize(x + b * C, e - b, C, rq, qo, y8 + b * C * ey, isa);
      });
      break;
    }
    case OpKind::add_q: {
      if (!ny) break;
      const QType ta = qt(dt(0)), tb = qt(dt(1)), ty = qt(yt.dtype);
      const int64_t ea = q::qtype_size(ta), eb = q::qtype_size(tb);
      const uint8_t* a = static_cast<const uint8_t*>(in(0));
      const uint8_t* b = static_cast<const uint8_t*>(in(1));
      pool.parallel_for(ny, 32768, [&](int64_t i0, int64_t i1) {
        q::add_q(ta, a + i0 * ea, tb, b + i0 * eb, i1 - i0, st.add, ty, y8 + i0 * ey, isa);
      });
      break;
    }
    case OpKind::attention_q: {
      q::AttentionParams a = st.att;
      a.bias = a.bias_rows ? static_cast<const int32_t*>(in(1)) : nullptr;
      const int64_t heads = a.W * a.H;
      if (!heads) break;
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      const size_t bytes = q::attention_scratch_bytes(a.N, a.dh);
      pool.parallel_for(heads, 1, [&](int64_t b, int64_t e) {
        thread_local std::vector<uint8_t> scratch;
        if (scratch.size() < bytes + 32) scratch.resize(bytes + 32);
        void* p = scratch.data() + ((32 - (reinterpret_cast<uintptr_t>(scratch.data()) & 31)) & 31);
        q::attention_u8(x, a, b, e, p, y8, isa);
      });
      break;
    }
    case OpKind::avgpool_q: {
      const int64_t B = I[0], T = I[1], C = I[2];
      if (!B) break;
      const QType ti = qt(dt(0)), ty = qt(yt.dtype);
      const int64_t ex = q::qtype_size(ti);
      q::Requant rq;
      rq.mult = &st.mult;
      rq.shift = &st.shift;
      rq.zero_point = (int32_t)I[4];
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      pool.parallel_for(B, chunk_for(T * C), [&](int64_t b, int64_t e) {
        q::avgpool(ti, x + b * T * C * ex, e - b, T, C, (int32_t)I[3], rq, ty, y8 + b * C * ey, isa);
      });
      break;
    }
    case OpKind::argmax_q: {
      const int64_t rows = I[0], D = I[1];
      if (!rows) break;
      const QType ti = qt(dt(0));
      const int64_t ex = q::qtype_size(ti);
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      int64_t* y = static_cast<int64_t*>(out);
      pool.parallel_for(rows, chunk_for(D), [&](int64_t b, int64_t e) { q::argmax(ti, x + b * D * ex, e - b, D, y + b, isa); });
      break;
    }
    default:
      break;
  }
}

}  // namespace swinq
