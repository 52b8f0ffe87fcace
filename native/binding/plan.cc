// createPlan(desc, {threads, profile, sparseA, adaptThreads, rowRegions}) → NativePlan (src/native.ts). Converts and checks every JS
// value (TypeError naming the field), then hands a PlanDesc to swinq::Plan::create, which
// validates the sizes. run/runAsync check each typed array's element type and size against the plan;
// runAsync runs on a libuv worker over copies (see RunWorker).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "registry.h"
#include "swinq/executor.h"

namespace swinq_binding {
namespace {

using swinq::Plan;

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

int64_t to_int(Napi::Env env, Napi::Value v, const std::string& field, int64_t min, int64_t max) {
  if (!v.IsNumber()) type_error(env, "createPlan: " + field + " must be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == std::floor(d)) || d < (double)min || d > (double)max) {
    if (min == 0) type_error(env, "createPlan: " + field + " must be a non-negative integer");
    type_error(env, "createPlan: " + field + " must be an integer in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
  }
  return (int64_t)d;
}

constexpr int64_t kSafe = 9007199254740991;  // Number.MAX_SAFE_INTEGER

Napi::Array to_array(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsArray()) type_error(env, "createPlan: " + field + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Value get(Napi::Env env, Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) type_error(env, "createPlan: " + where + "." + key + " is missing");
  return v;
}

std::vector<int32_t> to_ids(Napi::Env env, Napi::Value v, const std::string& field) {
  Napi::Array a = to_array(env, v, field);
  std::vector<int32_t> r(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i)
    r[i] = (int32_t)to_int(env, a.Get(i), field + "[" + std::to_string(i) + "]", -1, INT32_MAX);
  return r;
}

swinq::PlanDesc to_desc(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) type_error(env, "createPlan: desc must be an object");
  Napi::Object o = v.As<Napi::Object>();
  swinq::PlanDesc d;
  Napi::Array tensors = to_array(env, get(env, o, "tensors", "desc"), "tensors");
  d.tensors.resize(tensors.Length());
  for (uint32_t i = 0; i < tensors.Length(); ++i) {
    const std::string w = "tensors[" + std::to_string(i) + "]";
    Napi::Value tv = tensors.Get(i);
    if (!tv.IsObject()) type_error(env, "createPlan: " + w + " must be an object");
    Napi::Object t = tv.As<Napi::Object>();
    swinq::TensorDesc& td = d.tensors[i];
    td.dtype = (swinq::DType)to_int(env, get(env, t, "dtype", w), w + ".dtype", 0, 5);
    Napi::Array dims = to_array(env, get(env, t, "dims", w), w + ".dims");
    if (dims.Length() > (uint32_t)swinq::kMaxRank)
      type_error(env, "createPlan: " + w + ".dims has " + std::to_string(dims.Length()) + " entries, at most 8");
    td.rank = (int32_t)dims.Length();
    for (uint32_t k = 0; k < dims.Length(); ++k)
      td.dims[k] = to_int(env, dims.Get(k), w + ".dims[" + std::to_string(k) + "]", 0, kSafe);
    td.storage = (swinq::Storage)to_int(env, get(env, t, "storage", w), w + ".storage", 0, 3);
    td.offset = to_int(env, get(env, t, "offset", w), w + ".offset", 0, kSafe);
  }
  Napi::Array ops = to_array(env, get(env, o, "ops", "desc"), "ops");
  d.ops.resize(ops.Length());
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    const std::string w = "ops[" + std::to_string(i) + "]";
    Napi::Value ov = ops.Get(i);
    if (!ov.IsObject()) type_error(env, "createPlan: " + w + " must be an object");
    Napi::Object op = ov.As<Napi::Object>();
    swinq::OpDesc& od = d.ops[i];
    od.kind = (swinq::OpKind)to_int(env, get(env, op, "kind", w), w + ".kind", 0, (int64_t)swinq::OpKind::count_ - 1);
    od.inputs = to_ids(env, get(env, op, "inputs", w), w + ".inputs");
    od.outputs = to_ids(env, get(env, op, "outputs", w), w + ".outputs");
    Napi::Array ints = to_array(env, get(env, op, "ints", w), w + ".ints");
    od.ints.resize(ints.Length());
    for (uint32_t k = 0; k < ints.Length(); ++k)
      od.ints[k] = to_int(env, ints.Get(k), w + ".ints[" + std::to_string(k) + "]", -kSafe, kSafe);
    Napi::Value fv = op.Get("floats");
    if (!fv.IsUndefined()) {
      Napi::Array floats = to_array(env, fv, w + ".floats");
      od.floats.resize(floats.Length());
      for (uint32_t k = 0; k < floats.Length(); ++k) {
        Napi::Value f = floats.Get(k);
        if (!f.IsNumber()) type_error(env, "createPlan: " + w + ".floats[" + std::to_string(k) + "] must be a number");
        od.floats[k] = f.As<Napi::Number>().FloatValue();
      }
    }
    Napi::Value nv = op.Get("name");
    if (!nv.IsUndefined()) {
      if (!nv.IsString()) type_error(env, "createPlan: " + w + ".name must be a string");
      od.name = nv.As<Napi::String>().Utf8Value();
    }
  }
  Napi::Value cv = o.Get("constants");
  if (!cv.IsUndefined()) {
    if (!cv.IsTypedArray() || cv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      type_error(env, "createPlan: constants must be a Uint8Array");
    Napi::Uint8Array c = cv.As<Napi::Uint8Array>();
    d.constants.assign(c.Data(), c.Data() + c.ByteLength());
  }
  d.arena_bytes = to_int(env, get(env, o, "arenaBytes", "desc"), "arenaBytes", 0, kSafe);
  d.inputs = to_ids(env, get(env, o, "inputs", "desc"), "inputs");
  d.outputs = to_ids(env, get(env, o, "outputs", "desc"), "outputs");
  return d;
}

// A typed array's bytes and element type; read once, while the caller's JS values are live.
struct View {
  void* data;
  size_t bytes;
  napi_typedarray_type type;
};
View view_of(Napi::Env env, Napi::Value v, const std::string& field) {
  if (!v.IsTypedArray()) type_error(env, field + " must be an ArrayBufferView: a typed array (a DataView has no element type)");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
  return {base ? base + t.ByteOffset() : nullptr, t.ByteLength(), t.TypedArrayType()};
}

// The typed array class that holds a plan dtype (bool tensors are uint8).
napi_typedarray_type array_type_of(swinq::DType t) {
  switch (t) {
    case swinq::DType::f32: return napi_float32_array;
    case swinq::DType::i32: return napi_int32_array;
    case swinq::DType::i8: return napi_int8_array;
    case swinq::DType::u8: return napi_uint8_array;
    case swinq::DType::i16: return napi_int16_array;
    case swinq::DType::i64: return napi_bigint64_array;
  }
  return napi_uint8_array;
}

const char* array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

std::string with_article(const char* name) { return (name[0] == 'I' ? "an " : "a ") + std::string(name); }

// 64-byte aligned scratch owned by one async run: the copied inputs, then the outputs.
struct Scratch {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }
};
using ScratchPtr = std::unique_ptr<uint8_t, Scratch>;
size_t round64(size_t n) { return (n + 63) & ~size_t(63); }

struct Holder {
  std::shared_ptr<Plan> plan;
};

class PlanWrap : public Napi::ObjectWrap<PlanWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativePlan",
                       {InstanceMethod("run", &PlanWrap::Run), InstanceMethod("runAsync", &PlanWrap::RunAsync),
                        InstanceMethod("profile", &PlanWrap::Profile), InstanceMethod("setThreads", &PlanWrap::SetThreads),
                        InstanceMethod("threadChoice", &PlanWrap::ThreadChoice),
                        InstanceMethod("release", &PlanWrap::Release)});
  }
  explicit PlanWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PlanWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "NativePlan cannot be constructed directly; use createPlan()");
    Holder* h = info[0].As<Napi::External<Holder>>().Data();
    plan_ = std::move(h->plan);
  }

 private:
  std::shared_ptr<Plan> live(Napi::Env env, const char* method) {
    if (!plan_) throw Napi::Error::New(env, std::string(method) + ": the plan was released");
    return plan_;
  }

  // Reads the (inputs, outputs) arrays of typed arrays and checks count, element type and byte size
  // against the plan, so a wrong buffer is a TypeError naming its index, never a bad read.
  static void views(const Napi::CallbackInfo& info, const Plan& plan, const char* method, std::vector<View>* in,
                    std::vector<View>* out) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsArray())
      throw Napi::TypeError::New(env, std::string(method) + "(inputs, outputs): both must be arrays of typed arrays");
    Napi::Array ia = info[0].As<Napi::Array>(), oa = info[1].As<Napi::Array>();
    const swinq::PlanDesc& d = plan.desc();
    auto read = [&](Napi::Array a, const std::vector<int32_t>& ids, const char* kind, std::vector<View>* dst) {
      const std::string m = std::string(method) + ": ";
      if (a.Length() != ids.size())
        type_error(env, m + "got " + std::to_string(a.Length()) + " " + kind + "s, the plan has " + std::to_string(ids.size()));
      for (uint32_t i = 0; i < a.Length(); ++i) {
        const std::string n = std::to_string(i);
        View w = view_of(env, a.Get(i), m + kind + "s[" + n + "]");
        const swinq::TensorDesc& t = d.tensors[ids[i]];
        const napi_typedarray_type want = array_type_of(t.dtype);
        if (w.type != want)
          type_error(env, m + kind + " " + n + " is " + with_article(array_name(w.type)) + ", the plan's " +
                              swinq::dtype_name(t.dtype) + " needs " + with_article(array_name(want)));
        if ((int64_t)w.bytes != t.nbytes())
          type_error(env, m + kind + " " + n + " has " + std::to_string(w.bytes) + " bytes, expected " +
                              std::to_string(t.nbytes()) + " (" + swinq::dtype_name(t.dtype) + " × " +
                              std::to_string(t.elements()) + ")");
        if (w.bytes && !w.data) type_error(env, m + kind + " " + n + " has no data (its buffer was detached)");
        dst->push_back(w);
      }
    };
    read(ia, d.inputs, "input", in);
    read(oa, d.outputs, "output", out);
  }

  void Run(const Napi::CallbackInfo& info) {
    auto plan = live(info.Env(), "run");
    std::vector<View> iv, ov;
    views(info, *plan, "run", &iv, &ov);
    // synchronous: no JS runs until we return, so the views cannot be detached or resized meanwhile
    std::vector<swinq::ConstBuffer> in;
    std::vector<swinq::MutBuffer> out;
    for (const View& v : iv) in.push_back({v.data, v.bytes});
    for (const View& v : ov) out.push_back({v.data, v.bytes});
    try {
      plan->run(in, out, swinq::active_isa());
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

  // The run reads a copy of the inputs and writes into its own scratch; the outputs are copied into
  // the caller's arrays on the JS thread once it is done, after checking they are still whole. So a
  // buffer transferred, detached or resized while the run is in flight is never touched from the
  // worker thread (a detached output rejects the promise instead).
  class RunWorker : public Napi::AsyncWorker {
   public:
    RunWorker(Napi::Env env, std::shared_ptr<Plan> plan, const std::vector<View>& iv, const std::vector<View>& ov,
              Napi::Array outputs)
        : Napi::AsyncWorker(env, "swinq.runAsync"), deferred_(Napi::Promise::Deferred::New(env)), plan_(std::move(plan)),
          isa_(swinq::active_isa()) {
      size_t total = 0;
      for (const View& v : iv) total += round64(v.bytes);
      for (const View& v : ov) total += round64(v.bytes);
      scratch_.reset(static_cast<uint8_t*>(::operator new[](std::max<size_t>(total, 64), std::align_val_t(64))));
      uint8_t* p = scratch_.get();
      for (const View& v : iv) {
        if (v.bytes) std::memcpy(p, v.data, v.bytes);
        in_.push_back({p, v.bytes});
        p += round64(v.bytes);
      }
      for (const View& v : ov) {
        out_.push_back({p, v.bytes});
        p += round64(v.bytes);
      }
      outputs_ = Napi::Persistent(outputs);
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override {
      try {
        const auto t0 = std::chrono::steady_clock::now();
        plan_->run(in_, out_, isa_);
        run_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    // Settling runs on the JS thread, which may be a worker_thread being terminated: its environment
    // then refuses every call into JS (node-addon-api throws). Nothing is waiting for the promise
    // any more, so that is dropped rather than let escape (an escaping exception aborts the process).
    void OnOK() override {
      try {
        settle();
      } catch (const Napi::Error&) {
      }
    }
    void OnError(const Napi::Error& e) override {
      try {
        deferred_.Reject(e.Value());
      } catch (const Napi::Error&) {
      }
    }

   private:
    void settle() {
      Napi::Env env = Env();
      Napi::Array outs = outputs_.Value();
      for (uint32_t i = 0; i < out_.size(); ++i) {
        Napi::Value v = outs.Get(i);
        View w{nullptr, 0, napi_uint8_array};
        if (v.IsTypedArray()) {
          Napi::TypedArray t = v.As<Napi::TypedArray>();
          uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
          w = {base ? base + t.ByteOffset() : nullptr, t.ByteLength(), t.TypedArrayType()};
        }
        if (w.bytes != out_[i].bytes || (w.bytes && !w.data)) {
          deferred_.Reject(Napi::Error::New(env, "runAsync: outputs[" + std::to_string(i) +
                                                     "] was detached, transferred or resized during the run").Value());
          return;
        }
        if (w.bytes) std::memcpy(w.data, out_[i].data, w.bytes);
      }
      deferred_.Resolve(Napi::Number::New(env, run_ms_));
    }

    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Plan> plan_;  // keeps the plan alive even if release() is called meanwhile
    swinq::Isa isa_;              // the kernel set in use when the run was asked for
    ScratchPtr scratch_;
    std::vector<swinq::ConstBuffer> in_;
    std::vector<swinq::MutBuffer> out_;
    Napi::Reference<Napi::Array> outputs_;  // the caller's output arrays, filled on settling
    double run_ms_ = 0;                     // the plan's own time on the worker thread
  };

  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto plan = live(env, "runAsync");
    std::vector<View> iv, ov;
    try {
      views(info, *plan, "runAsync", &iv, &ov);
    } catch (const Napi::Error& e) {  // a promise-returning call reports bad arguments by rejecting
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(e.Value());
      return d.Promise();
    }
    auto* w = new RunWorker(env, plan, iv, ov, info[1].As<Napi::Array>());
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value Profile(const Napi::CallbackInfo& info) {
    auto plan = live(info.Env(), "profile");
    Napi::Array a = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (const swinq::OpProfile& p : plan->profile()) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("op", p.op);
      o.Set("name", p.name);
      o.Set("ms", p.ms);
      a.Set(i++, o);
    }
    return a;
  }

  Napi::Value ThreadChoice(const Napi::CallbackInfo& info) {
    auto plan = live(info.Env(), "threadChoice");
    const Plan::ThreadChoiceInfo c = plan->thread_choice();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("adaptive", c.adaptive);
    o.Set("config", c.config);
    o.Set("callerOps", (double)c.serial_ops);
    o.Set("ops", (double)c.ops);
    o.Set("choices", (double)c.choices);
    o.Set("jobs", (double)c.jobs);
    return o;
  }

  void SetThreads(const Napi::CallbackInfo& info) {
    auto plan = live(info.Env(), "setThreads");
    if (info.Length() != 1 || !info[0].IsNumber())
      throw Napi::TypeError::New(info.Env(), "setThreads(n): n must be an integer in [0, 64] (0 = all cores)");
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n == std::floor(n)) || n < 0 || n > 64)
      throw Napi::TypeError::New(info.Env(), "setThreads(n): n must be an integer in [0, 64] (0 = all cores)");
    plan->set_threads((int)n);
  }

  void Release(const Napi::CallbackInfo&) { plan_.reset(); }

  std::shared_ptr<Plan> plan_;
};

Napi::Value CreatePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) type_error(env, "createPlan(desc, options): desc is missing");
  swinq::PlanDesc desc = to_desc(env, info[0]);
  swinq::PlanOptions opt;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) type_error(env, "createPlan: options must be an object");
    Napi::Object o = info[1].As<Napi::Object>();
    Napi::Value t = o.Get("threads");
    if (!t.IsUndefined()) opt.threads = (int)to_int(env, t, "options.threads", 0, 64);
    Napi::Value p = o.Get("profile");
    if (!p.IsUndefined()) {
      if (!p.IsBoolean()) type_error(env, "createPlan: options.profile must be a boolean");
      opt.profile = p.As<Napi::Boolean>().Value();
    }
    auto flag = [&](const char* name, bool* out) {
      Napi::Value v = o.Get(name);
      if (v.IsUndefined()) return;
      if (!v.IsBoolean()) type_error(env, std::string("createPlan: options.") + name + " must be a boolean");
      *out = v.As<Napi::Boolean>().Value();
    };
    flag("sparseA", &opt.sparse_a);
    flag("adaptThreads", &opt.adapt_threads);
    flag("rowRegions", &opt.row_regions);
  }
  Holder h;
  try {
    h.plan = Plan::create(std::move(desc), opt);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return instance(env).plan_ctor.New({Napi::External<Holder>::New(env, &h)});
}

// SWINQ_ISA=scalar|avx2|auto forces a kernel set for the whole process, as setIsa() does; read
// here, once, so the core reads no environment. An unknown or unavailable value is ignored (the
// CPU's best set stays), as before.
void apply_isa_env() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("SWINQ_ISA");
    swinq::Isa isa;
    if (env && swinq::parse_isa(env, &isa) && swinq::isa_unavailable_reason(env).empty()) swinq::set_isa(isa);
  });
}

void RegisterPlan(Napi::Env env, Napi::Object exports) {
  apply_isa_env();
  instance(env).plan_ctor = Napi::Persistent(PlanWrap::define(env));
  exports.Set("createPlan", Napi::Function::New(env, CreatePlan, "createPlan"));
}

}  // namespace

SWINQ_BINDING_EXPORTS(RegisterPlan);

}  // namespace swinq_binding
