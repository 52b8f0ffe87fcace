// Integer GEMM ops: linear_q (u8 × packed s8 weights, fused bias/ReLU/requantize/table, exact
// sparse-A path) and the batched matmul_q of activations. Contracts: ops.def; kernels:
// kernels/int/qgemm_avx2.cc, qsparse*.cc, qkernels.cc, qmatmul*.cc.
#include <algorithm>
#include <vector>

#include "int_common.h"
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/qplan_kernels.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- linear_q ----

void linear_q_validate(const OpCheck& c) {
  c.arity(2, 7, {"x", "w", "bias", "mult", "shift", "table", "residual"});
  c.ints_len_in(8, 9, "[M, K, N, x_zp, w_zp, y_zp, relu, x_max(, y_max)]");
  c.nonneg({"M", "K", "N"});
  const int64_t M = c.I(0), K = c.I(1), N = c.I(2);
  if (K < 1 || K > 65536) c.fail("ints[1] K = " + str(K) + " is outside [1, 65536]");
  if (N < 1 || N > (1 << 24)) c.fail("ints[2] N = " + str(N) + " is outside [1, 2^24]");
  const int32_t x = c.in(0), w = c.in(1), b = c.in(2), m = c.in(3), s = c.in(4), tb = c.in(5), y = c.out();
  c.dtype(x, "x", {DType::u8});
  c.dtype(w, "w", {DType::i8});
  c.dtype(y, "y", {DType::i32, DType::i8, DType::u8, DType::i16});
  c.constant(w, "w");
  c.elems(x, "x", c.prod({M, K}, "M·K"), "M·K");
  c.elems(w, "w", c.prod({K, N}, "K·N"), "K·N");
  c.elems(y, "y", c.prod({M, N}, "M·N"), "M·N");
  c.zp(3, "x_zp", DType::u8);
  c.zp(4, "w_zp", DType::i8);
  const DType yt = c.t(y).dtype;
  c.zp(5, "y_zp", yt);
  if (c.I(6) != 0 && c.I(6) != 1) c.fail("ints[6] relu = " + str(c.I(6)) + " must be 0 or 1");
  if (c.I(7) < 1 || c.I(7) > 255) c.fail("ints[7] x_max = " + str(c.I(7)) + " is outside [1, 255]");
  if (c.op.ints.size() == 9) {
    if (yt != DType::i8 && yt != DType::u8) c.fail("ints[8] y_max needs an int8 or uint8 y");
    if (tb >= 0) c.fail("ints[8] y_max and a table exclude each other (the table sets the codes)");
    c.y_max(8, c.I(5), yt);
  }
  if (b >= 0) {
    c.dtype(b, "bias", {DType::i32});
    c.elems(b, "bias", N, "N");
  }
  if (yt == DType::i32) {
    if (m >= 0 || s >= 0 || tb >= 0) c.fail("an int32 y takes no mult, shift or table");
    if (c.I(5) != 0) c.fail("ints[5] y_zp = " + str(c.I(5)) + " must be 0 for an int32 y");
  } else {
    if (m < 0 || s < 0) c.fail(std::string("a ") + dtype_name(yt) + " y needs mult and shift (inputs 3, 4)");
    c.requant_tensors(m, s, N, false);
  }
  if (tb >= 0) {
    if (yt != DType::i8 && yt != DType::u8) c.fail("a table needs an int8 or uint8 y");
    c.dtype(tb, "table", {DType::u8});
    c.constant(tb, "table");
    c.elems(tb, "table", 256, "256");
  }
  const int32_t res = c.in(6);
  if (res >= 0) {
    if (yt != DType::i16) c.fail("a residual needs an int16 y");
    if (c.I(5) != 0 || c.I(6) != 0 || tb >= 0) c.fail("a residual takes y_zp 0, no relu and no table");
    c.dtype(res, "residual", {DType::i16});
    c.elems(res, "residual", c.prod({M, N}, "M·N"), "M·N");
    c.floats_len(3, "[r_scale, v_scale, y_scale] (with a residual)");
    c.scale(0, "r_scale");
    c.scale(1, "v_scale");
    c.scale(2, "y_scale");
    c.no_overlap(res, "residual");
  } else {
    c.floats_len(0, "[] (without a residual)");
  }
  c.no_overlap(x, "x");
  c.no_overlap(b, "bias");
}

struct LinearQState : OpState {
  q::PackedB packed;
  int32_t y_max = 255;  // clamp of an 8-bit y
  bool prepared = false;  // prep holds the epilogue's expansion (bias and requantization are constants)
  q::GemmPrep prep;
  q::AddParams add;  // with a residual
};

// The epilogue of a linear_q from its ints and its bias / mult / shift / table tensors (any null).
q::GemmEpilogue linear_q_epilogue(const std::vector<int64_t>& I, q::QType out, const int32_t* bias, const int32_t* mult,
                                  const int32_t* shift, int64_t channels, const uint8_t* table, int32_t y_max) {
  q::GemmEpilogue ep;
  ep.bias = bias;
  ep.a_zero_point = (int32_t)I[3];
  ep.relu = I[6] != 0;
  ep.out = out;
  if (ep.out != q::QType::s32) {
    ep.rq.mult = mult;
    ep.rq.shift = shift;
    ep.rq.channels = (int32_t)channels;
    ep.rq.zero_point = (int32_t)I[5];
    ep.rq.qmax = y_max;
    ep.table = table;
  }
  return ep;
}

std::unique_ptr<OpState> linear_q_prepare(const OpCheck& c, const PlanOptions& options) {
  auto st = std::make_unique<LinearQState>();
  const DType yt = c.t(c.out()).dtype;
  st->y_max = c.op.ints.size() == 9 ? (int32_t)c.I(8) : dmax(yt);
  q::PackOptions po;
  po.w_zero_point = (int32_t)c.I(4);
  po.a_max = (int32_t)c.I(7);
  po.a_pair_max = std::min(510, 2 * po.a_max);
  // maybe a ReLU output: keep the K-major copy for the sparse-A path (qkernels.h), unless the
  // plan was created with sparse_a = false
  po.kmajor = c.I(3) == 0 && options.sparse_a;
  const int64_t K = c.I(1), N = c.I(2);
  st->packed =
      c.kernel("packing w", [&] { return q::pack_b(c.cdata<int8_t>(c.in(1)), (int32_t)K, (int32_t)N, N, false, po); });
  // bias, mult and shift fixed at load: the epilogue's expansion once here, not per run
  const int32_t b = c.in(2), m = c.in(3), sh = c.in(4);
  const bool fixed = (b < 0 || c.t(b).storage == Storage::constant) && (m < 0 || c.t(m).storage == Storage::constant) &&
                     (sh < 0 || c.t(sh).storage == Storage::constant);
  if (fixed) {
    const q::GemmEpilogue ep = linear_q_epilogue(c.op.ints, qt(yt), b >= 0 ? c.cdata<int32_t>(b) : nullptr,
                                                 m >= 0 ? c.cdata<int32_t>(m) : nullptr, sh >= 0 ? c.cdata<int32_t>(sh) : nullptr,
                                                 m >= 0 ? c.t(m).elements() : 1, nullptr, st->y_max);
    st->prep = c.kernel("bias and requantization", [&] { return q::gemm_prepare(st->packed, ep); });
    st->prepared = true;
  }
  if (c.in(6) >= 0) {
    const double rs = c.scale(0, "r_scale"), vs = c.scale(1, "v_scale"), ys = c.scale(2, "y_scale");
    st->add = c.kernel("residual scales", [&] { return q::add_params(rs, 0, vs, 0, ys, 0, q::QType::s16); });
  }
  return st;
}

// Rows [m0, m1) of the linear; on the pool's threads when `pool` (the whole op), else on the caller.
void linear_q_rows(const OpRun& r, int64_t m0, int64_t m1, ThreadPool* pool) {
  const auto& I = r.op.ints;
  const int64_t K = I[1], N = I[2];
  if (m0 >= m1) return;
  const LinearQState& st = r.st<LinearQState>();
  const q::QType out = qt(r.out_t().dtype);
  q::GemmEpilogue ep =
      linear_q_epilogue(I, out, static_cast<const int32_t*>(r.in(2)), static_cast<const int32_t*>(r.in(3)),
                        static_cast<const int32_t*>(r.in(4)), out != q::QType::s32 ? r.in_t(3).elements() : 1,
                        static_cast<const uint8_t*>(r.in(5)), st.y_max);
  if (r.in(6)) {
    ep.residual = static_cast<const int16_t*>(r.in(6)) + m0 * N;
    ep.residual_type = q::QType::s16;
    ep.ldr = N;
    ep.add = &st.add;
  }
  q::gemm_u8s8(m1 - m0, static_cast<const uint8_t*>(r.in(0)) + m0 * K, K, st.packed, ep,
               static_cast<uint8_t*>(r.out()) + m0 * N * q::qtype_size(out), N, 1, r.isa, pool,
               st.prepared ? &st.prep : nullptr);
}

void linear_q_run(const OpRun& r) { linear_q_rows(r, 0, r.op.ints[0], &r.pool); }
void linear_q_run_rows(const OpRun& r, int64_t m0, int64_t m1) { linear_q_rows(r, m0, m1, nullptr); }
// Row-local when the weights stay in L2 (as gemm_u8s8's row split): each thread sweeps all of them
// for its rows; larger weights are split by columns on the pool (each thread streams half).
RowSplit linear_q_row_split(const OpDesc& op) {
  if (op.ints[1] * op.ints[2] > q::kGemmRowSplitMaxWeightBytes) return {};
  return {op.ints[0], 1, false};
}

// ---- matmul_q ----

void matmul_q_validate(const OpCheck& c) {
  c.arity(2, 4, {"a", "b", "mult", "shift"});
  c.ints_len(10, "[batch, M, K, N, trans_b, a_batch_stride, b_batch_stride, a_zp, b_zp, y_zp]");
  c.nonneg({"batch", "M", "K", "N", "trans_b", "a_batch_stride", "b_batch_stride"});
  const int64_t batch = c.I(0), M = c.I(1), K = c.I(2), N = c.I(3);
  if (c.I(4) > 1) c.fail("ints[4] trans_b = " + str(c.I(4)) + " must be 0 or 1");
  if (K > 32768) c.fail("ints[2] K = " + str(K) + " exceeds 32768 (int32 sums could overflow)");
  const int32_t a = c.in(0), b = c.in(1), m = c.in(2), s = c.in(3), y = c.out();
  c.dtype(a, "a", {DType::u8});
  c.dtype(b, "b", k8);
  c.dtype(y, "y", {DType::i32, DType::i8, DType::u8, DType::i16});
  c.zp(7, "a_zp", DType::u8);
  c.zp(8, "b_zp", c.t(b).dtype);
  const DType yt = c.t(y).dtype;
  c.zp(9, "y_zp", yt);
  c.elems(y, "y", c.prod({batch, M, N}, "batch·M·N"), "batch·M·N");
  c.batch_strides(a, b, batch, M, K, N, 5);
  if (yt == DType::i32) {
    if (m >= 0 || s >= 0) c.fail("an int32 y takes no mult or shift");
    if (c.I(9) != 0) c.fail("ints[9] y_zp = " + str(c.I(9)) + " must be 0 for an int32 y");
  } else {
    if (m < 0 || s < 0) c.fail(std::string("a ") + dtype_name(yt) + " y needs mult and shift (inputs 2, 3)");
    c.requant_tensors(m, s, 1, false);
  }
  c.no_overlap(a, "a");
  c.no_overlap(b, "b");
}

void matmul_q_run(const OpRun& r) {
  const auto& I = r.op.ints;
  const int64_t batch = I[0], M = I[1], K = I[2], N = I[3], as = I[5], bs = I[6];
  if (!batch || !M || !N) return;
  const bool tb = I[4] != 0, b_u8 = r.in_t(1).dtype == DType::u8;
  const int32_t za = (int32_t)I[7], zb = (int32_t)I[8];
  const uint8_t* a = static_cast<const uint8_t*>(r.in(0));
  const uint8_t* b = static_cast<const uint8_t*>(r.in(1));
  const q::QType qo = qt(r.out_t().dtype);
  const int64_t ey = (int64_t)dtype_size(r.out_t().dtype);
  void* out = r.out();
  uint8_t* y8 = static_cast<uint8_t*>(out);
  const Isa isa = r.isa;
  q::Requant rq;
  if (qo != q::QType::s32) {
    rq.mult = static_cast<const int32_t*>(r.in(2));
    rq.shift = static_cast<const int32_t*>(r.in(3));
    rq.channels = 1;
    rq.zero_point = (int32_t)I[9];
    rq = q::for_type(rq, qo);
  }
  r.pool.parallel_for(batch, chunk_for(M * N * std::max<int64_t>(K, 1), 100000), [&](int64_t t0, int64_t t1) {
    thread_local std::vector<int32_t> acc;
    for (int64_t t = t0; t < t1; ++t) {
      int32_t* c = qo == q::QType::s32 ? static_cast<int32_t*>(out) + t * M * N : nullptr;
      if (!c) {
        if ((int64_t)acc.size() < M * N) acc.resize((size_t)(M * N));
        c = acc.data();
      }
      if (K == 0) std::fill(c, c + M * N, 0);
      else q::matmul_u8x8_s32(a + t * as, za, b + t * bs, b_u8, zb, tb, M, K, N, c, isa);
      if (qo != q::QType::s32) q::requantize(c, M, N, rq, qo, y8 + t * M * N * ey, isa);
    }
  });
}

}  // namespace

extern const OpDef op_linear_q{linear_q_validate, linear_q_prepare, linear_q_run, linear_q_row_split, linear_q_run_rows};
extern const OpDef op_matmul_q{matmul_q_validate, nullptr, matmul_q_run};

}  // namespace swinq
