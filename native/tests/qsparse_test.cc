// Sparse-A GEMM (gemm_u8s8 with a K-major copy, ep.sparse): bit-identical to the dense path for
// scalar and AVX2, forced sparse / forced dense / auto, on random sparse and dense inputs, odd
// sizes, all-zero rows, zero points, unsafe weights (exact int16 dense kernel), every output type,
// ReLU, tables, threads and pools; the compaction's group edges (non-zero counts around multiples
// of 8 / 32 / 4, K around 32 and 64, codes 255 against weights −128), column blocks sized for L1
// and L2 (K up to 5003), and the per-call choice (gemm_u8s8_uses_sparse).
// `qsparse_test --bench` prints dense vs sparse timings by density.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <time.h>

#include "swinq/qkernels.h"
#include "swinq/qplan_kernels.h"
#include "swinq/threadpool.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;
using namespace swinq::q;


static std::mt19937_64 rng(777);
static int64_t rnd(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

// A with the given share of non-zero codes; some rows all zero, some rows dense.
static std::vector<uint8_t> sparse_a(int64_t M, int64_t K, int64_t lda, double density, int amax) {
  std::vector<uint8_t> A((size_t)(M * lda), 0);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t m = 0; m < M; ++m) {
    const int kind = (int)rnd(0, 9);  // 0: all zero, 1: dense, else `density`
    for (int64_t k = 0; k < lda; ++k) {
      const bool nz = kind == 1 || (kind > 1 && u(rng) < density);
      A[(size_t)(m * lda + k)] = nz ? (uint8_t)rnd(1, amax) : 0;
    }
  }
  return A;
}

static void test_random() {
  ThreadPool pool(3);
  int cases = 0;
  for (int it = 0; it < 400; ++it) {
    // N % 24 == 0 (every Swin width): the sparse path's 4×24 epilogue
    const int64_t M = rnd(1, 37), K = it % 7 == 0 ? rnd(1, 9) : rnd(1, 700),
                  N = it % 5 == 0 ? rnd(1, 20) : it % 3 == 0 ? 24 * rnd(1, 6) : rnd(1, 150);
    const int64_t lda = K + rnd(0, 5), ldc = N + rnd(0, 3);
    const double density = std::vector<double>{0.0, 0.01, 0.1, 0.3, 0.6, 1.0}[(size_t)rnd(0, 5)];
    const int amax = rnd(0, 1) ? 255 : 127;
    std::vector<int8_t> W((size_t)(K * N));
    const int wmax = rnd(0, 2) == 0 ? 63 : 127;
    for (auto& w : W) w = (int8_t)rnd(it % 11 == 0 ? -128 : -wmax, wmax);
    PackOptions po;
    po.kmajor = true;
    po.w_zero_point = rnd(0, 3) == 0 ? (int32_t)rnd(-128, 127) : 0;
    po.a_max = amax;
    po.force_path = (int32_t)rnd(0, 2) == 2 ? 2 : 0;
    PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
    EXPECT((int64_t)B.bk16.size() == K * B.Np, "bk16 size %zu for K=%lld Np=%d", B.bk16.size(), (long long)K, B.Np);
    const std::vector<uint8_t> A = sparse_a(M, K, lda, density, amax);
    std::vector<int32_t> bias((size_t)N), mult((size_t)N), shift((size_t)N);
    for (int64_t n = 0; n < N; ++n) {
      bias[(size_t)n] = (int32_t)rnd(-100000, 100000);
      quantize_multiplier(std::ldexp(1.0, -(int)rnd(6, 16)) * (0.5 + (double)rnd(0, 1000) / 1000), &mult[(size_t)n],
                          &shift[(size_t)n]);
    }
    std::vector<uint8_t> table(256);
    for (int i = 0; i < 256; ++i) table[(size_t)i] = (uint8_t)((i * 37 + 11) & 255);
    GemmEpilogue ep;
    ep.bias = rnd(0, 3) ? bias.data() : nullptr;
    ep.a_zero_point = rnd(0, 3) == 0 ? (int32_t)rnd(1, 255) : 0;
    ep.relu = rnd(0, 1);
    const QType outs[4] = {QType::s32, QType::u8, QType::s8, QType::s16};
    ep.out = outs[rnd(0, 3)];
    if (ep.out != QType::s32) {
      ep.rq.mult = mult.data();
      ep.rq.shift = shift.data();
      ep.rq.channels = rnd(0, 1) ? (int32_t)N : 1;
      ep.rq.zero_point = ep.out == QType::u8 ? (int32_t)rnd(0, 255) : ep.out == QType::s8 ? (int32_t)rnd(-128, 127) : 0;
      if (ep.out != QType::s16 && rnd(0, 2) == 0) ep.table = table.data();
    }
    const int es = qtype_size(ep.out);
    auto run = [&](int sparse, Isa isa, int threads, ThreadPool* pl) {
      std::vector<uint8_t> C((size_t)(M * ldc * es), 0xA5);
      GemmEpilogue e = ep;
      e.sparse = sparse;
      gemm_u8s8(M, A.data(), lda, B, e, C.data(), ldc, threads, isa, pl);
      return C;
    };
    const std::vector<uint8_t> ref = run(2, Isa::scalar, 1, nullptr);
    const char* what[] = {"auto", "sparse", "dense"};
    for (int sp = 0; sp <= 1; ++sp)
      EXPECT(run(sp, Isa::scalar, 1, nullptr) == ref, "scalar %s != scalar dense (M=%lld K=%lld N=%lld d=%.2f)", what[sp],
             (long long)M, (long long)K, (long long)N, density);
    for (Isa isa : {Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {  // every SIMD set the CPU has (the sparse path is AVX2 in the first two)
      if (!isa_available(isa)) continue;
      const char* in = isa_name(isa);
      for (int sp = 0; sp <= 2; ++sp) {
        EXPECT(run(sp, isa, 1, nullptr) == ref, "%s %s != scalar dense (M=%lld K=%lld N=%lld lda=%lld d=%.2f out=%s zw=%d za=%d safe=%d)",
               in, what[sp], (long long)M, (long long)K, (long long)N, (long long)lda, density, qtype_name(ep.out),
               B.w_zero_point, ep.a_zero_point, (int)B.maddubs_safe);
        EXPECT(run(sp, isa, 1, &pool) == ref, "%s %s (pool) != scalar dense (M=%lld K=%lld N=%lld)", in, what[sp],
               (long long)M, (long long)K, (long long)N);
      }
      EXPECT(run(1, isa, 3, nullptr) == ref, "%s sparse (3 threads) != scalar dense", in);
    }
    ++cases;
  }
  std::printf("random: %d cases\n", cases);
}

// Hand-made edges: all-zero A (only bias survives), a single non-zero code at the last k of a
// ragged K, extreme codes and weights (255·−128 products, int32 wrap of the dense sum agrees).
static void test_edges() {
  const int64_t M = 5, K = 13, N = 17;
  std::vector<int8_t> W((size_t)(K * N));
  for (size_t i = 0; i < W.size(); ++i) W[i] = (int8_t)(i % 2 ? -128 : 127);
  PackOptions po;
  po.kmajor = true;
  PackedB B = pack_b(W.data(), K, N, N, false, po);
  std::vector<int32_t> bias((size_t)N);
  for (int64_t n = 0; n < N; ++n) bias[(size_t)n] = (int32_t)(n * 1000 - 7000);
  GemmEpilogue ep;
  ep.bias = bias.data();
  std::vector<uint8_t> A((size_t)(M * K), 0);
  A[(size_t)(1 * K + K - 1)] = 255;                       // row 1: one code at the ragged end
  for (int64_t k = 0; k < K; ++k) A[(size_t)(3 * K + k)] = 255;  // row 3 dense, extreme
  for (Isa isa : {Isa::scalar, active_isa()})
    for (int sp = 0; sp <= 2; ++sp) {
      std::vector<int32_t> C((size_t)(M * N), 0x5a5a5a5a);
      ep.sparse = sp;
      gemm_u8s8(M, A.data(), K, B, ep, C.data(), N, 1, isa);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          int64_t want = bias[(size_t)n];
          for (int64_t k = 0; k < K; ++k) want += (int64_t)A[(size_t)(m * K + k)] * W[(size_t)(k * N + n)];
          EXPECT(C[(size_t)(m * N + n)] == (int32_t)want, "edge isa=%d sparse=%d (%lld,%lld): %d != %lld", (int)isa, sp,
                 (long long)m, (long long)n, C[(size_t)(m * N + n)], (long long)want);
        }
    }
  // large K: column blocks sized for L2 (prefetched), ragged M, both kernels
  for (int amax : {255, 127}) {
    const int64_t M2 = 23, K2 = 5003, N2 = 33;
    std::vector<int8_t> W2((size_t)(K2 * N2));
    for (auto& w : W2) w = (int8_t)rnd(-128, 127);
    PackOptions po2 = po;
    po2.a_max = amax;
    PackedB B4 = pack_b(W2.data(), (int32_t)K2, (int32_t)N2, N2, false, po2);
    const std::vector<uint8_t> A2 = sparse_a(M2, K2, K2, 0.05, amax);
    GemmEpilogue e2;
    std::vector<int32_t> ref((size_t)(M2 * N2)), got((size_t)(M2 * N2));
    e2.sparse = 2;
    gemm_u8s8(M2, A2.data(), K2, B4, e2, ref.data(), N2, 1, Isa::scalar);
    for (int sp = 0; sp <= 1; ++sp) {
      e2.sparse = sp;
      gemm_u8s8(M2, A2.data(), K2, B4, e2, got.data(), N2, 1, active_isa());
      EXPECT(got == ref, "K=5003 a_max=%d sparse=%d differs from scalar dense", amax, sp);
    }
  }
  // errors: forcing sparse without the K-major copy is refused with a clear message
  PackedB B2 = pack_b(W.data(), K, N, N, false, {});
  EXPECT(B2.bk16.empty(), "kmajor off still packed a K-major copy");
  ep.sparse = 1;
  std::vector<int32_t> C((size_t)(M * N));
  bool threw = false;
  try {
    gemm_u8s8(M, A.data(), K, B2, ep, C.data(), N);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("kmajor") != std::string::npos;
  }
  EXPECT(threw, "ep.sparse = 1 without bk16 not refused");
  ep.sparse = 3;
  threw = false;
  try {
    gemm_u8s8(M, A.data(), K, B, ep, C.data(), N);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("ep.sparse") != std::string::npos;
  }
  EXPECT(threw, "ep.sparse = 3 not refused");
  PackedB B3 = B;
  B3.bk16.resize(3);
  ep.sparse = 0;
  threw = false;
  try {
    gemm_u8s8(M, A.data(), K, B3, ep, C.data(), N);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("K-major") != std::string::npos;
  }
  EXPECT(threw, "bad bk16 size not refused");
  // the compacted rows hold uint16 row indices: at pack_b's largest K (65536) the last rows'
  // indices reach 65535; forced sparse must equal dense there
  {
    const int64_t KL = 65536, NL = 20;
    std::vector<int8_t> WL((size_t)(KL * NL));
    for (auto& w : WL) w = (int8_t)rnd(-128, 127);
    for (int amax : {127, 255}) {
      PackOptions pl;
      pl.kmajor = true;
      pl.a_max = amax;
      const PackedB BL = pack_b(WL.data(), (int32_t)KL, (int32_t)NL, NL, false, pl);
      std::vector<uint8_t> AL((size_t)(2 * KL), 0);
      for (int64_t k : {int64_t(0), int64_t(7), int64_t(40000), KL - 33, KL - 2, KL - 1}) AL[(size_t)k] = (uint8_t)amax;
      for (int64_t k = KL - 32; k < KL; ++k) AL[(size_t)(KL + k)] = (uint8_t)rnd(1, amax);  // 2nd row: the last chunk full
      GemmEpilogue el;
      std::vector<int32_t> ref((size_t)(2 * NL)), got((size_t)(2 * NL));
      el.sparse = 2;
      gemm_u8s8(2, AL.data(), KL, BL, el, ref.data(), NL, 1, Isa::scalar);
      el.sparse = 1;
      gemm_u8s8(2, AL.data(), KL, BL, el, got.data(), NL, 1, active_isa());
      EXPECT(got == ref, "K = 65536 a_max=%d: sparse differs from dense", amax);
    }
  }
}

// Compaction edges: every row has exactly `cnt` non-zero codes at chosen positions (runs at the
// start / end of 8- and 32-code groups, ragged K tails), extreme values, one row per count.
static void test_compaction_edges() {
  int cases = 0;
  for (int amax : {255, 127})  // 127: the int8 quad kernel, 255: the int16 pair kernel
  for (int64_t K : {1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 96, 127, 200, 384}) {
    const int64_t N = 16 * (int64_t)rnd(1, 6) - (int64_t)rnd(0, 9);  // up to 96: the 3-group kernel
    std::vector<int8_t> W((size_t)(K * N));
    for (auto& w : W) w = (int8_t)(rnd(0, 3) == 0 ? -128 : rnd(-128, 127));
    PackOptions po;
    po.kmajor = true;
    po.a_max = amax;
    const PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
    EXPECT(B.bk8.empty() == (amax > 127), "bk8 presence for a_max %d", amax);
    std::vector<int64_t> counts;
    for (int64_t c = 0; c <= std::min<int64_t>(K, 12); ++c) counts.push_back(c);
    for (int64_t c : {K / 2, K - 3, K - 2, K - 1, K})
      if (c >= 0) counts.push_back(c);
    const int64_t M = (int64_t)counts.size();
    std::vector<uint8_t> A((size_t)(M * K), 0);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t c = counts[(size_t)m];
      const int mode = (int)(m % 3);  // 0: first c codes, 1: last c codes, 2: spread
      for (int64_t i = 0; i < c; ++i) {
        const int64_t k = mode == 0 ? i : mode == 1 ? K - 1 - i : (i * K) / std::max<int64_t>(c, 1);
        A[(size_t)(m * K + k)] = (uint8_t)(i % 2 ? amax : rnd(1, amax));
      }
    }
    GemmEpilogue ep;
    std::vector<int32_t> ref((size_t)(M * N)), got((size_t)(M * N));
    ep.sparse = 2;
    gemm_u8s8(M, A.data(), K, B, ep, ref.data(), N, 1, Isa::scalar);
    for (int64_t m = 0; m < M; ++m)  // the dense scalar result against plain int64 sums
      for (int64_t n = 0; n < N; ++n) {
        int64_t want = 0;
        for (int64_t k = 0; k < K; ++k) want += (int64_t)A[(size_t)(m * K + k)] * W[(size_t)(k * N + n)];
        EXPECT(ref[(size_t)(m * N + n)] == (int32_t)want, "compaction K=%lld: dense reference wrong", (long long)K);
      }
    ep.sparse = 1;
    for (Isa isa : {Isa::scalar, active_isa()}) {
      gemm_u8s8(M, A.data(), K, B, ep, got.data(), N, 1, isa);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n)
          EXPECT(got[(size_t)(m * N + n)] == ref[(size_t)(m * N + n)],
                 "compaction K=%lld N=%lld count=%lld isa=%s (%lld,%lld): %d != %d", (long long)K, (long long)N,
                 (long long)counts[(size_t)m], isa_name(isa), (long long)m, (long long)n, got[(size_t)(m * N + n)],
                 ref[(size_t)(m * N + n)]);
    }
    ++cases;
  }
  std::printf("compaction edges: %d (K, a_max) cases\n", cases);
}

// The per-call choice: below sparse_max_density(B, isa) the sparse path, above it the dense one;
// ep.sparse and a missing K-major copy override it. Codes ≤ 127 (the int8 kernel) break even later.
// A set whose dense GEMM always wins at some K (avx512vnni, K < 256) returns 0: never sparse.
static void test_choice() {
  for (int64_t K : {192, 384, 1536, 3072}) {
    const int64_t M = 97, N = 40;
    std::vector<int8_t> W((size_t)(K * N), 3);
    for (int a_max : {255, 127}) {
      PackOptions po;
      po.kmajor = true;
      po.a_max = a_max;
      const PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
      EXPECT(B.bk8.empty() == (a_max > 127), "K=%lld a_max=%d: int8 K-major copy %s", (long long)K, a_max,
             B.bk8.empty() ? "missing" : "unexpected");
      const PackedB Bd = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, {});
      PackOptions p16;
      p16.kmajor = true;
      const PackedB B16 = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, p16);
      for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
        if (!isa_available(isa)) continue;
        const double t = sparse_max_density(B, isa);
        EXPECT(t >= 0 && t < 0.4, "sparse_max_density(K=%lld, %s) = %g", (long long)K, isa_name(isa), t);
        if (isa != Isa::avx512vnni) EXPECT(t > 0.05, "sparse_max_density(K=%lld, %s) = %g", (long long)K, isa_name(isa), t);
        if (a_max == 127 && t > 0)
          EXPECT(t > sparse_max_density(B16, isa), "the int8 kernel should break even later (K=%lld, %s)", (long long)K,
                 isa_name(isa));
        std::vector<uint8_t> A((size_t)(M * K), 0), H((size_t)(M * K), 0);
        std::uniform_real_distribution<double> u(0, 1);
        for (auto& a : A) a = u(rng) < t * 0.5 ? 9 : 0;
        for (auto& a : H) a = u(rng) < std::min(1.0, std::max(t, 0.01) * 1.6) ? 9 : 0;
        GemmEpilogue ep;
        EXPECT(gemm_u8s8_uses_sparse(M, A.data(), K, B, ep, isa) == (t > 0), "K=%lld %s: density %.3f (t %.3f)",
               (long long)K, isa_name(isa), t * 0.5, t);
        EXPECT(!gemm_u8s8_uses_sparse(M, H.data(), K, B, ep, isa), "K=%lld: density %.3f not dense", (long long)K, t * 1.6);
        EXPECT(!gemm_u8s8_uses_sparse(M, A.data(), K, Bd, ep, isa), "no K-major copy but sparse");
        ep.sparse = 2;
        EXPECT(!gemm_u8s8_uses_sparse(M, A.data(), K, B, ep, isa), "ep.sparse = 2 but sparse");
        ep.sparse = 1;
        EXPECT(gemm_u8s8_uses_sparse(M, H.data(), K, B, ep, isa), "ep.sparse = 1 but dense");
      }
    }
  }
}

// Thread CPU time: the machine is shared (load ≫ cores), wall time mostly measures preemption.
static double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// fc2 of a Swin block (K = 4C, N = C, M tokens): min of 7 runs, dense vs forced sparse, by density.
static void bench(int64_t M, int64_t C) {
  const int64_t K = 4 * C, N = C;
  std::vector<int8_t> W((size_t)(K * N));
  for (auto& w : W) w = (int8_t)rnd(-127, 127);
  PackOptions po;
  po.kmajor = true;
  PackedB B = pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
  std::vector<int32_t> mult(1), shift(1);
  quantize_multiplier(1.0 / 4096, &mult[0], &shift[0]);
  GemmEpilogue ep;
  ep.out = QType::s16;
  ep.rq.mult = mult.data();
  ep.rq.shift = shift.data();
  std::vector<int16_t> Cout((size_t)(M * N));
  std::printf("fc2 M=%lld K=%lld N=%lld (%s, maddubs_safe=%d): min thread-CPU ms of 7\n", (long long)M, (long long)K, (long long)N,
              isa_name(active_isa()), (int)B.maddubs_safe);
  for (double d : {0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0}) {
    std::vector<uint8_t> A((size_t)(M * K));
    std::uniform_real_distribution<double> u(0, 1);
    for (auto& a : A) a = u(rng) < d ? (uint8_t)rnd(1, 255) : 0;
    double t[2];
    for (int sp = 1; sp <= 2; ++sp) {
      ep.sparse = sp;
      double best = 1e30;
      for (int r = 0; r < 7; ++r) {
        const double t0 = cpu_ms();
        gemm_u8s8(M, A.data(), K, B, ep, Cout.data(), N, 1);
        best = std::min(best, cpu_ms() - t0);
      }
      t[sp - 1] = best;
    }
    std::printf("  density %.2f: dense %.3f ms, sparse %.3f ms, sparse/dense %.2f\n", d, t[1], t[0], t[0] / t[1]);
  }
}

// The density probe (q::Kernels::count_nonzero): scalar = AVX2 on K around the 32-byte blocks,
// all-zero, all-255 and random bytes, and equal to a plain count.
static void test_count_nonzero() {
  const Kernels& s = kernels(Isa::scalar);
  const bool avx2 = isa_available(Isa::avx2);
  for (int64_t K : {0, 1, 7, 31, 32, 33, 63, 64, 65, 96, 191, 192, 1537})
    for (int fill = 0; fill < 4; ++fill) {
      std::vector<uint8_t> a((size_t)K + 1);
      for (auto& v : a) v = fill == 0 ? 0 : fill == 1 ? 255 : fill == 2 ? (uint8_t)rnd(0, 255) : (uint8_t)(rnd(0, 9) == 0 ? rnd(1, 255) : 0);
      a[(size_t)K] = 7;  // past the end: must not be counted
      int64_t want = 0;
      for (int64_t k = 0; k < K; ++k) want += a[(size_t)k] != 0;
      EXPECT(s.count_nonzero(a.data(), K) == want, "count_nonzero scalar K=%lld fill=%d", (long long)K, fill);
      if (avx2)
        EXPECT(kernels(Isa::avx2).count_nonzero(a.data(), K) == want, "count_nonzero avx2 K=%lld fill=%d", (long long)K, fill);
    }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--bench") {
    bench(3136, 96);
    bench(784, 192);
    return 0;
  }
  test_random();
  test_edges();
  test_compaction_edges();
  test_choice();
  test_count_nonzero();
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("qsparse_test: ok (isa %s)\n", isa_name(active_isa()));
  return 0;
}
