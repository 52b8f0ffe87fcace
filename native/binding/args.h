// Argument conversion and error wrapping shared by the binding files; every error names the
// argument (`what`) or the entry point (`who`).
#pragma once
#include <cmath>
#include <exception>
#include <string>

#include "registry.h"
#include "swinq/cpu.h"
#include "swinq/qkernels.h"

namespace swinq_binding {

inline double number_arg(Napi::Env env, Napi::Value v, const std::string& what) {
  SWINQ_CHECK_ARG(env, v.IsNumber(), what + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t int_arg(Napi::Env env, Napi::Value v, const std::string& what, int64_t lo, int64_t hi) {
  const double d = number_arg(env, v, what);
  SWINQ_CHECK_ARG(env, d == std::floor(d) && d >= (double)lo && d <= (double)hi,
                  what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return (int64_t)d;
}

// undefined/null → the active kernel set; a name this build or CPU cannot run is an error saying why.
inline swinq::Isa isa_arg(Napi::Env env, Napi::Value v, const std::string& what) {
  if (v.IsUndefined() || v.IsNull()) return swinq::active_isa();
  SWINQ_CHECK_ARG(env, v.IsString(), what + " must be 'scalar', 'avx2', 'avx512vnni' or 'auto'");
  const std::string s = v.As<Napi::String>();
  const std::string why = swinq::isa_unavailable_reason(s);  // unknown, not built, or not on this CPU
  SWINQ_CHECK_ARG(env, why.empty(), what + ": " + why);
  swinq::Isa isa;
  swinq::parse_isa(s, &isa);
  return isa;
}

inline swinq::q::QType qtype_arg(Napi::Env env, Napi::Value v, const std::string& what) {
  using swinq::q::QType;
  SWINQ_CHECK_ARG(env, v.IsString(), what + " must be 's8', 'u8', 's16' or 's32'");
  const std::string s = v.As<Napi::String>();
  if (s == "s8") return QType::s8;
  if (s == "u8") return QType::u8;
  if (s == "s16") return QType::s16;
  if (s == "s32") return QType::s32;
  throw Napi::TypeError::New(env, what + ": unknown type '" + s + "' (expected s8, u8, s16 or s32)");
}

// Runs f; a C++ exception from the core becomes a JS Error prefixed with `who` (Napi errors pass).
template <typename F>
Napi::Value guarded(Napi::Env env, const char* who, F f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(who) + ": " + e.what());
  }
}

}  // namespace swinq_binding
