// Kernel benchmarks: generated data, timing loops in C++ (no JS call overhead).
#include "swinq/bench.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "swinq/executor.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace bench {

namespace {
template <typename F>
Timing time_reps(int reps, F f) {
  if (reps < 1) throw std::invalid_argument("bench: reps must be ≥ 1, got " + std::to_string(reps));
  std::vector<double> t;
  f();  // warm-up
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

struct Lcg {
  uint32_t s = 1;
  uint32_t next() { return s = s * 1664525u + 1013904223u; }
};

void check_dims(std::initializer_list<int64_t> dims, const char* who) {
  int64_t total = 1;
  for (int64_t d : dims) {
    if (d < 1) throw std::invalid_argument(std::string(who) + ": sizes must be ≥ 1");
    if (total > ((int64_t)1 << 40) / d) throw std::invalid_argument(std::string(who) + ": problem too large");
    total *= d;
  }
}
}  // namespace

GemmResult gemm_u8s8(int64_t M, int64_t K, int64_t N, const GemmOptions& o) {
  check_dims({M, K, N}, "bench gemm_u8s8");
  if (M * K > ((int64_t)1 << 28) || K * N > ((int64_t)1 << 28) || M * N > ((int64_t)1 << 26))
    throw std::invalid_argument("bench gemm_u8s8: problem too large (A, B ≤ 2^28 bytes, C ≤ 2^26 values)");
  using namespace q;
  std::vector<uint8_t> A((size_t)(M * K));
  std::vector<int8_t> W((size_t)(K * N));
  Lcg g;
  for (auto& v : A) v = (uint8_t)(g.next() >> 24);
  for (auto& v : W) v = (int8_t)((int)(g.next() >> 25) - 64);  // [-64, 63]: provably safe
  PackOptions po;
  po.force_path = o.path;
  PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
  std::vector<int32_t> bias((size_t)N, 7), mult(1), shift(1);
  quantize_multiplier(1.0 / 4096, &mult[0], &shift[0]);
  GemmEpilogue ep;
  ep.bias = bias.data();
  ep.a_zero_point = 3;
  ep.out = o.out;
  ep.rq.mult = mult.data();
  ep.rq.shift = shift.data();
  ep.rq.zero_point = o.out == QType::u8 ? 128 : 0;
  std::vector<int32_t> C((size_t)(M * N));
  // the persistent pool is what an executor uses; spawn = fresh std::threads per call
  ThreadPool pool(o.spawn ? 1 : o.threads);
  GemmResult r;
  r.t = time_reps(o.reps, [&] {
    q::gemm_u8s8(M, A.data(), K, B, ep, C.data(), N, o.threads, o.isa, o.spawn ? nullptr : &pool);
  });
  r.gops = 2.0 * (double)M * (double)K * (double)N / (r.t.min_ms * 1e6);
  r.maddubs_safe = B.maddubs_safe;
  return r;
}

double gemm_f32_seconds(int64_t M, int64_t K, int64_t N, int64_t iters, int threads) {
  check_dims({M, K, N, iters}, "bench gemm_f32");
  if (M * K + K * N + M * N > (int64_t)1 << 28) throw std::invalid_argument("bench gemm_f32: problem too large (> 2^28 floats)");
  if (threads < 0 || threads > 256) throw std::invalid_argument("bench gemm_f32: threads must be in [0, 256]");
  PlanDesc d;
  d.constants.resize((size_t)(K * N * 4));
  float* w = reinterpret_cast<float*>(d.constants.data());
  for (int64_t i = 0; i < K * N; ++i) w[i] = (float)((i * 37) % 17) * 0.01f - 0.08f;
  auto tensor = [](int64_t a, int64_t b, Storage s) {
    TensorDesc t;
    t.rank = 2;
    t.dims[0] = a;
    t.dims[1] = b;
    t.storage = s;
    return t;
  };
  d.tensors = {tensor(M, K, Storage::input), tensor(K, N, Storage::constant), tensor(M, N, Storage::output)};
  OpDesc op;
  op.kind = OpKind::linear;
  op.inputs = {0, 1};
  op.outputs = {2};
  op.ints = {M, K, N, 0};
  d.ops.push_back(op);
  d.inputs = {0};
  d.outputs = {2};
  std::vector<float> x((size_t)(M * K), 0.5f), y((size_t)(M * N));
  auto plan = Plan::create(std::move(d), PlanOptions{threads, false});
  std::vector<ConstBuffer> in{{x.data(), x.size() * 4}};
  std::vector<MutBuffer> out{{y.data(), y.size() * 4}};
  plan->run(in, out);  // warm-up: caches, thread wake-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) plan->run(in, out);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / (double)iters;
}

SparseGemmResult gemm_u8s8_sparse(int64_t M, int64_t K, int64_t N, double density, const SparseGemmOptions& o) {
  check_dims({M, K, N}, "bench gemm_u8s8_sparse");
  if (M * K > ((int64_t)1 << 28) || K * N > ((int64_t)1 << 26) || M * N > ((int64_t)1 << 26))
    throw std::invalid_argument("bench gemm_u8s8_sparse: problem too large");
  if (!(density >= 0 && density <= 1)) throw std::invalid_argument("bench gemm_u8s8_sparse: density must be in [0, 1]");
  if (o.a_max < 1 || o.a_max > 255) throw std::invalid_argument("bench gemm_u8s8_sparse: a_max must be in [1, 255]");
  if (o.reps < 1) throw std::invalid_argument("bench gemm_u8s8_sparse: reps must be ≥ 1");
  using namespace q;
  Lcg g;
  g.s = o.seed;
  auto uniform = [&] { return (double)(g.next() >> 8) / 16777216.0; };
  std::vector<int8_t> W((size_t)(K * N));
  for (auto& v : W) v = (int8_t)((int)(g.next() >> 24) - 128);
  PackOptions po;
  po.kmajor = true;
  po.a_max = o.a_max;
  const PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
  std::vector<double> p((size_t)K, density);
  if (o.channels)
    for (auto& v : p) v = std::min(1.0, 2 * density * uniform());
  std::vector<uint8_t> A((size_t)(M * K));
  int64_t nz = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      const bool on = uniform() < p[(size_t)k];
      A[(size_t)(m * K + k)] = on ? (uint8_t)(1 + g.next() % (uint32_t)o.a_max) : 0;
      nz += on;
    }
  std::vector<int32_t> bias((size_t)N, 11), mult(1), shift(1);
  quantize_multiplier(1.0 / 8192, &mult[0], &shift[0]);
  GemmEpilogue ep;  // fc2 as the Swin lowering runs it: int16 residual-stream output
  ep.bias = bias.data();
  ep.out = QType::s16;
  ep.rq.mult = mult.data();
  ep.rq.shift = shift.data();
  std::vector<int16_t> C((size_t)(M * N));
  SparseGemmResult r;
  r.density = (double)nz / (double)(M * K);
  r.break_even = sparse_max_density(B, o.isa);
  r.auto_sparse = gemm_u8s8_uses_sparse(M, A.data(), K, B, ep, o.isa);
  std::vector<double> t[3];
  auto run = [&](int mode) {
    GemmEpilogue e = ep;
    e.sparse = mode;
    const auto t0 = std::chrono::steady_clock::now();
    q::gemm_u8s8(M, A.data(), K, B, e, C.data(), N, 1, o.isa);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int mode = 0; mode < 3; ++mode) run(mode);  // warm-up
  for (int i = 0; i < o.reps; ++i)
    for (int mode = 0; mode < 3; ++mode) t[mode].push_back(run(mode));
  auto stats = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return Timing{v.front(), v[v.size() / 2]};
  };
  r.automatic = stats(t[0]);
  r.sparse = stats(t[1]);
  r.dense = stats(t[2]);
  return r;
}

Timing softmax_u8(int64_t rows, int64_t D, int reps, Isa isa) {
  check_dims({rows, D}, "bench softmax_u8");
  if (rows * D > (int64_t)1 << 28) throw std::invalid_argument("bench softmax_u8: problem too large");
  std::vector<int32_t> x((size_t)(rows * D)), tab((size_t)(std::min<int64_t>(rows, 64) * D));
  Lcg g;
  for (auto& v : x) v = (int32_t)(g.next() >> 20) - 2048;
  for (auto& v : tab) v = (int32_t)(g.next() >> 24) - 128;
  q::SoftmaxParams p = q::softmax_params(1.0 / 256);
  std::vector<uint8_t> y((size_t)(rows * D));
  const int64_t trows = std::min<int64_t>(rows, 64);
  return time_reps(reps, [&] { q::softmax_u8(x.data(), rows, D, tab.data(), trows, p, y.data(), isa); });
}

Timing layernorm_s16(int64_t rows, int64_t D, int reps, Isa isa) {
  check_dims({rows, D}, "bench layernorm_s16");
  if (rows * D > (int64_t)1 << 28 || D > 32768) throw std::invalid_argument("bench layernorm_s16: problem too large");
  std::vector<int16_t> x((size_t)(rows * D));
  Lcg g;
  for (auto& v : x) v = (int16_t)(g.next() >> 16);
  q::LayerNormParams p = q::layernorm_params((int32_t)D, nullptr, nullptr, 4.0 / 127, 0, q::QType::s8);
  std::vector<int8_t> y((size_t)(rows * D));
  return time_reps(reps, [&] { q::layernorm(q::QType::s16, x.data(), rows, p, y.data(), isa); });
}

Timing add_q(int64_t n, int reps, Isa isa, q::QType t) {
  check_dims({n}, "bench add_q");
  if (n > (int64_t)1 << 28) throw std::invalid_argument("bench add_q: problem too large");
  if (t != q::QType::s8 && t != q::QType::s16) throw std::invalid_argument("bench add_q: type must be s8 or s16");
  std::vector<int16_t> a((size_t)n, 1000), b((size_t)n, -300), y((size_t)n);
  if (t == q::QType::s8) {  // the same buffers read as bytes: values in range for any code
    std::fill(a.begin(), a.end(), (int16_t)0x0303);
    std::fill(b.begin(), b.end(), (int16_t)0x0707);
  }
  q::AddParams p = q::add_params(0.01, 0, 0.02, 0, 0.015, 0, t);
  return time_reps(reps, [&] { q::add_q(t, a.data(), t, b.data(), n, p, t, y.data(), isa); });
}

}  // namespace bench
}  // namespace swinq
