// Integer kernels: scalar vs AVX2 bit-exactness on random and edge inputs, scalar vs float math
// within the bounds stated in docs/integer-kernels.md, exhaustive isqrt up to 2^22 plus edges.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>
#ifdef __linux__
#include <sched.h>
#endif

#include "swinq/qkernels.h"
#include "swinq/threadpool.h"
#include "../kernels/int/qinternal.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;
using namespace swinq::q;


static std::mt19937_64 rng(12345);
static int64_t rnd(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
static bool avx2 = false;

template <typename T>
static bool same(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
static int32_t sat(double v, QType t) { return (int32_t)std::max<double>(qtype_min(t), std::min<double>(qtype_max(t), v)); }

static void test_isqrt() {
  for (uint64_t v = 0; v <= (uint64_t(1) << 22); ++v) {
    uint64_t r = isqrt_u64(v);
    if (!(r * r <= v && (r + 1) * (r + 1) > v)) {
      EXPECT(false, "isqrt(%llu) = %llu", (unsigned long long)v, (unsigned long long)r);
      break;
    }
  }
  EXPECT(isqrt_u64(~0ull) == 4294967295ull, "isqrt(2^64-1) = %llu", (unsigned long long)isqrt_u64(~0ull));
  auto ok = [](uint64_t v) {
    uint64_t r = isqrt_u64(v);
    unsigned __int128 r2 = (unsigned __int128)r * r, r12 = (unsigned __int128)(r + 1) * (r + 1);
    return r2 <= v && r12 > v;
  };
  for (uint64_t k : {uint64_t(1) << 16, (uint64_t(1) << 26) + 3, (uint64_t(1) << 31) - 1, uint64_t(1) << 31,
                     (uint64_t(1) << 32) - 1, uint64_t(3037000499)})
    for (int64_t d = -2; d <= 2; ++d) {
      unsigned __int128 v = (unsigned __int128)k * k + d;
      if (v >> 64) continue;
      EXPECT(ok((uint64_t)v), "isqrt near %llu^2 %+lld", (unsigned long long)k, (long long)d);
    }
  for (int i = 0; i < 200000; ++i) {
    uint64_t v = rng() >> rnd(0, 63);
    EXPECT(ok(v), "isqrt(%llu)", (unsigned long long)v);
  }
  // 2^k and 2^k ± 1, 2 for every k; every square k² (k = 2^j ± d, and random k < 2^32) and its neighbours
  for (int k = 0; k < 64; ++k)
    for (int64_t d = -2; d <= 2; ++d) {
      const uint64_t v = (uint64_t(1) << k) + (uint64_t)d;
      if (d < 0 && (uint64_t(1) << k) < (uint64_t)-d) continue;
      EXPECT(ok(v), "isqrt(2^%d %+lld)", k, (long long)d);
    }
  auto near_square = [&](uint64_t k) {
    for (int64_t d = -3; d <= 3; ++d) {
      const unsigned __int128 v = (unsigned __int128)k * k + d;
      if (v >> 64 || (d < 0 && (unsigned __int128)k * k < (unsigned __int128)-d)) continue;
      EXPECT(ok((uint64_t)v), "isqrt(%llu^2 %+lld)", (unsigned long long)k, (long long)d);
    }
  };
  for (int j = 0; j <= 32; ++j)
    for (int64_t d = -2; d <= 2; ++d) near_square((uint64_t(1) << j) + (uint64_t)d);
  for (int i = 0; i < 200000; ++i) near_square(rng() >> 32);
  for (uint64_t v : std::initializer_list<uint64_t>{~0ull, ~0ull - 1, (uint64_t(1) << 63) - 1, uint64_t(1) << 63, 4294967295ull * 4294967295ull})
    EXPECT(ok(v), "isqrt(%llu)", (unsigned long long)v);
  // the LayerNorm's own range, [2^60, 2^62), densely at both ends
  for (uint64_t v = uint64_t(1) << 60; v < (uint64_t(1) << 60) + 100000; ++v) EXPECT(ok(v), "isqrt(%llu)", (unsigned long long)v);
  for (uint64_t v = (uint64_t(1) << 62) - 100000; v < (uint64_t(1) << 62); ++v) EXPECT(ok(v), "isqrt(%llu)", (unsigned long long)v);
}

static void test_requant() {
  // the rounding rule on ties: half up (toward +infinity)
  int32_t m = 1 << 30, s = 31;  // ×0.5
  EXPECT(requantize_one(3, m, s, 0, -1000, 1000) == 2, "1.5 → 2");
  EXPECT(requantize_one(-3, m, s, 0, -1000, 1000) == -1, "-1.5 → -1");
  EXPECT(requantize_one(-5, m, s, 0, -1000, 1000) == -2, "-2.5 → -2");
  EXPECT(requantize_one(INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MAX) == INT32_MAX, "saturates");
  for (int iter = 0; iter < 300; ++iter) {
    const int64_t rows = rnd(1, 5), cols = rnd(1, 45);
    const QType out = (QType)rnd(0, 3);
    std::vector<int32_t> x(rows * cols), mult(cols), shift(cols);
    for (auto& v : x) v = rnd(0, 9) == 0 ? (rnd(0, 1) ? INT32_MIN : INT32_MAX) : (int32_t)rnd(-(1 << 20), 1 << 20);
    const bool ge32 = rnd(0, 1);
    for (int64_t c = 0; c < cols; ++c) {
      mult[c] = rnd(0, 9) == 0 ? INT32_MIN : (int32_t)rnd(INT32_MIN + 1, INT32_MAX);
      shift[c] = (int32_t)(ge32 ? rnd(32, 62) : rnd(0, 62));
    }
    Requant rq;
    rq.mult = mult.data();
    rq.shift = shift.data();
    rq.channels = rnd(0, 1) ? (int32_t)cols : 1;
    rq.zero_point = out == QType::u8 ? (int32_t)rnd(0, 255) : out == QType::s32 ? 0 : (int32_t)rnd(-100, 100);
    if (rnd(0, 3) == 0) rq.qmin = rq.zero_point;  // ReLU
    const size_t nb = (size_t)(rows * cols * qtype_size(out));
    std::vector<uint8_t> ys(nb), yv(nb);
    requantize(x.data(), rows, cols, rq, out, ys.data(), Isa::scalar);
    if (avx2) {
      requantize(x.data(), rows, cols, rq, out, yv.data(), Isa::avx2);
      EXPECT(same(ys, yv), "requantize scalar != avx2 (rows %lld cols %lld out %s)", (long long)rows, (long long)cols, qtype_name(out));
    }
  }
  // against float: ratio ≈ mult·2^-shift, error ≤ 1 code
  for (double ratio : {0.5, 0.00123, 0.7071, 1.5, 37.0, 3e-9}) {
    int32_t mm, ss;
    quantize_multiplier(ratio, &mm, &ss);
    for (int i = 0; i < 2000; ++i) {
      int32_t x = (int32_t)rnd(-(1 << 24), 1 << 24);
      double want = std::floor(x * ratio + 0.5);
      int32_t got = requantize_one(x, mm, ss, 0, INT32_MIN, INT32_MAX);
      EXPECT(std::fabs(got - want) <= 1 + std::fabs(x * ratio) * 1e-9, "ratio %g x %d: %d vs %g", ratio, x, got, want);
    }
  }
  bool threw = false;
  try {
    int32_t mm, ss;
    quantize_multiplier(0.0, &mm, &ss);
  } catch (const std::invalid_argument&) { threw = true; }
  EXPECT(threw, "quantize_multiplier(0) must throw");
}

// One random gemm_u8s8 case: weights mode wmode (0: safe weights, 1: full range (exact path), 2: zero point ≠ 0),
// epilogue mode emode (output type and requantization range, below); scalar against int64 math for s32 outputs,
// AVX2 (one thread, three threads, a pool) bit-exact against scalar.
static void gemm_random_case(int64_t M, int64_t K, int64_t N, int wmode, int emode) {
  const int64_t lda = K + rnd(0, 3), ldc = N + rnd(0, 2);
  std::vector<uint8_t> A(M * lda);
  std::vector<int8_t> W(K * N);
  for (auto& v : A) v = (uint8_t)rnd(0, 255);
  for (auto& v : W) v = (int8_t)(wmode == 0 ? rnd(-64, 64) : rnd(-128, 127));
  if (wmode == 1 && K >= 2) W[0] = 127, W[N] = 127;  // a pair that would saturate
  PackOptions po;
  po.w_zero_point = wmode == 2 ? (int32_t)rnd(-5, 5) | 1 : 0;
  const bool transposed = rnd(0, 1);
  std::vector<int8_t> Wt(K * N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) Wt[n * K + k] = W[k * N + n];
  PackedB B = transposed ? pack_b(Wt.data(), (int32_t)K, (int32_t)N, K, true, po)
                         : pack_b(W.data(), (int32_t)K, (int32_t)N, N, false, po);
  if (wmode == 0) EXPECT(B.maddubs_safe, "|w| ≤ 64 must be provably safe");
  if (wmode == 1 && K >= 2) EXPECT(!B.maddubs_safe && B.unsafe_pairs > 0, "127+127 pair must be unsafe");
  std::vector<int32_t> bias(N), mult(N), shift(N);
  for (auto& v : bias) v = (int32_t)rnd(-100000, 100000);
  // s16 outputs use ratios ≥ 0.5 (shift < 32: the general SIMD requantization), others < 2^-8 (the fast
  // form); emode 5: ratios of 2^-20…2^-27 with a large zero point, where the SIMD epilogue can fold the zero
  // point into the rounding term for some columns (|zp|·2^(shift−32) < 2^30) and not for others
  for (int64_t n = 0; n < N; ++n)
    quantize_multiplier(emode == 3   ? 0.5 + rnd(0, 300) / 100.0
                        : emode == 5 ? std::ldexp(1.0, -(int)rnd(20, 27)) * (1 + rnd(0, 99) / 100.0)
                                     : std::ldexp(1.0, -(int)rnd(8, 16)) * (1 + rnd(0, 99) / 100.0),
                        &mult[n], &shift[n]);
  uint8_t table[256];
  for (int i = 0; i < 256; ++i) table[i] = (uint8_t)(255 - i);
  GemmEpilogue ep;
  ep.a_zero_point = (int32_t)rnd(0, 255);
  ep.bias = rnd(0, 1) ? bias.data() : nullptr;
  ep.rq.mult = mult.data();
  ep.rq.shift = shift.data();
  ep.rq.channels = rnd(0, 1) ? (int32_t)N : 1;
  const QType outs[] = {QType::s32, QType::u8, QType::s8, QType::s16, QType::u8, QType::u8};
  ep.out = outs[emode];
  ep.relu = emode == 2 || (emode == 0 && rnd(0, 1));
  ep.rq.zero_point = emode == 5 ? (int32_t)rnd(128, 255) : ep.out == QType::u8 ? (int32_t)rnd(0, 255) : (int32_t)rnd(-20, 20);
  // a clamp narrower than the output type (7-bit codes, ReLU at the zero point) half of the
  // time; otherwise the type's own range (the SIMD epilogue then leaves it to the packs)
  if (ep.out != QType::s32 && rnd(0, 1)) {
    ep.rq.qmin = rnd(0, 1) ? ep.rq.zero_point : qtype_min(ep.out) + (int32_t)rnd(0, 20);
    ep.rq.qmax = std::max(ep.rq.qmin, qtype_max(ep.out) - (int32_t)rnd(0, 128));
  }
  if (emode == 4) ep.table = table;
  const size_t nb = (size_t)(M * ldc * qtype_size(ep.out));
  std::vector<uint8_t> cs(nb, 0xAB), cv(nb, 0xAB), ct(nb, 0xAB);
  // half of the 8/16-bit cases add a residual in the epilogue (any residual type, a row stride
  // wider than N): the result must be the plain GEMM followed by add_q on its N columns
  const QType rts[] = {QType::s8, QType::u8, QType::s16};
  const QType rt = rts[rnd(0, 2)];
  const int64_t ldr = N + rnd(0, 3);
  std::vector<int16_t> res16((size_t)(M * ldr));
  std::vector<uint8_t> resb((size_t)(M * ldr * qtype_size(rt)));
  AddParams addp;
  if (ep.out != QType::s32 && rnd(0, 1)) {
    for (int64_t i = 0; i < M * ldr; ++i) {
      const int32_t v = (int32_t)rnd(qtype_min(rt), qtype_max(rt));
      if (rt == QType::s16) std::memcpy(resb.data() + 2 * i, &(res16[i] = (int16_t)v), 2);
      else resb[i] = (uint8_t)v;
    }
    const int32_t zr = rt == QType::s16 ? 0 : rt == QType::u8 ? (int32_t)rnd(0, 255) : (int32_t)rnd(-128, 127);
    const int32_t zv = ep.out == QType::s16 ? 0 : ep.rq.zero_point;
    addp = add_params(rnd(1, 100) / 1000.0, zr, rnd(1, 100) / 1000.0, zv, rnd(1, 100) / 700.0, zv, ep.out);
    std::vector<uint8_t> plain(nb, 0xAB);
    gemm_u8s8(M, A.data(), lda, B, ep, plain.data(), ldc, 1, Isa::scalar);
    const int64_t ey = qtype_size(ep.out), er = qtype_size(rt);
    for (int64_t m = 0; m < M; ++m)
      add_q(rt, resb.data() + m * ldr * er, ep.out, plain.data() + m * ldc * ey, N, addp, ep.out, plain.data() + m * ldc * ey,
            Isa::scalar);
    ep.residual = resb.data();
    ep.residual_type = rt;
    ep.ldr = ldr;
    ep.add = &addp;
    gemm_u8s8(M, A.data(), lda, B, ep, cs.data(), ldc, 1, Isa::scalar);
    EXPECT(same(cs, plain), "gemm + residual (%s) != gemm then add_q M%lld K%lld N%lld e%d", qtype_name(rt), (long long)M,
           (long long)K, (long long)N, emode);
  }
  gemm_u8s8(M, A.data(), lda, B, ep, cs.data(), ldc, 1, Isa::scalar);
  if (ep.out == QType::s32) {  // exact against int64 math
    bool ok = true;
    for (int64_t m = 0; m < M && ok; ++m)
      for (int64_t n = 0; n < N && ok; ++n) {
        int64_t acc = ep.bias ? ep.bias[n] : 0;
        for (int64_t k = 0; k < K; ++k) acc += (int64_t)(A[m * lda + k] - ep.a_zero_point) * (W[k * N + n] - po.w_zero_point);
        if (ep.relu && acc < 0) acc = 0;
        int32_t got;
        std::memcpy(&got, cs.data() + (m * ldc + n) * 4, 4);
        ok = got == acc;
        EXPECT(ok, "gemm s32 M%lld K%lld N%lld at (%lld,%lld): %d vs %lld", (long long)M, (long long)K, (long long)N,
               (long long)m, (long long)n, got, (long long)acc);
      }
  }
  {  // the same ep expanded once (GemmPrep) gives the same bytes, on every set
    const GemmPrep prep = gemm_prepare(B, ep);
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
      if (!isa_available(isa)) continue;
      std::fill(cv.begin(), cv.end(), 0xAB);
      gemm_u8s8(M, A.data(), lda, B, ep, cv.data(), ldc, 1, isa, nullptr, &prep);
      EXPECT(same(cs, cv), "gemm with GemmPrep != without (%s) M%lld K%lld N%lld w%d e%d", isa_name(isa), (long long)M,
             (long long)K, (long long)N, wmode, emode);
    }
  }
  for (Isa isa : {Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {  // every SIMD set the CPU has
    if (!isa_available(isa)) continue;
    const char* in = isa_name(isa);
    std::fill(cv.begin(), cv.end(), 0xAB);
    gemm_u8s8(M, A.data(), lda, B, ep, cv.data(), ldc, 1, isa);
    EXPECT(same(cs, cv), "gemm scalar != %s M%lld K%lld N%lld w%d e%d", in, (long long)M, (long long)K, (long long)N, wmode,
           emode);
    std::fill(ct.begin(), ct.end(), 0xAB);
    gemm_u8s8(M, A.data(), lda, B, ep, ct.data(), ldc, 3, isa);
    EXPECT(same(cs, ct), "gemm %s 3 threads differs M%lld K%lld N%lld", in, (long long)M, (long long)K, (long long)N);
    static ThreadPool pool(3);
    std::fill(ct.begin(), ct.end(), 0xAB);
    gemm_u8s8(M, A.data(), lda, B, ep, ct.data(), ldc, 1, isa, &pool);
    EXPECT(same(cs, ct), "gemm %s on a 3-thread pool differs M%lld K%lld N%lld", in, (long long)M, (long long)K,
           (long long)N);
  }
}

// gemm_u8s8 over shapes that reach every tile path and its leftovers, all weight and epilogue modes.
static void test_gemm_random() {
  struct Shape { int64_t M, K, N; };
  const Shape shapes[] = {{1, 1, 1},   {3, 5, 7},     {4, 4, 16},  {5, 17, 33}, {13, 96, 40},
                          {64, 100, 48}, {1, 300, 70}, {33, 7, 129}, {49, 32, 49}, {20, 3, 17},
                          // the 4×24 tile (N % 24 == 0, K % 4 == 0) with 0–3 leftover rows, one and many tiles
                          {4, 4, 24},  {13, 48, 144}, {49, 96, 72}, {6, 192, 48}, {8, 20, 24}, {197, 44, 120},
                          // N % 24 == 0 but K % 4 != 0 (4×16 path; avx512vnni: the 4×48 tile's intrinsic form)
                          {9, 46, 48},
                          // avx512vnni: 4×48 tiles with 0–3 leftover rows, groups of 1–2 panels after them, a
                          // ragged last panel, many row blocks (K 1024: 192 rows per block)
                          {7, 64, 96}, {50, 48, 192}, {5, 32, 80}, {11, 16, 112}, {6, 12, 57}, {203, 1024, 48}};
  for (const Shape& sh : shapes)
    for (int wmode = 0; wmode < 3; ++wmode)
      for (int emode = 0; emode < 6; ++emode) gemm_random_case(sh.M, sh.K, sh.N, wmode, emode);
}

// Packing safety proofs and their refusals, the worst case on the exact path, lda checked.
static void test_gemm_edges() {
  {  // a GemmPrep of other weights is refused, naming it
    std::vector<int8_t> W16(8 * 16, 1), W32(8 * 32, 1);
    const PackedB B16 = pack_b(W16.data(), 8, 16, 16, false, {}), B32 = pack_b(W32.data(), 8, 32, 32, false, {});
    GemmEpilogue ep;
    const GemmPrep prep = gemm_prepare(B16, ep);
    std::vector<uint8_t> A(4 * 8, 1);
    std::vector<int32_t> C(4 * 32);
    bool threw = false;
    try {
      gemm_u8s8(4, A.data(), 8, B32, ep, C.data(), 32, 1, Isa::scalar, nullptr, &prep);
    } catch (const std::invalid_argument& e) { threw = std::strstr(e.what(), "GemmPrep") != nullptr; }
    EXPECT(threw, "a GemmPrep made for 16 columns must be refused for 32");
  }
  // force_path=maddubs on unsafe weights is refused; exact path on them is exact at the worst case
  std::vector<int8_t> W(8 * 16, 127);
  bool threw = false;
  PackOptions po;
  po.force_path = 1;
  try {
    pack_b(W.data(), 8, 16, 16, false, po);
  } catch (const std::invalid_argument&) { threw = true; }
  EXPECT(threw, "force maddubs on 127/127 pairs must throw");
  {
    // softmax codes (pair sum ≤ 257) times |v| ≤ 127 are provably safe even at full u8 range
    std::vector<int8_t> V(8 * 16, -127);
    PackOptions pv;
    pv.a_pair_max = 257;
    EXPECT(pack_b(V.data(), 8, 16, 16, false, pv).maddubs_safe, "attn·V bound must prove safety");
    V[0] = -128;
    EXPECT(!pack_b(V.data(), 8, 16, 16, false, pv).maddubs_safe, "-128 with pair sum 257 is not safe");
  }
  PackedB B = pack_b(W.data(), 8, 16, 16, false);
  std::vector<uint8_t> A(8, 255);
  std::vector<int32_t> C(16);
  GemmEpilogue ep;
  for (Isa isa : {Isa::scalar, Isa::avx2}) {
    if (isa == Isa::avx2 && !avx2) continue;
    gemm_u8s8(1, A.data(), 8, B, ep, C.data(), 16, 1, isa);
    EXPECT(C[0] == 8 * 255 * 127 && C[15] == 8 * 255 * 127, "worst case exact: %d", C[0]);
  }
  threw = false;
  try {
    gemm_u8s8(1, A.data(), 4, B, ep, C.data(), 16, 1, Isa::scalar);
  } catch (const std::invalid_argument& e) { threw = std::strstr(e.what(), "lda") != nullptr; }
  EXPECT(threw, "lda < K must throw naming lda");
}

static void test_gemm() {
  test_gemm_random();
  test_gemm_edges();
}

static void test_softmax() {
  for (double S : {0.05, 0.01, 1.0 / 512, 1e-5}) {
    SoftmaxParams p = softmax_params(S);
    for (int64_t D : {1, 7, 8, 49, 64, 100}) {
      const int64_t rows = rnd(1, 6), trows = rnd(1, 3);
      std::vector<int32_t> x(rows * D), tab(trows * D);
      const double span = 12.0 / S;
      for (auto& v : x) v = (int32_t)rnd(-(int64_t)span, (int64_t)span);
      if (rnd(0, 1)) x[0] = INT32_MAX;
      for (auto& v : tab) v = rnd(0, 7) == 0 ? -(1 << 30) : (int32_t)rnd(-(int64_t)(span / 4), (int64_t)(span / 4));
      for (int64_t t = 0; t < trows; ++t) tab[t * D] = 0;  // at least one unmasked entry per row
      const bool use_tab = rnd(0, 1);
      std::vector<uint8_t> ys(rows * D), yv(rows * D);
      softmax_u8(x.data(), rows, D, use_tab ? tab.data() : nullptr, trows, p, ys.data(), Isa::scalar);
      if (avx2) {
        softmax_u8(x.data(), rows, D, use_tab ? tab.data() : nullptr, trows, p, yv.data(), Isa::avx2);
        EXPECT(same(ys, yv), "softmax scalar != avx2 S %g D %lld", S, (long long)D);
      }
      if (x[0] == INT32_MAX) continue;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> z(D);
        double mx = -1e300, sum = 0;
        for (int64_t i = 0; i < D; ++i) {
          int32_t t = use_tab ? tab[(r % trows) * D + i] : 0;
          z[i] = t <= -(1 << 30) ? -1e300 : (x[r * D + i] + (double)t) * S;
          mx = std::max(mx, z[i]);
        }
        for (int64_t i = 0; i < D; ++i) sum += std::exp(z[i] - mx);
        for (int64_t i = 0; i < D; ++i) {
          double want = std::exp(z[i] - mx) / sum * 256.0;
          double got = ys[r * D + i];
          if (z[i] <= -1e299) EXPECT(got == 0, "masked entry must be 0");
          EXPECT(std::fabs(got - std::min(want, 255.0)) <= 2.0, "softmax S %g D %lld: %g vs %g", S, (long long)D, got, want);
        }
      }
    }
  }
}

// The LayerNorm row statistics on zmm (layernorm_row_stats8_avx512) = the scalar ones, field for
// field: random sums, V = 0, V at and around perfect squares and powers of two (the isqrt and the
// 2^61 / isqrt steps), every bit length of V, the largest inputs (|Σx| = 2^30, V = 2^60).
static void test_layernorm_row_stats() {
  if (!isa_available(Isa::avx512vnni)) {
    std::fprintf(stderr, "note: avx512vnni layernorm row stats absent on this CPU\n");
    return;
  }
  std::vector<std::pair<int64_t, uint64_t>> in;  // (Σx, Σx²) with D = 1 ⇒ V = Σx² − (Σx)², or D as given below
  int64_t bad = 0;
  for (int32_t D : {1, 7, 48, 384, 32768}) {
    in.clear();
    const int32_t F = 29 - [&] { int c = 0; while ((int64_t(1) << (2 * c)) < D) ++c; return c; }();
    for (int i = 0; i < 4000; ++i) {
      const int64_t s = rnd(-(int64_t(1) << 30), int64_t(1) << 30);
      // Σx² ≥ (Σx)²/D (Cauchy–Schwarz); pick V = D·Σx² − s² ≥ 0 of every bit length
      const int bits = (int)rnd(0, 60);
      const uint64_t lo = (uint64_t)((__int128)s * s / D + 1), span = bits ? uint64_t(1) << (bits - 1) : 1;
      uint64_t ss = lo + (uint64_t)rnd(0, (int64_t)std::min<uint64_t>(span, (uint64_t(1) << 45) - lo - 1));
      if (i % 5 == 0) {  // Σx² making V a perfect square ± 1 (or a power of two ± 1)
        const uint64_t want = i % 10 == 0 ? (uint64_t)rnd(1, 1 << 30) * (uint64_t)rnd(1, 1 << 30) : uint64_t(1) << rnd(0, 58);
        const __int128 v = (__int128)want + rnd(-1, 1) + (__int128)s * s;
        if (v % D == 0 && v / D < ((__int128)1 << 45)) ss = (uint64_t)(v / D);
      }
      if (i == 0) ss = (uint64_t)((__int128)s * s / D);  // (possibly) V = 0 when D | s²
      if ((__int128)D * ss < (__int128)s * s || ss >= (uint64_t(1) << 45)) continue;
      in.push_back({s, ss});
    }
    // every x = −2^15 (V = 0), x = ±2^15 alternating (V = D²·2^30, 2^60 at D = 32768), one x = 2^15
    in.push_back({-((int64_t)D << 15), (uint64_t)D << 30});
    in.push_back({D % 2 ? int64_t(1) << 15 : 0, (uint64_t)D << 30});
    in.push_back({int64_t(1) << 15, uint64_t(1) << 30});
    while (in.size() % 8) in.push_back({0, 0});
    for (size_t i = 0; i < in.size(); i += 8) {
      alignas(64) int64_t s8[8];
      alignas(64) uint64_t ss8[8];
      for (int j = 0; j < 8; ++j) s8[j] = in[i + j].first, ss8[j] = in[i + j].second;
      alignas(64) int64_t got_f[8], got_sh[8];
      detail::layernorm_row_stats8_avx512(s8, ss8, D, F, got_f, got_sh);
      for (int j = 0; j < 8; ++j) {
        const detail::LnRow want = detail::layernorm_row_stats(s8[j], (int64_t)ss8[j], D, F);
        if (got_f[j] != (int64_t)want.f || got_sh[j] != want.sh) {
          if (bad++ < 5)
            EXPECT(false, "layernorm row stats D %d s %lld ss %llu: f %lld sh %lld, scalar f %u sh %d", D, (long long)s8[j],
                   (unsigned long long)ss8[j], (long long)got_f[j], (long long)got_sh[j], want.f, want.sh);
        }
      }
    }
  }
  EXPECT(bad == 0, "layernorm row stats: %lld rows differ from the scalar form", (long long)bad);
}

static void test_layernorm() {
  for (int32_t D : {1, 7, 16, 17, 31, 32, 33, 48, 96, 384, 1536})
    for (QType in : {QType::s8, QType::s16})
      for (QType out : {QType::s8, QType::u8, QType::s16}) {
        const int64_t rows = rnd(0, 2) ? rnd(1, 4) : rnd(15, 40);  // also across the AVX2 16-row and AVX-512 32-row blocks
        std::vector<float> g(D), b(D);
        for (int32_t c = 0; c < D; ++c) g[c] = (float)(rnd(-200, 200) / 100.0), b[c] = (float)(rnd(-100, 100) / 100.0);
        if (D > 2 && rnd(0, 1)) g[1] = 0.0f;
        // D = 33, s16: a tiny output step gives shifts < 32 (the general SIMD requantization)
        const double os = out == QType::s16 ? (D == 33 ? std::ldexp(1.0, -26) : 1.0 / 4096) : 4.0 / 127;
        const int32_t zp = out == QType::u8 ? 128 : 0;
        LayerNormParams p = layernorm_params(D, g.data(), b.data(), os, zp, out);
        std::vector<int16_t> x(rows * D);
        const int32_t lim = in == QType::s8 ? 127 : 32767;
        for (int64_t r = 0; r < rows; ++r) {
          const int mode = (int)rnd(0, 3);
          for (int32_t c = 0; c < D; ++c) {
            int32_t v = mode == 0 ? 7 : mode == 1 ? (rnd(0, 1) ? lim : -lim - 1) : (int32_t)rnd(-lim - 1, lim);
            if (mode == 3) v = (int32_t)rnd(-lim / 50, lim / 50) + lim / 3;
            x[r * D + c] = (int16_t)v;
          }
        }
        std::vector<int8_t> x8(x.begin(), x.end());
        const void* xin = in == QType::s8 ? (const void*)x8.data() : (const void*)x.data();
        const size_t nb = (size_t)(rows * D * qtype_size(out));
        std::vector<uint8_t> ys(nb), yv(nb);
        layernorm(in, xin, rows, p, ys.data(), Isa::scalar);
        if (avx2) {
          layernorm(in, xin, rows, p, yv.data(), Isa::avx2);
          EXPECT(same(ys, yv), "layernorm scalar != avx2 D %d in %s out %s", D, qtype_name(in), qtype_name(out));
        }
        if (isa_available(Isa::avx512vnni)) {
          std::fill(yv.begin(), yv.end(), 0xAB);
          layernorm(in, xin, rows, p, yv.data(), Isa::avx512vnni);
          EXPECT(same(ys, yv), "layernorm scalar != avx512vnni D %d in %s out %s", D, qtype_name(in), qtype_name(out));
        }
        {  // y_rows: each row's bytes at its permuted row, every kernel set
          std::vector<int32_t> perm((size_t)rows);
          for (int64_t r = 0; r < rows; ++r) perm[(size_t)r] = (int32_t)r;
          for (int64_t r = rows - 1; r > 0; --r) std::swap(perm[(size_t)r], perm[(size_t)rnd(0, r)]);
          const size_t rb = (size_t)(D * qtype_size(out));
          std::vector<uint8_t> want(nb);
          for (int64_t r = 0; r < rows; ++r) std::memcpy(&want[perm[(size_t)r] * rb], &ys[r * rb], rb);
          for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
            if (!isa_available(isa)) continue;
            std::fill(yv.begin(), yv.end(), 0xAB);
            layernorm(in, xin, rows, p, yv.data(), isa, perm.data());
            EXPECT(same(want, yv), "layernorm %s with y_rows != rows moved D %d in %s out %s", isa_name(isa), D, qtype_name(in),
                   qtype_name(out));
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          double mu = 0, var = 0;
          for (int32_t c = 0; c < D; ++c) mu += x[r * D + c];
          mu /= D;
          for (int32_t c = 0; c < D; ++c) var += (x[r * D + c] - mu) * (x[r * D + c] - mu);
          var /= D;
          for (int32_t c = 0; c < D; ++c) {
            double xn = var > 0 ? (x[r * D + c] - mu) / std::sqrt(var) : 0.0;
            double want = sat(std::floor((xn * g[c] + b[c]) / os + 0.5) + zp, out);
            int32_t got = 0;
            if (out == QType::s8) got = ((int8_t*)ys.data())[r * D + c];
            else if (out == QType::u8) got = ys[r * D + c];
            else got = ((int16_t*)ys.data())[r * D + c];
            EXPECT(std::fabs(got - want) <= 1.0, "layernorm D %d in %s out %s: %d vs %g (r %lld c %d x %d g %g b %g xn %g)", D, qtype_name(in), qtype_name(out), got, want, (long long)r, c, x[r * D + c], g[c], b[c], xn);
          }
        }
      }
}

static void test_gelu_relu_lookup() {
  for (double S : {0.1, 0.03, 0.005, 1e-4}) {
    GeluParams p = gelu_params(S);
    std::vector<int8_t> x(256 + 13);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (int8_t)(i < 256 ? i : rnd(-128, 127));
    std::vector<int32_t> ys(x.size()), yv(x.size());
    gelu_ibert_s8(x.data(), (int64_t)x.size(), p, ys.data(), Isa::scalar);
    if (avx2) {
      gelu_ibert_s8(x.data(), (int64_t)x.size(), p, yv.data(), Isa::avx2);
      EXPECT(same(ys, yv), "gelu scalar != avx2 S %g", S);
    }
    for (size_t i = 0; i < x.size(); ++i) {
      double v = x[i] * S, want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      EXPECT(std::fabs(ys[i] * p.out_scale - want) <= 0.02 * std::max(1.0, std::fabs(v)) + 2 * p.out_scale * 128,
             "gelu S %g x %d: %g vs %g", S, x[i], ys[i] * p.out_scale, want);
    }
  }
  uint8_t table[256];
  gelu_table(0.05, 0, QType::s8, 0.03, 10, QType::u8, table);
  for (int q = -128; q < 128; ++q) {
    double v = q * 0.05, g = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    EXPECT(std::fabs((table[(uint8_t)q] - 10) * 0.03 - std::max(-10 * 0.03, std::min(245 * 0.03, g))) <= 0.5 * 0.03 + 1e-9,
           "gelu table q %d", q);
  }
  for (int64_t n : {0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129, 100, 1000}) {
    std::vector<uint8_t> x(n), ys(n), yv(n);
    for (auto& v : x) v = (uint8_t)rnd(0, 255);
    lookup_u8(x.data(), n, table, ys.data(), Isa::scalar);
    for (int64_t i = 0; i < n; ++i) EXPECT(ys[i] == table[x[i]], "lookup");
    if (isa_available(Isa::avx512vnni)) {  // its lookup (vpermi2b where the CPU has VBMI), in place too
      std::vector<uint8_t> yz(x);
      lookup_u8(yz.data(), n, table, yz.data(), Isa::avx512vnni);
      EXPECT(same(ys, yz), "lookup scalar != avx512vnni (n %lld)", (long long)n);
    }
    for (QType t : {QType::s8, QType::u8}) {
      const int32_t zp = t == QType::u8 ? 100 : -3;
      std::vector<uint8_t> rs(n), rv(n);
      relu_q8(t, x.data(), n, zp, rs.data(), Isa::scalar);
      for (int64_t i = 0; i < n; ++i) {
        int32_t xi = t == QType::u8 ? x[i] : (int8_t)x[i], yi = t == QType::u8 ? rs[i] : (int8_t)rs[i];
        EXPECT(yi == std::max(xi, zp), "relu");
      }
      if (avx2) {
        relu_q8(t, x.data(), n, zp, rv.data(), Isa::avx2);
        EXPECT(same(rs, rv), "relu scalar != avx2");
      }
    }
    if (avx2) {
      lookup_u8(x.data(), n, table, yv.data(), Isa::avx2);
      EXPECT(same(ys, yv), "lookup scalar != avx2 n %lld", (long long)n);
    }
  }
}

static void test_add() {
  const QType ts[] = {QType::s8, QType::u8, QType::s16};
  for (QType ta : ts)
    for (QType tb : ts)
      for (QType ty : ts) {
        const int64_t n = rnd(0, 3) ? rnd(1, 70) : rnd(60, 200);  // 1–6 zmm steps, ragged tails
        const double sa = rnd(1, 100) / 1000.0, sb = rnd(1, 100) / 1000.0, sy = rnd(1, 100) / 500.0 * (ty == QType::s16 ? 0.01 : 1);
        const int32_t za = ta == QType::s16 ? 0 : ta == QType::u8 ? (int32_t)rnd(0, 255) : (int32_t)rnd(-128, 127);
        const int32_t zb = tb == QType::s16 ? 0 : tb == QType::u8 ? (int32_t)rnd(0, 255) : (int32_t)rnd(-128, 127);
        const int32_t zy = ty == QType::s16 ? 0 : ty == QType::u8 ? 128 : 0;
        AddParams p = add_params(sa, za, sb, zb, sy, zy, ty);
        std::vector<int16_t> a(n), b(n);
        for (int64_t i = 0; i < n; ++i) {
          a[i] = (int16_t)rnd(qtype_min(ta), qtype_max(ta));
          b[i] = (int16_t)rnd(qtype_min(tb), qtype_max(tb));
        }
        std::vector<int8_t> a8(a.begin(), a.end()), b8(b.begin(), b.end());
        std::vector<uint8_t> au(a.begin(), a.end()), bu(b.begin(), b.end());
        auto ptr = [&](QType t, std::vector<int16_t>& v16, std::vector<int8_t>& v8, std::vector<uint8_t>& vu) -> const void* {
          return t == QType::s16 ? (const void*)v16.data() : t == QType::s8 ? (const void*)v8.data() : (const void*)vu.data();
        };
        const void* pa = ptr(ta, a, a8, au);
        const void* pb = ptr(tb, b, b8, bu);
        std::vector<uint8_t> ys(n * qtype_size(ty)), yv(ys.size());
        add_q(ta, pa, tb, pb, n, p, ty, ys.data(), Isa::scalar);
        if (avx2) {
          add_q(ta, pa, tb, pb, n, p, ty, yv.data(), Isa::avx2);
          EXPECT(same(ys, yv), "add scalar != avx2 %s+%s→%s", qtype_name(ta), qtype_name(tb), qtype_name(ty));
        }
        if (isa_available(Isa::avx512vnni)) {
          std::fill(yv.begin(), yv.end(), 0xAB);
          add_q(ta, pa, tb, pb, n, p, ty, yv.data(), Isa::avx512vnni);
          EXPECT(same(ys, yv), "add scalar != avx512vnni %s+%s→%s n %lld", qtype_name(ta), qtype_name(tb), qtype_name(ty),
                 (long long)n);
        }
        for (int64_t i = 0; i < n; ++i) {
          double want = sat(std::floor(((a[i] - za) * sa + (b[i] - zb) * sb) / sy + 0.5) + zy, ty);
          int32_t got = ty == QType::s16 ? ((int16_t*)ys.data())[i] : ty == QType::s8 ? (int8_t)ys[i] : ys[i];
          // each 15-bit multiplier is within 2^-(shift+1) of its ratio; plus 1 for the two roundings
          double bound = 1.0 + (std::fabs(a[i] - za) + std::fabs(b[i] - zb)) * std::ldexp(1.0, -(p.shift + 1));
          EXPECT(std::fabs(got - want) <= bound, "add %s+%s→%s: %d vs %g", qtype_name(ta), qtype_name(tb), qtype_name(ty), got, want);
        }
      }
}

static void test_misc() {
  for (QType in : {QType::s8, QType::u8, QType::s16})
    for (int64_t C : {1, 8, 13, 96}) {
      const int64_t batch = 2, T = 49;
      std::vector<int16_t> x16(batch * T * C);
      for (auto& v : x16) v = (int16_t)rnd(qtype_min(in), qtype_max(in));
      std::vector<int8_t> x8(x16.begin(), x16.end());
      std::vector<uint8_t> xu(x16.begin(), x16.end());
      const void* xp = in == QType::s16 ? (const void*)x16.data() : in == QType::s8 ? (const void*)x8.data() : (const void*)xu.data();
      const int32_t izp = in == QType::u8 ? 128 : in == QType::s8 ? 3 : 0;
      int32_t m, s;
      quantize_multiplier(1.0 / T * (in == QType::s16 ? 0.01 : 1.0), &m, &s);
      Requant rq;
      rq.mult = &m;
      rq.shift = &s;
      rq.zero_point = 0;
      std::vector<int8_t> ys(batch * C), yv(batch * C);
      avgpool(in, xp, batch, T, C, izp, rq, QType::s8, ys.data(), Isa::scalar);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < C; ++c) {
          double sum = 0;
          for (int64_t t = 0; t < T; ++t) sum += (double)x16[(b * T + t) * C + c] - izp;
          double want = sat(std::floor(sum / T * (in == QType::s16 ? 0.01 : 1.0) + 0.5), QType::s8);
          EXPECT(std::fabs(ys[b * C + c] - want) <= 1, "avgpool %s C %lld: %d vs %g", qtype_name(in), (long long)C, ys[b * C + c], want);
        }
      if (avx2) {
        avgpool(in, xp, batch, T, C, izp, rq, QType::s8, yv.data(), Isa::avx2);
        EXPECT(same(ys, yv), "avgpool scalar != avx2");
      }
    }
  for (QType in : {QType::s8, QType::u8, QType::s16, QType::s32})
    for (int64_t D : {1, 5, 8, 10, 17, 64}) {
      const int64_t rows = 4;
      std::vector<int32_t> x32(rows * D);
      for (auto& v : x32) v = (int32_t)rnd(0, 5) + (in == QType::s8 ? -3 : 0);  // many ties: first index wins
      std::vector<int16_t> x16(x32.begin(), x32.end());
      std::vector<int8_t> x8(x32.begin(), x32.end());
      std::vector<uint8_t> xu(x32.begin(), x32.end());
      const void* xp = in == QType::s32 ? (const void*)x32.data() : in == QType::s16 ? (const void*)x16.data()
                       : in == QType::s8 ? (const void*)x8.data() : (const void*)xu.data();
      std::vector<int64_t> ys(rows), yv(rows);
      argmax(in, xp, rows, D, ys.data(), Isa::scalar);
      for (int64_t r = 0; r < rows; ++r) {
        int64_t best = 0;
        for (int64_t i = 1; i < D; ++i)
          if (x32[r * D + i] > x32[r * D + best]) best = i;
        EXPECT(ys[r] == best, "argmax");
      }
      if (avx2) {
        argmax(in, xp, rows, D, yv.data(), Isa::avx2);
        EXPECT(ys == yv, "argmax scalar != avx2 %s D %lld", qtype_name(in), (long long)D);
      }
    }
}

// The attention exp (qinternal.h attention_exp) over its whole domain u ∈ [0, 31L] for logit scales
// from tiny (pre-shifted) to coarse: non-increasing, exp(0) = P0 >> es, 0 at u = 31L (masks,
// padding), and within δ = 0.5 % of one constant times e^(−u·S') wherever e ≥ 256 (the floors of
// smaller exps are the bound's 2N/E term).
static void test_attention_exp() {
  for (double S : {1e-5, 3e-5, 1e-4, 5e-4, 1e-3, 0.003, 0.01, 0.02, 0.05, 0.1, 0.3, 0.5, 0.69})
    for (int64_t N : {49, 1024}) {
      AttentionParams p;
      attention_set_logit_scale(p, S);
      const int es = detail::attention_exp_shift(N);
      const double Sp = std::ldexp(S, p.sm.pre_shift);
      double lo = 1e300, hi = 0;
      int32_t prev = INT32_MAX;
      bool mono = true;
      for (int32_t u = 0; u <= 31 * p.sm.L; ++u) {
        const int32_t e = detail::attention_exp(u, p, es);
        mono = mono && e <= prev;
        prev = e;
        if (e >= 256) {
          const double r = e / std::exp(-u * Sp);
          lo = std::min(lo, r), hi = std::max(hi, r);
        }
      }
      const int32_t e0 = detail::attention_exp(0, p, es);
      EXPECT(mono, "attention exp not monotone (S %g)", S);
      EXPECT(e0 == (508 * 508 + 132300) >> es && e0 <= std::min<int64_t>(1 << 14, INT32_MAX / (255 * N)),
             "attention exp(0) = %d (S %g N %lld)", e0, S, (long long)N);
      EXPECT(detail::attention_exp(31 * p.sm.L, p, es) == 0, "attention exp at u = 31L must be 0 (S %g)", S);
      EXPECT(std::sqrt(hi / lo) - 1 <= 0.005, "attention exp spread ±%.4f > 0.5 %% (S %g N %lld)", std::sqrt(hi / lo) - 1, S,
             (long long)N);
    }
}

// attention_u8: scalar = AVX2 bit-exactly (odd N and dh, N not a multiple of 8/16, dh 16/32/64,
// masks at −2^30, bias periods shorter than the heads, y_max clamps, zero point edges, all-255
// codes, logit scales needing a pre-shift, ratios whose row shift is < 32), and against float
// attention. Bound: the integer exp is within δ = 0.5 % of one constant times e^x (the base-2
// quadratic ±0.32 %, the floor of x, the rounding of exp_mult; qinternal.h attention_exp), so
// Σ_j |p̂_j − p_j|·|v_j| ≤ 2.02·δ·max|v|; the floors of the exps (< 1 each, exp(0) = E) add
// ≤ 2·N·max|v|/E; the final rounding ≤ 1/2:
//   |y − ratio·Σ_j 256·p_j·(v_j − zp)| ≤ ratio·256·(0.0101 + 2N/E)·max_j|v_j − zp| + 1 before the clamp.
static void test_attention() {
  struct Case { int64_t W, N, H, dh; int32_t zp, y_zp, y_max; bool bias; double S, ratio; int codes; };
  // codes: 0 random, 1 all 255, 2 only 0 or 255, 3 random ≤ 127, 4 only 0 or 127, 5 as 3 with one 128
  // (7-bit codes: what every Swin lowering feeds attention; a u8×s8 q·kᵀ for them was tried and
  // measured no faster, docs/integer-kernels.md)
  for (const Case& cs : {Case{2, 49, 3, 16, 128, 0, 127, true, 0.02, 1.0 / 1024, 0}, Case{1, 7, 1, 1, 0, 3, 255, false, 0.02, 1.0 / 1024, 0},
                         Case{3, 50, 2, 3, 255, 200, 255, true, 0.02, 1.0 / 1024, 0}, Case{1, 1, 4, 32, 17, 0, 63, true, 0.02, 1.0 / 1024, 0},
                         Case{2, 13, 2, 9, 70, 10, 127, false, 0.02, 1.0 / 1024, 0}, Case{1, 49, 6, 32, 60, 0, 255, true, 1e-5, 1.0 / 256, 0},
                         Case{2, 197, 2, 64, 128, 128, 255, false, 0.003, 1.0 / 512, 0}, Case{1, 33, 2, 64, 0, 0, 255, true, 0.3, 1.0 / 700, 2},
                         Case{1, 17, 2, 24, 0, 5, 255, false, 0.01, 1.0 / 900, 1}, Case{1, 20, 1, 8, 100, 50, 255, true, 0.05, 64.0, 0},
                         Case{1, 64, 2, 16, 255, 0, 255, true, 0.001, 1.0 / 1024, 2},
                         // 7-bit codes: random, only 0/127, zero points 0 and 127, one code of 128 in
                         // a head, N not a multiple of 8
                         Case{4, 49, 3, 16, 64, 3, 255, true, 0.02, 1.0 / 1024, 3}, Case{1, 49, 6, 32, 0, 0, 255, true, 0.01, 1.0 / 1024, 4},
                         Case{2, 13, 2, 64, 127, 0, 127, false, 0.005, 1.0 / 512, 4}, Case{1, 50, 3, 16, 70, 9, 255, true, 1e-5, 1.0 / 256, 3},
                         Case{3, 33, 2, 48, 64, 0, 255, true, 0.02, 1.0 / 1024, 5},
                         // the AVX2 short-row q·kᵀ (N ≤ 56) at every column-block count 1…7, N a multiple
                         // of 8 and not, with row shifts < 32 (the general requant)
                         Case{1, 8, 2, 16, 128, 0, 255, true, 0.02, 1.0 / 1024, 0}, Case{2, 20, 2, 16, 100, 50, 255, true, 0.05, 64.0, 0},
                         Case{1, 27, 3, 32, 90, 0, 255, false, 0.01, 1.0 / 512, 0}, Case{2, 41, 2, 32, 128, 0, 255, true, 0.02, 1.0 / 1024, 2},
                         Case{1, 48, 1, 16, 0, 0, 255, true, 0.3, 1.0 / 700, 1}, Case{1, 56, 2, 16, 200, 7, 255, true, 1e-5, 1.0 / 256, 0},
                         Case{1, 15, 2, 64, 64, 0, 255, true, 0.02, 4.0, 3},
                         // row shifts past 62 (a tiny output ratio): the scalar row scale's clamp
                         Case{2, 49, 2, 16, 128, 0, 255, true, 0.02, 1e-9, 0}, Case{1, 35, 1, 32, 90, 7, 255, false, 0.05, 1e-9, 3},
                         // the AVX-512 kernel (a zmm lane per query row): blocks of 16 rows with 0…15
                         // left over, keys in groups of 16 (dh ≤ 32) or 8 (dh ≥ 48), then 4, then single
                         // keys; q·kᵀ in chunks of up to 16 dwords of 4 codes: dh 16, 32, 48 and 64 one
                         // chunk, 80 (16 + 4), 128 (16 + 16) and 256 (4 × 16) several; the last
                         // N % 16 ≤ 8 rows one at a time with the keys in lanes (N = 1, 17, 33, 49, 50,
                         // 56, 65, 130, 197, 200), more of them (N = 13, 15, 41, 63) as a block
                         Case{1, 16, 2, 16, 128, 0, 255, true, 0.02, 1.0 / 1024, 0}, Case{2, 17, 1, 32, 90, 3, 255, true, 0.02, 1.0 / 1024, 3},
                         Case{1, 32, 2, 16, 10, 0, 255, false, 0.05, 64.0, 0}, Case{1, 63, 1, 16, 128, 0, 255, true, 0.02, 1.0 / 1024, 4},
                         Case{1, 65, 2, 16, 128, 0, 255, true, 0.02, 1.0 / 1024, 0},
                         // long rows (N = 80, 130, 200)
                         Case{1, 80, 2, 16, 100, 0, 255, true, 0.02, 1.0 / 1024, 3}, Case{2, 130, 1, 32, 128, 5, 255, false, 0.02, 64.0, 0},
                         Case{1, 200, 1, 48, 64, 0, 255, true, 0.01, 1.0 / 1024, 4},
                         // head dims of several q·kᵀ chunks, blocks and leftover rows (N = 21, 49, 18)
                         Case{2, 21, 2, 80, 200, 0, 255, true, 0.01, 1.0 / 1024, 0}, Case{1, 49, 1, 128, 255, 3, 255, true, 0.005, 1.0 / 1024, 2},
                         Case{1, 18, 1, 256, 0, 0, 255, false, 0.002, 1.0 / 512, 1}}) {
    const int64_t C = cs.H * cs.dh;
    std::vector<uint8_t> qkv((size_t)(cs.W * cs.N * 3 * C));
    for (auto& v : qkv)
      v = cs.codes == 1 ? 255 : cs.codes == 2 ? (rnd(0, 1) ? 255 : 0) : cs.codes == 4 ? (rnd(0, 1) ? 127 : 0)
          : cs.codes >= 3 ? (uint8_t)rnd(0, 127) : (uint8_t)rnd(0, 255);
    if (cs.codes == 5) qkv[(size_t)(cs.N / 2 * 3 * C + C + cs.dh + 1)] = 128;  // a k code of head 1, window 0
    // bias rows: one table per head, one per window, or (odd W) a count N does not divide
    const int64_t brows = !cs.bias ? 0 : cs.W == 3 ? 2 * cs.N + 5 : cs.W > 1 ? cs.W * cs.H * cs.N : cs.N;
    std::vector<int32_t> bias((size_t)(brows * cs.N));
    for (auto& v : bias) v = rnd(0, 9) == 0 ? (rnd(0, 1) ? -(1 << 30) : INT32_MIN) : (int32_t)rnd(-200, 200);
    for (int64_t r = 0; r < brows; ++r) bias[(size_t)(r * cs.N + r % cs.N)] = 0;  // one unmasked entry per row
    AttentionParams p;
    p.W = cs.W, p.N = cs.N, p.H = cs.H, p.dh = cs.dh, p.zp = cs.zp, p.y_zp = cs.y_zp, p.y_max = cs.y_max;
    p.bias = cs.bias ? bias.data() : nullptr;
    p.bias_rows = brows;
    attention_set_logit_scale(p, cs.S);
    const double ratio = cs.ratio;
    quantize_multiplier(ratio, &p.mult, &p.shift);
    // exp(0) as an integer: the polynomial at 0 scaled to ≤ min(2^14, (2^31 − 1)/(255·N))
    int64_t E = 508 * 508 + 132300;
    while (E > std::min<int64_t>(1 << 14, INT32_MAX / (255 * cs.N))) E >>= 1;
    std::vector<uint8_t> ys((size_t)(cs.W * cs.H * cs.N * cs.dh)), yv(ys.size());
    std::vector<uint8_t> scratch(attention_scratch_bytes(cs.N, cs.dh) + 32);
    void* sp = scratch.data() + ((32 - (reinterpret_cast<uintptr_t>(scratch.data()) & 31)) & 31);
    attention_u8(qkv.data(), p, 0, cs.W * cs.H, sp, ys.data(), Isa::scalar);
    if (avx2) {
      // in two ranges, as the executor's threads call it
      attention_u8(qkv.data(), p, 0, 1, sp, yv.data(), Isa::avx2);
      attention_u8(qkv.data(), p, 1, cs.W * cs.H, sp, yv.data(), Isa::avx2);
      EXPECT(same(ys, yv), "attention scalar != avx2 (N %lld dh %lld S %g)", (long long)cs.N, (long long)cs.dh, cs.S);
    }
    if (isa_available(Isa::avx512vnni)) {  // zmm for dh % 16 == 0, the AVX2 kernel otherwise
      // the bias gathered per block, then key-major as attention_q prepares it
      std::vector<int32_t> by_key;
      for (int pass = 0; pass < (cs.bias ? 2 : 1); ++pass) {
        AttentionParams pk = p;
        if (pass) {
          by_key = attention_bias_by_key(bias.data(), brows, cs.N);
          pk.bias_by_key = by_key.data();
          pk.bias_by_key_period = attention_bias_period(cs.N, brows);
        }
        std::fill(yv.begin(), yv.end(), 0xAB);
        attention_u8(qkv.data(), pk, 0, 1, sp, yv.data(), Isa::avx512vnni);
        attention_u8(qkv.data(), pk, 1, cs.W * cs.H, sp, yv.data(), Isa::avx512vnni);
        EXPECT(same(ys, yv), "attention scalar != avx512vnni (N %lld dh %lld S %g, bias %s)", (long long)cs.N,
               (long long)cs.dh, cs.S, !cs.bias ? "none" : pass ? "by key" : "gathered");
      }
    }
    {  // query rows in pieces (AttentionParams::row_begin/row_end, as two threads split one window):
       // the same bytes, every kernel set, the pieces at random cuts (a block of 16 starting anywhere)
      for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
        if (!isa_available(isa)) continue;
        std::vector<uint8_t> got(ys.size(), 0xAB);
        const int64_t a = rnd(0, cs.N), b = rnd(a, cs.N);
        // the AVX-512 kernel with the key-major bias too: a block starting near n16 reads its padding
        const std::vector<int32_t> by_key = cs.bias ? attention_bias_by_key(bias.data(), brows, cs.N) : std::vector<int32_t>{};
        for (const auto& piece : {std::pair<int64_t, int64_t>{0, a}, {a, b}, {b, cs.N}}) {
          AttentionParams pr = p;
          if (cs.bias && isa == Isa::avx512vnni) {
            pr.bias_by_key = by_key.data();
            pr.bias_by_key_period = attention_bias_period(cs.N, brows);
          }
          pr.row_begin = piece.first, pr.row_end = piece.second;
          if (pr.row_end == 0) continue;  // row_end 0 means N
          attention_u8(qkv.data(), pr, 0, cs.W * cs.H, sp, got.data(), isa);
        }
        EXPECT(same(ys, got), "attention %s in row pieces [0, %lld) [%lld, %lld) [%lld, N) != whole (N %lld dh %lld)",
               isa_name(isa), (long long)a, (long long)a, (long long)b, (long long)b, (long long)cs.N, (long long)cs.dh);
      }
    }
    {  // heads merged, rows placed by a random permutation (y_ld, y_rows) or in order: the same
       // bytes at the moved places, every kernel set; a wider row (y_ld > C) leaves the gap alone
      const int64_t R = cs.W * cs.N, C = cs.H * cs.dh;
      std::vector<int32_t> perm((size_t)R);
      for (int64_t i = 0; i < R; ++i) perm[(size_t)i] = (int32_t)i;
      for (int64_t i = R - 1; i > 0; --i) std::swap(perm[(size_t)i], perm[(size_t)rnd(0, i)]);
      for (int mode = 0; mode < 2; ++mode) {
        AttentionParams pm = p;
        pm.y_ld = C + mode;
        pm.y_rows = mode ? perm.data() : nullptr;
        std::vector<uint8_t> want((size_t)(R * pm.y_ld), 0xAB);
        for (int64_t t = 0; t < cs.W * cs.H; ++t)
          for (int64_t i = 0; i < cs.N; ++i) {
            const int64_t w = t / cs.H, h = t % cs.H, row = mode ? perm[(size_t)(w * cs.N + i)] : w * cs.N + i;
            std::memcpy(&want[(size_t)(row * pm.y_ld + h * cs.dh)], &ys[(size_t)((t * cs.N + i) * cs.dh)], (size_t)cs.dh);
          }
        for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni}) {
          if (!isa_available(isa)) continue;
          std::vector<uint8_t> got(want.size(), 0xAB);
          attention_u8(qkv.data(), pm, 0, 1, sp, got.data(), isa);
          attention_u8(qkv.data(), pm, 1, cs.W * cs.H, sp, got.data(), isa);
          EXPECT(same(want, got), "attention %s heads merged (%s) != the [W,H,N,dh] bytes moved (N %lld dh %lld)",
                 isa_name(isa), mode ? "y_rows" : "in order", (long long)cs.N, (long long)cs.dh);
        }
      }
    }
    int64_t bad = 0;
    double worst = 0;
    for (int64_t t = 0; t < cs.W * cs.H; ++t) {
      const int64_t w = t / cs.H, h = t % cs.H;
      const uint8_t* base = qkv.data() + w * cs.N * 3 * C;
      for (int64_t i = 0; i < cs.N; ++i) {
        std::vector<double> z((size_t)cs.N);
        double mx = -1e300, sum = 0;
        const int32_t* tb = cs.bias ? bias.data() + ((t * cs.N + i) % brows) * cs.N : nullptr;
        for (int64_t j = 0; j < cs.N; ++j) {
          double d = 0;
          for (int64_t k = 0; k < cs.dh; ++k)
            d += ((double)base[i * 3 * C + h * cs.dh + k] - cs.zp) * ((double)base[j * 3 * C + C + h * cs.dh + k] - cs.zp);
          const int32_t b = tb ? tb[j] : 0;
          z[(size_t)j] = b <= -(1 << 30) ? -1e300 : (d + b) * cs.S;
          mx = std::max(mx, z[(size_t)j]);
        }
        for (int64_t j = 0; j < cs.N; ++j) sum += std::exp(z[(size_t)j] - mx);
        for (int64_t k = 0; k < cs.dh; ++k) {
          double o = 0, vmax = 0;
          for (int64_t j = 0; j < cs.N; ++j) {
            const double v = (double)base[j * 3 * C + 2 * C + h * cs.dh + k] - cs.zp;
            o += 256.0 * std::exp(z[(size_t)j] - mx) / sum * v;
            vmax = std::max(vmax, std::fabs(v));
          }
          const double want = std::min<double>(cs.y_max, std::max(0.0, o * ratio + cs.y_zp));
          const double got = ys[(size_t)((t * cs.N + i) * cs.dh + k)];
          const double slack = ratio * 256 * (0.0101 + 2.0 * cs.N / (double)E) * vmax;
          worst = std::max(worst, std::fabs(got - want));
          if (std::fabs(got - want) > slack + 1) ++bad;
        }
      }
    }
    EXPECT(bad == 0, "attention vs float: %lld outputs outside the bound (N %lld dh %lld S %g, worst |y − float| %g)", (long long)bad,
           (long long)cs.N, (long long)cs.dh, cs.S, worst);
  }
  bool threw = false;
  try {
    AttentionParams p;
    p.W = 1, p.N = 2000, p.H = 1, p.dh = 4, p.mult = 1 << 30, p.shift = 31;
    attention_set_logit_scale(p, 0.01);
    uint8_t b[8];
    attention_u8(b, p, 0, 1, b, b, Isa::scalar);
  } catch (const std::invalid_argument& e) { threw = std::strstr(e.what(), "N ∈") != nullptr; }
  EXPECT(threw, "attention_u8 must refuse N > kAttentionMaxN naming N");
}

// ThreadPool stall policy: a worker that holds its chunk far beyond the caller's share (here: it
// keeps its chunk until the caller has done every other one, then sleeps longer than the whole job
// took so far plus 5 ms, as a preempted thread would) is counted as a stall, and the next jobs run
// inline on the caller; every item still runs exactly once either way.
static void test_pool_stall() {
  ThreadPool pool(2);
  pool.set_stall_policy(1000000, 10000000000LL, 10000000000LL);  // 1 ms; solo for 10 s (no timing race)
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> worker_in{false};
  std::atomic<int> done{0};
  std::vector<std::atomic<int>> hits(64);
  for (auto& h : hits) h = 0;
  const auto t0 = std::chrono::steady_clock::now();
  pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[(size_t)i]++;
    done += (int)(e - b);
    if (std::this_thread::get_id() != caller) {
      if (!worker_in.exchange(true)) {
        for (int k = 0; k < 5000 && done < 64; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::steady_clock::now() - t0 + std::chrono::milliseconds(5));
      }
    } else {
      // the caller's first chunk waits (≤ 5 s) until the worker holds one
      for (int k = 0; k < 50000 && !worker_in; ++k) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  bool once = true;
  for (auto& h : hits) once = once && h == 1;
  EXPECT(once, "parallel_for ran some item not exactly once");
  EXPECT(worker_in, "the worker never took a chunk (pool not woken?)");
  EXPECT(pool.stalls() == 1, "a 5 ms worker chunk must count as one stall, got %lld", (long long)pool.stalls());
  bool all_caller = true;
  int64_t seen = 0;
  pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
    all_caller = all_caller && std::this_thread::get_id() == caller;
    seen += e - b;
  });
  EXPECT(all_caller && seen == 64, "after a stall the next job must run inline on the caller (%lld items)", (long long)seen);
}

// ThreadPool between runs (a server's requests): a worker idle past its spin sleeps and is counted,
// wake_sleepers() wakes it ahead of a run, and jobs after sleeps still run every item exactly once.
// On Linux with two or more allowed CPUs, a worker woken while the caller is pinned to one CPU runs
// its chunks on another: Linux tends to wake it on the waker's CPU (in a VM a halted vCPU counts as
// preempted), where it would take the caller's time; the pool moves it off (move_off_cpu).
static void test_pool_wake() {
  ThreadPool pool(2);
  const auto wait_asleep = [&] {
    for (int k = 0; k < 2000 && pool.sleeping_workers() == 0; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return pool.sleeping_workers() > 0;
  };
  EXPECT(wait_asleep(), "an idle worker must go to sleep after its spin");
  pool.wake_sleepers();
  EXPECT(pool.sleeping_workers() == 0, "wake_sleepers must wake the sleeping worker (%d still asleep)", pool.sleeping_workers());
  for (int round = 0; round < 12; ++round) {
    wait_asleep();
    if (round % 2) pool.wake_sleepers();
    std::vector<std::atomic<int>> hits(1001);
    for (auto& h : hits) h = 0;
    const auto count = [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) hits[(size_t)i]++; };
    pool.parallel_for_static(1001, 4, count);
    pool.parallel_for(1001, 7, count);
    bool twice = true;
    for (auto& h : hits) twice = twice && h == 2;
    EXPECT(twice, "after a sleep (round %d) some item did not run exactly once per job", round);
  }
#ifdef __linux__
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) {
    std::fprintf(stderr, "note: fewer than 2 allowed CPUs: the worker placement check did not run\n");
    return;
  }
  int cpu = 0;
  while (!CPU_ISSET(cpu, &allowed)) ++cpu;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  EXPECT(sched_setaffinity(0, sizeof one, &one) == 0, "could not pin the test thread to CPU %d", cpu);
  const std::thread::id caller = std::this_thread::get_id();
  // 20 rounds: without the move the worker lands on the caller's CPU in some rounds only, and then
  // runs its chunks there (this test failed in 8 of 18 runs without the move, none with it).
  int worker_chunks = 0, on_callers_cpu = 0;
  for (int round = 0; round < 20; ++round) {
    wait_asleep();
    std::atomic<int> mine{0}, same{0};
    pool.parallel_for(48, 1, [&](int64_t, int64_t) {
      const bool worker = std::this_thread::get_id() != caller;
      bool there = worker && sched_getcpu() == cpu;
      const auto t0 = std::chrono::steady_clock::now();  // ≈ 0.3 ms a chunk: time for the worker to arrive
      while (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(300)) {}
      there = there || (worker && sched_getcpu() == cpu);
      mine += worker;
      same += there;
    });
    worker_chunks += mine;
    on_callers_cpu += same;
  }
  sched_setaffinity(0, sizeof allowed, &allowed);
  EXPECT(worker_chunks > 0, "a woken worker never took a chunk of a 14 ms job in 20 rounds");
  EXPECT(on_callers_cpu == 0, "a woken worker ran %d of its %d chunks on the caller's CPU %d", on_callers_cpu, worker_chunks, cpu);
#endif
}

int main() {
  avx2 = isa_available(Isa::avx2);
  if (!avx2) std::fprintf(stderr, "note: no AVX2 on this CPU: scalar-vs-float checks only\n");
  test_isqrt();
  test_requant();
  test_gemm();
  test_softmax();
  test_attention_exp();
  test_attention();
  test_layernorm_row_stats();
  test_layernorm();
  test_gelu_relu_lookup();
  test_add();
  test_misc();
  test_pool_stall();
  test_pool_wake();
  if (failures) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("qkernels_test: all passed (avx2 %s, avxvnni gemm %s, avx512vnni gemm %s)\n", avx2 ? "compared" : "absent",
              isa_available(Isa::avxvnni) ? "compared" : "absent", isa_available(Isa::avx512vnni) ? "compared" : "absent");
  return 0;
}
