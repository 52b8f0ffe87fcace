// Thin bindings of the integer kernels (swinq/qkernels.h) for tests (benchmarks: bench.cc). Every
// function takes typed arrays + plain numbers, an optional isa ('scalar' | 'avx2'), checks sizes
// here and turns core std::invalid_argument errors into JS Errors.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "args.h"
#include "registry.h"
#include "swinq/qkernels.h"

namespace swinq_binding {
namespace {

using namespace swinq::q;
using swinq::Isa;

napi_typedarray_type napi_type(QType t) {
  switch (t) {
    case QType::s8: return napi_int8_array;
    case QType::u8: return napi_uint8_array;
    case QType::s16: return napi_int16_array;
    default: return napi_int32_array;
  }
}

// A typed array of type t with at least n elements.
const void* typed(Napi::Env env, Napi::Value v, QType t, int64_t n, const std::string& what) {
  SWINQ_CHECK_ARG(env, v.IsTypedArray(), what + " must be a typed array");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  SWINQ_CHECK_ARG(env, a.TypedArrayType() == napi_type(t), what + " must be a " + qtype_name(t) + " typed array");
  SWINQ_CHECK_ARG(env, (int64_t)a.ElementLength() >= n,
                  what + " has " + std::to_string(a.ElementLength()) + " elements, needs " + std::to_string(n));
  return (const char*)a.ArrayBuffer().Data() + a.ByteOffset();
}

Napi::TypedArray make(Napi::Env env, QType t, int64_t n) {
  switch (t) {
    case QType::s8: return Napi::Int8Array::New(env, n);
    case QType::u8: return Napi::Uint8Array::New(env, n);
    case QType::s16: return Napi::Int16Array::New(env, n);
    default: return Napi::Int32Array::New(env, n);
  }
}
void* data(Napi::TypedArray a) { return (char*)a.ArrayBuffer().Data() + a.ByteOffset(); }

// rq: { mult: Int32Array, shift: Int32Array, zeroPoint?, qmin?, qmax? }
struct RqHolder {
  Requant rq;
};
RqHolder parse_rq(Napi::Env env, Napi::Value v, const std::string& what) {
  SWINQ_CHECK_ARG(env, v.IsObject(), what + " must be an object {mult, shift, zeroPoint?, qmin?, qmax?}");
  Napi::Object o = v.As<Napi::Object>();
  RqHolder h;
  Napi::Value m = o.Get("mult"), s = o.Get("shift");
  SWINQ_CHECK_ARG(env, m.IsTypedArray() && s.IsTypedArray(), what + ".mult and .shift must be Int32Arrays");
  int64_t ch = m.As<Napi::TypedArray>().ElementLength();
  SWINQ_CHECK_ARG(env, ch >= 1 && (int64_t)s.As<Napi::TypedArray>().ElementLength() == ch, what + ".mult and .shift must have the same length ≥ 1");
  h.rq.mult = (const int32_t*)typed(env, m, QType::s32, ch, what + ".mult");
  h.rq.shift = (const int32_t*)typed(env, s, QType::s32, ch, what + ".shift");
  h.rq.channels = (int32_t)ch;
  if (!o.Get("zeroPoint").IsUndefined())
    h.rq.zero_point = (int32_t)int_arg(env, o.Get("zeroPoint"), what + ".zeroPoint", INT32_MIN, INT32_MAX);
  if (!o.Get("qmin").IsUndefined()) h.rq.qmin = (int32_t)int_arg(env, o.Get("qmin"), what + ".qmin", INT32_MIN, INT32_MAX);
  if (!o.Get("qmax").IsUndefined()) h.rq.qmax = (int32_t)int_arg(env, o.Get("qmax"), what + ".qmax", INT32_MIN, INT32_MAX);
  return h;
}

// qQuantizeMultiplier(ratio) -> {mult, shift}
Napi::Value QuantizeMultiplier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qQuantizeMultiplier", [&]() -> Napi::Value {
    int32_t m, s;
    quantize_multiplier(number_arg(env, info[0], "ratio"), &m, &s);
    Napi::Object o = Napi::Object::New(env);
    o.Set("mult", m);
    o.Set("shift", s);
    return o;
  });
}

// qRequantize(x: Int32Array, rows, cols, rq, out, isa?)
Napi::Value Requantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qRequantize", [&]() -> Napi::Value {
    int64_t rows = int_arg(env, info[1], "rows", 0, 1 << 30), cols = int_arg(env, info[2], "cols", 0, 1 << 30);
    const int32_t* x = (const int32_t*)typed(env, info[0], QType::s32, rows * cols, "x");
    RqHolder h = parse_rq(env, info[3], "rq");
    QType out = qtype_arg(env, info[4], "out");
    Napi::TypedArray y = make(env, out, rows * cols);
    requantize(x, rows, cols, h.rq, out, data(y), isa_arg(env, info[5], "isa"));
    return y;
  });
}

// qGemm({a: Uint8Array, w: Int8Array (K×N, or N×K with transposed), M, K, N, bias?, aZeroPoint?, wZeroPoint?,
//        aMax?, forcePath?, relu?, out?, rq?, table?, threads?, transposed?}, isa?) -> {y, maddubsSafe, unsafePairs}
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qGemm", [&]() -> Napi::Value {
    SWINQ_CHECK_ARG(env, info[0].IsObject(), "qGemm: argument must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto get_int = [&](const char* k, int64_t dflt, int64_t lo, int64_t hi) {
      Napi::Value v = o.Get(k);
      return v.IsUndefined() ? dflt : int_arg(env, v, std::string("qGemm: ") + k, lo, hi);
    };
    const int64_t M = get_int("M", -1, 0, 1 << 24), K = get_int("K", -1, 1, 65536), N = get_int("N", -1, 1, 1 << 20);
    SWINQ_CHECK_ARG(env, M >= 0 && K >= 1 && N >= 1, "qGemm: M, K and N are required");
    const uint8_t* A = (const uint8_t*)typed(env, o.Get("a"), QType::u8, M * K, "qGemm: a");
    const int8_t* W = (const int8_t*)typed(env, o.Get("w"), QType::s8, K * N, "qGemm: w");
    PackOptions po;
    po.w_zero_point = (int32_t)get_int("wZeroPoint", 0, -128, 127);
    po.a_max = (int32_t)get_int("aMax", 255, 1, 255);
    po.force_path = (int32_t)get_int("forcePath", 0, 0, 2);
    const bool transposed = o.Get("transposed").ToBoolean();
    PackedB B = pack_b(W, (int32_t)K, (int32_t)N, transposed ? K : N, transposed, po);
    GemmEpilogue ep;
    if (!o.Get("bias").IsUndefined()) ep.bias = (const int32_t*)typed(env, o.Get("bias"), QType::s32, N, "qGemm: bias");
    ep.a_zero_point = (int32_t)get_int("aZeroPoint", 0, 0, 255);
    ep.relu = o.Get("relu").ToBoolean();
    ep.out = o.Get("out").IsUndefined() ? QType::s32 : qtype_arg(env, o.Get("out"), "qGemm: out");
    RqHolder h;
    if (ep.out != QType::s32) {
      h = parse_rq(env, o.Get("rq"), "qGemm: rq");
      ep.rq = h.rq;
    }
    if (!o.Get("table").IsUndefined()) ep.table = (const uint8_t*)typed(env, o.Get("table"), QType::u8, 256, "qGemm: table");
    const int threads = (int)get_int("threads", 1, 1, 256);
    Napi::TypedArray y = make(env, ep.out, M * N);
    gemm_u8s8(M, A, K, B, ep, data(y), N, threads, isa_arg(env, info[1], "isa"));
    Napi::Object r = Napi::Object::New(env);
    r.Set("y", y);
    r.Set("maddubsSafe", B.maddubs_safe);
    r.Set("unsafePairs", (double)B.unsafe_pairs);
    return r;
  });
}

// qSoftmax(x: Int32Array, rows, D, scale, table?: Int32Array|null, tableRows?, isa?) -> Uint8Array
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qSoftmax", [&]() -> Napi::Value {
    int64_t rows = int_arg(env, info[1], "rows", 0, 1 << 30), D = int_arg(env, info[2], "D", 1, 1 << 24);
    const int32_t* x = (const int32_t*)typed(env, info[0], QType::s32, rows * D, "x");
    SoftmaxParams p = softmax_params(number_arg(env, info[3], "scale"));
    const int32_t* table = nullptr;
    int64_t trows = 0;
    if (!info[4].IsUndefined() && !info[4].IsNull()) {
      trows = int_arg(env, info[5], "tableRows", 1, 1 << 24);
      table = (const int32_t*)typed(env, info[4], QType::s32, trows * D, "table");
    }
    Napi::Uint8Array y = Napi::Uint8Array::New(env, rows * D);
    softmax_u8(x, rows, D, table, trows, p, y.Data(), isa_arg(env, info[6], "isa"));
    return y;
  });
}

// qLayerNorm(x: Int8Array|Int16Array, rows, D, gamma: Float32Array|null, beta|null, outScale, outZeroPoint, out, isa?)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qLayerNorm", [&]() -> Napi::Value {
    int64_t rows = int_arg(env, info[1], "rows", 0, 1 << 30), D = int_arg(env, info[2], "D", 1, 32768);
    const napi_typedarray_type xt = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().TypedArrayType() : napi_float64_array;
    SWINQ_CHECK_ARG(env, xt == napi_int8_array || xt == napi_int16_array, "x must be an Int8Array or Int16Array");
    QType in = xt == napi_int8_array ? QType::s8 : QType::s16;
    const void* x = typed(env, info[0], in, rows * D, "x");
    auto floats = [&](Napi::Value v, const char* what) -> const float* {
      if (v.IsUndefined() || v.IsNull()) return nullptr;
      SWINQ_CHECK_ARG(env, v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
                               (int64_t)v.As<Napi::TypedArray>().ElementLength() == D,
                      std::string(what) + " must be a Float32Array of D elements");
      return v.As<Napi::Float32Array>().Data();
    };
    QType out = qtype_arg(env, info[7], "out");
    LayerNormParams p = layernorm_params((int32_t)D, floats(info[3], "gamma"), floats(info[4], "beta"),
                                         number_arg(env, info[5], "outScale"),
                                         (int32_t)int_arg(env, info[6], "outZeroPoint", -32768, 32767), out);
    Napi::TypedArray y = make(env, out, rows * D);
    layernorm(in, x, rows, p, data(y), isa_arg(env, info[8], "isa"));
    return y;
  });
}

// qGelu(x: Int8Array, scale, isa?) -> {y: Int32Array, outScale}
Napi::Value Gelu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qGelu", [&]() -> Napi::Value {
    SWINQ_CHECK_ARG(env, info[0].IsTypedArray(), "x must be an Int8Array");
    int64_t n = info[0].As<Napi::TypedArray>().ElementLength();
    const int8_t* x = (const int8_t*)typed(env, info[0], QType::s8, n, "x");
    GeluParams p = gelu_params(number_arg(env, info[1], "scale"));
    Napi::Int32Array y = Napi::Int32Array::New(env, n);
    gelu_ibert_s8(x, n, p, y.Data(), isa_arg(env, info[2], "isa"));
    Napi::Object r = Napi::Object::New(env);
    r.Set("y", y);
    r.Set("outScale", p.out_scale);
    return r;
  });
}

// qGeluTable(inScale, inZeroPoint, inType, outScale, outZeroPoint, outType) -> Uint8Array(256)
Napi::Value GeluTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qGeluTable", [&]() -> Napi::Value {
    Napi::Uint8Array t = Napi::Uint8Array::New(env, 256);
    gelu_table(number_arg(env, info[0], "inScale"), (int32_t)int_arg(env, info[1], "inZeroPoint", -128, 255),
               qtype_arg(env, info[2], "inType"), number_arg(env, info[3], "outScale"),
               (int32_t)int_arg(env, info[4], "outZeroPoint", -128, 255), qtype_arg(env, info[5], "outType"), t.Data());
    return t;
  });
}

// qLookup(x: Uint8Array|Int8Array, table: Uint8Array(256), isa?) -> same type as x
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qLookup", [&]() -> Napi::Value {
    SWINQ_CHECK_ARG(env, info[0].IsTypedArray(), "x must be a Uint8Array or Int8Array");
    Napi::TypedArray xa = info[0].As<Napi::TypedArray>();
    QType t = xa.TypedArrayType() == napi_int8_array ? QType::s8 : QType::u8;
    int64_t n = xa.ElementLength();
    const uint8_t* x = (const uint8_t*)typed(env, info[0], t, n, "x");
    const uint8_t* table = (const uint8_t*)typed(env, info[1], QType::u8, 256, "table");
    Napi::TypedArray y = make(env, t, n);
    lookup_u8(x, n, table, (uint8_t*)data(y), isa_arg(env, info[2], "isa"));
    return y;
  });
}

// qAdd(a, b, {sa, za, sb, zb, sy, zy}, out, isa?) — a, b: Int8Array|Uint8Array|Int16Array of equal length
Napi::Value Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qAdd", [&]() -> Napi::Value {
    auto type_of = [&](Napi::Value v, const char* what) {
      SWINQ_CHECK_ARG(env, v.IsTypedArray(), std::string(what) + " must be an Int8Array, Uint8Array or Int16Array");
      switch (v.As<Napi::TypedArray>().TypedArrayType()) {
        case napi_int8_array: return QType::s8;
        case napi_uint8_array: return QType::u8;
        case napi_int16_array: return QType::s16;
        default: throw Napi::TypeError::New(env, std::string(what) + " must be an Int8Array, Uint8Array or Int16Array");
      }
    };
    QType ta = type_of(info[0], "a"), tb = type_of(info[1], "b");
    int64_t n = info[0].As<Napi::TypedArray>().ElementLength();
    SWINQ_CHECK_ARG(env, (int64_t)info[1].As<Napi::TypedArray>().ElementLength() == n, "a and b must have the same length");
    SWINQ_CHECK_ARG(env, info[2].IsObject(), "params must be {sa, za, sb, zb, sy, zy}");
    Napi::Object o = info[2].As<Napi::Object>();
    QType ty = qtype_arg(env, info[3], "out");
    AddParams p = add_params(number_arg(env, o.Get("sa"), "sa"), (int32_t)int_arg(env, o.Get("za"), "za", -32768, 32767),
                             number_arg(env, o.Get("sb"), "sb"), (int32_t)int_arg(env, o.Get("zb"), "zb", -32768, 32767),
                             number_arg(env, o.Get("sy"), "sy"), (int32_t)int_arg(env, o.Get("zy"), "zy", -32768, 32767), ty);
    Napi::TypedArray y = make(env, ty, n);
    add_q(ta, typed(env, info[0], ta, n, "a"), tb, typed(env, info[1], tb, n, "b"), n, p, ty, data(y), isa_arg(env, info[4], "isa"));
    return y;
  });
}

// qArgmax(x: Int8Array|Uint8Array|Int16Array|Int32Array, rows, D, isa?) -> Int32Array
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qArgmax", [&]() -> Napi::Value {
    SWINQ_CHECK_ARG(env, info[0].IsTypedArray(), "x must be a typed array");
    QType t;
    switch (info[0].As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: t = QType::s8; break;
      case napi_uint8_array: t = QType::u8; break;
      case napi_int16_array: t = QType::s16; break;
      case napi_int32_array: t = QType::s32; break;
      default: throw Napi::TypeError::New(env, "x must be an Int8/Uint8/Int16/Int32Array");
    }
    int64_t rows = int_arg(env, info[1], "rows", 0, 1 << 30), D = int_arg(env, info[2], "D", 1, 1 << 30);
    const void* x = typed(env, info[0], t, rows * D, "x");
    std::vector<int64_t> idx(rows);
    argmax(t, x, rows, D, idx.data(), isa_arg(env, info[3], "isa"));
    Napi::Int32Array y = Napi::Int32Array::New(env, rows);
    for (int64_t r = 0; r < rows; ++r) y.Data()[r] = (int32_t)idx[r];
    return y;
  });
}

// qIsqrt(v: bigint) -> bigint
Napi::Value Isqrt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SWINQ_CHECK_ARG(env, info[0].IsBigInt(), "qIsqrt: v must be a bigint");
  bool lossless = false;
  uint64_t v = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  SWINQ_CHECK_ARG(env, lossless, "qIsqrt: v must be in [0, 2^64)");
  return Napi::BigInt::New(env, isqrt_u64(v));
}

void register_qkernels(Napi::Env env, Napi::Object exports) {
  exports.Set("qQuantizeMultiplier", Napi::Function::New(env, QuantizeMultiplier));
  exports.Set("qRequantize", Napi::Function::New(env, Requantize));
  exports.Set("qGemm", Napi::Function::New(env, Gemm));
  exports.Set("qSoftmax", Napi::Function::New(env, Softmax));
  exports.Set("qLayerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("qGelu", Napi::Function::New(env, Gelu));
  exports.Set("qGeluTable", Napi::Function::New(env, GeluTable));
  exports.Set("qLookup", Napi::Function::New(env, Lookup));
  exports.Set("qAdd", Napi::Function::New(env, Add));
  exports.Set("qArgmax", Napi::Function::New(env, Argmax));
  exports.Set("qIsqrt", Napi::Function::New(env, Isqrt));
}

}  // namespace
SWINQ_BINDING_EXPORTS(register_qkernels);
}  // namespace swinq_binding
