// Few-bit backward binding: tables, forward (y + packed codes), backward (grad * level[code]).
// Argument shapes are checked here; the TypeScript layer (src/fewbit.ts) gives friendlier errors.
#include <cmath>
#include <stdexcept>
#include <string>

#include "registry.h"
#include "swinq/fewbit.h"

namespace swinq_binding {
namespace {

using swinq::FewbitOptions;
using swinq::FewbitWeight;

std::vector<double> to_doubles(Napi::Env env, Napi::Value v, const std::string& what) {
  std::vector<double> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array a = v.As<Napi::Float64Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  SWINQ_CHECK_ARG(env, v.IsArray(), what + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    SWINQ_CHECK_ARG(env, e.IsNumber(), what + "[" + std::to_string(i) + "] must be a number");
    out.push_back(e.As<Napi::Number>().DoubleValue());
  }
  return out;
}

// opts: { lo?, hi?, weight?: 'uniform'|'normal'|'histogram', edges?, counts?, grid?, polish?, fold?, p0?, p1? }
FewbitOptions parse_options(Napi::Env env, Napi::Value v) {
  FewbitOptions o;
  if (v.IsUndefined() || v.IsNull()) return o;
  SWINQ_CHECK_ARG(env, v.IsObject(), "fewbit: options must be an object");
  Napi::Object obj = v.As<Napi::Object>();
  auto num = [&](const char* k, double* dst) {
    Napi::Value e = obj.Get(k);
    if (e.IsUndefined()) return;
    SWINQ_CHECK_ARG(env, e.IsNumber(), std::string("fewbit: options.") + k + " must be a number");
    *dst = e.As<Napi::Number>().DoubleValue();
  };
  num("lo", &o.lo);
  num("hi", &o.hi);
  num("p0", &o.p0);
  num("p1", &o.p1);
  double grid = 0;
  num("grid", &grid);
  SWINQ_CHECK_ARG(env, grid >= 0 && grid <= 16384 && grid == std::floor(grid), "fewbit: options.grid must be an integer 0..16384");
  o.grid = (int)grid;
  Napi::Value pol = obj.Get("polish");
  if (!pol.IsUndefined()) {
    SWINQ_CHECK_ARG(env, pol.IsBoolean(), "fewbit: options.polish must be a boolean");
    o.polish = pol.As<Napi::Boolean>();
  }
  Napi::Value fold = obj.Get("fold");
  if (!fold.IsUndefined()) {
    SWINQ_CHECK_ARG(env, fold.IsBoolean(), "fewbit: options.fold must be a boolean");
    o.fold = fold.As<Napi::Boolean>();
  }
  Napi::Value w = obj.Get("weight");
  if (!w.IsUndefined()) {
    SWINQ_CHECK_ARG(env, w.IsString(), "fewbit: options.weight must be 'uniform', 'normal' or 'histogram'");
    const std::string s = w.As<Napi::String>();
    if (s == "uniform") o.weight = FewbitWeight::uniform;
    else if (s == "normal") o.weight = FewbitWeight::normal;
    else if (s == "histogram") o.weight = FewbitWeight::histogram;
    else SWINQ_CHECK_ARG(env, false, "fewbit: options.weight must be 'uniform', 'normal' or 'histogram', got '" + s + "'");
  }
  if (o.weight == FewbitWeight::histogram) {
    o.hist_edges = to_doubles(env, obj.Get("edges"), "fewbit: options.edges");
    o.hist_counts = to_doubles(env, obj.Get("counts"), "fewbit: options.counts");
  }
  return o;
}

std::string str_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  SWINQ_CHECK_ARG(info.Env(), info.Length() > i && info[i].IsString(), std::string("fewbit: ") + what + " must be a string");
  return info[i].As<Napi::String>();
}
int bits_arg(const Napi::CallbackInfo& info, size_t i) {
  SWINQ_CHECK_ARG(info.Env(), info.Length() > i && info[i].IsNumber(), "fewbit: bits must be a number");
  const double b = info[i].As<Napi::Number>().DoubleValue();
  SWINQ_CHECK_ARG(info.Env(), b >= 1 && b <= 4 && b == std::floor(b), "fewbit: bits must be 1, 2, 3 or 4");
  return (int)b;
}
Napi::Float32Array f32_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  SWINQ_CHECK_ARG(info.Env(),
                  info.Length() > i && info[i].IsTypedArray() &&
                      info[i].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
                  std::string("fewbit: ") + what + " must be a Float32Array");
  return info[i].As<Napi::Float32Array>();
}
Napi::Uint8Array u8_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  SWINQ_CHECK_ARG(info.Env(),
                  info.Length() > i && info[i].IsTypedArray() &&
                      info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
                  std::string("fewbit: ") + what + " must be a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("fewbit: ") + e.what());
  }
}

Napi::Float64Array f64_array(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
  return a;
}

Napi::Value Functions(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const std::string& n : swinq::fewbit_function_names()) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("name", n);
    o.Set("exact", swinq::fewbit_is_exact(n));
    a.Set(i++, o);
  }
  return a;
}

// fewbitTable(fn, bits, opts) -> { fn, bits, lo, hi, weight, exact, grid, borders, steps, levels, error }
Napi::Value Table(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = str_arg(info, 0, "fn");
  const int bits = bits_arg(info, 1);
  const FewbitOptions o = parse_options(env, info[2]);
  auto t = guarded(env, [&] { return swinq::fewbit_table(fn, bits, o); });
  Napi::Object r = Napi::Object::New(env);
  r.Set("fn", t->fn);
  r.Set("bits", t->bits);
  r.Set("lo", t->lo);
  r.Set("hi", t->hi);
  r.Set("weight", t->weight == FewbitWeight::uniform ? "uniform" : t->weight == FewbitWeight::normal ? "normal" : "histogram");
  r.Set("exact", t->exact);
  r.Set("fold", t->fold);
  r.Set("grid", t->grid);
  r.Set("borders", f64_array(env, t->borders));
  Napi::Array steps = Napi::Array::New(env, t->steps.size());
  for (size_t i = 0; i < t->steps.size(); ++i) steps.Set((uint32_t)i, (int)t->steps[i]);
  r.Set("steps", steps);
  r.Set("levels", f64_array(env, t->levels));
  r.Set("error", t->error);
  return r;
}

// fewbitObjective(fn, borders, levels, opts) -> J
Napi::Value Objective(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = str_arg(info, 0, "fn");
  const auto borders = to_doubles(env, info[1], "fewbit: borders");
  const auto levels = to_doubles(env, info[2], "fewbit: levels");
  const FewbitOptions o = parse_options(env, info[3]);
  return Napi::Number::New(env, guarded(env, [&] { return swinq::fewbit_objective(fn, borders, levels, o); }));
}

// fewbitFitLevels(fn, borders, opts) -> { levels, error }
Napi::Value FitLevels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = str_arg(info, 0, "fn");
  const auto borders = to_doubles(env, info[1], "fewbit: borders");
  const FewbitOptions o = parse_options(env, info[2]);
  std::vector<double> levels;
  const double j = guarded(env, [&] { return swinq::fewbit_fit_levels(fn, borders, o, &levels); });
  Napi::Object r = Napi::Object::New(env);
  r.Set("levels", f64_array(env, levels));
  r.Set("error", j);
  return r;
}

swinq::FewbitCodec codec_for(Napi::Env env, const std::string& fn, int bits, const FewbitOptions& o) {
  return guarded(env, [&] { return swinq::fewbit_codec(*swinq::fewbit_table(fn, bits, o)); });
}

// fewbitForward(fn, x, bits, opts, withY = true) -> { y?, codes }
Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = str_arg(info, 0, "fn");
  Napi::Float32Array x = f32_arg(info, 1, "x");
  const int bits = bits_arg(info, 2);
  const FewbitOptions o = parse_options(env, info[3]);
  const bool with_y = info.Length() < 5 || !info[4].IsBoolean() || info[4].As<Napi::Boolean>().Value();
  const swinq::FewbitCodec c = codec_for(env, fn, bits, o);
  const size_t n = x.ElementLength();
  Napi::Uint8Array codes = Napi::Uint8Array::New(env, swinq::fewbit_packed_bytes(n, bits));
  guarded(env, [&] { swinq::fewbit_encode(c, x.Data(), n, codes.Data(), codes.ElementLength()); return 0; });
  Napi::Object r = Napi::Object::New(env);
  if (with_y) {
    Napi::Float32Array y = Napi::Float32Array::New(env, n);
    guarded(env, [&] { swinq::fewbit_apply_f32(fn, o, x.Data(), n, y.Data()); return 0; });
    r.Set("y", y);
  }
  r.Set("codes", codes);
  return r;
}

// fewbitBackward(fn, codes, gradOut, bits, opts, gradIn?) -> gradIn
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = str_arg(info, 0, "fn");
  Napi::Uint8Array codes = u8_arg(info, 1, "codes");
  Napi::Float32Array go = f32_arg(info, 2, "gradOut");
  const int bits = bits_arg(info, 3);
  const FewbitOptions o = parse_options(env, info[4]);
  const size_t n = go.ElementLength();
  Napi::Float32Array gi;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    gi = f32_arg(info, 5, "gradIn");
    SWINQ_CHECK_ARG(env, gi.ElementLength() == n,
                    "fewbit: gradIn has " + std::to_string(gi.ElementLength()) + " elements, gradOut " + std::to_string(n));
  } else {
    gi = Napi::Float32Array::New(env, n);
  }
  const swinq::FewbitCodec c = codec_for(env, fn, bits, o);
  guarded(env, [&] { swinq::fewbit_decode_mul(c, codes.Data(), codes.ElementLength(), go.Data(), n, gi.Data()); return 0; });
  return gi;
}

void register_fewbit(Napi::Env env, Napi::Object exports) {
  exports.Set("fewbitFunctions", Napi::Function::New(env, Functions));
  exports.Set("fewbitTable", Napi::Function::New(env, Table));
  exports.Set("fewbitObjective", Napi::Function::New(env, Objective));
  exports.Set("fewbitFitLevels", Napi::Function::New(env, FitLevels));
  exports.Set("fewbitForward", Napi::Function::New(env, Forward));
  exports.Set("fewbitBackward", Napi::Function::New(env, Backward));
}

}  // namespace

SWINQ_BINDING_EXPORTS(register_fewbit);

}  // namespace swinq_binding
