// Integer softmax ops: softmax_q (int32 logits → u8 probabilities with an integer exp) and
// attention_q (one windowed multi-head attention over a fused qkv tensor, softmax_q's exp
// inside). Contracts: ops.def; kernels: kernels/int/qkernels.cc, qattention*.cc.
#include <algorithm>
#include <vector>

#include "int_common.h"
#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- softmax_q ----

void softmax_q_validate(const OpCheck& c) {
  c.arity(1, 2, {"x", "table"});
  c.ints_len(3, "[rows, D, table_rows]");
  c.floats_len(1, "[x_scale]");
  c.nonneg({"rows", "D", "table_rows"});
  const int64_t rows = c.I(0), D = c.I(1), tr = c.I(2);
  if (D < 1 || D > (1 << 24)) c.fail("ints[1] D = " + str(D) + " is outside [1, 2^24]");
  const int32_t x = c.in(0), tb = c.in(1), y = c.out();
  c.dtype(x, "x", {DType::i32});
  c.dtype(y, "y", {DType::u8});
  c.elems(x, "x", c.prod({rows, D}, "rows·D"), "rows·D");
  c.elems(y, "y", c.prod({rows, D}, "rows·D"), "rows·D");
  if (tb >= 0) {
    if (tr < 1) c.fail("ints[2] table_rows = " + str(tr) + " must be >= 1 with a table");
    c.dtype(tb, "table", {DType::i32});
    c.constant(tb, "table");
    c.elems(tb, "table", c.prod({tr, D}, "table_rows·D"), "table_rows·D");
  }
  c.scale(0, "x_scale");
  c.no_overlap(x, "x");
}

struct SoftmaxQState : OpState {
  q::SoftmaxParams sm;
};

std::unique_ptr<OpState> softmax_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<SoftmaxQState>();
  const double sc = c.scale(0, "x_scale");
  st->sm = c.kernel("x_scale", [&] { return q::softmax_params(sc); });
  return st;
}

void softmax_q_run(const OpRun& r) {
  const int64_t rows = r.op.ints[0], D = r.op.ints[1], tr = r.op.ints[2];
  if (!rows) return;
  const q::SoftmaxParams& sm = r.st<SoftmaxQState>().sm;
  const int32_t* x = static_cast<const int32_t*>(r.in(0));
  const int32_t* table = static_cast<const int32_t*>(r.in(1));
  uint8_t* y = static_cast<uint8_t*>(r.out());
  const Isa isa = r.isa;
  r.pool.parallel_for(rows, chunk_for(D * 8), [&](int64_t b, int64_t e) {
    // table row = r mod table_rows: split the chunk where the period wraps
    for (int64_t i = b; i < e;) {
      int64_t len = e - i;
      const int32_t* tp = nullptr;
      int64_t tn = 0;
      if (table) {
        const int64_t off = i % tr;
        len = std::min(len, tr - off);
        tp = table + off * D;
        tn = tr - off;
      }
      q::softmax_u8(x + i * D, len, D, tp, tn, sm, y + i * D, isa);
      i += len;
    }
  });
}

// ---- attention_q ----

// ints[8] (optional): 1 = heads merged into rows of y[·, C] (ops.def)
bool heads_merged(const std::vector<int64_t>& ints) { return ints.size() == 9 && ints[8] == 1; }

void attention_q_validate(const OpCheck& c) {
  c.arity(1, 5, {"qkv", "bias", "mult", "shift", "y_rows"});
  if (c.op.inputs.size() < 4)
    c.fail("has " + str((int64_t)c.op.inputs.size()) + " inputs, expected 4 (qkv, bias or -1, mult, shift) or 5 (y_rows)");
  c.ints_len_in(8, 9, "[W, N, H, dh, zp, y_zp, y_max, bias_rows(, heads_merged)]");
  c.floats_len(1, "[logit_scale]");
  c.nonneg({"W", "N", "H", "dh"});
  const int64_t W = c.I(0), N = c.I(1), H = c.I(2), dh = c.I(3);
  if (N < 1 || N > q::kAttentionMaxN) c.fail("ints[1] N = " + str(N) + " is outside [1, " + str(q::kAttentionMaxN) + "]");
  if (H < 1 || H > 4096) c.fail("ints[2] H = " + str(H) + " is outside [1, 4096]");
  if (dh < 1 || dh > q::kAttentionMaxDh)
    c.fail("ints[3] dh = " + str(dh) + " is outside [1, " + str(q::kAttentionMaxDh) + "]");
  const int32_t x = c.in(0), b = c.in(1), m = c.in(2), s = c.in(3), y = c.out();
  if (m < 0 || s < 0) c.fail("needs mult and shift (inputs 2, 3)");
  c.dtype(x, "qkv", {DType::u8});
  c.dtype(y, "y", {DType::u8});
  c.elems(x, "qkv", c.prod({W, N, 3, H, dh}, "W·N·3·H·dh"), "W·N·3·H·dh");
  c.elems(y, "y", c.prod({W, H, N, dh}, "W·H·N·dh"), "W·H·N·dh");
  c.requant_tensors(m, s, 1, false);
  const int32_t zp = c.zp(4, "zp", DType::u8);
  (void)zp;
  c.y_max(6, c.zp(5, "y_zp", DType::u8), DType::u8);
  if (c.cdata<int32_t>(m)[0] == 0) c.fail("mult[0] must be non-zero");
  if (b >= 0) {
    const int64_t br = c.I(7);
    if (br < 1) c.fail("ints[7] bias_rows = " + str(br) + " must be >= 1 with a bias");
    c.dtype(b, "bias", {DType::i32});
    c.constant(b, "bias");
    c.elems(b, "bias", c.prod({br, N}, "bias_rows·N"), "bias_rows·N");
  } else if (c.I(7) != 0) {
    c.fail("ints[7] bias_rows = " + str(c.I(7)) + " must be 0 without a bias");
  }
  c.scale(0, "logit_scale");
  c.no_overlap(x, "qkv");
  if (c.op.ints.size() == 9 && c.I(8) != 0 && c.I(8) != 1) c.fail("ints[8] heads_merged = " + str(c.I(8)) + " must be 0 or 1");
  const int32_t rows = c.in(4);
  if (rows >= 0) {  // a permutation of y's W·N rows
    if (!heads_merged(c.op.ints)) c.fail("y_rows needs heads_merged = 1 (ints[8])");
    c.row_permutation(rows, "y_rows", c.prod({W, N}, "W·N"), "W·N");
  }
}

struct AttentionQState : OpState {
  q::AttentionParams att;             // bias pointer taken at run time
  std::vector<int32_t> bias_by_key;   // the constant bias key-major, for the AVX-512 kernel
};

std::unique_ptr<OpState> attention_q_prepare(const OpCheck& c, const PlanOptions&) {
  auto st = std::make_unique<AttentionQState>();
  q::AttentionParams& a = st->att;
  a.W = c.I(0), a.N = c.I(1), a.H = c.I(2), a.dh = c.I(3);
  a.zp = (int32_t)c.I(4);
  a.y_zp = (int32_t)c.I(5);
  a.y_max = (int32_t)c.I(6);
  a.mult = c.cdata<int32_t>(c.in(2))[0];
  a.shift = c.cdata<int32_t>(c.in(3))[0];
  a.bias_rows = c.in(1) >= 0 ? c.I(7) : 0;
  if (heads_merged(c.op.ints)) a.y_ld = a.H * a.dh;  // y_rows' pointer taken at run time
  if (a.bias_rows) {  // any kernel set may run (setIsa), so made whatever the CPU
    st->bias_by_key = q::attention_bias_by_key(c.cdata<int32_t>(c.in(1)), a.bias_rows, a.N);
    a.bias_by_key_period = q::attention_bias_period(a.N, a.bias_rows);
  }
  const double sc = c.scale(0, "logit_scale");
  c.kernel("logit_scale", [&] { q::attention_set_logit_scale(a, sc); });
  return st;
}

// Heads [t0, t1) of the W·H on the calling thread, query rows [row0, row1) of each (row1 0: all).
void attention_q_heads(const OpRun& r, int64_t t0, int64_t t1, int64_t row0 = 0, int64_t row1 = 0) {
  const AttentionQState& st = r.st<AttentionQState>();
  q::AttentionParams a = st.att;
  a.bias = a.bias_rows ? static_cast<const int32_t*>(r.in(1)) : nullptr;
  a.bias_by_key = a.bias_rows ? st.bias_by_key.data() : nullptr;
  a.y_rows = static_cast<const int32_t*>(r.in(4));
  a.row_begin = row0, a.row_end = row1;
  const size_t bytes = q::attention_scratch_bytes(a.N, a.dh);
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < bytes + 32) scratch.resize(bytes + 32);
  void* p = scratch.data() + ((32 - (reinterpret_cast<uintptr_t>(scratch.data()) & 31)) & 31);
  q::attention_u8(static_cast<const uint8_t*>(r.in(0)), a, t0, t1, p, static_cast<uint8_t*>(r.out()), r.isa);
}

void attention_q_run(const OpRun& r) {
  const int64_t W = r.op.ints[0], H = r.op.ints[2];
  if (!W) return;
  // whole windows per thread, the same rows as the row-wise ops around it (parallel_for_static)
  r.pool.parallel_for_static(W * H, W > 1 ? H : 1, [&](int64_t b, int64_t e) { attention_q_heads(r, b, e); });
}

// With merged heads: several windows split as whole windows [r0 / N, r1 / N) (row-local); one
// window splits its query rows, every head of them, which reads every key row (reads_all: the op
// starts a region, the ops after it continue on its rows).
RowSplit attention_q_row_split(const OpDesc& op) {
  const int64_t W = op.ints[0], N = op.ints[1];
  if (!heads_merged(op.ints) || W < 1) return {};
  const bool scatters = op.inputs.size() > 4 && op.inputs[4] >= 0;
  return W == 1 ? RowSplit{N, 1, scatters, true} : RowSplit{W * N, N, scatters, false};
}
void attention_q_run_rows(const OpRun& r, int64_t r0, int64_t r1) {
  const int64_t W = r.op.ints[0], N = r.op.ints[1], H = r.op.ints[2];
  if (W == 1) {
    if (r0 < r1) attention_q_heads(r, 0, H, r0, r1);
  } else {
    attention_q_heads(r, r0 / N * H, r1 / N * H);
  }
}

}  // namespace

extern const OpDef op_softmax_q{softmax_q_validate, softmax_q_prepare, softmax_q_run};
extern const OpDef op_attention_q{attention_q_validate, attention_q_prepare, attention_q_run, attention_q_row_split,
                                  attention_q_run_rows};

}  // namespace swinq
