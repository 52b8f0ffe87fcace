// Integer plan ops: hostile plans must be refused with a message naming op, node and field, never
// crash (run under ASan/UBSan in CI); empty sizes run. (The matmul_q / quantize / dequantize
// kernels' scalar = AVX2 tests: qplan_kernels_test.cc.)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "swinq/executor.h"
#include "plan_builders.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;



// Builds a plan incrementally: constants are 64-byte aligned.
struct B {
  PlanDesc d;
  int32_t input(DType dt, std::initializer_list<int64_t> dims) {
    d.tensors.push_back(T(dt, dims, Storage::input, (int64_t)d.inputs.size()));
    d.inputs.push_back((int32_t)d.tensors.size() - 1);
    return d.inputs.back();
  }
  int32_t output(DType dt, std::initializer_list<int64_t> dims) {
    d.tensors.push_back(T(dt, dims, Storage::output, (int64_t)d.outputs.size()));
    d.outputs.push_back((int32_t)d.tensors.size() - 1);
    return d.outputs.back();
  }
  template <class V>
  int32_t constant(DType dt, std::initializer_list<int64_t> dims, const std::vector<V>& v) {
    size_t off = (d.constants.size() + 63) / 64 * 64;
    d.constants.resize(off + v.size() * sizeof(V));
    if (!v.empty()) std::memcpy(d.constants.data() + off, v.data(), v.size() * sizeof(V));
    d.tensors.push_back(T(dt, dims, Storage::constant, (int64_t)off));
    return (int32_t)d.tensors.size() - 1;
  }
  int32_t arena(DType dt, std::initializer_list<int64_t> dims, int64_t off) {
    d.tensors.push_back(T(dt, dims, Storage::arena, off));
    int64_t end = off + d.tensors.back().nbytes();
    if (end > d.arena_bytes) d.arena_bytes = end;
    return (int32_t)d.tensors.size() - 1;
  }
  B& op(OpDesc o) {
    d.ops.push_back(std::move(o));
    return *this;
  }
};


// linear_q x[M,K] u8 → y[M,N] u8 with per-tensor requant; `mut` edits the plan before create.
template <class F>
static PlanDesc linear_q_plan(F mut, int64_t M = 3, int64_t K = 5, int64_t N = 4) {
  B b;
  int32_t x = b.input(DType::u8, {M, K});
  int32_t w = b.constant(DType::i8, {K, N}, std::vector<int8_t>((size_t)(K * N), 3));
  int32_t bias = b.constant(DType::i32, {N}, std::vector<int32_t>((size_t)N, 7));
  int32_t m = b.constant(DType::i32, {1}, std::vector<int32_t>{1 << 30});
  int32_t s = b.constant(DType::i32, {1}, std::vector<int32_t>{35});
  int32_t y = b.output(DType::u8, {M, N});
  b.op(Op(OpKind::linear_q, {x, w, bias, m, s}, {y}, {M, K, N, 0, 0, 0, 0, 255}, {}, "fc1"));
  mut(b);
  return b.d;
}

// matmul_q a[an] u8 · b[bn] → y[yn] (int32 by default), node "attn".
static PlanDesc matmul_q_plan(std::vector<int64_t> ints, DType bdt = DType::u8, DType ydt = DType::i32,
                               int64_t an = 60, int64_t bn = 60, int64_t yn = 18) {
  B b;
  int32_t a = b.input(DType::u8, {an});
  int32_t bb = b.input(bdt, {bn});
  int32_t y = b.output(ydt, {yn});
  b.op(Op(OpKind::matmul_q, {a, bb}, {y}, std::move(ints), {}, "attn"));
  return b.d;
}

// One op x → y of the given kind, dtypes and dims, node "n1".
static PlanDesc one_op_plan(OpKind k, DType xd, std::initializer_list<int64_t> xdims, DType yd,
                             std::initializer_list<int64_t> ydims, std::vector<int64_t> ints, std::vector<float> floats) {
  B b;
  int32_t x = b.input(xd, xdims);
  int32_t y = b.output(yd, ydims);
  b.op(Op(k, {x}, {y}, std::move(ints), std::move(floats), "n1"));
  return b.d;
}

// Hostile linear_q: every field refused with op, node and field named.
static void test_linear_q_validation() {
  expect_error("linear_q ints", linear_q_plan([](B& b) { b.d.ops[0].ints.pop_back(); }),
               {"plan op #0 linear_q (node 'fc1')", "ints has 7 values, expected 8"});
  expect_error("linear_q K", linear_q_plan([](B& b) { b.d.ops[0].ints[1] = -5; }), {"linear_q", "K = -5 is negative"});
  expect_error("linear_q K huge", linear_q_plan([](B& b) { b.d.ops[0].ints[1] = int64_t(1) << 40; }), {"K = ", "outside [1, 65536]"});
  expect_error("linear_q M overflow", linear_q_plan([](B& b) { b.d.ops[0].ints[0] = int64_t(1) << 62; }), {"M·K overflows"});
  expect_error("linear_q x elems", linear_q_plan([](B& b) { b.d.ops[0].ints[0] = 4; }), {"x has 15 elements, expected M·K = 20"});
  expect_error("linear_q x_zp", linear_q_plan([](B& b) { b.d.ops[0].ints[3] = 256; }), {"x_zp = 256 is outside uint8"});
  expect_error("linear_q w_zp", linear_q_plan([](B& b) { b.d.ops[0].ints[4] = -129; }), {"w_zp = -129 is outside int8"});
  expect_error("linear_q relu", linear_q_plan([](B& b) { b.d.ops[0].ints[6] = 2; }), {"relu = 2 must be 0 or 1"});
  expect_error("linear_q x_max", linear_q_plan([](B& b) { b.d.ops[0].ints[7] = 0; }), {"x_max = 0 is outside [1, 255]"});
  expect_error("linear_q w not const", linear_q_plan([](B& b) {
                 b.d.tensors[1] = T(DType::i8, {5, 4}, Storage::arena, 0);
                 b.d.arena_bytes = 64;
               }),
               {"w (tensor #1) must be a constant"});
  expect_error("linear_q w dtype", linear_q_plan([](B& b) { b.d.tensors[1].dtype = DType::u8; }), {"w is uint8, expected int8"});
  expect_error("linear_q bias dtype", linear_q_plan([](B& b) { b.d.tensors[2].dtype = DType::f32; }), {"bias is float32, expected int32"});
  expect_error("linear_q mult missing", linear_q_plan([](B& b) { b.d.ops[0].inputs.resize(3); }), {"needs mult and shift"});
  expect_error("linear_q mult size", linear_q_plan([](B& b) {
                 b.d.tensors[3] = T(DType::i32, {3}, Storage::constant, b.d.tensors[3].offset);
                 b.d.constants.resize(b.d.constants.size() + 64);
               }),
               {"mult has 3 elements, expected 1 (per tensor) or 4"});
  expect_error("linear_q shift range", linear_q_plan([](B& b) {
                 int32_t v = 99;
                 std::memcpy(b.d.constants.data() + b.d.tensors[4].offset, &v, 4);
               }),
               {"shift[0] = 99 is outside [0, 62]"});
  expect_error("linear_q input id", linear_q_plan([](B& b) { b.d.ops[0].inputs[2] = 1000; }),
               {"input bias = 1000 is not a tensor id (or -1 for absent)"});
  expect_error("linear_q output const", linear_q_plan([](B& b) { b.d.ops[0].outputs[0] = 1; }),
               {"output tensor #1 is a constant"});
  expect_error("linear_q table on s32", linear_q_plan([](B& b) {
                 b.d.tensors[5].dtype = DType::i32;
                 b.d.ops[0].inputs = {0, 1, 2, -1, -1, 1};
               }),
               {"an int32 y takes no mult, shift or table"});
  expect_error("linear_q table size", linear_q_plan([](B& b) {
                 int32_t t = b.constant(DType::u8, {100}, std::vector<uint8_t>(100, 1));
                 b.d.ops[0].inputs.push_back(t);
               }),
               {"table has 100 elements, expected 256"});
  expect_error("linear_q overlap", linear_q_plan([](B& b) {
                 b.d.tensors[0] = T(DType::u8, {3, 5}, Storage::arena, 0);
                 b.d.tensors[5] = T(DType::u8, {3, 4}, Storage::arena, 8);
                 b.d.arena_bytes = 64;
                 b.d.inputs.clear();
                 b.d.outputs.clear();
               }),
               {"output tensor #5 overlaps x (tensor #0)"});
}

// A valid linear_q runs (and M = 0 runs), on both kernel sets.
static void test_linear_q_runs() {
  // a valid linear_q runs (and M = 0 runs), on both kernel sets
  for (Isa isa : {Isa::scalar, Isa::avx2}) {
    if (isa == Isa::avx2 && !cpu_features().avx2) continue;
    set_isa(isa);
    auto p = Plan::create(linear_q_plan([](B&) {}), PlanOptions{2, false});
    std::vector<uint8_t> x(15, 2), y(12, 0);
    p->run({{x.data(), x.size()}}, {{y.data(), y.size()}});
    // v = 5·2·3 + 7 = 37; 37·2^30 >> 35 = 37/32 → 1 (rounded)
    for (uint8_t v : y) CHECK(v == 1);
    auto p0 = Plan::create(linear_q_plan([](B&) {}, 0, 5, 4), PlanOptions{2, false});
    p0->run({{nullptr, 0}}, {{nullptr, 0}});
  }
  set_isa(Isa::scalar);
}

// Hostile matmul_q fields.
static void test_matmul_q_validation() {
  expect_error("matmul_q ints", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 0}), {"plan op #0 matmul_q (node 'attn')", "ints has 9 values"});
  expect_error("matmul_q trans_b", matmul_q_plan({2, 3, 10, 3, 2, 30, 30, 0, 0, 0}), {"trans_b = 2 must be 0 or 1"});
  expect_error("matmul_q stride", matmul_q_plan({2, 3, 10, 3, 0, 31, 30, 0, 0, 0}), {"a has 60 elements, but batch 2 × stride 31 needs 61"});
  expect_error("matmul_q stride overflow", matmul_q_plan({2, 3, 10, 3, 0, int64_t(1) << 62, 30, 0, 0, 0}), {"batch stride overflows"});
  expect_error("matmul_q K limit", matmul_q_plan({2, 3, 40000, 3, 0, 30, 30, 0, 0, 0}), {"K = 40000 exceeds 32768"});
  expect_error("matmul_q y elems", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 0, 0}, DType::u8, DType::i32, 60, 60, 17),
               {"y has 17 elements, expected batch·M·N = 18"});
  expect_error("matmul_q b_zp", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 200, 0}, DType::i8), {"b_zp = 200 is outside int8"});
  expect_error("matmul_q y_zp s32", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 0, 4}), {"y_zp = 4 must be 0 for an int32 y"});
  expect_error("matmul_q u8 y w/o requant", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 0, 0}, DType::u8, DType::u8), {"needs mult and shift"});
  expect_error("matmul_q b dtype", matmul_q_plan({2, 3, 10, 3, 0, 30, 30, 0, 0, 0}, DType::i16), {"b is int16, expected int8 or uint8"});
}

// matmul_q with batch 0 / M 0 runs.
static void test_matmul_q_empty_runs() {
  // batch 0 / M 0 run
  auto p = Plan::create(matmul_q_plan({0, 3, 10, 3, 0, 30, 30, 0, 0, 0}, DType::u8, DType::i32, 60, 60, 0), PlanOptions{});
  std::vector<uint8_t> a(60), b(60);
  p->run({{a.data(), 60}, {b.data(), 60}}, {{nullptr, 0}});
}

// Hostile quantize, dequantize, softmax_q and layernorm_q fields.
static void test_row_op_validation() {
  expect_error("quantize nan scale", one_op_plan(OpKind::quantize, DType::f32, {4}, DType::u8, {4}, {0}, {NAN}),
               {"plan op #0 quantize (node 'n1')", "scale = nan must be finite and > 0"});
  expect_error("quantize zero scale", one_op_plan(OpKind::quantize, DType::f32, {4}, DType::i8, {4}, {0}, {0.0f}), {"scale = 0"});
  expect_error("quantize y dtype", one_op_plan(OpKind::quantize, DType::f32, {4}, DType::f32, {4}, {0}, {1}), {"y is float32"});
  expect_error("quantize count", one_op_plan(OpKind::quantize, DType::f32, {4}, DType::u8, {5}, {0}, {1}), {"y has 5 elements"});
  expect_error("dequantize zp", one_op_plan(OpKind::dequantize, DType::i16, {4}, DType::f32, {4}, {40000}, {1}), {"zero_point = 40000 is outside int16"});
  expect_error("dequantize floats", one_op_plan(OpKind::dequantize, DType::u8, {4}, DType::f32, {4}, {0}, {}), {"floats has 0 values, expected 1"});
  expect_error("softmax_q D", one_op_plan(OpKind::softmax_q, DType::i32, {0}, DType::u8, {0}, {5, 0, 0}, {0.01f}), {"softmax_q", "D = 0 is outside"});
  expect_error("softmax_q x dtype", one_op_plan(OpKind::softmax_q, DType::u8, {6}, DType::u8, {6}, {2, 3, 0}, {0.01f}), {"x is uint8, expected int32"});
  expect_error("softmax_q scale", one_op_plan(OpKind::softmax_q, DType::i32, {6}, DType::u8, {6}, {2, 3, 0}, {5.0f}), {"x_scale", "ln2"});
  {
    B b;
    int32_t x = b.input(DType::i32, {4, 3});
    int32_t t = b.constant(DType::i32, {2, 3}, std::vector<int32_t>(6, 0));
    int32_t y = b.output(DType::u8, {4, 3});
    b.op(Op(OpKind::softmax_q, {x, t}, {y}, {4, 3, 3}, {0.01f}, "sm"));
    expect_error("softmax_q table size", b.d, {"table has 6 elements, expected table_rows·D = 9"});
    b.d.ops[0].ints[2] = 0;
    expect_error("softmax_q table rows", b.d, {"table_rows = 0 must be >= 1 with a table"});
  }
  expect_error("layernorm_q D", one_op_plan(OpKind::layernorm_q, DType::i8, {40000}, DType::u8, {40000}, {1, 40000, 0}, {0.1f}), {"D = 40000 is outside [1, 32768]"});
  expect_error("layernorm_q y_zp", one_op_plan(OpKind::layernorm_q, DType::i8, {6}, DType::u8, {6}, {2, 3, -1}, {0.1f}), {"y_zp = -1 is outside uint8"});
  expect_error("layernorm_q y_scale", one_op_plan(OpKind::layernorm_q, DType::i8, {6}, DType::u8, {6}, {2, 3, 0}, {-1.0f}), {"y_scale = -1"});
  {
    B b;
    int32_t x = b.input(DType::i8, {2, 3});
    int32_t g = b.constant(DType::f32, {3}, std::vector<float>{1, NAN, 1});
    int32_t y = b.output(DType::i8, {2, 3});
    b.op(Op(OpKind::layernorm_q, {x, g}, {y}, {2, 3, 0}, {0.1f}, "ln"));
    expect_error("layernorm_q gamma nan", b.d, {"layernorm_q (node 'ln')", "gamma/beta"});
  }
}

// Hostile gelu_q, relu_q, requant, avgpool_q, argmax_q and add_q fields.
static void test_elementwise_op_validation() {
  expect_error("gelu_q dtype", one_op_plan(OpKind::gelu_q, DType::i16, {4}, DType::u8, {4}, {0, 0}, {0.1f, 0.1f}), {"x is int16, expected int8 or uint8"});
  expect_error("relu_q dtype mismatch", one_op_plan(OpKind::relu_q, DType::i8, {4}, DType::u8, {4}, {0}, {}), {"y is uint8 but x is int8"});
  expect_error("relu_q zp", one_op_plan(OpKind::relu_q, DType::i8, {4}, DType::i8, {4}, {128}, {}), {"zero_point = 128 is outside int8"});
  expect_error("requant arity", one_op_plan(OpKind::requant, DType::i32, {6}, DType::u8, {6}, {2, 3, 0, 0}, {}), {"has 1 inputs, expected 3"});
  expect_error("avgpool_q T", one_op_plan(OpKind::avgpool_q, DType::u8, {6}, DType::u8, {2}, {1, 0, 2, 0, 0}, {1, 1}), {"T = 0 is outside [1, 16384]"});
  expect_error("avgpool_q ratio", one_op_plan(OpKind::avgpool_q, DType::u8, {6}, DType::u8, {2}, {1, 3, 2, 0, 0}, {1e30f, 1e-30f}),
               {"avgpool_q (node 'n1')", "x_scale/(T·y_scale)"});
  expect_error("avgpool_q s16 zp", one_op_plan(OpKind::avgpool_q, DType::i16, {6}, DType::i16, {2}, {1, 3, 2, 4, 0}, {1, 1}), {"x_zp = 4 must be 0 for an int16 tensor"});
  expect_error("argmax_q y", one_op_plan(OpKind::argmax_q, DType::i8, {6}, DType::i32, {2}, {2, 3}, {}), {"y is int32, expected int64"});
  expect_error("argmax_q D", one_op_plan(OpKind::argmax_q, DType::i8, {0}, DType::i64, {2}, {2, 0}, {}), {"D = 0 must be >= 1"});
  {
    B b;
    int32_t a = b.input(DType::i16, {5});
    int32_t c = b.input(DType::i8, {4});
    int32_t y = b.output(DType::i16, {5});
    b.op(Op(OpKind::add_q, {a, c}, {y}, {0, 0, 0}, {1, 1, 1}, "res"));
    expect_error("add_q count", b.d, {"plan op #0 add_q (node 'res')", "b has 4 elements, expected a elements = 5"});
    b.d.tensors[1].dims[0] = 5;
    b.d.ops[0].floats = {1, 1, 1e-9f};
    expect_error("add_q ratio", b.d, {"scales", "add_params"});
  }
}

// Empty tensors run for every elementwise/row op, on both kernel sets.
static void test_empty_tensors_run() {
  for (Isa isa : {Isa::scalar, Isa::avx2}) {
    if (isa == Isa::avx2 && !cpu_features().avx2) continue;
    set_isa(isa);
    std::vector<PlanDesc> ds = {
        one_op_plan(OpKind::quantize, DType::f32, {0}, DType::u8, {0}, {0}, {1}),
        one_op_plan(OpKind::dequantize, DType::i8, {0}, DType::f32, {0}, {0}, {1}),
        one_op_plan(OpKind::softmax_q, DType::i32, {0, 5}, DType::u8, {0, 5}, {0, 5, 0}, {0.01f}),
        one_op_plan(OpKind::layernorm_q, DType::i16, {0, 5}, DType::i8, {0, 5}, {0, 5, 0}, {0.1f}),
        one_op_plan(OpKind::gelu_q, DType::i8, {0}, DType::u8, {0}, {0, 0}, {0.1f, 0.1f}),
        one_op_plan(OpKind::relu_q, DType::u8, {0}, DType::u8, {0}, {3}, {}),
        one_op_plan(OpKind::avgpool_q, DType::u8, {0, 3, 2}, DType::u8, {0, 2}, {0, 3, 2, 0, 0}, {1, 1}),
        one_op_plan(OpKind::argmax_q, DType::i8, {0, 3}, DType::i64, {0}, {0, 3}, {}),
    };
    for (auto& d : ds) {
      try {
        auto p = Plan::create(std::move(d), PlanOptions{2, false});
        p->run({{nullptr, 0}}, {{nullptr, 0}});
      } catch (const std::exception& e) {
        std::fprintf(stderr, "empty run failed: %s\n", e.what());
        ++failures;
      }
    }
  }
}

// Row regions (PlanOptions::row_regions): LayerNorm → linear → linear → linear on 70 rows is one pool
// job when no op's output shares arena bytes with a tensor an earlier op of the chain uses, two when
// the third op's output overlaps the first op's (a buffer the planner reused: one thread could
// overwrite rows the other still reads); with 2 threads, through the thread choice's whole schedule
// (pool, caller, mixed), every run equals 1 thread and the plan without regions.
static void test_row_regions() {
  const int64_t R = 70, D = 16, H = 24, N2 = 8;
  std::mt19937 rng(5);
  auto codes = [&](size_t n, int lo, int hi) {
    std::vector<int8_t> v(n);
    for (auto& x : v) x = (int8_t)std::uniform_int_distribution<int>(lo, hi)(rng);
    return v;
  };
  const std::vector<int8_t> w1 = codes(D * H, -60, 60), w2 = codes(H * N2, -60, 60), w3 = codes(N2 * 4, -60, 60);
  auto plan = [&](int64_t c_offset) {
    B b;
    const int32_t x = b.input(DType::i16, {R, D});
    const int32_t a = b.arena(DType::u8, {R, D}, 0);            // [0, 1120)
    const int32_t bb = b.arena(DType::u8, {R, H}, 2048);        // [2048, 3728)
    const int32_t c = b.arena(DType::u8, {R, N2}, c_offset);    // 560 bytes
    const int32_t y = b.output(DType::i32, {R, 4});
    const int32_t m = b.constant(DType::i32, {1}, std::vector<int32_t>{1 << 30}), s = b.constant(DType::i32, {1}, std::vector<int32_t>{38});
    b.op(Op(OpKind::layernorm_q, {x}, {a}, {R, D, 128}, {4.0f / 127}, "ln"));
    b.op(Op(OpKind::linear_q, {a, b.constant(DType::i8, {D, H}, w1), -1, m, s}, {bb}, {R, D, H, 128, 0, 128, 1, 255}, {}, "fc1"));
    b.op(Op(OpKind::linear_q, {bb, b.constant(DType::i8, {H, N2}, w2), -1, m, s}, {c}, {R, H, N2, 128, 0, 128, 0, 255}, {}, "fc2"));
    b.op(Op(OpKind::linear_q, {c, b.constant(DType::i8, {N2, 4}, w3)}, {y}, {R, N2, 4, 128, 0, 0, 0, 255}, {}, "fc3"));
    return b.d;
  };
  std::vector<int16_t> x((size_t)(R * D));
  for (auto& v : x) v = (int16_t)std::uniform_int_distribution<int>(-3000, 3000)(rng);
  for (int64_t c_offset : {4096, 512}) {  // no overlap; c overlaps a
    std::vector<int32_t> want((size_t)(R * 4)), got(want.size());
    auto one = Plan::create(plan(c_offset), PlanOptions{1, false});
    one->run({{x.data(), x.size() * 2}}, {{want.data(), want.size() * 4}});
    for (bool regions : {true, false}) {
      PlanOptions o{2, false};
      o.row_regions = regions;
      auto p = Plan::create(plan(c_offset), o);
      const int64_t jobs = p->thread_choice().jobs;
      const int64_t want_jobs = !regions ? 4 : c_offset == 4096 ? 1 : 2;
      CHECK(jobs == want_jobs);
      if (jobs != want_jobs) std::fprintf(stderr, "row regions %d, c at %lld: %lld jobs, expected %lld\n", regions, (long long)c_offset, (long long)jobs, (long long)want_jobs);
      for (int run = 0; run < 80; ++run) {
        std::fill(got.begin(), got.end(), -1);
        p->run({{x.data(), x.size() * 2}}, {{got.data(), got.size() * 4}});
        CHECK(got == want);
      }
    }
  }
}

// Attention over one window starts a region and reads every row of its qkv, so a later op of the
// region may not write qkv's bytes even as the very same rows (it could overwrite rows the other
// thread's attention still reads): linear → attention → linear (into qkv's bytes) → linear is three
// jobs, and every run equals 1 thread.
static void test_row_regions_read_all() {
  const int64_t N = 37, K = 8;
  std::mt19937 rng(7);
  auto codes = [&](size_t n) {
    std::vector<int8_t> v(n);
    for (auto& x : v) x = (int8_t)std::uniform_int_distribution<int>(-60, 60)(rng);
    return v;
  };
  B b;
  const int32_t x = b.input(DType::u8, {N, K});
  const int32_t qkv = b.arena(DType::u8, {N, 6}, 0);
  const int32_t a = b.arena(DType::u8, {N, 2}, 1024);
  const int32_t z = b.arena(DType::u8, {N, 6}, 0);  // qkv's bytes, row for row
  const int32_t y = b.output(DType::i32, {N, 4});
  const int32_t m = b.constant(DType::i32, {1}, std::vector<int32_t>{1 << 30}), s = b.constant(DType::i32, {1}, std::vector<int32_t>{36});
  b.op(Op(OpKind::linear_q, {x, b.constant(DType::i8, {K, 6}, codes(K * 6)), -1, m, s}, {qkv}, {N, K, 6, 0, 0, 128, 0, 255}, {}, "qkv"));
  b.op(Op(OpKind::attention_q, {qkv, -1, b.constant(DType::i32, {1}, std::vector<int32_t>{1 << 30}), b.constant(DType::i32, {1}, std::vector<int32_t>{40})},
          {a}, {1, N, 1, 2, 128, 0, 255, 0, 1}, {0.05f}, "attn"));
  b.op(Op(OpKind::linear_q, {a, b.constant(DType::i8, {2, 6}, codes(12)), -1, m, s}, {z}, {N, 2, 6, 0, 0, 128, 0, 255}, {}, "proj"));
  b.op(Op(OpKind::linear_q, {z, b.constant(DType::i8, {6, 4}, codes(24))}, {y}, {N, 6, 4, 128, 0, 0, 0, 255}, {}, "fc"));
  std::vector<uint8_t> xs((size_t)(N * K));
  for (auto& v : xs) v = (uint8_t)std::uniform_int_distribution<int>(0, 255)(rng);
  std::vector<int32_t> want((size_t)(N * 4)), got(want.size());
  auto one = Plan::create(b.d, PlanOptions{1, false});
  one->run({{xs.data(), xs.size()}}, {{want.data(), want.size() * 4}});
  auto p = Plan::create(b.d, PlanOptions{2, false});
  const int64_t jobs = p->thread_choice().jobs;
  CHECK(jobs == 3);
  if (jobs != 3) std::fprintf(stderr, "read-all region: %lld jobs, expected 3\n", (long long)jobs);
  for (int run = 0; run < 80; ++run) {
    std::fill(got.begin(), got.end(), -1);
    p->run({{xs.data(), xs.size()}}, {{got.data(), got.size() * 4}});
    CHECK(got == want);
  }
}

int main() {
  test_row_regions();
  test_row_regions_read_all();
  test_linear_q_validation();
  test_linear_q_runs();
  test_matmul_q_validation();
  test_matmul_q_empty_runs();
  test_row_op_validation();
  test_elementwise_op_validation();
  test_empty_tensors_run();

  if (failures) std::fprintf(stderr, "%d failure(s)\n", failures);
  else std::printf("executor_int_test: ok\n");
  return failures ? 1 : 0;
}
