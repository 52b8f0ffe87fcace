// Addon entry: CPU facts and kernel-set switch; other binding files register themselves.
#include "registry.h"
#include "swinq/cpu.h"
#include "swinq/plan.h"

namespace swinq_binding {

std::vector<ExportFn>& export_fns() {
  static std::vector<ExportFn> fns;
  return fns;
}

static Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  const swinq::CpuFeatures& f = swinq::cpu_features();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("os_ymm", f.os_ymm);
  o.Set("os_zmm", f.os_zmm);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("avx512vl", f.avx512vl);
  o.Set("avx512vnni", f.avx512vnni);
  o.Set("avx512vbmi", f.avx512vbmi);
  o.Set("avxvnni", f.avxvnni);
  return o;
}

static Napi::Value IsaUnavailableReason(const Napi::CallbackInfo& info) {
  SWINQ_CHECK_ARG(info.Env(), info.Length() == 1 && info[0].IsString(), "isaUnavailableReason(isa): isa must be a string");
  return Napi::String::New(info.Env(), swinq::isa_unavailable_reason(info[0].As<Napi::String>()));
}

static Napi::Value ActiveIsa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), swinq::isa_name(swinq::active_isa()));
}

static void SetIsa(const Napi::CallbackInfo& info) {
  SWINQ_CHECK_ARG(info.Env(), info.Length() == 1 && info[0].IsString(), "setIsa(isa): isa must be 'scalar', 'avx2', 'avx512vnni' or 'auto'");
  swinq::Isa isa;
  std::string s = info[0].As<Napi::String>();
  SWINQ_CHECK_ARG(info.Env(), swinq::parse_isa(s, &isa), "setIsa: unknown isa '" + s + "' (expected scalar, avx2, avx512vnni or auto)");
  try {
    swinq::set_isa(isa);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("setIsa: ") + e.what());
  }
}

static Napi::Value OpNames(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  for (int i = 0; i < (int)swinq::OpKind::count_; ++i) a.Set(i, swinq::op_name((swinq::OpKind)i));
  return a;
}

}  // namespace swinq_binding

static Napi::Object InitSwinq(Napi::Env env, Napi::Object exports) {
  using namespace swinq_binding;
  env.SetInstanceData(new InstanceData());  // deleted by Node when this environment goes away
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("activeIsa", Napi::Function::New(env, ActiveIsa));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("isaUnavailableReason", Napi::Function::New(env, IsaUnavailableReason));
  exports.Set("opNames", Napi::Function::New(env, OpNames));
  for (ExportFn fn : export_fns()) fn(env, exports);
  return exports;
}

NODE_API_MODULE(swinq, InitSwinq)
