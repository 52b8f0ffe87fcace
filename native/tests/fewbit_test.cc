// Few-bit backward: DP == brute force on coarse grids, known optimum, codec round trips,
// scalar == AVX2 bit for bit, edge inputs, argument checks.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/fewbit.h"
#include "swinq/kernels_f32.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;


// All placements of k-1 borders on the inner points of an n-cell grid; J with optimal levels.
static double brute_force(const std::string& fn, int bits, const FewbitOptions& o, std::vector<double>* best_b) {
  const int k = 1 << bits, n = o.grid;
  std::vector<int> idx(k - 1);
  for (int i = 0; i < k - 1; ++i) idx[i] = i + 1;
  double best = std::numeric_limits<double>::infinity();
  std::vector<double> b(k - 1), lv;
  for (;;) {
    const double lo = o.fold ? 0.0 : o.lo;  // a folded problem lives on [0, hi]
    for (int i = 0; i < k - 1; ++i) b[i] = lo + (o.hi - lo) * ((double)idx[i] / n);
    const double j = fewbit_fit_levels(fn, b, o, &lv);
    if (j < best) best = j, *best_b = b;
    int p = k - 2;  // next combination
    while (p >= 0 && idx[p] == n - 1 - (k - 2 - p)) --p;
    if (p < 0) break;
    ++idx[p];
    for (int q = p + 1; q < k - 1; ++q) idx[q] = idx[q - 1] + 1;
  }
  return best;
}

static void test_dp_equals_brute_force() {
  struct Case { const char* fn; int bits; int grid; FewbitWeight w; double lo, hi; bool fold = false; };
  const Case cases[] = {
      {"gelu", 1, 40, FewbitWeight::uniform, -6, 6},   {"gelu", 2, 24, FewbitWeight::uniform, -6, 6},
      {"tanh", 2, 24, FewbitWeight::normal, -5, 5},    {"silu", 3, 14, FewbitWeight::uniform, -8, 8},
      {"sigmoid", 3, 13, FewbitWeight::normal, -6, 6}, {"softsign", 2, 21, FewbitWeight::uniform, -5, 5},
      {"hardswish", 2, 20, FewbitWeight::uniform, -5, 5}, {"mish", 4, 18, FewbitWeight::normal, -6, 6},
      {"elu", 2, 22, FewbitWeight::normal, -4, 3},
      {"tanh", 2, 22, FewbitWeight::normal, -5, 5, true}, {"softsign", 3, 13, FewbitWeight::uniform, -6, 6, true},
  };
  for (const Case& c : cases) {
    FewbitOptions o;
    o.grid = c.grid, o.weight = c.w, o.lo = c.lo, o.hi = c.hi, o.polish = false, o.fold = c.fold;
    auto t = fewbit_table(c.fn, c.bits, o);
    std::vector<double> bb;
    const double bf = brute_force(c.fn, c.bits, o, &bb);
    CHECK(std::fabs(t->error - bf) <= 1e-12 * std::max(1.0, bf), "%s b%d: dp J=%.15g brute force J=%.15g", c.fn, c.bits,
          t->error, bf);
    // polish never makes J worse
    o.polish = true;
    auto tp = fewbit_table(c.fn, c.bits, o);
    CHECK(tp->error <= t->error + 1e-15, "%s b%d: polish made J worse %.15g > %.15g", c.fn, c.bits, tp->error, t->error);
  }
}

static void test_known_optimum() {
  // 3-bit GELU, uniform weight on [-10, 10]: the reference note's independent DP gives
  // borders ±2.398078, ±0.711092, ±0.326316, 0 and J* = 1.18983e-2.
  FewbitOptions o;
  o.lo = -10, o.hi = 10;
  auto t = fewbit_table("gelu", 3, o);
  const double want[7] = {-2.398078, -0.711092, -0.326316, 0, 0.326316, 0.711092, 2.398078};
  CHECK(t->borders.size() == 7 && t->levels.size() == 8, "gelu3 sizes");
  for (int i = 0; i < 7; ++i) CHECK(std::fabs(t->borders[i] - want[i]) < 2e-6, "gelu3 border %d = %.7f", i, t->borders[i]);
  CHECK(std::fabs(t->error - 1.18983e-2) < 1e-6, "gelu3 J = %.8g", t->error);
  // Stationarity: f'(s_i) = (l_i + l_{i+1}) / 2.
  for (int i = 0; i < 7; ++i) {
    const double d = fewbit_eval_deriv("gelu", t->borders[i]);
    CHECK(std::fabs(d - 0.5 * (t->levels[i] + t->levels[i + 1])) < 1e-7, "gelu3 stationarity at border %d", i);
  }
  // More bits never hurt; exact functions have error 0.
  double prev = 1e300;
  for (int b = 1; b <= 4; ++b) {
    auto tb = fewbit_table("silu", b, {});
    CHECK(tb->error < prev, "silu error not decreasing in bits at %d", b);
    prev = tb->error;
  }
  for (const char* fn : {"relu", "leaky_relu", "relu6", "hardtanh", "hardsigmoid", "threshold"}) {
    auto tb = fewbit_table(fn, 1, {});
    CHECK(tb->exact && tb->error == 0, "%s should be exact", fn);
    // the table's J by quadrature is ~0 too (borders on the kinks)
    std::vector<double> per_interval(1, tb->levels[0]);  // interval i has code Σ_{j<i} steps[j]
    int code = 0;
    for (size_t i = 0; i < tb->borders.size(); ++i) per_interval.push_back(tb->levels[code += tb->steps[i]]);
    const double j = fewbit_objective(fn, tb->borders, per_interval, {});
    CHECK(j < 1e-15, "%s objective %.3g", fn, j);
  }
}

static void test_quadrature_coarse_cells() {
  // A wide domain on a coarse grid (cells 31 wide) must integrate the O(1)-wide GELU' feature as
  // accurately as a fine grid: the quadrature refines adaptively inside cells.
  const std::vector<double> b = {-2.4, -0.7, -0.33, 0, 0.33, 0.7, 2.4};
  const std::vector<double> l = {0, -0.09, 0.125, 0.372, 0.628, 0.875, 1.089, 1};
  FewbitOptions coarse, fine;
  coarse.lo = fine.lo = -1000, coarse.hi = fine.hi = 1000;
  coarse.grid = 64, fine.grid = 16384;
  for (auto w : {FewbitWeight::uniform, FewbitWeight::normal}) {
    coarse.weight = fine.weight = w;
    const double jc = fewbit_objective("gelu", b, l, coarse), jf = fewbit_objective("gelu", b, l, fine);
    CHECK(std::fabs(jc - jf) <= 1e-10 * jf, "coarse-grid quadrature %.15g vs fine %.15g", jc, jf);
  }
}

static void test_fold() {
  for (const char* fn : {"tanh", "sigmoid", "softsign"}) {
    for (auto w : {FewbitWeight::uniform, FewbitWeight::normal}) {
      for (int bits = 1; bits <= 4; ++bits) {
        FewbitOptions o, f;
        o.weight = f.weight = w;
        f.fold = true;
        auto tu = fewbit_table(fn, bits, o), tf = fewbit_table(fn, bits, f);
        CHECK(tf->fold && tf->borders.front() >= 0, "%s b%d: folded borders on the half-line", fn, bits);
        CHECK(tf->error < tu->error, "%s b%d w%d: fold J %.6g not below interval J %.6g", fn, bits, (int)w, tf->error, tu->error);
        // The same q written as an unfolded table (mirrored borders and levels) has the same J.
        std::vector<double> b, l;
        for (int i = (int)tf->borders.size() - 1; i >= 0; --i) b.push_back(-tf->borders[i]), l.push_back(tf->levels[i + 1]);
        l.push_back(tf->levels[0]);
        for (double s : tf->borders) b.push_back(s);
        for (size_t i = 1; i < tf->levels.size(); ++i) l.push_back(tf->levels[i]);
        const double j = fewbit_objective(fn, b, l, o);
        CHECK(std::fabs(j - tf->error) <= 1e-9 * tf->error, "%s b%d: unfolded J %.12g != folded J %.12g", fn, bits, j, tf->error);
        if (w == FewbitWeight::normal && bits == 3)
          std::printf("fold %s 3 bits normal: J %.4g vs intervals %.4g\n", fn, tf->error, tu->error);
      }
    }
  }
  bool threw = false;
  try { FewbitOptions f; f.fold = true; fewbit_table("gelu", 2, f); } catch (const std::invalid_argument& e) { threw = std::string(e.what()).find("even") != std::string::npos; }
  CHECK(threw, "fold must refuse gelu");
  threw = false;
  try { FewbitOptions f; f.fold = true; f.lo = -1, f.hi = 3; fewbit_table("tanh", 2, f); } catch (const std::invalid_argument& e) { threw = std::string(e.what()).find("symmetric") != std::string::npos; }
  CHECK(threw, "fold must refuse an asymmetric domain");
}

static FewbitCodec index_codec(const FewbitCodec& c) {  // levels[i] = i: decode returns the code
  FewbitCodec d = c;
  for (int i = 0; i < 16; ++i) d.levels[i] = (float)i;
  return d;
}

static uint32_t ref_code(const FewbitCodec& c, float x) {
  if (c.fold) x = std::fabs(x);
  int acc = 0;
  for (int i = 0; i < c.nborders; ++i)
    if (x > c.borders[i]) acc += c.steps[i];
  return (uint32_t)acc;
}

static void test_codec() {
  const bool avx2 = isa_available(Isa::avx2);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 3.f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float denorm = std::numeric_limits<float>::denorm_min();
  for (int bits = 1; bits <= 4; ++bits) {
    for (const char* fn : {"gelu", "tanh", "relu6", "relu", "sigmoid/fold"}) {
      FewbitOptions fo;
      fo.fold = std::string(fn) == "sigmoid/fold";
      auto t = fewbit_table(fo.fold ? "sigmoid" : fn, bits, fo);
      const FewbitCodec c = fewbit_codec(*t);
      const FewbitCodec ci = index_codec(c);
      for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1001}) {
        std::vector<float> x(n);
        for (size_t i = 0; i < n; ++i) {
          const int r = (int)(rng() % 10);
          if (r == 0 && c.nborders) x[i] = c.borders[rng() % c.nborders];  // exactly on a border
          else if (r == 1) { const float e[] = {inf, -inf, nan, denorm, -denorm, 0.f, -0.f, 1e30f, -1e30f}; x[i] = e[rng() % 9]; }
          else x[i] = nd(rng);
        }
        const size_t bytes = fewbit_packed_bytes(n, bits);
        // sentinel bytes after the buffer catch overruns
        std::vector<uint8_t> cs(bytes + 8, 0xA5), cv(bytes + 8, 0x5A);
        fewbit_encode_f32_scalar(c, x.data(), n, cs.data());
        std::vector<float> ones(n, 1.f), codes(n + 1, -1.f), g(n), gs(n + 1, 7.f), gv(n + 1, 7.f);
        fewbit_decode_mul_f32_scalar(ci, cs.data(), ones.data(), n, codes.data());
        for (size_t i = 0; i < n; ++i)
          CHECK(codes[i] == (float)ref_code(c, x[i]), "%s b%d n=%zu i=%zu x=%g: code %g want %u", fn, bits, n, i, x[i],
                codes[i], ref_code(c, x[i]));
        CHECK(codes[n] == -1.f, "decode wrote past n");
        for (size_t i = bytes; i < bytes + 8; ++i) CHECK(cs[i] == 0xA5, "scalar encode wrote past the buffer");
        if ((n * bits) % 8) CHECK((cs[bytes - 1] >> ((n * bits) % 8)) == 0, "unused high bits not zero");
        for (size_t i = 0; i < n; ++i) g[i] = nd(rng);
        fewbit_decode_mul_f32_scalar(c, cs.data(), g.data(), n, gs.data());
        for (size_t i = 0; i < n; ++i)
          CHECK(gs[i] == g[i] * c.levels[ref_code(c, x[i])], "decode_mul %s b%d i=%zu", fn, bits, i);
        if (!avx2) continue;
        fewbit_encode_f32_avx2(c, x.data(), n, cv.data());
        CHECK(std::memcmp(cs.data(), cv.data(), bytes) == 0, "%s b%d n=%zu: avx2 codes differ from scalar", fn, bits, n);
        for (size_t i = bytes; i < bytes + 8; ++i) CHECK(cv[i] == 0x5A, "avx2 encode wrote past the buffer");
        fewbit_decode_mul_f32_avx2(c, cs.data(), g.data(), n, gv.data());
        CHECK(std::memcmp(gs.data(), gv.data(), (n + 1) * sizeof(float)) == 0, "%s b%d n=%zu: avx2 grad differs", fn, bits, n);
      }
    }
  }
  // Decoding arbitrary bytes is safe and identical on both paths (every code has a level).
  for (int bits = 1; bits <= 4; ++bits) {
    FewbitTable t;
    t.bits = bits;
    for (int i = 0; i < (1 << bits) - 1; ++i) t.borders.push_back(i), t.steps.push_back(1);
    for (int i = 0; i < (1 << bits); ++i) t.levels.push_back(0.5 * i - 1);
    const FewbitCodec c = fewbit_codec(t);
    const size_t n = 77;
    std::vector<uint8_t> codes(fewbit_packed_bytes(n, bits));
    for (auto& b : codes) b = (uint8_t)rng();
    std::vector<float> go(n), a(n), b(n);
    for (auto& v : go) v = nd(rng);
    go[3] = nan, go[4] = -inf, go[5] = denorm;
    fewbit_decode_mul_f32_scalar(c, codes.data(), go.data(), n, a.data());
    if (avx2) {
      fewbit_decode_mul_f32_avx2(c, codes.data(), go.data(), n, b.data());
      CHECK(std::memcmp(a.data(), b.data(), n * 4) == 0, "b%d: random bytes decode differently", bits);
    }
  }
}

static void test_edges() {
  // Ties go left; NaN and -inf get 0, +inf the top code; bands are open on both sides.
  auto relu = fewbit_codec(*fewbit_table("relu", 1, {}));
  auto relu6 = fewbit_codec(*fewbit_table("relu6", 1, {}));
  CHECK(ref_code(relu, 0.f) == 0 && ref_code(relu, -0.f) == 0, "relu'(0) must be 0");
  CHECK(ref_code(relu, std::numeric_limits<float>::denorm_min()) == 1, "relu: +denormal is > 0");
  CHECK(ref_code(relu6, 6.f) == 0 && ref_code(relu6, std::nextafter(6.f, 0.f)) == 1 && ref_code(relu6, 0.f) == 0,
        "relu6 band must be (0, 6)");
  auto g = fewbit_codec(*fewbit_table("gelu", 3, {}));
  CHECK(ref_code(g, std::numeric_limits<float>::quiet_NaN()) == 0, "NaN -> 0");
  CHECK(ref_code(g, -INFINITY) == 0 && ref_code(g, INFINITY) == 7, "-inf -> 0, +inf -> 7");
  CHECK(ref_code(g, g.borders[2]) == 2, "x on border 2 -> code 2");
  // The dispatchers check sizes.
  std::vector<float> x(10, 1.f), y(10);
  std::vector<uint8_t> codes(fewbit_packed_bytes(10, 3));
  bool threw = false;
  try { fewbit_encode(g, x.data(), 10, codes.data(), codes.size() - 1); } catch (const std::invalid_argument&) { threw = true; }
  CHECK(threw, "encode must refuse a short codes buffer");
  threw = false;
  try { fewbit_decode_mul(g, codes.data(), codes.size() + 1, x.data(), 10, y.data()); } catch (const std::invalid_argument&) { threw = true; }
  CHECK(threw, "decode must refuse a codes buffer of the wrong size");
  auto expect_throw = [](auto fn, const char* what, const char* needle) {
    try {
      fn();
      CHECK(false, "%s: did not throw", what);
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(needle) != std::string::npos, "%s: message '%s' lacks '%s'", what, e.what(), needle);
    }
  };
  expect_throw([] { fewbit_table("gelu", 5, {}); }, "bits 5", "bits");
  expect_throw([] { FewbitTable t; t.bits = 2; t.borders = {0, 1, 2, 3}; t.steps = {1, 1, 1, 1}; t.levels = {0, 1, 2, 3};
                    fewbit_codec(t); }, "too many borders", "do not fit");
  expect_throw([] { FewbitTable t; t.bits = 1; t.borders = {1, 0}; t.steps = {1, -1}; t.levels = {0, 1};
                    fewbit_codec(t); }, "unordered band", "band");
  expect_throw([] { fewbit_table("nope", 2, {}); }, "unknown fn", "unknown function 'nope'");
  expect_throw([] { FewbitOptions o; o.lo = 3, o.hi = -3; fewbit_table("gelu", 2, o); }, "domain", "domain");
  expect_throw([] { FewbitOptions o; o.weight = FewbitWeight::histogram; o.hist_edges = {0, 1}; o.hist_counts = {1, 2};
                    fewbit_table("gelu", 2, o); }, "histogram", "counts");
  expect_throw([] { FewbitOptions o; o.grid = 3; fewbit_table("gelu", 2, o); }, "grid", "grid");
}

static void test_histogram_and_params() {
  // A histogram of a standard normal on [-6, 6] gives nearly the normal-weight table.
  FewbitOptions h;
  h.weight = FewbitWeight::histogram;
  const int m = 240;
  for (int i = 0; i <= m; ++i) h.hist_edges.push_back(-6.0 + 12.0 * i / m);
  for (int i = 0; i < m; ++i) {
    const double a = h.hist_edges[i], b = h.hist_edges[i + 1];
    h.hist_counts.push_back(0.5 * (std::erf(b / std::sqrt(2.0)) - std::erf(a / std::sqrt(2.0))));
  }
  FewbitOptions nrm;
  nrm.weight = FewbitWeight::normal, nrm.lo = -6, nrm.hi = 6;
  auto th = fewbit_table("gelu", 2, h), tn = fewbit_table("gelu", 2, nrm);
  for (int i = 0; i < 3; ++i) CHECK(std::fabs(th->borders[i] - tn->borders[i]) < 0.03, "histogram vs normal border %d", i);
  // Non-default parameters change the table (elu alpha) and are cached separately.
  FewbitOptions a2;
  a2.p0 = 2.0;
  auto e1 = fewbit_table("elu", 2, {}), e2 = fewbit_table("elu", 2, a2);
  CHECK(e1 != e2 && e1->levels[0] != e2->levels[0], "elu alpha must change the table");
  CHECK(fewbit_table("elu", 2, {}) == e1, "tables are cached");
  auto lr = fewbit_table("leaky_relu", 1, [] { FewbitOptions o; o.p0 = 0.2; return o; }());
  CHECK(std::fabs(lr->levels[0] - 0.2) < 1e-15, "leaky_relu slope level");
}

// The codec's kernels are picked only through the fp32 table (kernels_f32.cc).
static void test_codec_table() {
  const f32::Kernels& s = f32::kernels(Isa::scalar);
  CHECK(s.fewbit_encode == &fewbit_encode_f32_scalar && s.fewbit_decode_mul == &fewbit_decode_mul_f32_scalar,
        "f32::kernels(scalar) must hold the scalar few-bit kernels");
  const f32::Kernels& v = f32::kernels(Isa::avx2);
  CHECK(v.fewbit_encode == &fewbit_encode_f32_avx2 && v.fewbit_decode_mul == &fewbit_decode_mul_f32_avx2,
        "f32::kernels(avx2) must hold the AVX2 few-bit kernels");
}

int main() {
  test_codec_table();
  test_dp_equals_brute_force();
  test_known_optimum();
  test_quadrature_coarse_cells();
  test_fold();
  test_codec();
  test_edges();
  test_histogram_and_params();
  if (failures) {
    std::fprintf(stderr, "fewbit_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("fewbit_test: ok\n");
  return 0;
}
