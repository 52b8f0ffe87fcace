// mlp_u8s8 (fc1 → fc2 per row block): bit-identical to the two unfused gemm_u8s8 calls, scalar and
// AVX2, with and without a pool, block sizes that do and do not divide M, forced sparse / dense /
// auto fc2, hidden codes that saturate at 255 or clamp at 127, negative biases (negative rounding
// in the requant), every fc2 output type; bad arguments throw naming the field.
// `qmlp_test --bench` prints unfused vs fused timings (1 thread) on Swin-T and micro-Swin MLP shapes.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "swinq/qkernels.h"
#include "swinq/threadpool.h"
#include "test_check.h"

using namespace swinq;
using namespace swinq::q;

static std::mt19937_64 rng(4242);
static int64_t rnd(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

struct Mlp {
  int64_t M, K, H, N;
  std::vector<uint8_t> A;
  PackedB B1, B2;
  std::vector<int32_t> bias1, bias2, m1, s1, m2, s2;
  GemmEpilogue ep1, ep2;
};

// fc1 with ReLU (zero point 0) into u8 codes; `shift_bias` lowers the fc1 bias so that about that
// share of the hidden codes stays non-zero; `hmax` 127 or 255: the hidden clamp.
static Mlp make(int64_t M, int64_t K, int64_t H, int64_t N, int32_t bias_lo, int32_t bias_hi, int32_t hmax, QType out,
                double ratio1) {
  Mlp p{M, K, H, N, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  p.A.resize((size_t)(M * K));
  for (auto& v : p.A) v = (uint8_t)rnd(0, 127);
  std::vector<int8_t> W1((size_t)(K * H)), W2((size_t)(H * N));
  for (auto& v : W1) v = (int8_t)rnd(-127, 127);
  for (auto& v : W2) v = (int8_t)rnd(-64, 64);
  PackOptions po1;
  po1.a_max = 127;
  p.B1 = pack_b(W1.data(), (int32_t)K, (int32_t)H, H, false, po1);
  PackOptions po2;
  po2.a_max = hmax;
  po2.kmajor = true;  // the sparse fc2 path
  p.B2 = pack_b(W2.data(), (int32_t)H, (int32_t)N, N, false, po2);
  p.bias1.resize((size_t)H);
  p.bias2.resize((size_t)N);
  for (auto& v : p.bias1) v = (int32_t)rnd(bias_lo, bias_hi);
  for (auto& v : p.bias2) v = (int32_t)rnd(-50000, 50000);
  p.m1.resize((size_t)H), p.s1.resize((size_t)H), p.m2.resize((size_t)N), p.s2.resize((size_t)N);
  for (int64_t h = 0; h < H; ++h) quantize_multiplier(ratio1 * (1 + rnd(0, 99) / 100.0), &p.m1[h], &p.s1[h]);
  for (int64_t n = 0; n < N; ++n) quantize_multiplier(std::ldexp(1.0, -(int)rnd(8, 14)), &p.m2[n], &p.s2[n]);
  p.ep1.bias = p.bias1.data();
  p.ep1.relu = true;
  p.ep1.out = QType::u8;
  p.ep1.rq.mult = p.m1.data(), p.ep1.rq.shift = p.s1.data(), p.ep1.rq.channels = (int32_t)H;
  p.ep1.rq.zero_point = 0, p.ep1.rq.qmin = 0, p.ep1.rq.qmax = hmax;
  p.ep2.bias = p.bias2.data();
  p.ep2.out = out;
  p.ep2.rq.mult = p.m2.data(), p.ep2.rq.shift = p.s2.data(), p.ep2.rq.channels = (int32_t)N;
  p.ep2.rq.zero_point = out == QType::u8 ? 100 : out == QType::s32 ? 0 : -3;
  return p;
}

static std::vector<uint8_t> unfused(const Mlp& p, Isa isa) {
  std::vector<uint8_t> h((size_t)(p.M * p.H)), c((size_t)(p.M * p.N * qtype_size(p.ep2.out)));
  gemm_u8s8(p.M, p.A.data(), p.K, p.B1, p.ep1, h.data(), p.H, 1, isa);
  gemm_u8s8(p.M, h.data(), p.H, p.B2, p.ep2, c.data(), p.N, 1, isa);
  return c;
}

static void test_exact() {
  struct Shape { int64_t M, K, H, N; };
  const Shape shapes[] = {{1, 48, 192, 48}, {5, 20, 40, 33}, {49, 96, 384, 96}, {197, 48, 192, 48}, {64, 44, 72, 24}};
  const QType outs[] = {QType::s16, QType::u8, QType::s32, QType::s8};
  static ThreadPool pool(3);
  int k = 0;
  for (const Shape& sh : shapes)
    for (int mode = 0; mode < 4; ++mode, ++k) {
      // mode 0: dense hidden (≈ half zero), 1: sparse (strongly negative fc1 bias), 2: saturating
      // hidden codes (large fc1 ratio), 3: hidden clamped at 127
      const int32_t lo = mode == 1 ? -400000 : -60000, hi = mode == 1 ? -100000 : 60000;
      const double r1 = mode == 2 ? 0.05 : 0.002;
      Mlp p = make(sh.M, sh.K, sh.H, sh.N, lo, hi, mode == 3 ? 127 : 255, outs[(k + mode) % 4], r1);
      for (int sparse = 0; sparse < 3; ++sparse) {
        p.ep2.sparse = sparse;
        const std::vector<uint8_t> want = unfused(p, Isa::scalar);
        for (Isa isa : {Isa::scalar, Isa::avx2}) {
          if (isa == Isa::avx2 && !cpu_features().avx2) continue;
          CHECK(unfused(p, isa) == want, "unfused %s differs from scalar (M %lld mode %d)", isa_name(isa), (long long)sh.M, mode);
          for (int64_t rb : {0, 4, 7, 64}) {
            std::vector<uint8_t> got(want.size(), 0xCD);
            mlp_u8s8(p.M, p.A.data(), p.K, p.B1, p.ep1, p.B2, p.ep2, got.data(), p.N, rb, isa);
            CHECK(got == want, "mlp_u8s8 %s rb %lld != unfused (M %lld K %lld H %lld N %lld mode %d sparse %d)",
                  isa_name(isa), (long long)rb, (long long)sh.M, (long long)sh.K, (long long)sh.H, (long long)sh.N, mode, sparse);
            std::fill(got.begin(), got.end(), 0xCD);
            mlp_u8s8(p.M, p.A.data(), p.K, p.B1, p.ep1, p.B2, p.ep2, got.data(), p.N, rb, isa, &pool);
            CHECK(got == want, "mlp_u8s8 on a pool %s rb %lld != unfused (M %lld mode %d)", isa_name(isa), (long long)rb,
                  (long long)sh.M, mode);
          }
        }
      }
      if (mode == 1) {  // the sparse case is really sparse, the saturating one really saturates
        std::vector<uint8_t> h((size_t)(p.M * p.H));
        gemm_u8s8(p.M, p.A.data(), p.K, p.B1, p.ep1, h.data(), p.H, 1, Isa::scalar);
        int64_t nz = 0;
        for (uint8_t v : h) nz += v != 0;
        CHECK(nz * 5 < (int64_t)h.size(), "mode 1 hidden density %lld / %zu", (long long)nz, h.size());
      }
    }
}

static void test_errors() {
  Mlp p = make(4, 8, 16, 8, -10, 10, 255, QType::s16, 0.01);
  std::vector<uint8_t> c(4 * 8 * 2);
  auto throws = [&](const char* field, auto&& f) {
    bool ok = false;
    try {
      f();
    } catch (const std::invalid_argument& e) { ok = std::strstr(e.what(), field) != nullptr; }
    CHECK(ok, "expected an error naming %s", field);
  };
  PackedB wrong = p.B1;  // K 8, N 16: fc2 K must be 16
  throws("fc2 K", [&] { mlp_u8s8(4, p.A.data(), 8, p.B1, p.ep1, wrong, p.ep2, c.data(), 8); });
  GemmEpilogue e1 = p.ep1;
  e1.out = QType::s8;
  throws("ep1.out", [&] { mlp_u8s8(4, p.A.data(), 8, p.B1, e1, p.B2, p.ep2, c.data(), 8); });
  throws("lda", [&] { mlp_u8s8(4, p.A.data(), 7, p.B1, p.ep1, p.B2, p.ep2, c.data(), 8); });
  throws("ldc", [&] { mlp_u8s8(4, p.A.data(), 8, p.B1, p.ep1, p.B2, p.ep2, c.data(), 7); });
  throws("rows_per_block", [&] { mlp_u8s8(4, p.A.data(), 8, p.B1, p.ep1, p.B2, p.ep2, c.data(), 8, -1); });
}

// min ms of `reps` runs
template <typename F>
static double time_min(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

static void bench(int64_t M, int64_t K, int64_t H, int64_t N, int32_t lo, int32_t hi, const char* label) {
  Mlp p = make(M, K, H, N, lo, hi, 127, QType::s16, 0.002);
  std::vector<uint8_t> h((size_t)(M * H)), c((size_t)(M * N * 2));
  gemm_u8s8(M, p.A.data(), K, p.B1, p.ep1, h.data(), H, 1);
  int64_t nz = 0;
  for (uint8_t v : h) nz += v != 0;
  const int reps = M > 1000 ? 30 : 300;
  for (int sparse : {2, 0}) {
    p.ep2.sparse = sparse;
    double tu = 1e30, tf = 1e30;
    for (int round = 0; round < 5; ++round) {  // alternated: the machine is shared
      tu = std::min(tu, time_min(reps / 5, [&] {
        gemm_u8s8(M, p.A.data(), K, p.B1, p.ep1, h.data(), H, 1);
        gemm_u8s8(M, h.data(), H, p.B2, p.ep2, c.data(), N, 1);
      }));
      tf = std::min(tf, time_min(reps / 5, [&] { mlp_u8s8(M, p.A.data(), K, p.B1, p.ep1, p.B2, p.ep2, c.data(), N); }));
    }
    std::printf("%-22s %lldx%lldx%lldx%lld density %.3f fc2 %-6s unfused %.4f ms  fused %.4f ms  fused/unfused %.2f\n", label,
                (long long)M, (long long)K, (long long)H, (long long)N, (double)nz / (double)h.size(),
                sparse == 2 ? "dense" : "auto", tu, tf, tf / tu);
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--bench") {
    for (auto [lo, hi] : {std::pair<int32_t, int32_t>{-60000, 60000}, {-170000, -20000}})
    {
      bench(3136, 96, 384, 96, lo, hi, "Swin-T stage 1");
      bench(196, 48, 192, 48, lo, hi, "micro-Swin stage 1");
      bench(49, 96, 384, 96, lo, hi, "micro-Swin stage 2");
    }
    return 0;
  }
  test_exact();
  test_errors();
  return swinq_test::finish("qmlp_test");
}
