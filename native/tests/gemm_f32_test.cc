// fp32 kernels: AVX2 vs the scalar references on odd sizes (M, N, K not multiples of the tiles),
// every activation, bias/residual; the vector math (erf, exp) against libm; the thread pool.
// Float tolerance: |avx2 − scalar| ≤ atol + rtol·|scalar|, rtol = 2e-6·sqrt(K) style bounds below.
#include <atomic>
#include <chrono>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/kernels_f32.h"
#include "swinq/threadpool.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;
using namespace swinq::f32;


static std::vector<float> rnd(size_t n, unsigned seed, float lo = -2, float hi = 2) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

static void close(const char* what, const std::vector<float>& got, const std::vector<float>& want, float rtol,
                  float atol) {
  for (size_t i = 0; i < want.size(); ++i) {
    const float g = got[i], w = want[i];
    if (g == w || (std::isnan(w) && std::isnan(g))) continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      std::fprintf(stderr, "%s: element %zu: avx2 %.9g vs scalar %.9g\n", what, i, g, w);
      ++failures;
      return;
    }
  }
}

// kern: the AVX2 or the AVX-512 GEMM, against the scalar reference.
static void test_gemm(void (*kern)(const GemmArgs&, int64_t, int64_t, int64_t, int64_t), const char* kname) {
  // (the AVX-512 tile is 8 rows × 2 panels: M % 8 = 1…7 left over, odd panel counts, a ragged second panel)
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 7}, {9, 20, 24}, {6, 16, 16}, {7, 17, 17}, {13, 96, 33}, {50, 384, 96}, {3, 1000, 5}, {13, 700, 40}, {50, 1100, 17}, {15, 48, 48}, {23, 600, 70}, {8, 64, 32}};
  for (auto& s : shapes) {
    const int64_t M = s[0], K = s[1], N = s[2];
    auto x = rnd(M * K, 1), w = rnd(K * N, 2), bias = rnd(N, 3), res = rnd(M * N, 4);
    std::vector<float> packed(packed_b_floats(K, N));
    pack_b_f32(w.data(), K, N, packed.data());
    for (int act = 0; act < 4; ++act) {
      for (int variant = 0; variant < 2; ++variant) {
        std::vector<float> ys(M * N, -7.0f), yv(M * N, -7.0f);
        GemmArgs a{x.data(), packed.data(), variant ? bias.data() : nullptr, variant ? res.data() : nullptr,
                   ys.data(), M, K, N, act};
        gemm_f32_scalar(a, 0, M, 0, gemm_panels(N));
        a.y = yv.data();
        kern(a, 0, M, 0, gemm_panels(N));
        char name[96];
        std::snprintf(name, sizeof name, "%s gemm M=%lld K=%lld N=%lld act=%d bias/res=%d", kname, (long long)M,
                      (long long)K, (long long)N, act, variant);
        close(name, yv, ys, 1e-5f, 2e-6f * std::sqrt((float)K) * 4);
      }
    }
    // residual aliasing y exactly
    std::vector<float> ys = res, yv = res;
    GemmArgs a{x.data(), packed.data(), bias.data(), ys.data(), ys.data(), M, K, N, 1};
    gemm_f32_scalar(a, 0, M, 0, gemm_panels(N));
    a.residual = a.y = yv.data();
    kern(a, 0, M, 0, gemm_panels(N));
    close("gemm residual alias", yv, ys, 1e-5f, 2e-6f * std::sqrt((float)K) * 4);
    // a sub-range must touch only its rows and panels
    if (M > 6 && N > 16) {
      std::vector<float> y(M * N, 123.0f);
      GemmArgs b{x.data(), packed.data(), nullptr, nullptr, y.data(), M, K, N, 0};
      kern(b, 2, M - 1, 1, gemm_panels(N));
      bool ok = true;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t n = 0; n < N; ++n) {
          const bool inside = i >= 2 && i < M - 1 && n >= 16;
          if (!inside && y[i * N + n] != 123.0f) ok = false;
          if (inside && y[i * N + n] == 123.0f) ok = false;
        }
      if (!ok) {
        std::fprintf(stderr, "gemm sub-range M=%lld N=%lld wrote outside its range\n", (long long)M, (long long)N);
        ++failures;
      }
    }
  }
}

static void test_matmul() {
  const int64_t shapes[][4] = {{3, 49, 32, 49}, {2, 5, 7, 9}, {4, 1, 3, 17}, {1, 16, 8, 16}, {2, 3, 0, 5}};
  for (auto& s : shapes)
    for (int tb = 0; tb < 2; ++tb)
      for (int bc = 0; bc < 2; ++bc) {
        const int64_t T = s[0], M = s[1], K = s[2], N = s[3];
        auto A = rnd(T * M * K + 1, 5), B = rnd(T * K * N + 1, 6);
        std::vector<float> ys(T * M * N), yv(T * M * N);
        MatmulArgs a{A.data(), B.data(), ys.data(), T, M, K, N, M * K, bc ? 0 : K * N, tb != 0, 0.125f};
        matmul_f32_scalar(a, 0, T);
        a.y = yv.data();
        matmul_f32_avx2(a, 0, T);
        close("matmul", yv, ys, 1e-5f, 1e-5f * (float)(K + 1));
      }
}

static void test_rows() {
  for (int64_t D : {1, 7, 8, 9, 16, 48, 49, 64, 65, 96, 100, 192}) {
    const int64_t R = 5;
    auto x = rnd(R * D, 7, -5, 5), g = rnd(D, 8), b = rnd(D, 9), bias = rnd(3 * D, 10);
    std::vector<float> ys(R * D), yv(R * D);
    layernorm_f32_scalar(x.data(), g.data(), b.data(), ys.data(), D, 1e-5f, 0, R);
    layernorm_f32_avx2(x.data(), g.data(), b.data(), yv.data(), D, 1e-5f, 0, R);
    close("layernorm", yv, ys, 1e-5f, 1e-5f);
    std::vector<float> xi = x;  // in place
    layernorm_f32_avx2(xi.data(), nullptr, nullptr, xi.data(), D, 1e-5f, 0, R);
    layernorm_f32_scalar(x.data(), nullptr, nullptr, ys.data(), D, 1e-5f, 0, R);
    close("layernorm in place", xi, ys, 1e-5f, 1e-5f);
    softmax_f32_scalar(x.data(), bias.data(), 3, ys.data(), D, 0, R);
    softmax_f32_avx2(x.data(), bias.data(), 3, yv.data(), D, 0, R);
    close("softmax", yv, ys, 1e-5f, 1e-7f);
    xi = x;
    softmax_f32_avx2(xi.data(), nullptr, 1, xi.data(), D, 0, R);
    softmax_f32_scalar(x.data(), nullptr, 1, ys.data(), D, 0, R);
    close("softmax in place", xi, ys, 1e-5f, 1e-7f);
  }
}

static void test_elementwise() {
  for (int64_t n : {1, 7, 8, 37, 1000}) {
    auto x = rnd(n, 11, -9, 9), b = rnd(n, 12, -3, 3);
    x[0] = 0.0f;
    for (int op = 0; op < u_count; ++op) {
      std::vector<float> src = x;
      if (op == u_log || op == u_sqrt)
        for (auto& v : src) v = std::fabs(v) + 1e-3f;
      std::vector<float> ys(n), yv(n);
      unary_f32_scalar(op, 0.3f, 1.7f, src.data(), ys.data(), n);
      unary_f32_avx2(op, 0.3f, 1.7f, src.data(), yv.data(), n);
      char name[48];
      std::snprintf(name, sizeof name, "unary op %d n=%lld", op, (long long)n);
      close(name, yv, ys, 2e-6f, 1e-6f);
    }
    for (int op = 0; op < b_count; ++op)
      for (int mode = 0; mode < 3; ++mode) {
        const int64_t as = mode == 2 ? 0 : 1, bs = mode == 1 ? 0 : 1;
        std::vector<float> a = x;
        if (op == b_pow)
          for (auto& v : a) v = std::fabs(v);
        std::vector<float> ys(n), yv(n);
        binary_f32_scalar(op, a.data(), as, b.data(), bs, ys.data(), n);
        binary_f32_avx2(op, a.data(), as, b.data(), bs, yv.data(), n);
        close("binary", yv, ys, 0.0f, 0.0f);  // + − × ÷ max min are exact in both
      }
  }
}

static void test_index_map() {
  std::mt19937 g(5);
  for (int64_t esize : {1, 2, 4, 8})
    for (int64_t block : {1, 2, 3, 4, 5, 8, 16, 17, 33, 100}) {
      const int64_t items = 3, rows = 7, x_item = block * 9 + 5, y_item = rows * block;
      std::vector<uint8_t> x((size_t)(items * x_item * esize));
      for (auto& v : x) v = (uint8_t)g();
      std::vector<int32_t> idx(rows);
      for (auto& v : idx) v = (int32_t)(g() % (x_item - block + 1));
      idx[2] = -1;
      std::vector<uint8_t> ys((size_t)(items * y_item * esize), 0xAB), yv = ys;
      index_map_scalar(x.data(), idx.data(), ys.data(), esize, block, x_item, y_item, 0, items * rows);
      // two sub-ranges that split an item, as the thread pool does
      index_map_avx2(x.data(), idx.data(), yv.data(), esize, block, x_item, y_item, 0, 10);
      index_map_avx2(x.data(), idx.data(), yv.data(), esize, block, x_item, y_item, 10, items * rows);
      if (ys != yv) {
        std::fprintf(stderr, "index_map esize=%lld block=%lld: avx2 differs from scalar\n", (long long)esize,
                     (long long)block);
        ++failures;
      }
    }
}

static void test_vector_math() {
  // gelu_erf uses the vector erf: compare with double-precision erf over a dense grid.
  std::vector<float> x;
  for (float v = -10.0f; v <= 10.0f; v += 0.00123f) x.push_back(v);
  std::vector<float> y(x.size());
  unary_f32_avx2(u_gelu_erf, 0, 0, x.data(), y.data(), (int64_t)x.size());
  std::vector<float> ys(x.size());
  unary_f32_scalar(u_gelu_erf, 0, 0, x.data(), ys.data(), (int64_t)x.size());
  // Absolute error scaled by max(1, |gelu|): for x << 0, 1 + erf cancels in fp32 for any erf.
  double worst = 0, worst_scalar = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    worst = std::max(worst, std::fabs(y[i] - want) / std::max(1.0, std::fabs(want)));
    worst_scalar = std::max(worst_scalar, std::fabs(ys[i] - want) / std::max(1.0, std::fabs(want)));
  }
  std::printf("gelu_erf worst scaled abs error: avx2 %.3g, scalar (std::erf) %.3g\n", worst, worst_scalar);
  if (worst > 2e-6) {
    std::fprintf(stderr, "gelu_erf avx2 error %.3g too large\n", worst);
    ++failures;
  }
  double worst_pos = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < -1.0f) continue;
    const double want = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    worst_pos = std::max(worst_pos, std::fabs(y[i] - want) / std::max(std::fabs(want), 1e-3));
  }
  std::printf("gelu_erf avx2 worst rel error for x >= -1: %.3g\n", worst_pos);
  if (worst_pos > 2e-6) {
    std::fprintf(stderr, "gelu_erf avx2 error %.3g too large for x >= -1\n", worst_pos);
    ++failures;
  }
  // the vector exp, through a one-row softmax spanning its range
  std::vector<float> row = {0.0f, -1.0f, -10.0f, -50.0f, -87.0f, -0.5f, 0.25f, 3.0f, -3.0f};
  std::vector<float> s1(row.size()), s2(row.size());
  softmax_f32_avx2(row.data(), nullptr, 1, s1.data(), (int64_t)row.size(), 0, 1);
  softmax_f32_scalar(row.data(), nullptr, 1, s2.data(), (int64_t)row.size(), 0, 1);
  close("softmax exp range", s1, s2, 4e-7f, 1e-30f);
}

static void test_pool() {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 1000, 100003}) {
      std::vector<std::atomic<int>> hits((size_t)n);
      for (auto& h : hits) h = 0;
      for (int rep = 0; rep < 20; ++rep)
        pool.parallel_for(n, 7, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[(size_t)i]++;
        });
      for (int64_t i = 0; i < n; ++i)
        if (hits[(size_t)i] != 20) {
          std::fprintf(stderr, "pool threads=%d n=%lld: item %lld ran %d times\n", threads, (long long)n, (long long)i,
                       hits[(size_t)i].load());
          ++failures;
          break;
        }
    }
    // parallel_for_static: every item once, in whole `align` units, mixed with dynamic jobs, with
    // gaps long enough for the workers to fall asleep (the caller then takes their parts over)
    for (int64_t n : {0, 1, 5, 64, 1000, 100003})
      for (int64_t align : {1, 4, 64}) {
        std::vector<std::atomic<int>> hits((size_t)n);
        for (auto& h : hits) h = 0;
        std::atomic<bool> aligned{true};
        for (int rep = 0; rep < 40; ++rep) {
          pool.parallel_for_static(n, align, [&](int64_t b, int64_t e) {
            if (b % align != 0 || (e != n && e % align != 0)) aligned = false;
            for (int64_t i = b; i < e; ++i) hits[(size_t)i]++;
          });
          if (rep % 3 == 0) pool.parallel_for(n, 5, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[(size_t)i]++; });
          if (rep % 13 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
        }
        const int want = 40 + 14;
        for (int64_t i = 0; i < n; ++i)
          if (hits[(size_t)i] != want) {
            std::fprintf(stderr, "static pool threads=%d n=%lld align=%lld: item %lld ran %d times, not %d\n", threads,
                         (long long)n, (long long)align, (long long)i, hits[(size_t)i].load(), want);
            ++failures;
            break;
          }
        if (!aligned) {
          std::fprintf(stderr, "static pool threads=%d n=%lld align=%lld: a part not in whole units\n", threads,
                       (long long)n, (long long)align);
          ++failures;
        }
      }
    pool.set_threads(threads + 1);
    std::atomic<int64_t> sum{0};
    const auto body = [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) sum += i; };  // a named (lvalue) body
    pool.parallel_for(1000, 1, body);
    if (sum != 499500) {
      std::fprintf(stderr, "pool after set_threads: sum %lld\n", (long long)sum.load());
      ++failures;
    }
  }
}

int main() {
  test_pool();
  if (isa_available(Isa::avx2)) {
    test_gemm(gemm_f32_6x16_avx2, "avx2");
    if (isa_available(Isa::avx512vnni)) test_gemm(gemm_f32_8x32_avx512, "avx512");
    test_matmul();
    test_rows();
    test_elementwise();
    test_index_map();
    test_vector_math();
  } else {
    std::printf("gemm_f32_test: no AVX2 on this CPU, only the thread pool was tested\n");
  }
  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  else std::printf("gemm_f32_test: ok\n");
  return failures ? 1 : 0;
}
