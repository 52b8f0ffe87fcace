// Validation of hostile plans: every one must be refused with a message naming the problem,
// never crash (run under ASan/UBSan in CI). Plus a few small runs checked against hand math.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>
#include <stdexcept>
#include <string>

#include "swinq/executor.h"
#include "swinq/op.h"
#include "plan_builders.h"
#include "test_check.h"

using namespace swinq;
using swinq_test::failures;



// A valid linear plan: x[M,K] input, w const, bias const, y output.
static PlanDesc linear_plan(int64_t M, int64_t K, int64_t N) {
  PlanDesc d;
  d.constants.resize((size_t)((K * N + N) * 4));
  float* c = reinterpret_cast<float*>(d.constants.data());
  for (int64_t i = 0; i < K * N + N; ++i) c[i] = (float)((i * 7) % 11) - 5.0f;
  d.tensors.push_back(T(DType::f32, {M, K}, Storage::input, 0));
  d.tensors.push_back(T(DType::f32, {K, N}, Storage::constant, 0));
  d.tensors.push_back(T(DType::f32, {N}, Storage::constant, K * N * 4));
  d.tensors.push_back(T(DType::f32, {M, N}, Storage::output, 0));
  d.ops.push_back(Op(OpKind::linear, {0, 1, 2}, {3}, {M, K, N, 0}, {}, "MatMul_123"));
  d.inputs = {0};
  d.outputs = {3};
  return d;
}


// Appends `bytes` to d.constants at a 64-byte boundary; returns the offset.
static int64_t add_constant(PlanDesc& d, const void* p, size_t bytes) {
  const size_t off = (d.constants.size() + 63) / 64 * 64;
  d.constants.resize(off + bytes);
  std::memcpy(d.constants.data() + off, p, bytes);
  return (int64_t)off;
}

// A valid plan using every op, as the fuzzer's seed.
static PlanDesc every_op_plan() {
  PlanDesc d;
  auto cf = [&](std::vector<float> v) { return add_constant(d, v.data(), v.size() * 4); };
  auto ci = [&](std::vector<int32_t> v) { return add_constant(d, v.data(), v.size() * 4); };
  std::vector<float> w(6 * 5), b5(5), g6(6);
  for (size_t i = 0; i < w.size(); ++i) w[i] = (float)i * 0.1f - 1.0f;
  for (size_t i = 0; i < 5; ++i) b5[i] = (float)i;
  for (size_t i = 0; i < 6; ++i) g6[i] = 1.0f + (float)i;
  std::vector<int32_t> idx(24);
  for (int i = 0; i < 24; ++i) idx[i] = (i * 5) % 24;
  idx[3] = -1;
  d.tensors.push_back(T(DType::f32, {4, 6}, Storage::input, 0));           // 0 x
  d.tensors.push_back(T(DType::i32, {24}, Storage::constant, ci(idx)));    // 1 idx
  d.tensors.push_back(T(DType::f32, {4, 6}, Storage::arena, 0));           // 2 xt
  d.tensors.push_back(T(DType::f32, {6, 5}, Storage::constant, cf(w)));    // 3 w
  d.tensors.push_back(T(DType::f32, {5}, Storage::constant, cf(b5)));      // 4 bias
  d.tensors.push_back(T(DType::f32, {4, 5}, Storage::arena, 128));         // 5 h
  d.tensors.push_back(T(DType::f32, {6}, Storage::constant, cf(g6)));      // 6 gamma
  d.tensors.push_back(T(DType::f32, {4, 6}, Storage::arena, 256));         // 7 ln
  d.tensors.push_back(T(DType::f32, {2, 2, 2}, Storage::arena, 384));      // 8 mm
  d.tensors.push_back(T(DType::f32, {4, 5}, Storage::arena, 448));         // 9 sm
  d.tensors.push_back(T(DType::f32, {4, 5}, Storage::arena, 128));         // 10 bin (aliases h)
  d.tensors.push_back(T(DType::f32, {4}, Storage::arena, 576));            // 11 red
  d.tensors.push_back(T(DType::i64, {4}, Storage::output, 0));             // 12 arg
  d.tensors.push_back(T(DType::i32, {4, 5}, Storage::output, 1));          // 13 cast
  d.tensors.push_back(T(DType::f32, {4, 5}, Storage::arena, 640));         // 14 un
  d.arena_bytes = 768;
  d.ops.push_back(Op(OpKind::index_map, {0, 1}, {2}, {1, 1, 24, 24}));
  d.ops.push_back(Op(OpKind::linear, {2, 3, 4, -1}, {5}, {4, 6, 5, 2}));
  d.ops.push_back(Op(OpKind::layernorm, {0, 6, 6}, {7}, {4, 6}, {1e-5f}));
  d.ops.push_back(Op(OpKind::matmul, {7, 2}, {8}, {2, 2, 3, 2, 1, 12, 6}, {0.5f}));
  d.ops.push_back(Op(OpKind::softmax, {5, 4}, {9}, {4, 5, 1}));
  d.ops.push_back(Op(OpKind::binary, {5, 9}, {10}, {2, 2, 4, 5, 5, 1, 5, 1}));
  d.ops.push_back(Op(OpKind::reduce, {10}, {11}, {4, 5, 1, 2}));
  d.ops.push_back(Op(OpKind::argmax, {10}, {12}, {4, 5}));
  d.ops.push_back(Op(OpKind::unary, {10}, {14}, {13}, {-0.5f, 0.5f}));
  d.ops.push_back(Op(OpKind::cast, {14}, {13}, {}));
  d.ops.push_back(Op(OpKind::copy, {11}, {11}, {}));
  d.inputs = {0};
  d.outputs = {12, 13};
  return d;
}

// A valid integer plan around the fused attention (quantize → attention_q with a bias table →
// layernorm_q with y_max → dequantize), the second fuzz seed.
static PlanDesc attention_plan() {
  PlanDesc d;
  auto ci = [&](std::vector<int32_t> v) { return add_constant(d, v.data(), v.size() * 4); };
  std::vector<int32_t> bias(8 * 4);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = (int32_t)(i % 7) * 3 - 9;
  bias[5] = -(1 << 30);
  d.tensors.push_back(T(DType::f32, {1, 4, 12}, Storage::input, 0));        // 0 x
  d.tensors.push_back(T(DType::u8, {1, 4, 12}, Storage::arena, 0));         // 1 qkv
  d.tensors.push_back(T(DType::i32, {8, 4}, Storage::constant, ci(bias)));  // 2 bias
  d.tensors.push_back(T(DType::i32, {1}, Storage::constant, ci({1 << 30}))); // 3 mult
  d.tensors.push_back(T(DType::i32, {1}, Storage::constant, ci({38})));     // 4 shift
  d.tensors.push_back(T(DType::u8, {1, 2, 4, 2}, Storage::arena, 64));      // 5 att
  d.tensors.push_back(T(DType::f32, {1, 2, 4, 2}, Storage::output, 0));     // 6 y
  d.arena_bytes = 128;
  d.ops.push_back(Op(OpKind::quantize, {0}, {1}, {7}, {0.05f}));
  d.ops.push_back(Op(OpKind::attention_q, {1, 2, 3, 4}, {5}, {1, 4, 2, 2, 7, 3, 127, 8}, {0.01f}));
  d.ops.push_back(Op(OpKind::dequantize, {5}, {6}, {3}, {0.1f}));
  d.inputs = {0};
  d.outputs = {6};
  return d;
}

// Random single-field mutations of a valid plan: every one is refused with an error or runs
// cleanly (ASan/UBSan would flag any read or write outside the buffers it was given).
static void fuzz(PlanDesc (*seed)(), const char* label, int iters, int min_accepted, int min_refused) {
  std::mt19937 g(1234);
  const int64_t specials[] = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 24, 63, 64, 1000, 1ll << 31, 1ll << 40, 1ll << 62, -(1ll << 62)};
  auto pick = [&]() { return g() % 4 == 0 ? (int64_t)(g() % 40) - 8 : specials[g() % (sizeof specials / sizeof *specials)]; };
  int accepted = 0, refused = 0;
  for (int it = 0; it < iters; ++it) {
    PlanDesc d = seed();
    const int n_mut = 1 + (int)(g() % 2);
    for (int m = 0; m < n_mut; ++m) {
      switch (g() % 9) {
        case 0: { auto& t = d.tensors[g() % d.tensors.size()]; if (t.rank > 0 && t.rank <= kMaxRank) t.dims[g() % (unsigned)t.rank] = pick(); break; }
        case 1: { auto& t = d.tensors[g() % d.tensors.size()]; t.offset = pick(); break; }
        case 2: { auto& t = d.tensors[g() % d.tensors.size()]; t.rank = (int32_t)(g() % 10) - 1; break; }
        case 3: { auto& t = d.tensors[g() % d.tensors.size()]; t.storage = (Storage)(g() % 5); break; }
        case 4: { auto& t = d.tensors[g() % d.tensors.size()]; t.dtype = (DType)(g() % 7); break; }
        case 5: { auto& o = d.ops[g() % d.ops.size()]; if (!o.ints.empty()) o.ints[g() % o.ints.size()] = pick(); break; }
        case 6: { auto& o = d.ops[g() % d.ops.size()]; if (!o.inputs.empty()) o.inputs[g() % o.inputs.size()] = (int32_t)(g() % 20) - 2; break; }
        case 7: { auto& o = d.ops[g() % d.ops.size()]; o.outputs[0] = (int32_t)(g() % 20) - 2; break; }
        case 8: d.arena_bytes = pick(); break;
      }
    }
    std::unique_ptr<Plan> p;
    try {
      p = Plan::create(d, PlanOptions{1 + (int)(g() % 2), false});
    } catch (const std::runtime_error& e) {
      ++refused;
      if (std::strncmp(e.what(), "plan", 4) != 0) {
        std::fprintf(stderr, "fuzz: error without a 'plan' prefix: %s\n", e.what());
        ++failures;
      }
      continue;
    }
    ++accepted;
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<ConstBuffer> in;
    std::vector<MutBuffer> out;
    for (size_t i = 0; i < p->input_count(); ++i) {
      bufs.emplace_back((size_t)p->input_bytes(i) + 1, (uint8_t)0x3f);
      in.push_back({bufs.back().data(), (size_t)p->input_bytes(i)});
    }
    for (size_t i = 0; i < p->output_count(); ++i) {
      bufs.emplace_back((size_t)p->output_bytes(i) + 1);
      out.push_back({bufs.back().data(), (size_t)p->output_bytes(i)});
    }
    // buffers are built before taking pointers: reserve so emplace_back never moves them
    (void)0;
    try {
      p->run(in, out);
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "fuzz: an accepted plan failed to run: %s\n", e.what());
      ++failures;
    }
  }
  std::printf("fuzz (%s): %d mutated plans accepted and run, %d refused\n", label, accepted, refused);
  if (accepted < min_accepted || refused < min_refused) {
    std::fprintf(stderr, "fuzz (%s): unexpected split (%d accepted, %d refused)\n", label, accepted, refused);
    ++failures;
  }
}

// The fp32 fuzz seed is itself valid and runs.
static void test_fp32_seed_runs() {
  auto p = Plan::create(every_op_plan(), PlanOptions{2, false});
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[i] = (float)i * 0.25f - 2.0f;
  std::vector<int64_t> arg(4);
  std::vector<int32_t> cst(20);
  p->run({{x.data(), 96}}, {{arg.data(), 32}, {cst.data(), 80}});
  for (int64_t a : arg) CHECK(a >= 0 && a < 5);
}

// The integer fuzz seed is itself valid and runs.
static void test_int_seed_runs() {
  auto p = Plan::create(attention_plan(), PlanOptions{2, false});
  std::vector<float> x(48), y(16);
  for (int i = 0; i < 48; ++i) x[i] = (float)((i * 7) % 13) * 0.5f - 3.0f;
  p->run({{x.data(), x.size() * 4}}, {{y.data(), y.size() * 4}});
  for (float v : y) CHECK(std::isfinite(v) && v >= -0.3f - 1e-6f && v <= 12.4f + 1e-6f);
}

// ThreadChoice's schedule on made-up times: warm-up runs on the pool, a block of probe runs on the
// pool and one on the caller, check runs with each op where its minimum was lower; the caller or the
// mix only when clearly faster than the pool; holds of 256, 512, … runs between measurements;
// disabled, every op is on the pool.
static void test_thread_choice() {
  const int P = ThreadChoice::kProbeRuns;
  ThreadChoice c;
  c.reset(3, false);
  CHECK(!c.op_serial(0) && !c.timing());
  // op 0 faster on the caller, op 1 on the pool, op 2 equal; whole runs: pool 10, caller 9, mixed 8
  auto cycle = [&](double pool_run, double caller_run, double mixed_run) {
    for (int r = 0; r < 2 * P; ++r) {
      const bool caller = r >= P;
      CHECK(c.timing());
      for (size_t i = 0; i < 3; ++i) CHECK(c.op_serial(i) == caller);
      c.record(0, caller ? 1.0 : 2.0);
      c.record(1, caller ? 5.0 : 3.0);
      c.record(2, 4.0);
      c.end_run(caller ? caller_run : pool_run);
    }
    for (int r = 0; r < P; ++r) {  // the mixed configuration: op 0 on the caller only (2 tied: pool)
      CHECK(c.timing() && c.op_serial(0) && !c.op_serial(1) && !c.op_serial(2));
      c.end_run(mixed_run);
    }
  };
  c.reset(3, true);
  CHECK(c.config() == ThreadChoice::Config::pool && c.choices() == 0);
  for (int r = 0; r < ThreadChoice::kWarmRuns; ++r) {
    CHECK(!c.timing() && !c.op_serial(0));
    c.end_run(50);
  }
  cycle(10, 9, 8);
  CHECK(c.config() == ThreadChoice::Config::mixed && c.serial_ops() == 1 && c.choices() == 1);
  CHECK(!c.timing() && c.op_serial(0) && !c.op_serial(1));
  for (int64_t r = 0; r < ThreadChoice::kFirstHoldRuns; ++r) c.end_run(100);  // held, then measured again
  CHECK(c.timing() && !c.op_serial(0));  // a probe run on the pool
  cycle(10, 7, 8);  // now every op on the caller is fastest
  CHECK(c.config() == ThreadChoice::Config::caller && c.serial_ops() == 3 && c.choices() == 2);
  for (int64_t r = 0; r < 2 * ThreadChoice::kFirstHoldRuns; ++r) {  // the second hold is twice as long
    CHECK(c.op_serial(1) && !c.timing());
    c.end_run(100);
  }
  cycle(10, 9.8, 9.9);  // within the margin of the pool: the pool
  CHECK(c.config() == ThreadChoice::Config::pool && c.serial_ops() == 0 && c.choices() == 3);
}

// A 2-thread plan that chooses per op gives the 1-thread plan's outputs on every run of its schedule.
static void test_thread_choice_runs() {
  auto p1 = Plan::create(linear_plan(64, 48, 96), PlanOptions{1, false});
  auto p2 = Plan::create(linear_plan(64, 48, 96), PlanOptions{2, false});
  CHECK(!p1->thread_choice().adaptive && p2->thread_choice().adaptive);
  std::vector<float> x(64 * 48), y1(64 * 96), y2(64 * 96);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
  p1->run({{x.data(), x.size() * 4}}, {{y1.data(), y1.size() * 4}});
  for (int r = 0; r < ThreadChoice::kWarmRuns + 3 * ThreadChoice::kProbeRuns + 5; ++r) {
    std::fill(y2.begin(), y2.end(), -7.0f);
    p2->run({{x.data(), x.size() * 4}}, {{y2.data(), y2.size() * 4}});
    CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0);
  }
  CHECK(p2->thread_choice().choices == 1);
  PlanOptions fixed{2, false};
  fixed.adapt_threads = false;
  CHECK(!Plan::create(linear_plan(64, 48, 96), fixed)->thread_choice().adaptive);
}

// A valid plan runs and matches hand math; run() checks buffer sizes and names the index.
static void test_linear_runs() {
  auto p = Plan::create(linear_plan(5, 7, 19), PlanOptions{2, true});
  std::vector<float> x(35), y(95);
  for (int i = 0; i < 35; ++i) x[i] = (float)(i % 5) - 2.0f;
  p->run({{x.data(), x.size() * 4}}, {{y.data(), y.size() * 4}});
  PlanDesc d = linear_plan(5, 7, 19);
  const float* w = reinterpret_cast<const float*>(d.constants.data());
  double maxerr = 0;
  for (int i = 0; i < 5; ++i)
    for (int n = 0; n < 19; ++n) {
      double s = w[7 * 19 + n];
      for (int k = 0; k < 7; ++k) s += x[i * 7 + k] * w[k * 19 + n];
      maxerr = std::max(maxerr, std::fabs(s - y[i * 19 + n]));
    }
  CHECK(maxerr < 1e-4);
  CHECK(p->profile().size() == 1);
  // run() checks sizes and names the index
  try {
    p->run({{x.data(), 4}}, {{y.data(), y.size() * 4}});
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("input 0 has 4 bytes, expected 140") != std::string::npos);
  }
  try {
    p->run({}, {{y.data(), y.size() * 4}});
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("got 0 inputs") != std::string::npos);
  }
}

// Hostile tensor descriptions: sizes, dims, rank, constant and arena ranges.
static void test_tensor_validation() {
  {  // wrong weight size names op, node, field and formula
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[1].dims[0] = 5;
    expect_error("linear w", d, {"plan op #0 linear (node 'MatMul_123')", "w has 50 elements", "K·N = 60"});
  }
  {  // hostile dims: element count overflow
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[0] = T(DType::f32, {1ll << 40, 1ll << 40}, Storage::input, 0);
    expect_error("overflow", d, {"tensor #0", "overflows"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[0].dims[1] = -3;
    expect_error("negative dim", d, {"tensor #0", "dims[1] = -3"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[0].rank = 9;
    expect_error("rank", d, {"tensor #0", "rank 9"});
  }
  {  // constant past the region
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[2].offset = 1 << 20;
    expect_error("const range", d, {"tensor #2", "constant region"});
  }
  {  // arena past arenaBytes
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[3].storage = Storage::arena;
    d.outputs.clear();
    d.arena_bytes = 100;
    expect_error("arena range", d, {"tensor #3", "arenaBytes = 100"});
  }
}

// Hostile op fields: tensor ids, arity, ints, kind, dtype, the inputs list, writes to constants.
static void test_op_validation() {
  {  // tensor ids
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].inputs[0] = 99;
    expect_error("bad id", d, {"op #0 linear", "input x = 99"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].inputs = {0};
    expect_error("arity", d, {"has 1 inputs, expected 2..4"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].ints = {4, 6, 10};
    expect_error("ints length", d, {"ints has 3 values, expected 4"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].ints[3] = 9;
    expect_error("act", d, {"act = 9"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].kind = (OpKind)77;
    expect_error("kind", d, {"kind 77 is unknown", "MatMul_123"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.inputs = {3};
    expect_error("inputs list", d, {"inputs[0]", "storage input"});
  }
  {
    PlanDesc d = linear_plan(4, 6, 10);
    d.tensors[0].dtype = DType::i8;
    d.tensors[0].dims[1] = 24;  // same bytes, wrong dtype
    expect_error("dtype", d, {"x is int8, expected float32"});
  }
  {  // writing a constant
    PlanDesc d = linear_plan(4, 6, 10);
    d.ops[0].outputs = {1};
    expect_error("write const", d, {"cannot be written"});
  }
}

// index_map: an index reading past the item and a zero block are refused.
static void test_index_map_validation() {
  PlanDesc d;
  d.constants.resize(8);
  int32_t idx[2] = {0, 3};
  std::memcpy(d.constants.data(), idx, 8);
  d.tensors.push_back(T(DType::f32, {4}, Storage::input, 0));
  d.tensors.push_back(T(DType::i32, {2}, Storage::constant, 0));
  d.tensors.push_back(T(DType::f32, {4}, Storage::output, 0));
  d.ops.push_back(Op(OpKind::index_map, {0, 1}, {2}, {2, 1, 4, 4}, {}, "Transpose_9"));
  d.inputs = {0};
  d.outputs = {2};
  expect_error("index_map idx", d, {"index_map (node 'Transpose_9')", "idx[1] = 3 reads past"});
  d.ops[0].ints = {0, 1, 4, 4};
  expect_error("index_map block", d, {"block = 0"});
}

// binary: strides reaching past b or negative are refused; a row broadcast runs.
static void test_binary_strides() {
  PlanDesc d;
  d.tensors.push_back(T(DType::f32, {2, 3}, Storage::input, 0));
  d.tensors.push_back(T(DType::f32, {3}, Storage::input, 1));
  d.tensors.push_back(T(DType::f32, {2, 3}, Storage::output, 0));
  d.ops.push_back(Op(OpKind::binary, {0, 1}, {2}, {0, 2, 2, 3, 3, 1, 3, 1}));
  d.inputs = {0, 1};
  d.outputs = {2};
  expect_error("binary strides", d, {"b has 3 elements", "reach element 5"});
  d.ops[0].ints = {0, 2, 2, 3, 3, 1, -1, 1};
  expect_error("binary negative stride", d, {"b_strides[0] = -1"});
  d.ops[0].ints = {0, 9};
  expect_error("binary rank", d, {"rank = 9"});
  d.ops[0].ints = {0, 2, 2, 3, 3, 1, 0, 1};
  auto p = Plan::create(d, PlanOptions{});  // row broadcast is fine
  float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, y[6];
  p->run({{a, 24}, {b, 12}}, {{y, 24}});
  CHECK(y[0] == 11 && y[5] == 36);
}

// matmul: a batch stride past the tensor, an overflowing stride and missing floats are refused.
static void test_matmul_strides() {
  PlanDesc d;
  d.tensors.push_back(T(DType::f32, {2, 3, 4}, Storage::input, 0));
  d.tensors.push_back(T(DType::f32, {4, 5}, Storage::input, 1));
  d.tensors.push_back(T(DType::f32, {2, 3, 5}, Storage::output, 0));
  d.ops.push_back(Op(OpKind::matmul, {0, 1}, {2}, {2, 3, 4, 5, 0, 12, 20}, {1.0f}));
  d.inputs = {0, 1};
  d.outputs = {2};
  expect_error("matmul stride", d, {"b has 20 elements", "needs 40"});
  d.ops[0].ints = {2, 3, 4, 5, 0, 1ll << 50, 0};
  expect_error("matmul hostile stride", d, {"batch stride overflows"});
  d.ops[0].ints[5] = 12;
  d.ops[0].floats = {};
  expect_error("matmul floats", d, {"floats has 0 values"});
}

// Arena layout: partial overlap, misalignment and an oversized arena are refused.
static void test_arena_layout() {
  {  // partial overlap of an elementwise op in the arena
    PlanDesc d;
    d.arena_bytes = 64;
    d.tensors.push_back(T(DType::f32, {8}, Storage::arena, 0));
    d.tensors.push_back(T(DType::f32, {8}, Storage::arena, 16));
    d.ops.push_back(Op(OpKind::unary, {0}, {1}, {0}));
    expect_error("overlap", d, {"partially overlaps x"});
    d.tensors[1].offset = 0;
    auto p = Plan::create(d, PlanOptions{});  // exact alias is fine
    p->run({}, {});
  }
  {  // arena offset misaligned for f32
    PlanDesc d;
    d.arena_bytes = 64;
    d.tensors.push_back(T(DType::f32, {2}, Storage::arena, 2));
    expect_error("align", d, {"not aligned"});
  }
  {  // arena too large
    PlanDesc d;
    d.arena_bytes = 1ll << 50;
    expect_error("arena size", d, {"arenaBytes"});
  }
}

// Empty shapes everywhere run without touching memory (M = 0, K = 0, rows = 0).
static void test_empty_shapes() {
  for (int64_t M : {0, 3})
    for (int64_t K : {0, 5}) {
      PlanDesc d = linear_plan(M, K, 7);
      d.ops[0].ints[3] = 2;
      auto p = Plan::create(d, PlanOptions{2, false});
      std::vector<float> x((size_t)(M * K) + 1, 1.0f), y((size_t)(M * 7) + 1, -1.0f);
      p->run({{M * K != 0 ? x.data() : nullptr, (size_t)(M * K * 4)}}, {{M ? y.data() : nullptr, (size_t)(M * 7 * 4)}});
      if (M && !K) {  // x·w is empty: y = gelu(bias)
        const float* bias = reinterpret_cast<const float*>(d.constants.data());
        CHECK(std::fabs(y[0] - 0.5f * bias[0] * (1 + std::erf(bias[0] / std::sqrt(2.0f)))) < 1e-5f);
      }
    }
  PlanDesc d;
  d.tensors.push_back(T(DType::f32, {0, 4}, Storage::input, 0));
  d.tensors.push_back(T(DType::f32, {0, 4}, Storage::output, 0));
  d.tensors.push_back(T(DType::i64, {0}, Storage::output, 1));
  d.ops.push_back(Op(OpKind::softmax, {0}, {1}, {0, 4, 0}));
  d.ops.push_back(Op(OpKind::layernorm, {0}, {1}, {0, 4}, {1e-5f}));
  d.ops.push_back(Op(OpKind::argmax, {0}, {2}, {0, 4}));
  d.ops.push_back(Op(OpKind::matmul, {0, 0}, {1}, {0, 0, 4, 4, 1, 0, 0}, {1.0f}));
  d.inputs = {0};
  d.outputs = {1, 2};
  auto p = Plan::create(d, PlanOptions{});
  p->run({{nullptr, 0}}, {{nullptr, 0}, {nullptr, 0}});
}

// cast saturates out-of-range floats and NaN instead of invoking UB.
static void test_cast_saturates() {
  PlanDesc d;
  d.tensors.push_back(T(DType::f32, {6}, Storage::input, 0));
  d.tensors.push_back(T(DType::i32, {6}, Storage::output, 0));
  d.tensors.push_back(T(DType::u8, {6}, Storage::output, 1));
  d.tensors.push_back(T(DType::i64, {6}, Storage::output, 2));
  d.ops.push_back(Op(OpKind::cast, {0}, {1}, {}));
  d.ops.push_back(Op(OpKind::cast, {0}, {2}, {}));
  d.ops.push_back(Op(OpKind::cast, {0}, {3}, {}));
  d.inputs = {0};
  d.outputs = {1, 2, 3};
  auto p = Plan::create(d, PlanOptions{});
  float x[6] = {NAN, INFINITY, -INFINITY, 3e9f, -3e9f, -2.7f};
  int32_t a[6];
  uint8_t b[6];
  int64_t c[6];
  p->run({{x, sizeof x}}, {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}});
  CHECK(a[0] == 0 && a[1] == INT32_MAX && a[2] == INT32_MIN && a[3] == INT32_MAX && a[4] == INT32_MIN && a[5] == -2);
  CHECK(b[0] == 0 && b[1] == 255 && b[2] == 0 && b[5] == 0);
  CHECK(c[3] == 3000000000ll && c[4] == -3000000000ll && c[5] == -2);
}

// The op table: every kind of ops.def has a definition with validate and run, and distinct
// kinds are distinct definitions (a copy-pasted registry line would alias two ops).
static void test_op_table() {
  for (int k = 0; k < (int)OpKind::count_; ++k) {
    const OpDef& def = op_def((OpKind)k);
    CHECK(def.validate != nullptr && def.run != nullptr, "op %s", op_name((OpKind)k));
    for (int j = 0; j < k; ++j) CHECK(&op_def((OpKind)j) != &def, "ops %s and %s share an OpDef", op_name((OpKind)j), op_name((OpKind)k));
  }
}

int main() {
  test_thread_choice();
  test_thread_choice_runs();
  test_fp32_seed_runs();
  test_int_seed_runs();
  fuzz(every_op_plan, "fp32 ops", 6000, 100, 1000);
  fuzz(attention_plan, "attention_q", 3000, 50, 500);
  test_linear_runs();
  test_tensor_validation();
  test_op_validation();
  test_index_map_validation();
  test_binary_strides();
  test_matmul_strides();
  test_arena_layout();
  test_empty_shapes();
  test_cast_saturates();
  test_op_table();

  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  else std::printf("executor_test: ok\n");
  return failures ? 1 : 0;
}
