// Bindings of the core's kernel benchmarks (swinq/bench.h): argument conversion only.
//   measurePeaks() -> [{name, sequence, available, reason, gops}]
//   peakInt8(isa?) / peakF32(isa?) -> {name, sequence, available, reason, gops} of that kernel set
//   qMeasureClockGHz() -> GHz (dependent-add chain)
//   qBenchGemm(M, K, N, {threads, reps, out: 's32'|'u8', path: 0|1|2, isa, spawn}) -> {minMs, medianMs, gops, maddubsSafe}
//   benchGemmF32(M, K, N, iters, threads) -> mean seconds per call of a one-op linear plan
//   qBenchSoftmax(rows, D, reps, isa?) / qBenchLayerNorm(rows, D, reps, isa?) -> {minMs, medianMs}
//   qBenchAdd(n, reps, isa?, type?: 's8'|'s16') -> {minMs, medianMs}
//   qBenchSparseGemm(M, K, N, density, {reps, aMax, channels, isa, seed}) -> {dense, sparse, auto, density, autoSparse, breakEven}
#include <stdexcept>
#include <string>

#include "args.h"
#include "registry.h"
#include "swinq/bench.h"

namespace swinq_binding {
namespace {

using swinq::Isa;
namespace bench = swinq::bench;

swinq::q::QType type_or(Napi::Env env, Napi::Value v, const std::string& what, swinq::q::QType dflt) {
  return v.IsUndefined() ? dflt : qtype_arg(env, v, what);
}

Napi::Object timing(Napi::Env env, bench::Timing t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("minMs", t.min_ms);
  o.Set("medianMs", t.median_ms);
  return o;
}

Napi::Object peak(Napi::Env env, const bench::Peak& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", p.name);
  o.Set("sequence", p.sequence);
  o.Set("available", p.available);
  if (!p.reason.empty()) o.Set("reason", p.reason);
  o.Set("gops", p.gops);
  return o;
}

Napi::Value MeasurePeaks(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "measurePeaks", [&]() -> Napi::Value {
    Napi::Array a = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (const bench::Peak& p : bench::measure_peaks()) a.Set(i++, peak(info.Env(), p));
    return a;
  });
}

Napi::Value PeakInt8(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "peakInt8", [&]() -> Napi::Value {
    return peak(info.Env(), bench::peak_int8(isa_arg(info.Env(), info[0], "peakInt8: isa")));
  });
}

Napi::Value PeakF32(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "peakF32", [&]() -> Napi::Value {
    return peak(info.Env(), bench::peak_f32(isa_arg(info.Env(), info[0], "peakF32: isa")));
  });
}

Napi::Value ClockGHz(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), bench::clock_ghz()); }

Napi::Value BenchGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qBenchGemm", [&]() -> Napi::Value {
    const int64_t M = int_arg(env, info[0], "qBenchGemm: M", 1, 1 << 20), K = int_arg(env, info[1], "qBenchGemm: K", 1, 65536),
                  N = int_arg(env, info[2], "qBenchGemm: N", 1, 1 << 16);
    Napi::Object o = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
    bench::GemmOptions go;
    if (!o.Get("threads").IsUndefined()) go.threads = (int)int_arg(env, o.Get("threads"), "qBenchGemm: threads", 1, 256);
    if (!o.Get("reps").IsUndefined()) go.reps = (int)int_arg(env, o.Get("reps"), "qBenchGemm: reps", 1, 10000);
    go.out = type_or(env, o.Get("out"), "qBenchGemm: out", swinq::q::QType::s32);
    SWINQ_CHECK_ARG(env, go.out == swinq::q::QType::s32 || go.out == swinq::q::QType::u8, "qBenchGemm: out must be 's32' or 'u8'");
    if (!o.Get("path").IsUndefined()) go.path = (int32_t)int_arg(env, o.Get("path"), "qBenchGemm: path", 0, 2);
    go.spawn = o.Get("spawn").ToBoolean();
    go.isa = isa_arg(env, o.Get("isa"), "qBenchGemm: isa");
    const bench::GemmResult r = bench::gemm_u8s8(M, K, N, go);
    Napi::Object res = timing(env, r.t);
    res.Set("gops", r.gops);
    res.Set("maddubsSafe", r.maddubs_safe);
    return res;
  });
}

Napi::Value BenchGemmF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "benchGemmF32", [&]() -> Napi::Value {
    SWINQ_CHECK_ARG(env, info.Length() == 5, "benchGemmF32(M, K, N, iters, threads): 5 integers (threads 0 = all cores)");
    const int64_t M = int_arg(env, info[0], "benchGemmF32: M", 1, 1 << 16), K = int_arg(env, info[1], "benchGemmF32: K", 1, 1 << 16),
                  N = int_arg(env, info[2], "benchGemmF32: N", 1, 1 << 16), iters = int_arg(env, info[3], "benchGemmF32: iters", 1, 1 << 16);
    const int threads = (int)int_arg(env, info[4], "benchGemmF32: threads", 0, 64);
    return Napi::Number::New(env, bench::gemm_f32_seconds(M, K, N, iters, threads));
  });
}

Napi::Value BenchSoftmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qBenchSoftmax", [&]() -> Napi::Value {
    return timing(env, bench::softmax_u8(int_arg(env, info[0], "qBenchSoftmax: rows", 1, 1 << 24),
                                         int_arg(env, info[1], "qBenchSoftmax: D", 1, 1 << 16),
                                         (int)int_arg(env, info[2], "qBenchSoftmax: reps", 1, 10000), isa_arg(env, info[3], "qBenchSoftmax: isa")));
  });
}

Napi::Value BenchLayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qBenchLayerNorm", [&]() -> Napi::Value {
    return timing(env, bench::layernorm_s16(int_arg(env, info[0], "qBenchLayerNorm: rows", 1, 1 << 24),
                                            int_arg(env, info[1], "qBenchLayerNorm: D", 1, 32768),
                                            (int)int_arg(env, info[2], "qBenchLayerNorm: reps", 1, 10000),
                                            isa_arg(env, info[3], "qBenchLayerNorm: isa")));
  });
}

Napi::Value BenchAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qBenchAdd", [&]() -> Napi::Value {
    return timing(env, bench::add_q(int_arg(env, info[0], "qBenchAdd: n", 1, 1 << 28),
                                    (int)int_arg(env, info[1], "qBenchAdd: reps", 1, 10000), isa_arg(env, info[2], "qBenchAdd: isa"),
                                    type_or(env, info[3], "qBenchAdd: type", swinq::q::QType::s16)));
  });
}

// qBenchSparseGemm(M, K, N, density, {reps, aMax, channels, isa, seed}) ->
//   {dense, sparse, auto: {minMs, medianMs}, density, autoSparse, breakEven}
Napi::Value BenchSparseGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "qBenchSparseGemm", [&]() -> Napi::Value {
    const int64_t M = int_arg(env, info[0], "qBenchSparseGemm: M", 1, 1 << 20),
                  K = int_arg(env, info[1], "qBenchSparseGemm: K", 1, 65536),
                  N = int_arg(env, info[2], "qBenchSparseGemm: N", 1, 1 << 16);
    const double density = number_arg(env, info[3], "qBenchSparseGemm: density");
    SWINQ_CHECK_ARG(env, density >= 0 && density <= 1, "qBenchSparseGemm: density must be in [0, 1]");
    Napi::Object o = info[4].IsObject() ? info[4].As<Napi::Object>() : Napi::Object::New(env);
    bench::SparseGemmOptions so;
    if (!o.Get("reps").IsUndefined()) so.reps = (int)int_arg(env, o.Get("reps"), "qBenchSparseGemm: reps", 1, 10000);
    if (!o.Get("aMax").IsUndefined()) so.a_max = (int32_t)int_arg(env, o.Get("aMax"), "qBenchSparseGemm: aMax", 1, 255);
    if (!o.Get("seed").IsUndefined()) so.seed = (uint32_t)int_arg(env, o.Get("seed"), "qBenchSparseGemm: seed", 0, 0xffffffffLL);
    so.channels = o.Get("channels").ToBoolean();
    so.isa = isa_arg(env, o.Get("isa"), "qBenchSparseGemm: isa");
    const bench::SparseGemmResult r = bench::gemm_u8s8_sparse(M, K, N, density, so);
    Napi::Object res = Napi::Object::New(env);
    res.Set("dense", timing(env, r.dense));
    res.Set("sparse", timing(env, r.sparse));
    res.Set("auto", timing(env, r.automatic));
    res.Set("density", r.density);
    res.Set("autoSparse", r.auto_sparse);
    res.Set("breakEven", r.break_even);
    return res;
  });
}

void register_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("qBenchSparseGemm", Napi::Function::New(env, BenchSparseGemm));
  exports.Set("measurePeaks", Napi::Function::New(env, MeasurePeaks));
  exports.Set("peakInt8", Napi::Function::New(env, PeakInt8));
  exports.Set("peakF32", Napi::Function::New(env, PeakF32));
  exports.Set("qMeasureClockGHz", Napi::Function::New(env, ClockGHz));
  exports.Set("qBenchGemm", Napi::Function::New(env, BenchGemm));
  exports.Set("benchGemmF32", Napi::Function::New(env, BenchGemmF32));
  exports.Set("qBenchSoftmax", Napi::Function::New(env, BenchSoftmax));
  exports.Set("qBenchLayerNorm", Napi::Function::New(env, BenchLayerNorm));
  exports.Set("qBenchAdd", Napi::Function::New(env, BenchAdd));
}

}  // namespace
SWINQ_BINDING_EXPORTS(register_bench);
}  // namespace swinq_binding
