// Training core without Node: directional finite differences for every op kind, few-bit act
// backward sizes, losses, and hostile sizes rejected with the op and field named (CI runs this
// under ASan/UBSan).
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/kernels_f32.h"
#include "swinq/plan.h"
#include "swinq/train.h"
#include "test_check.h"

using namespace swinq::train;


static std::mt19937 rng(5);
static std::vector<float> randv(size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <class F>
static void expect_throw(F f, const std::string& needle, const char* what) {
  try {
    f();
    CHECK(false, "%s: no exception", what);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find(needle) != std::string::npos, "%s: message '%s' lacks '%s'", what, e.what(), needle.c_str());
  }
}

// reads() is exact for every single gradient: backward given only what it lists (the rest null)
// gives the gradient of the fully saved run, and withholding any listed tensor is refused.
static void check_reads(const Op& op, const std::vector<std::vector<float>>& in, const std::vector<size_t>& n,
                        const std::vector<float>& y, const std::vector<float>& dy, const std::vector<std::vector<float>>& full,
                        const char* what) {
  for (size_t k = 0; k < in.size(); ++k) {
    std::vector<bool> need(in.size(), false);
    need[k] = true;
    const Reads r = reads(op, need);
    auto saved = [&](int drop_in, bool drop_out) {
      Saved s;
      for (size_t i = 0; i < in.size(); ++i) s.in.push_back(r.in[i] && (int)i != drop_in ? in[i].data() : nullptr);
      s.in_n = n;
      s.out = r.out && !drop_out ? y.data() : nullptr;
      return s;
    };
    std::vector<float> g(in[k].size());
    std::vector<float*> gp(in.size(), nullptr);
    gp[k] = g.data();
    backward(op, saved(-1, false), dy.data(), gp, nullptr);
    CHECK(g == full[k], "%s: gradient %zu from reads() alone differs from the fully saved run", what, k);
    for (size_t i = 0; i < in.size(); ++i)
      if (r.in[i]) expect_throw([&] { backward(op, saved((int)i, false), dy.data(), gp, nullptr); }, "missing", what);
    if (r.out) expect_throw([&] { backward(op, saved(-1, true), dy.data(), gp, nullptr); }, "missing", what);
  }
}

// L = Σ w·y; checks <dL/dx_i, v> against central differences along a random v, for every input.
static void fd(Op op, std::vector<std::vector<float>> in, const char* what) {
  prepare(op);
  std::vector<size_t> n;
  for (auto& v : in) n.push_back(v.size());
  const size_t ny = output_size(op, n);
  auto ptrs = [&] {
    std::vector<const float*> p;
    for (auto& v : in) p.push_back(v.data());
    return p;
  };
  std::vector<float> y(ny), w = randv(ny);
  auto loss = [&] {
    forward(op, ptrs(), n, y.data(), nullptr, nullptr);
    double s = 0;
    for (size_t i = 0; i < ny; ++i) s += (double)w[i] * y[i];
    return s;
  };
  loss();
  std::vector<std::vector<float>> g;
  std::vector<float*> gp;
  for (auto& v : in) g.emplace_back(v.size());
  for (auto& v : g) gp.push_back(v.data());
  Saved s{ptrs(), n, y.data(), nullptr, 0};
  std::vector<float> yk = y;
  s.out = yk.data();
  backward(op, s, w.data(), gp, nullptr);
  check_reads(op, in, n, yk, w, g, what);
  for (size_t k = 0; k < in.size(); ++k) {
    std::vector<float> v = randv(in[k].size()), x0 = in[k];
    double gv = 0;
    for (size_t i = 0; i < v.size(); ++i) gv += (double)g[k][i] * v[i];
    const float h = 1e-3f;
    for (size_t i = 0; i < v.size(); ++i) in[k][i] = x0[i] + h * v[i];
    const double lp = loss();
    for (size_t i = 0; i < v.size(); ++i) in[k][i] = x0[i] - h * v[i];
    const double lm = loss();
    in[k] = x0;
    const double num = (lp - lm) / (2 * h);
    CHECK(std::fabs(num - gv) <= 1e-2 * std::max(1.0, std::fabs(gv)), "%s input %zu: fd %g vs backward %g", what, k, num, gv);
  }
}

// The ops the fd and the hostile-size tests share.
static Op linear_op() {
  Op op; op.kind = Kind::linear; op.K = 5; op.N = 7;
  return op;
}
static Op matmul_op() {
  Op op; op.kind = Kind::matmul; op.M = 3; op.K = 4; op.N = 5; op.alpha = 0.5f;
  return op;
}
static Op gather_op() {
  Op op; op.kind = Kind::gather; op.x_item = 6; op.block = 2; op.idx = {4, 0, 4, -1};
  return op;
}

// Directional finite differences for every op kind but act (and reads() exact for each, in fd).
static void test_fd_ops() {
  Op lin = linear_op();
  fd(lin, {randv(3 * 5), randv(35), randv(7)}, "linear");
  Op ln; ln.kind = Kind::layernorm; ln.D = 6;
  fd(ln, {randv(4 * 6), randv(6), randv(6)}, "layernorm");
  Op mm = matmul_op();
  fd(mm, {randv(24), randv(40)}, "matmul");
  mm.trans_b = true;
  fd(mm, {randv(24), randv(40)}, "matmul trans_b");
  Op sm; sm.kind = Kind::softmax; sm.D = 5;
  fd(sm, {randv(15)}, "softmax");
  Op add; add.kind = Kind::add;
  fd(add, {randv(9), randv(9)}, "add");
  Op ab; ab.kind = Kind::add_bcast; ab.adims[1] = 2; ab.adims[2] = 3; ab.adims[3] = 4; ab.bdims[1] = 2; ab.bdims[3] = 4;
  fd(ab, {randv(48), randv(8)}, "add_bcast");
  Op ga = gather_op();
  fd(ga, {randv(12)}, "gather");
  Op mp; mp.kind = Kind::mean_pool; mp.M = 4; mp.D = 3;
  fd(mp, {randv(24)}, "mean_pool");
  for (int bop = 0; bop < 4; ++bop) {
    // y[i, j] = a[j·3 + i] ∘ b[j]: a read transposed, b broadcast over i
    Op bi; bi.kind = Kind::binary; bi.bop = bop; bi.rank = 2; bi.odims[0] = 3; bi.odims[1] = 4;
    bi.sa[0] = 1; bi.sa[1] = 3; bi.sb[0] = 0; bi.sb[1] = 1;
    std::vector<float> b = randv(4);
    for (auto& v : b) v = v < 0 ? v - 1.f : v + 1.f;  // away from 0 for div
    fd(bi, {randv(12), b}, "binary");
  }
  Op ss; ss.kind = Kind::scale_shift; ss.alpha = -0.7f; ss.shift = 0.25f;
  fd(ss, {randv(9)}, "scale_shift");
}

// binary: strides reading past b and a bad rank are refused.
static void test_binary_validation() {
  Op bi; bi.kind = Kind::binary; bi.rank = 2; bi.odims[0] = 3; bi.odims[1] = 4; bi.sa[0] = 4; bi.sa[1] = 1; bi.sb[1] = 2;
  prepare(bi);
  expect_throw([&] { output_size(bi, {12, 4}); }, "b has 4 elements, the strides read 7", "binary past b");
  Op bad = bi; bad.rank = 9;
  expect_throw([&] { prepare(bad); }, "rank must be 1..8", "binary rank");
}

// Finite differences for the activations.
static void test_fd_acts() {
  for (const char* fn : {"gelu", "relu", "silu", "tanh", "sigmoid", "hardswish", "elu"}) {
    Op a; a.kind = Kind::act; a.fn = fn;
    fd(a, {randv(32)}, fn);
  }
}

// few-bit act: codes sized by the codec, backward from codes only.
static void test_fewbit_act_codes() {
  Op a; a.kind = Kind::act; a.fn = "gelu"; a.bits = 3;
  prepare(a);
  std::vector<float> x = randv(37), y(37), dy = randv(37), dx(37);
  std::vector<uint8_t> codes(swinq::fewbit_packed_bytes(37, 3));
  forward(a, {x.data()}, {37}, y.data(), codes.data(), nullptr);
  Saved s{{nullptr}, {37}, y.data(), codes.data(), codes.size()};
  backward(a, s, dy.data(), {dx.data()}, nullptr);
  for (float v : dx) CHECK(std::isfinite(v), "few-bit gelu grad not finite");
  Saved bad{{nullptr}, {37}, y.data(), codes.data(), codes.size() - 1};
  expect_throw([&] { backward(a, bad, dy.data(), {dx.data()}, nullptr); }, "bytes", "short codes");
}

// linear reads x only for dW and W only for dx (the trainer takes dW, frees x, then takes dx);
// a gradient asked for without what it reads is refused.
static void test_linear_reads() {
  const Op lin = linear_op();
  std::vector<float> x = randv(15), w = randv(35), b = randv(7), dy = randv(21), dx(15), dx2(15), dw(35);
  Saved full{{x.data(), w.data(), b.data()}, {15, 35, 7}, nullptr, nullptr, 0};
  backward(lin, full, dy.data(), {dx.data(), nullptr, nullptr}, nullptr);
  Saved no_x{{nullptr, w.data(), nullptr}, {15, 35, 7}, nullptr, nullptr, 0};
  backward(lin, no_x, dy.data(), {dx2.data(), nullptr, nullptr}, nullptr);
  CHECK(dx == dx2, "linear dx without x differs");
  expect_throw([&] { backward(lin, no_x, dy.data(), {nullptr, dw.data(), nullptr}, nullptr); }, "saved input 0 missing", "linear dW without x");
  Saved no_w{{x.data(), nullptr, nullptr}, {15, 35, 7}, nullptr, nullptr, 0};
  expect_throw([&] { backward(lin, no_w, dy.data(), {dx.data(), nullptr, nullptr}, nullptr); }, "saved input 1 missing", "linear dx without W");
}

// act: y may overwrite x in forward (codes are taken first), dx may overwrite dy in backward.
static void test_act_in_place() {
  Op a; a.kind = Kind::act; a.fn = "gelu"; a.bits = 2;
  prepare(a);
  std::vector<float> x = randv(29), y(29), buf = x, dy = randv(29), dx(29);
  std::vector<uint8_t> c1(swinq::fewbit_packed_bytes(29, 2)), c2(c1.size());
  forward(a, {x.data()}, {29}, y.data(), c1.data(), nullptr);
  forward(a, {buf.data()}, {29}, buf.data(), c2.data(), nullptr);
  CHECK(buf == y && c1 == c2, "in-place few-bit act forward differs");
  Saved s{{nullptr}, {29}, nullptr, c1.data(), c1.size()};
  backward(a, s, dy.data(), {dx.data()}, nullptr);
  backward(a, s, dy.data(), {dy.data()}, nullptr);
  CHECK(dx == dy, "in-place few-bit act backward differs");
}

// layernorm from its output (memory-sharing LayerNorm): y, β and 1/σ per row give the gradients of
// the rule from x (finite-difference tested in test_fd_ops) to float rounding; missing pieces refused.
static void test_layernorm_from_output() {
  Op l; l.kind = Kind::layernorm; l.D = 6;
  prepare(l);
  std::vector<float> x = randv(4 * 6), gm = randv(6), bt = randv(6), y(24), dy = randv(24), rs(4);
  for (auto& v : gm) v = v >= 0 ? v + 0.5f : v - 0.5f;  // |γ| ≥ 0.5: x̂ = (y − β)/γ is well conditioned
  forward(l, {x.data(), gm.data(), bt.data()}, {24, 6, 6}, y.data(), nullptr, nullptr);
  for (int r = 0; r < 4; ++r) {
    double mu = 0, var = 0;
    for (int i = 0; i < 6; ++i) mu += x[r * 6 + i];
    mu /= 6;
    for (int i = 0; i < 6; ++i) var += (x[r * 6 + i] - mu) * (x[r * 6 + i] - mu);
    rs[r] = (float)(1.0 / std::sqrt(var / 6 + l.eps));
  }
  std::vector<float> rs2(4);
  layernorm_rstd(l, x.data(), 24, rs2.data());
  CHECK(rs2 == rs, "layernorm_rstd differs from the rule's float64 statistics");
  expect_throw([&] { layernorm_rstd(l, x.data(), 23, rs2.data()); }, "not a multiple of D = 6", "layernorm_rstd rows");
  std::vector<float> a0(24), a1(6), a2(6), b0(24), b1(6), b2(6);
  Saved from_x{{x.data(), gm.data(), bt.data()}, {24, 6, 6}, nullptr, nullptr, 0};
  backward(l, from_x, dy.data(), {a0.data(), a1.data(), a2.data()}, nullptr);
  Saved from_y{{nullptr, gm.data(), bt.data()}, {24, 6, 6}, y.data(), nullptr, 0, rs.data(), 4};
  backward(l, from_y, dy.data(), {b0.data(), b1.data(), b2.data()}, nullptr);
  double e = 0, n2 = 0;
  for (int i = 0; i < 24; ++i) { e += (a0[i] - b0[i]) * (a0[i] - b0[i]); n2 += a0[i] * a0[i]; }
  for (int i = 0; i < 6; ++i) { e += (a1[i] - b1[i]) * (a1[i] - b1[i]) + (a2[i] - b2[i]) * (a2[i] - b2[i]); n2 += a1[i] * a1[i] + a2[i] * a2[i]; }
  CHECK(std::sqrt(e / n2) < 1e-5, "layernorm from y vs from x: rel %g", std::sqrt(e / n2));
  Saved short_rs = from_y; short_rs.aux_n = 3;
  expect_throw([&] { backward(l, short_rs, dy.data(), {b0.data(), nullptr, nullptr}, nullptr); }, "1/σ has 3 rows, expected 4", "layernorm rstd rows");
  Saved no_y = from_y; no_y.out = nullptr;
  expect_throw([&] { backward(l, no_y, dy.data(), {b0.data(), nullptr, nullptr}, nullptr); }, "saved input 0 missing", "layernorm no x no y");
}

// act with a fixed table: code = borders below x, dx = dy·level[code]; malformed tables refused.
static void test_fixed_table_act() {
  Op a; a.kind = Kind::act; a.fn = "gelu"; a.bits = 2;
  a.table_borders = {-1.0, 0.0, 1.0};
  a.table_levels = {0.5, 1.5, 2.5, 3.5};
  prepare(a);
  std::vector<float> x = {-2.f, -1.f, -0.5f, 0.f, 0.5f, 1.f, 2.f, 7.f, -9.f}, y(9), dy(9, 2.f), dx(9);
  std::vector<uint8_t> c(swinq::fewbit_packed_bytes(9, 2));
  forward(a, {x.data()}, {9}, y.data(), c.data(), nullptr);
  Saved s{{nullptr}, {9}, nullptr, c.data(), c.size()};
  backward(a, s, dy.data(), {dx.data()}, nullptr);
  const float want[9] = {1.f, 1.f, 3.f, 3.f, 5.f, 5.f, 7.f, 7.f, 1.f};  // a border value goes to the left interval
  for (int i = 0; i < 9; ++i) CHECK(dx[i] == want[i], "fixed table x=%g: %g vs %g", x[i], dx[i], want[i]);
  Op bad = a; bad.table_levels = {1.0, 2.0};
  expect_throw([&] { prepare(bad); }, "needs 3 borders and 4 levels", "fixed table sizes");
  bad = a; bad.table_borders = {0.0, -1.0, 1.0};
  expect_throw([&] { prepare(bad); }, "strictly ascending", "fixed table order");
}

// Hostile sizes and names are refused naming the op and field; cross-entropy checks its labels.
static void test_hostile_sizes() {
  const Op lin = linear_op(), ga = gather_op();
  Op mm = matmul_op();
  mm.trans_b = true;
  expect_throw([&] { output_size(lin, {4, 35, 7}); }, "linear: x has 4 elements", "linear x");
  expect_throw([&] { output_size(lin, {5, 34, 7}); }, "w has 34", "linear w");
  expect_throw([&] { Op g = ga; g.idx = {5}; prepare(g); }, "idx[0] = 5 reads past", "gather idx");
  expect_throw([&] { Op m = mm; m.K = 0; prepare(m); }, "K must be", "matmul K");
  expect_throw([&] { Op a; a.kind = Kind::act; a.fn = "nope"; prepare(a); }, "unknown activation", "act fn");
  expect_throw([&] { kind_from_name("conv"); }, "unknown op 'conv'", "kind");
  {
    std::vector<int32_t> lab = {0, 5};
    std::vector<float> x(6), d(6);
    expect_throw([&] { cross_entropy(x.data(), lab.data(), 2, 3, 0.f, d.data()); }, "labels[1] = 5", "ce label");
    lab[1] = 2;
    const double l = cross_entropy(x.data(), lab.data(), 2, 3, 0.f, d.data());
    CHECK(std::fabs(l - std::log(3.0)) < 1e-6, "ce of zeros %g", l);
  }
}

// One op list: every train op names a plan op (or none), and the shared ones run the plan's fp32
// kernels, bit for bit, on both kernel sets.
static void test_one_op_list() {
  int none = 0;
  for (int k = 0; k <= (int)Kind::scale_shift; ++k) {
    const std::string p = plan_op_of((Kind)k);
    bool known = p == "none";
    for (int o = 0; o < (int)swinq::OpKind::count_; ++o) known = known || p == swinq::op_name((swinq::OpKind)o);
    CHECK(known, "train op %s: plan op '%s' is not in ops.def", kind_name((Kind)k), p.c_str());
    none += p == "none";
    CHECK(kind_from_name(kind_name((Kind)k)) == (Kind)k, "kind name round trip %d", k);
  }
  CHECK(none == 1, "one training-only op (fakequant), got %d", none);
  for (swinq::Isa isa : {swinq::Isa::scalar, swinq::Isa::avx2}) {
    if (isa == swinq::Isa::avx2 && !swinq::isa_available(swinq::Isa::avx2)) continue;
    swinq::set_isa(isa);
    const swinq::f32::Kernels& kr = swinq::f32::kernels(isa);
    std::vector<float> x = randv(5 * 24), g = randv(24), b = randv(24), y(5 * 24), want(5 * 24);
    Op l; l.kind = Kind::layernorm; l.D = 24; l.eps = 1e-6f;
    prepare(l);
    forward(l, {x.data(), g.data(), b.data()}, {120, 24, 24}, y.data(), nullptr, nullptr);
    kr.layernorm(x.data(), g.data(), b.data(), want.data(), 24, 1e-6f, 0, 5);
    CHECK(y == want, "layernorm forward is not the plan kernel (isa %d)", (int)isa);
    Op sm; sm.kind = Kind::softmax; sm.D = 24;
    prepare(sm);
    forward(sm, {x.data()}, {120}, y.data(), nullptr, nullptr);
    kr.softmax(x.data(), nullptr, 1, want.data(), 24, 0, 5);
    CHECK(y == want, "softmax forward is not the plan kernel (isa %d)", (int)isa);
    Op mp; mp.kind = Kind::mean_pool; mp.M = 6; mp.D = 4;
    prepare(mp);
    std::vector<float> yp(20), wp(20);
    forward(mp, {x.data()}, {120}, yp.data(), nullptr, nullptr);
    swinq::f32::reduce_f32(swinq::f32::r_mean, x.data(), wp.data(), 5, 6, 4, 0, 5);
    CHECK(yp == wp, "mean_pool forward is not plan reduce mean");
    // act on the plan's unary kernels: the parameters mapped from the few-bit (PyTorch) defaults
    // agree with the few-bit reference function (which the backward differentiates)
    std::vector<float> xa = randv(300), ya(300), ra(300);
    for (size_t i = 0; i < xa.size(); ++i) xa[i] *= 4.f;
    for (const char* fn : {"relu", "gelu", "gelu_tanh", "silu", "mish", "elu", "softplus", "sigmoid", "tanh", "hardswish",
                           "leaky_relu", "hardsigmoid", "relu6", "hardtanh", "selu"}) {
      Op a; a.kind = Kind::act; a.fn = fn;
      prepare(a);
      forward(a, {xa.data()}, {300}, ya.data(), nullptr, nullptr);
      swinq::fewbit_apply_f32(fn, swinq::FewbitOptions{}, xa.data(), 300, ra.data());
      double e = 0;
      for (int i = 0; i < 300; ++i) e = std::max(e, (double)std::fabs(ya[i] - ra[i]) / std::max(1.0, (double)std::fabs(ra[i])));
      CHECK(e < 2e-6, "act %s forward vs few-bit reference: %g", fn, e);
    }
  }
  swinq::set_isa(swinq::best_isa());
}

int main() {
  test_fd_ops();
  test_binary_validation();
  test_fd_acts();
  test_fewbit_act_codes();
  test_linear_reads();
  test_act_in_place();
  test_layernorm_from_output();
  test_fixed_table_act();
  test_hostile_sizes();
  test_one_op_list();

  return swinq_test::finish("train_test");
}
