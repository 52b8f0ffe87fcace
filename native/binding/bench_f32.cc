// benchGemmF32(M, K, N, iters, threads) → mean seconds per call of a one-op linear plan
// (packed weights, the executor's tiling and thread pool; the active kernel set). Runs on the
// calling thread: a benchmark, not an API.
#include <chrono>
#include <cmath>
#include <vector>

#include "registry.h"
#include "swinq/executor.h"

namespace swinq_binding {
namespace {

Napi::Value BenchGemmF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "benchGemmF32(M, K, N, iters, threads): positive integers (threads 0 = all cores)";
  SWINQ_CHECK_ARG(env, info.Length() == 5, usage);
  int64_t v[5];
  for (int i = 0; i < 5; ++i) {
    SWINQ_CHECK_ARG(env, info[i].IsNumber(), usage);
    const double d = info[i].As<Napi::Number>().DoubleValue();
    SWINQ_CHECK_ARG(env, d == std::floor(d) && d >= (i == 4 ? 0 : 1) && d <= (i == 4 ? 64 : 1 << 16), usage);
    v[i] = (int64_t)d;
  }
  const int64_t M = v[0], K = v[1], N = v[2], iters = v[3];
  SWINQ_CHECK_ARG(env, M * K + K * N + M * N <= (int64_t)1 << 28, "benchGemmF32: problem too large (> 2^28 floats)");
  swinq::PlanDesc d;
  d.constants.resize((size_t)(K * N * 4));
  float* w = reinterpret_cast<float*>(d.constants.data());
  for (int64_t i = 0; i < K * N; ++i) w[i] = (float)((i * 37) % 17) * 0.01f - 0.08f;
  auto tensor = [](int64_t a, int64_t b, swinq::Storage s) {
    swinq::TensorDesc t;
    t.rank = 2;
    t.dims[0] = a;
    t.dims[1] = b;
    t.storage = s;
    return t;
  };
  d.tensors = {tensor(M, K, swinq::Storage::input), tensor(K, N, swinq::Storage::constant),
               tensor(M, N, swinq::Storage::output)};
  swinq::OpDesc op;
  op.kind = swinq::OpKind::linear;
  op.inputs = {0, 1};
  op.outputs = {2};
  op.ints = {M, K, N, 0};
  d.ops.push_back(op);
  d.inputs = {0};
  d.outputs = {2};
  std::vector<float> x((size_t)(M * K), 0.5f), y((size_t)(M * N));
  try {
    auto plan = swinq::Plan::create(std::move(d), swinq::PlanOptions{(int)v[4], false});
    std::vector<swinq::ConstBuffer> in{{x.data(), x.size() * 4}};
    std::vector<swinq::MutBuffer> out{{y.data(), y.size() * 4}};
    plan->run(in, out);  // warm-up: caches, thread wake-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) plan->run(in, out);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return Napi::Number::New(env, s / (double)iters);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("benchGemmF32: ") + e.what());
  }
}

void RegisterBenchF32(Napi::Env env, Napi::Object exports) {
  exports.Set("benchGemmF32", Napi::Function::New(env, BenchGemmF32, "benchGemmF32"));
}

}  // namespace

SWINQ_BINDING_EXPORTS(RegisterBenchF32);

}  // namespace swinq_binding
