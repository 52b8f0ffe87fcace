// Training binding: per-op forward/backward, what backward reads, losses and AdamW over
// Float32Arrays. The tape (src/train/onnx-graph.ts) drives these; every size is checked in native/train before use.
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "registry.h"
#include "swinq/train.h"

namespace swinq_binding {
namespace {

using namespace swinq::train;

double num(const Napi::Object& o, const char* k, double def, bool required = false) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined()) {
    if (required) throw Napi::TypeError::New(o.Env(), std::string("train: op.") + k + " is required");
    return def;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("train: op.") + k + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t int_field(const Napi::Object& o, const char* k, int64_t def, bool required = false) {
  const double d = num(o, k, (double)def, required);
  if (d != (double)(int64_t)d) throw Napi::TypeError::New(o.Env(), std::string("train: op.") + k + " must be an integer");
  return (int64_t)d;
}

// op.<k>, when given: three numbers into dst[1..3] (dst[0] is left alone).
void parse_dims3(Napi::Env env, const Napi::Object& o, const char* k, int64_t* dst) {
  Napi::Value d = o.Get(k);
  if (d.IsUndefined()) return;
  SWINQ_CHECK_ARG(env, d.IsArray() && d.As<Napi::Array>().Length() == 3, std::string("train: op.") + k + " must be 3 numbers");
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Value e = d.As<Napi::Array>().Get(i);
    SWINQ_CHECK_ARG(env, e.IsNumber(), std::string("train: op.") + k + " must be 3 numbers");
    dst[i + 1] = e.As<Napi::Number>().Int64Value();
  }
}

// op.<k>, when given: an array of numbers appended to dst.
void parse_doubles(Napi::Env env, const Napi::Object& o, const char* k, std::vector<double>& dst) {
  Napi::Value d = o.Get(k);
  if (d.IsUndefined()) return;
  SWINQ_CHECK_ARG(env, d.IsArray(), std::string("train: op.") + k + " must be an array of numbers");
  Napi::Array arr = d.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    SWINQ_CHECK_ARG(env, e.IsNumber(), std::string("train: op.") + k + " must be an array of numbers");
    dst.push_back(e.As<Napi::Number>().DoubleValue());
  }
}

// binary's op.<k>: 1..8 integers, one per output dim; the first list read sets op.rank.
void parse_binary_list(Napi::Env env, const Napi::Object& o, const char* k, Op& op, int64_t* dst) {
  Napi::Value d = o.Get(k);
  SWINQ_CHECK_ARG(env, d.IsArray() && d.As<Napi::Array>().Length() >= 1 && d.As<Napi::Array>().Length() <= 8,
                  std::string("train: op.") + k + " must be an array of 1..8 integers");
  Napi::Array arr = d.As<Napi::Array>();
  if (op.rank == 0) op.rank = (int)arr.Length();
  SWINQ_CHECK_ARG(env, (int)arr.Length() == op.rank, std::string("train: op.") + k + " must have one entry per output dim");
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    SWINQ_CHECK_ARG(env, e.IsNumber(), std::string("train: op.") + k + " must be integers");
    dst[i] = e.As<Napi::Number>().Int64Value();
  }
}

// Sizes and scalars: M, K, N, D (L and C for mean_pool), alpha, eps, transB, dims, bdims.
void parse_shape_fields(Napi::Env env, const Napi::Object& o, Op& op) {
  op.M = int_field(o, "M", 0);
  op.K = int_field(o, "K", 0);
  op.N = int_field(o, "N", 0);
  op.D = int_field(o, "D", 0);
  if (op.kind == Kind::mean_pool) {
    op.M = int_field(o, "L", 0, true);
    op.D = int_field(o, "C", 0, true);
  }
  op.alpha = (float)num(o, "alpha", 1.0);
  op.eps = (float)num(o, "eps", 1e-5);
  Napi::Value tb = o.Get("transB");
  op.trans_b = tb.IsBoolean() && tb.As<Napi::Boolean>().Value();
  parse_dims3(env, o, "dims", op.adims);
  parse_dims3(env, o, "bdims", op.bdims);
}

// gather (xItem, block, idx) and act (fn, bits, a fixed table such as Approx-BP's ReGELU2 instead of
// the solved one).
void parse_gather_act_fields(Napi::Env env, const Napi::Object& o, Op& op) {
  op.x_item = int_field(o, "xItem", 0);
  op.block = int_field(o, "block", 1);
  Napi::Value idx = o.Get("idx");
  if (!idx.IsUndefined()) {
    SWINQ_CHECK_ARG(env, idx.IsTypedArray() && idx.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array,
                    "train: op.idx must be an Int32Array");
    Napi::Int32Array a = idx.As<Napi::Int32Array>();
    op.idx.assign(a.Data(), a.Data() + a.ElementLength());
  }
  Napi::Value fn = o.Get("fn");
  if (!fn.IsUndefined()) {
    SWINQ_CHECK_ARG(env, fn.IsString(), "train: op.fn must be a string");
    op.fn = fn.As<Napi::String>();
  }
  op.bits = (int)int_field(o, "bits", 0);
  parse_doubles(env, o, "tableBorders", op.table_borders);
  parse_doubles(env, o, "tableLevels", op.table_levels);
}

// The fields only one kind reads: fakequant's scale, zp, qmin, qmax; binary's bop and dims/strides;
// scale_shift's shift.
void parse_kind_fields(Napi::Env env, const Napi::Object& o, Op& op) {
  if (op.kind == Kind::fakequant) {
    op.q_scale = (float)num(o, "scale", 0.0);
    op.q_zp = (int32_t)int_field(o, "zp", 0);
    op.q_min = (int32_t)int_field(o, "qmin", 0);
    op.q_max = (int32_t)int_field(o, "qmax", 255);
  }
  if (op.kind == Kind::binary) {
    op.bop = (int)int_field(o, "bop", 0);
    parse_binary_list(env, o, "odims", op, op.odims);
    parse_binary_list(env, o, "sa", op, op.sa);
    parse_binary_list(env, o, "sb", op, op.sb);
  }
  if (op.kind == Kind::scale_shift) op.shift = (float)num(o, "shift", 0.0);
}

// { op: name, ...fields } → a prepared train::Op; the fields are read in a fixed order, so the first
// bad one is the one reported.
Op parse_op(Napi::Env env, Napi::Value v) {
  SWINQ_CHECK_ARG(env, v.IsObject(), "train: op must be an object { op: name, ... }");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value name = o.Get("op");
  SWINQ_CHECK_ARG(env, name.IsString(), "train: op.op must be a string");
  Op op;
  try {
    op.kind = kind_from_name(name.As<Napi::String>());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  parse_shape_fields(env, o, op);
  parse_gather_act_fields(env, o, op);
  parse_kind_fields(env, o, op);
  try {
    prepare(op);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return op;
}

Napi::Float32Array f32_arg(Napi::Env env, Napi::Value v, const std::string& what) {
  SWINQ_CHECK_ARG(env, v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
                  "train: " + what + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

int g_threads = 1;
// The training pool is not re-entrant: sync and async ops take turns.
std::mutex g_run_mu;

// Runs `work` on a libuv thread; resolves with `make_result()` (main thread). The JS values the
// work reads or writes are held by `keep` until the worker settles.
class TrainWorker : public Napi::AsyncWorker {
 public:
  TrainWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> make_result,
              std::vector<Napi::Value> keep)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        result_(std::move(make_result)) {
    for (auto& v : keep)
      if (v.IsObject()) refs_.push_back(Napi::Persistent(v));
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      std::lock_guard<std::mutex> lock(g_run_mu);
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(result_(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::vector<Napi::Reference<Napi::Value>> refs_;
};

// trainForward(op, inputs[], out?) → { y, codes? }; trainForwardAsync: the same as a Promise (AsyncWorker).
// out (act only: elementwise, so it may be the input's own buffer) receives y instead of a new array.
Napi::Value ForwardImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  Op op = parse_op(env, info[0]);
  SWINQ_CHECK_ARG(env, info[1].IsArray(), "train: inputs must be an array of Float32Array");
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<const float*> in;
  std::vector<size_t> n;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Float32Array a = f32_arg(env, arr.Get(i), "inputs[" + std::to_string(i) + "]");
    in.push_back(a.Data());
    n.push_back(a.ElementLength());
  }
  try {
    const size_t ny = output_size(op, n);
    Napi::Float32Array y;
    if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
      if (op.kind != Kind::act) throw std::invalid_argument("train: an output buffer (in-place forward) is only accepted for act ops");
      y = f32_arg(env, info[2], "out");
      if (y.ElementLength() != ny) throw std::invalid_argument("train: out has " + std::to_string(y.ElementLength()) + " elements, expected " + std::to_string(ny));
    } else {
      y = Napi::Float32Array::New(env, ny);
    }
    Napi::Object out = Napi::Object::New(env);
    uint8_t* codes = nullptr;
    if (op.kind == Kind::act && op.bits > 0) {
      Napi::Uint8Array c = Napi::Uint8Array::New(env, swinq::fewbit_packed_bytes(ny, op.bits));
      codes = c.Data();
      out.Set("codes", c);
    }
    out.Set("y", y);
    if (async) {
      float* yp = y.Data();
      auto* w = new TrainWorker(env, [op, in, n, yp, codes] { forward(op, in, n, yp, codes, pool(g_threads)); },
                                [ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out))](Napi::Env) { return ref->Value(); },
                                {info[1], out});
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    }
    std::lock_guard<std::mutex> lock(g_run_mu);
    forward(op, in, n, y.Data(), codes, pool(g_threads));
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// backward's inputs[i] (null where the rule reads only sizes) and sizes[i] into s.in / s.in_n.
void read_saved_inputs(Napi::Env env, Napi::Array arr, Napi::Array sizes, Saved& s) {
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    Napi::Value sz = sizes.Get(i);
    SWINQ_CHECK_ARG(env, sz.IsNumber(), "train: sizes must be numbers");
    const size_t n = (size_t)sz.As<Napi::Number>().Int64Value();
    if (v.IsNull() || v.IsUndefined()) {
      s.in.push_back(nullptr);
    } else {
      Napi::Float32Array a = f32_arg(env, v, "inputs[" + std::to_string(i) + "]");
      SWINQ_CHECK_ARG(env, a.ElementLength() == n, "train: inputs[" + std::to_string(i) + "] length differs from sizes");
      s.in.push_back(a.Data());
    }
    s.in_n.push_back(n);
  }
}

// Argument i was passed and is neither null nor undefined.
bool given(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && !info[i].IsNull() && !info[i].IsUndefined(); }

// backward's codes (info[5]) and aux (info[8]), when given, into s.
void read_saved_codes_aux(const Napi::CallbackInfo& info, Saved& s) {
  Napi::Env env = info.Env();
  if (given(info, 5)) {
    SWINQ_CHECK_ARG(env, info[5].IsTypedArray() && info[5].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
                    "train: codes must be a Uint8Array");
    Napi::Uint8Array c = info[5].As<Napi::Uint8Array>();
    s.codes = c.Data();
    s.codes_n = c.ElementLength();
  }
  if (given(info, 8)) {
    Napi::Float32Array a = f32_arg(env, info[8], "aux");
    s.aux = a.Data();
    s.aux_n = a.ElementLength();
  }
}

// The gradient arrays backward writes: into (info[7], act and softmax only) for input 0 when given,
// a new Float32Array where need[i], else null. Fills grads; returns the array handed back to JS.
Napi::Array grad_buffers(const Napi::CallbackInfo& info, const Op& op, const Saved& s, Napi::Array need, std::vector<float*>& grads) {
  Napi::Env env = info.Env();
  const uint32_t n = (uint32_t)s.in_n.size();
  Napi::Array out = Napi::Array::New(env, n);
  const bool has_into = given(info, 7);
  if (has_into) {
    SWINQ_CHECK_ARG(env, op.kind == Kind::act || op.kind == Kind::softmax, "train: a gradient buffer (in-place backward) is only accepted for act and softmax ops");
    SWINQ_CHECK_ARG(env, need.Get(0u).ToBoolean(), "train: into given but need[0] is false");
    Napi::Float32Array g = f32_arg(env, info[7], "into");
    SWINQ_CHECK_ARG(env, g.ElementLength() == s.in_n[0], "train: into has " + std::to_string(g.ElementLength()) + " elements, expected " + std::to_string(s.in_n[0]));
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (has_into && i == 0) {
      Napi::Float32Array g = info[7].As<Napi::Float32Array>();
      grads.push_back(g.Data());
      out.Set(i, g);
    } else if (need.Get(i).ToBoolean()) {
      Napi::Float32Array g = Napi::Float32Array::New(env, s.in_n[i]);
      grads.push_back(g.Data());
      out.Set(i, g);
    } else {
      grads.push_back(nullptr);
      out.Set(i, env.Null());
    }
  }
  return out;
}

// trainBackward(op, inputs[] (null allowed where the rule reads only sizes), inputSizes[], y|null, dy, codes|null, need[], into?, aux?) → grads[]
// aux: layernorm from its output (inputs[0] null, y given): 1/σ per row.
// into (act and softmax only): the array to write dx into; it may be dy itself (elementwise / row-wise
// rules), which frees the trainer from holding dy and dx at once.
Napi::Value BackwardImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  Op op = parse_op(env, info[0]);
  SWINQ_CHECK_ARG(env, info.Length() >= 7 && info[1].IsArray() && info[2].IsArray() && info[6].IsArray(),
                  "train: backward(op, inputs, sizes, y, dy, codes, need)");
  Napi::Array arr = info[1].As<Napi::Array>(), sizes = info[2].As<Napi::Array>(), need = info[6].As<Napi::Array>();
  SWINQ_CHECK_ARG(env, sizes.Length() == arr.Length() && need.Length() == arr.Length(),
                  "train: inputs, sizes and need must have the same length");
  Saved s;
  read_saved_inputs(env, arr, sizes, s);
  size_t ny;
  try {
    ny = output_size(op, s.in_n);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  if (given(info, 3)) {
    Napi::Float32Array y = f32_arg(env, info[3], "y");
    SWINQ_CHECK_ARG(env, y.ElementLength() == ny, "train: y has the wrong length");
    s.out = y.Data();
  }
  Napi::Float32Array dy = f32_arg(env, info[4], "dy");
  SWINQ_CHECK_ARG(env, dy.ElementLength() == ny, "train: dy has " + std::to_string(dy.ElementLength()) + " elements, expected " + std::to_string(ny));
  read_saved_codes_aux(info, s);
  std::vector<float*> grads;
  Napi::Array out = grad_buffers(info, op, s, need, grads);
  if (async) {
    const float* dyp = dy.Data();
    auto* w = new TrainWorker(env, [op, s, dyp, grads] { backward(op, s, dyp, grads, pool(g_threads)); },
                              [ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(out.As<Napi::Object>()))](Napi::Env) { return ref->Value(); },
                              {info[1], info[3], info[4], info[5], info[8], out});
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }
  try {
    std::lock_guard<std::mutex> lock(g_run_mu);
    backward(op, s, dy.Data(), grads, pool(g_threads));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return out;
}

// trainReads(op, need[], fromOutput?) → { inputs: boolean[], output, codes, aux }: what the op's backward
// rule reads for the gradients asked for (train::reads, the rule's own statement).
Napi::Value Reads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Op op = parse_op(env, info[0]);
  SWINQ_CHECK_ARG(env, info.Length() >= 2 && info[1].IsArray(), "train: reads(op, need[], fromOutput?)");
  Napi::Array need = info[1].As<Napi::Array>();
  std::vector<bool> nd;
  for (uint32_t i = 0; i < need.Length(); ++i) nd.push_back(need.Get(i).ToBoolean());
  const bool from_output = info.Length() > 2 && info[2].ToBoolean();
  swinq::train::Reads r;
  try {
    r = reads(op, nd, from_output);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Array ins = Napi::Array::New(env, r.in.size());
  for (uint32_t i = 0; i < r.in.size(); ++i) ins.Set(i, Napi::Boolean::New(env, r.in[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("inputs", ins);
  out.Set("output", r.out);
  out.Set("codes", r.codes);
  out.Set("aux", r.aux);
  return out;
}

// trainLayerNormRstd(op, x) → Float32Array: 1/σ per row (train::layernorm_rstd), for backward from the output.
Napi::Value LayerNormRstd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Op op = parse_op(env, info[0]);
  Napi::Float32Array x = f32_arg(env, info[1], "x");
  try {
    if (op.kind != Kind::layernorm) throw std::invalid_argument(std::string("train: layernorm 1/σ asked of a ") + kind_name(op.kind) + " op");
    Napi::Float32Array r = Napi::Float32Array::New(env, x.ElementLength() / (size_t)op.D);
    layernorm_rstd(op, x.Data(), x.ElementLength(), r.Data());
    return r;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value Forward(const Napi::CallbackInfo& info) { return ForwardImpl(info, false); }
Napi::Value ForwardAsync(const Napi::CallbackInfo& info) { return ForwardImpl(info, true); }
Napi::Value Backward(const Napi::CallbackInfo& info) { return BackwardImpl(info, false); }
Napi::Value BackwardAsync(const Napi::CallbackInfo& info) { return BackwardImpl(info, true); }

// trainLoss('ce'|'kl', logits, target (Int32Array labels | Float32Array teacher logits), classes, param) → { loss, grad }
Napi::Value Loss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SWINQ_CHECK_ARG(env, info.Length() >= 5 && info[0].IsString() && info[3].IsNumber() && info[4].IsNumber(),
                  "train: loss(kind, logits, target, classes, param)");
  const std::string kind = info[0].As<Napi::String>();
  Napi::Float32Array x = f32_arg(env, info[1], "logits");
  const int64_t C = info[3].As<Napi::Number>().Int64Value();
  SWINQ_CHECK_ARG(env, C > 0 && x.ElementLength() % C == 0, "train: logits length must be a multiple of classes");
  const int64_t B = (int64_t)x.ElementLength() / C;
  const double p = info[4].As<Napi::Number>().DoubleValue();
  Napi::Float32Array g = Napi::Float32Array::New(env, x.ElementLength());
  double loss;
  try {
    if (kind == "ce") {
      SWINQ_CHECK_ARG(env, info[2].IsTypedArray() && info[2].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array,
                      "train: labels must be an Int32Array");
      Napi::Int32Array lab = info[2].As<Napi::Int32Array>();
      SWINQ_CHECK_ARG(env, (int64_t)lab.ElementLength() == B, "train: labels must have one entry per logits row");
      loss = cross_entropy(x.Data(), lab.Data(), B, C, (float)p, g.Data());
    } else if (kind == "kl") {
      Napi::Float32Array t = f32_arg(env, info[2], "teacher logits");
      SWINQ_CHECK_ARG(env, t.ElementLength() == x.ElementLength(), "train: teacher logits must match the logits' length");
      loss = kl_div(x.Data(), t.Data(), B, C, (float)p, g.Data());
    } else {
      throw Napi::TypeError::New(env, "train: loss kind must be 'ce' or 'kl', got '" + kind + "'");
    }
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", loss);
  out.Set("grad", g);
  return out;
}

// trainAdamw(p, g, m, v, step, { lr, beta1, beta2, eps, weightDecay })
Napi::Value Adamw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SWINQ_CHECK_ARG(env, info.Length() >= 6 && info[4].IsNumber() && info[5].IsObject(), "train: adamw(p, g, m, v, step, opts)");
  Napi::Float32Array p = f32_arg(env, info[0], "param"), g = f32_arg(env, info[1], "grad"), m = f32_arg(env, info[2], "m"),
                     v = f32_arg(env, info[3], "v");
  const size_t n = p.ElementLength();
  SWINQ_CHECK_ARG(env, g.ElementLength() == n && m.ElementLength() == n && v.ElementLength() == n,
                  "train: adamw param, grad, m and v must have the same length");
  Napi::Object o = info[5].As<Napi::Object>();
  AdamW a;
  a.lr = (float)num(o, "lr", a.lr);
  a.beta1 = (float)num(o, "beta1", a.beta1);
  a.beta2 = (float)num(o, "beta2", a.beta2);
  a.eps = (float)num(o, "eps", a.eps);
  a.weight_decay = (float)num(o, "weightDecay", a.weight_decay);
  try {
    adamw_step(a, info[4].As<Napi::Number>().Int64Value(), p.Data(), g.Data(), m.Data(), v.Data(), n);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

Napi::Value Lr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int i = 0; i < 5; ++i) SWINQ_CHECK_ARG(env, info.Length() > (size_t)i && info[i].IsNumber(), "train: lr(step, total, warmup, base, min) takes numbers");
  return Napi::Number::New(env, lr_at(info[0].As<Napi::Number>().Int64Value(), info[1].As<Napi::Number>().Int64Value(),
                                      info[2].As<Napi::Number>().Int64Value(), info[3].As<Napi::Number>().DoubleValue(),
                                      info[4].As<Napi::Number>().DoubleValue()));
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Float32Array g = f32_arg(info.Env(), info[0], "grad");
  return Napi::Number::New(info.Env(), sum_squares(g.Data(), g.ElementLength()));
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Float32Array g = f32_arg(info.Env(), info[0], "grad");
  SWINQ_CHECK_ARG(info.Env(), info.Length() > 1 && info[1].IsNumber(), "train: scale factor must be a number");
  scale(g.Data(), g.ElementLength(), info[1].As<Napi::Number>().FloatValue());
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  SWINQ_CHECK_ARG(info.Env(), info.Length() > 0 && info[0].IsNumber(), "train: threads must be a number");
  const int t = info[0].As<Napi::Number>().Int32Value();
  SWINQ_CHECK_ARG(info.Env(), t >= 1 && t <= 256, "train: threads must be 1..256");
  g_threads = t;
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("trainForward", Napi::Function::New(env, Forward));
  exports.Set("trainBackward", Napi::Function::New(env, Backward));
  exports.Set("trainForwardAsync", Napi::Function::New(env, ForwardAsync));
  exports.Set("trainBackwardAsync", Napi::Function::New(env, BackwardAsync));
  exports.Set("trainReads", Napi::Function::New(env, Reads));
  exports.Set("trainLayerNormRstd", Napi::Function::New(env, LayerNormRstd));
  exports.Set("trainLoss", Napi::Function::New(env, Loss));
  exports.Set("trainAdamw", Napi::Function::New(env, Adamw));
  exports.Set("trainLr", Napi::Function::New(env, Lr));
  exports.Set("trainSumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("trainScale", Napi::Function::New(env, Scale));
  exports.Set("trainSetThreads", Napi::Function::New(env, SetThreads));
}

}  // namespace
SWINQ_BINDING_EXPORTS(Init);
}  // namespace swinq_binding
