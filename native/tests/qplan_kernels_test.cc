// The integer kernels of matmul_q, quantize and dequantize (swinq/qplan_kernels.h): the scalar
// references against hand values (round half to even, saturation, NaN), and AVX2 = scalar
// bit-exactly on random and edge inputs (odd sizes, tails, extreme zero points, K at its limit);
// and the integer dispatch table q::kernels: every slot filled, each Isa's slot its own kernel.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "../kernels/int/qinternal.h"
#include "swinq/qplan_kernels.h"
#include "test_check.h"

using namespace swinq;
using q::QType;

static void matmul_tests(bool avx2) {
  std::mt19937 rng(42);
  // amask/bmask narrow the codes to what the Swin lowering produces: 7-bit q·kᵀ, softmax codes ·
  // 7-bit v, a ≤ 127 with full 8-bit b
  struct Shape { int64_t M, K, N; bool tb, bu8; int32_t za, zb; uint8_t amask = 255, bmask = 255; };
  std::vector<Shape> shapes = {{1, 1, 1, false, true, 0, 0},      {5, 17, 9, true, false, 255, -128},
                               {49, 49, 32, false, true, 0, 128}, {49, 32, 49, true, true, 128, 128},
                               {3, 31, 3, false, false, 255, 127}, {2, 32768, 5, true, true, 255, 0},
                               {49, 16, 49, true, true, 60, 70, 127, 127},  {49, 49, 16, false, true, 0, 64, 255, 127},
                               {7, 13, 21, true, true, 127, 0, 127, 255},   {9, 5, 33, false, true, 3, 250, 127, 255},
                               {4, 64, 16, false, false, 0, -3, 127, 255},  {1, 3, 1, true, true, 1, 2, 1, 1},
                               {33, 49, 17, false, true, 17, 0, 255, 63},   {6, 2, 8, false, false, 0, 0}};
  for (const Shape& s : shapes) {
    std::vector<uint8_t> a((size_t)(s.M * s.K));
    std::vector<uint8_t> b((size_t)(s.K * s.N));
    for (auto& v : a) v = (uint8_t)(rng() & s.amask);
    for (auto& v : b) v = (uint8_t)(rng() & s.bmask);
    if (s.amask == 127 && !a.empty()) a[0] = 127;  // the bound's extremes are present
    if (s.bmask == 255 && !b.empty()) b[0] = 255, b[b.size() - 1] = 0;
    if (s.K == 32768) {  // the extreme: every product at its maximum magnitude
      std::fill(a.begin(), a.end(), 0);
      std::fill(b.begin(), b.end(), 255);
    }
    std::vector<int32_t> c0((size_t)(s.M * s.N)), c1(c0.size());
    q::matmul_u8x8_s32_scalar(a.data(), s.za, b.data(), s.bu8, s.zb, s.tb, s.M, s.K, s.N, c0.data());
    // the reference against an int64 sum of the definition at a few entries
    for (int64_t m : {int64_t(0), s.M - 1})
      for (int64_t n : {int64_t(0), s.N - 1}) {
        int64_t ref = 0;
        for (int64_t k = 0; k < s.K; ++k) {
          const uint8_t bb = b[(size_t)(s.tb ? n * s.K + k : k * s.N + n)];
          ref += ((int64_t)a[(size_t)(m * s.K + k)] - s.za) * ((s.bu8 ? (int64_t)bb : (int64_t)(int8_t)bb) - s.zb);
        }
        CHECK(c0[(size_t)(m * s.N + n)] == ref, "M %lld K %lld N %lld", (long long)s.M, (long long)s.K, (long long)s.N);
      }
    if (s.K == 32768) CHECK(c0[0] == -255 * 255 * 32768);
    if (!avx2) continue;
    q::matmul_u8x8_s32(a.data(), s.za, b.data(), s.bu8, s.zb, s.tb, s.M, s.K, s.N, c1.data(), Isa::avx2);
    CHECK(c0 == c1, "avx2 != scalar: M %lld K %lld N %lld tb %d", (long long)s.M, (long long)s.K, (long long)s.N,
          (int)s.tb);
  }
}

static size_t qsize(QType t) { return t == QType::s32 ? 4 : t == QType::s16 ? 2 : 1; }
static int64_t qget(QType t, const std::vector<uint8_t>& y, size_t i) {
  switch (t) {
    case QType::s8: return (int8_t)y[i];
    case QType::u8: return y[i];
    case QType::s16: { int16_t v; std::memcpy(&v, y.data() + 2 * i, 2); return v; }
    default: { int32_t v; std::memcpy(&v, y.data() + 4 * i, 4); return v; }
  }
}

static void quantize_tests(bool avx2) {
  // hand values at scale 0.5, zero point 3 (s8): x/scale = 2.5 → 2 (half to even), −2.5 → −2,
  // 3.5 → 4, NaN → 0, ±inf and huge values saturate
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> xs = {1.25f, -1.25f, 1.75f, nan, inf, -inf, 1e30f, -1e30f, 0.0f, -0.0f, 62.0f, -65.5f};
  const std::vector<int64_t> want = {5, 1, 7, 3, 127, -128, 127, -128, 3, 3, 127, -128};
  std::vector<uint8_t> y(xs.size());
  q::quantize_f32_q_scalar(xs.data(), QType::s8, y.data(), 0, (int64_t)xs.size(), 0.5f, 3);
  for (size_t i = 0; i < xs.size(); ++i) CHECK(qget(QType::s8, y, i) == want[i], "quantize hand value %zu", i);
  // dequantize hand values: (x − zp)·scale and per-channel scales
  const int8_t xq[4] = {-128, 127, 3, 0};
  float yd[4];
  q::dequantize_q_f32_scalar(QType::s8, xq, yd, 0, 4, 3, 0.5f, nullptr, 1);
  CHECK(yd[0] == -65.5f && yd[1] == 62.0f && yd[2] == 0.0f && yd[3] == -1.5f);
  const float sc[2] = {1.0f, 2.0f};
  q::dequantize_q_f32_scalar(QType::s8, xq, yd, 0, 4, 0, 0.5f, sc, 2);
  CHECK(yd[0] == -128.0f && yd[1] == 254.0f && yd[2] == 3.0f && yd[3] == 0.0f);

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-300.0f, 300.0f);
  for (QType t : {QType::s8, QType::u8, QType::s16, QType::s32}) {
    const int32_t lo = q::qtype_min(t), hi = q::qtype_max(t);
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(9), int64_t(31), int64_t(1000)}) {
      for (int32_t zp : {lo, 0 > lo ? 0 : lo, hi, lo / 2 + hi / 2 + 1}) {
        for (float scale : {1.0f, 0.37f, 3e-3f, 7.0f}) {
          std::vector<float> x((size_t)n);
          for (auto& v : x) v = u(rng) * (rng() % 4 == 0 ? 1000.0f : 1.0f);
          // ties at ±k.5 (negative rounding), NaN, infinities
          for (int64_t i = 0; i < n; i += 5) x[(size_t)i] = (float)((int)(rng() % 41) - 20) * scale + 0.5f * scale;
          if (n > 2) x[1] = nan, x[2] = (rng() & 1) ? inf : -inf;
          std::vector<uint8_t> y0((size_t)n * qsize(t)), y1(y0.size());
          // an odd start: the AVX2 blocks begin anywhere
          const int64_t i0 = n > 3 ? 1 : 0;
          q::quantize_f32_q_scalar(x.data(), t, y0.data(), i0, n, scale, zp);
          for (int64_t i = i0; i < n; ++i) {
            const int64_t v = qget(t, y0, (size_t)i);
            CHECK(v >= lo && v <= hi);
            if (std::isnan(x[(size_t)i])) CHECK(v == zp);
          }
          // dequantize the codes back: per-tensor and per-channel
          std::vector<float> d0((size_t)n), d1((size_t)n);
          const float scs[3] = {0.5f, 2.0f, 1e-3f};
          q::dequantize_q_f32_scalar(t, y0.data(), d0.data(), i0, n, zp, scale, nullptr, 1);
          for (int64_t i = i0; i < n; ++i)
            CHECK(d0[(size_t)i] == (float)(qget(t, y0, (size_t)i) - zp) * scale, "dequantize %lld", (long long)i);
          if (!avx2) continue;
          q::quantize_f32(x.data(), t, y1.data(), i0, n, scale, zp, Isa::avx2);
          CHECK(y0 == y1, "quantize avx2 != scalar: type %d n %lld zp %d scale %g", (int)t, (long long)n, zp,
                (double)scale);
          q::dequantize_f32(t, y0.data(), d1.data(), i0, n, zp, scale, nullptr, 1, Isa::avx2);
          CHECK(std::memcmp(d0.data(), d1.data(), d0.size() * 4) == 0, "dequantize avx2 != scalar: type %d n %lld",
                (int)t, (long long)n);
          q::dequantize_q_f32_scalar(t, y0.data(), d0.data(), i0, n, zp, scale, scs, 3);
          q::dequantize_f32(t, y0.data(), d1.data(), i0, n, zp, scale, scs, 3, Isa::avx2);
          CHECK(std::memcmp(d0.data(), d1.data(), d0.size() * 4) == 0, "per-channel dequantize differs");
        }
      }
    }
  }
}

// Every slot of q::Kernels, so a new slot without its test line fails to compile (static_assert).
#define SWINQ_Q_KERNEL_SLOTS(X)                                                                             \
  X(requantize) X(gemm) X(gemm_sparse) X(count_nonzero) X(sparse_max_density) X(matmul) X(quantize) X(dequantize) X(softmax) X(attention) X(layernorm) \
  X(gelu_ibert) X(lookup) X(relu) X(add) X(avgpool) X(argmax)
#define SWINQ_COUNT_SLOT(s) +1
static_assert(sizeof(q::Kernels) == (0 SWINQ_Q_KERNEL_SLOTS(SWINQ_COUNT_SLOT)) * sizeof(void (*)()),
              "a q::Kernels slot is missing from SWINQ_Q_KERNEL_SLOTS");

static void table_tests(bool avx2) {
  const q::Kernels& s = q::kernels(Isa::scalar);
#define SWINQ_CHECK_SCALAR_SLOT(f) CHECK(s.f != nullptr, "q::kernels(scalar)." #f " is null");
  SWINQ_Q_KERNEL_SLOTS(SWINQ_CHECK_SCALAR_SLOT)
  CHECK(s.quantize == &q::quantize_f32_q_scalar && s.dequantize == &q::dequantize_q_f32_scalar &&
            s.matmul == &q::matmul_u8x8_s32_scalar,
        "q::kernels(scalar) must hold the scalar references");
  if (!avx2) {  // a CPU without AVX2: asking for its table is refused with a clear message
    bool threw = false;
    try {
      q::kernels(Isa::avx2);
    } catch (const std::invalid_argument& e) { threw = std::strstr(e.what(), "AVX2") != nullptr; }
    CHECK(threw, "q::kernels(avx2) on a CPU without AVX2 must throw naming AVX2");
    return;
  }
  const q::Kernels& v = q::kernels(Isa::avx2);
#define SWINQ_CHECK_AVX2_SLOT(f)                                                    \
  CHECK(v.f != nullptr && (v.f != s.f || std::string(#f) == "sparse_max_density"), \
        "q::kernels(avx2)." #f " must be set and differ from the scalar kernel");
  SWINQ_Q_KERNEL_SLOTS(SWINQ_CHECK_AVX2_SLOT)
  CHECK(v.quantize == &q::quantize_f32_q_avx2 && v.dequantize == &q::dequantize_q_f32_avx2 &&
            v.matmul == &q::matmul_u8x8_s32_4x16_avx2,
        "q::kernels(avx2) must hold the AVX2 kernels");
  CHECK(&q::kernels(Isa::scalar) == &s && &q::kernels(Isa::avx2) == &v, "q::kernels must return one table per Isa");
  // a set the CPU lacks: q::kernels refuses it, naming what is missing
  auto refuses = [](Isa isa) {
    bool threw = false;
    try {
      q::kernels(isa);
    } catch (const std::invalid_argument& e) { threw = std::strstr(e.what(), "this CPU lacks") != nullptr; }
    return threw;
  };
  // avxvnni: the AVX2 table with the VEX-vpdpbusd GEMM, or a refusal
  if (!isa_available(Isa::avxvnni)) {
    CHECK(refuses(Isa::avxvnni), "q::kernels(avxvnni) on a CPU without it must throw naming what is missing");
  } else {
    const q::Kernels& w = q::kernels(Isa::avxvnni);
    CHECK(w.gemm == &q::detail::gemm_u8s8_q_avxvnni, "q::kernels(avxvnni).gemm must be the VEX vpdpbusd GEMM");
#define SWINQ_CHECK_AVXVNNI_SLOT(f) \
  CHECK(std::string(#f) == "gemm" || w.f == v.f, "q::kernels(avxvnni)." #f " must be the AVX2 kernel");
    SWINQ_Q_KERNEL_SLOTS(SWINQ_CHECK_AVXVNNI_SLOT)
#undef SWINQ_CHECK_AVXVNNI_SLOT
  }
  // avx512vnni: the AVX2 table with its own GEMM, or a refusal
  if (!isa_available(Isa::avx512vnni)) {
    CHECK(refuses(Isa::avx512vnni), "q::kernels(avx512vnni) on a CPU without it must throw naming what is missing");
    return;
  }
  const q::Kernels& z = q::kernels(Isa::avx512vnni);
  CHECK(z.gemm != v.gemm && z.gemm != nullptr, "q::kernels(avx512vnni).gemm must be its own");
  CHECK(z.attention == &q::detail::attention_u8s32_u8_avx512vnni, "q::kernels(avx512vnni).attention must be its own");
  CHECK(z.lookup == (cpu_features().avx512vbmi ? &q::detail::lookup_u8_avx512vbmi : v.lookup),
        "q::kernels(avx512vnni).lookup: the VBMI kernel exactly when the CPU has VBMI");
#define SWINQ_CHECK_VNNI_SLOT(f)                                                  \
  CHECK(std::string(#f) == "gemm" || std::string(#f) == "lookup" || std::string(#f) == "attention" ||        \
            std::string(#f) == "layernorm" || std::string(#f) == "sparse_max_density" ||                      \
            std::string(#f) == "gemm_sparse" || std::string(#f) == "add" || z.f == v.f, \
        "q::kernels(avx512vnni)." #f " must be the AVX2 kernel");
  SWINQ_Q_KERNEL_SLOTS(SWINQ_CHECK_VNNI_SLOT)
}

int main() {
  const bool avx2 = isa_available(Isa::avx2);
  table_tests(avx2);
  matmul_tests(avx2);
  quantize_tests(avx2);
  if (!avx2) std::printf("qplan_kernels_test: no AVX2 on this CPU, scalar references only\n");
  return swinq_test::finish("qplan_kernels_test");
}
