// Each binding file registers its exports here at static-initialisation time, so adding a
// binding file touches no other file. Only native/binding/ includes napi.h.
// The addon is context-aware: it is loaded once per Node environment (main thread and each
// worker_thread), so no Napi value lives in a static; per-environment state is InstanceData.
#pragma once
#include <napi.h>

#include <vector>

namespace swinq_binding {

using ExportFn = void (*)(Napi::Env env, Napi::Object exports);
std::vector<ExportFn>& export_fns();

// Per-environment state, created before the export functions run and freed with the environment.
struct InstanceData {
  Napi::FunctionReference plan_ctor;  // NativePlan (plan.cc)
};
inline InstanceData& instance(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

struct Registrar {
  explicit Registrar(ExportFn fn) { export_fns().push_back(fn); }
};

// Throws a JS Error with `message` when `cond` is false.
#define SWINQ_CHECK_ARG(env, cond, message)                        \
  do {                                                              \
    if (!(cond)) throw Napi::TypeError::New((env), (message));      \
  } while (0)

}  // namespace swinq_binding

#define SWINQ_BINDING_EXPORTS(fn) static ::swinq_binding::Registrar swinq_registrar_##fn(fn)
