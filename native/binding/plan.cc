// createPlan(desc, {threads, profile, sparseA}) → NativePlan (src/native.ts). Converts and checks every JS
// value (TypeError naming the field), then hands a PlanDesc to swinq::Plan::create, which
// validates the sizes. runAsync runs on a libuv worker with the JS views pinned by references.
#include <cmath>
#include <memory>
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

// A view's bytes; the caller keeps a reference to the view while they are used.
struct View {
  void* data;
  size_t bytes;
};
View view_of(Napi::Env env, Napi::Value v, const std::string& field) {
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
    return {base ? base + t.ByteOffset() : nullptr, t.ByteLength()};
  }
  if (v.IsDataView()) {
    Napi::DataView t = v.As<Napi::DataView>();
    uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
    return {base ? base + t.ByteOffset() : nullptr, t.ByteLength()};
  }
  type_error(env, field + " must be an ArrayBufferView (typed array or DataView)");
}

struct Holder {
  std::shared_ptr<Plan> plan;
};

class PlanWrap : public Napi::ObjectWrap<PlanWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativePlan",
                       {InstanceMethod("run", &PlanWrap::Run), InstanceMethod("runAsync", &PlanWrap::RunAsync),
                        InstanceMethod("profile", &PlanWrap::Profile), InstanceMethod("setThreads", &PlanWrap::SetThreads),
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

  // Reads the (inputs, outputs) arrays of views.
  void views(const Napi::CallbackInfo& info, const char* method, std::vector<swinq::ConstBuffer>* in,
             std::vector<swinq::MutBuffer>* out, std::vector<Napi::Value>* keep) {
    Napi::Env env = info.Env();
    if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsArray())
      throw Napi::TypeError::New(env, std::string(method) + "(inputs, outputs): both must be arrays of typed arrays");
    Napi::Array ia = info[0].As<Napi::Array>(), oa = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < ia.Length(); ++i) {
      Napi::Value v = ia.Get(i);
      View w = view_of(env, v, std::string(method) + ": inputs[" + std::to_string(i) + "]");
      in->push_back({w.data, w.bytes});
      if (keep) keep->push_back(v);
    }
    for (uint32_t i = 0; i < oa.Length(); ++i) {
      Napi::Value v = oa.Get(i);
      View w = view_of(env, v, std::string(method) + ": outputs[" + std::to_string(i) + "]");
      out->push_back({w.data, w.bytes});
      if (keep) keep->push_back(v);
    }
  }

  void Run(const Napi::CallbackInfo& info) {
    auto plan = live(info.Env(), "run");
    std::vector<swinq::ConstBuffer> in;
    std::vector<swinq::MutBuffer> out;
    views(info, "run", &in, &out, nullptr);
    try {
      plan->run(in, out);
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

  class RunWorker : public Napi::AsyncWorker {
   public:
    RunWorker(Napi::Env env, std::shared_ptr<Plan> plan, std::vector<swinq::ConstBuffer> in,
              std::vector<swinq::MutBuffer> out, const std::vector<Napi::Value>& keep)
        : Napi::AsyncWorker(env, "swinq.runAsync"), deferred_(Napi::Promise::Deferred::New(env)),
          plan_(std::move(plan)), in_(std::move(in)), out_(std::move(out)) {
      for (const Napi::Value& v : keep) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override {
      try {
        plan_->run(in_, out_);
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override { deferred_.Resolve(Env().Undefined()); }
    void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Plan> plan_;  // keeps the plan alive even if release() is called meanwhile
    std::vector<swinq::ConstBuffer> in_;
    std::vector<swinq::MutBuffer> out_;
    std::vector<Napi::ObjectReference> refs_;  // pins the views (and their buffers) until settled
  };

  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto plan = live(env, "runAsync");
    std::vector<swinq::ConstBuffer> in;
    std::vector<swinq::MutBuffer> out;
    std::vector<Napi::Value> keep;
    views(info, "runAsync", &in, &out, &keep);
    auto* w = new RunWorker(env, plan, std::move(in), std::move(out), keep);
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
  auto* ctor = static_cast<Napi::FunctionReference*>(info.Data());
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
    Napi::Value sa = o.Get("sparseA");
    if (!sa.IsUndefined()) {
      if (!sa.IsBoolean()) type_error(env, "createPlan: options.sparseA must be a boolean");
      opt.sparse_a = sa.As<Napi::Boolean>().Value();
    }
  }
  Holder h;
  try {
    h.plan = Plan::create(std::move(desc), opt);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return ctor->New({Napi::External<Holder>::New(env, &h)});
}

void RegisterPlan(Napi::Env env, Napi::Object exports) {
  // The constructor lives as long as the addon's environment (one small leak per env).
  auto* ctor = new Napi::FunctionReference(Napi::Persistent(PlanWrap::define(env)));
  exports.Set("createPlan", Napi::Function::New(env, CreatePlan, "createPlan", ctor));
}

}  // namespace

SWINQ_BINDING_EXPORTS(RegisterPlan);

}  // namespace swinq_binding
