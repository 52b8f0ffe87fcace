// Internal: the integer kernels behind qkernels.h, named by contract (docs/architecture.md,
// kernels): a scalar reference (qkernels.cc, qattention.cc), an AVX2 form (*_avx2.cc) of each and
// AVX-512 forms of some (*_avx512.cc), picked only through the table q::kernels(Isa) (kernels_q.cc). Arguments are already validated
// by the public functions in qkernels.cc / qattention.cc.
#pragma once
#include "swinq/qkernels.h"

namespace swinq {
namespace q {
struct Kernels;  // swinq/qplan_kernels.h

namespace detail {

// Per-call GEMM context shared by every kernel set: effective bias (bias − a_zp·colsum + K·a_zp·w_zp,
// padded to Np) and the requant multipliers expanded to Np columns.
struct GemmCtx {
  const PackedB* B;
  const uint8_t* A;
  int64_t lda;
  void* C;
  int64_t ldc;
  const GemmEpilogue* ep;
  const int32_t* bias_eff;  // Np
  const int32_t* mult;      // Np (out != s32)
  const int32_t* shift;     // Np
  int32_t lo, hi;           // clamp bounds minus the zero point
  bool shifts_ge32;         // every shift ≥ 32: the cheaper SIMD requantization applies
  bool zp_folds;            // and |zp|·2^(shift−32) < 2^30 for every column: the zero point folds into
                            // the rounding term everywhere (checked once per call, not per tile group)
  // the kernel set's table lookup, for ep.table after a row block (Kernels::lookup)
  void (*lookup)(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
};

// One 16-column panel of the packed weights: B.b8 as [Kp/4][16][4] bytes, B.b16 as [Kp/2][16][2]
// int16; panel p starts p panels in.
inline int64_t b8_panel_bytes(const PackedB& B) { return (int64_t)(B.Kp / 4) * 64; }
inline int64_t b16_panel_elems(const PackedB& B) { return (int64_t)(B.Kp / 2) * 32; }
// Rows of A a SIMD GEMM kernel takes through all its panels at a time: a block's A rows stay in L2
// (≤ 192 KiB) while every B panel (16·K bytes, L1) passes; B is read once per block.
inline int64_t gemm_row_block(int64_t Kp) {
  const int64_t mc = 196608 / (Kp > 1 ? Kp : 1) / 4 * 4;
  return mc > 4 ? mc : 4;
}
// Rows [m0, m1) × panels [p0, p1) of the GEMM (u8 A × s8 B → s32, or requantized to ep.out).
void gemm_u8s8_q_scalar(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void gemm_u8s8_q_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The avx512vnni set's GEMM (qgemm_avx512.cc): vpdpbusd on zmm, exact for every weight.
void gemm_u8s8_q_avx512vnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The avxvnni set's GEMM (qgemm_avxvnni_avx2.cc): the AVX2 tiles with VEX vpdpbusd ymm, exact for every weight.
void gemm_u8s8_q_avxvnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The scalar epilogue of one output (bias, zero points, ReLU, requantize, table); acc: Σ a·w.
void epilogue_one_scalar(const GemmCtx& c, int64_t m, int64_t n, uint32_t acc, uint32_t zr);

// Sparse A (qsparse.cc, qsparse_avx2.cc): whether this call runs the sparse path (ep.sparse, B.bk16,
// the density of A measured on a sample of rows against sparse_max_density(K)).
bool use_sparse_a(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep,
                  const Kernels& k);
int64_t count_nonzero_u8_scalar(const uint8_t* a, int64_t K);
int64_t count_nonzero_u8_avx2(const uint8_t* a, int64_t K);
// The density below which each set's sparse path beats its own dense GEMM (qsparse.cc).
double sparse_max_density_avx2(const PackedB& B);
double sparse_max_density_avx512vnni(const PackedB& B);
// Rows per block (a multiple of 4) and 16-column panels per column block of the sparse path: the
// column block's K-major int16 weight slice stays in L2 while the block's rows sweep it.
struct SparseBlocking {
  int64_t rows, panels;
};
// wbytes: bytes per weight of the K-major copy the kernel reads (2: bk16, 1: bk8); group: panels
// of the int8 kernel's column group (2: the AVX2 kernel's 32 columns, 4: the zmm kernel's 64).
SparseBlocking sparse_blocking(int64_t K, int64_t rows, int64_t panels, int wbytes, int group = 2);
void gemm_sparse_rows_scalar(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void gemm_sparse_rows_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The int8 quad kernel of the sparse path: acc[0 .. cols) = Σ over the row's n compacted entries
// (n a multiple of 4) of code·W[idx, col] for the K-major int8 rows at b, ldb bytes apart; it may
// store whole groups past cols (acc rows are padded to 64 columns). cols ≤ 16 · its max panels.
using SparseQuadKernel = void (*)(const char* b, int64_t ldb, const uint16_t* idx, const uint8_t* code, int64_t n,
                                  int32_t* acc, int64_t cols);
// The sparse path's row driver (compaction, blocking, epilogue; qsparse_avx2.cc) with a quad kernel
// of up to quad_panels 16-column panels a call.
void gemm_sparse_rows_with_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1, SparseQuadKernel quad,
                                int quad_panels);
// avx512vnni: the driver with the zmm quad kernel (qsparse_avx512.cc: vpdpbusd, up to 128 columns)
void gemm_sparse_rows_avx512vnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The AVX2 epilogue of rows [m, m + rows) × panels [p0, p1) from raw sums acc[r·ld + (p − p0)·16 + j].
void gemm_epilogue_rows_avx2(const GemmCtx& c, int64_t m, int64_t rows, int64_t p0, int64_t p1, const int32_t* acc,
                             int64_t ld, const int32_t* rowsum);

// rq: already narrowed to `out` (for_type).
void requantize_s32_q_scalar(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out, void* y);
void requantize_s32_q_avx2(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out, void* y);
void softmax_s32_u8_scalar(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                           const SoftmaxParams& p, uint8_t* y);
void softmax_s32_u8_avx2(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                         const SoftmaxParams& p, uint8_t* y);
// The output requantization of one attention head (per tensor, clamped to [0, y_max]).
inline Requant attention_requant(const AttentionParams& p) {
  Requant rq;
  rq.mult = &p.mult;
  rq.shift = &p.shift;
  rq.zero_point = p.y_zp;
  rq.qmin = 0;
  rq.qmax = p.y_max;
  return rq;
}
// One (window, head) t: u8 qkv and s32 bias in, u8 out. The scalar form needs no scratch.
void attention_u8s32_u8_scalar(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y);
void attention_u8s32_u8_avx2(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y);
// The avx512vnni set's (qattention_avx512.cc): dh % 16 == 0 on zmm (N ≤ 64 in registers), the AVX2 kernel otherwise.
void attention_u8s32_u8_avx512vnni(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y);

// Where query row i of head t goes (AttentionParams::y_ld, y_rows): y[W, H, N, dh] when y_ld is 0,
// else row y_rows[w·N + i] (w·N + i without a table) of y[·, y_ld] at column h·dh.
struct AttentionOutRows {
  uint8_t* base;
  int64_t ld;
  const int32_t* rows;
  int64_t row0;
  uint8_t* row(int64_t i) const { return base + (rows ? (int64_t)rows[row0 + i] : row0 + i) * ld; }
};
inline AttentionOutRows attention_out_rows(const AttentionParams& p, int64_t t, uint8_t* y) {
  if (!p.y_ld) return {y + t * p.N * p.dh, p.dh, nullptr, 0};
  return {y + (t % p.H) * p.dh, p.y_ld, p.y_rows, (t / p.H) * p.N};
}

// Attention softmax numerator, shared by every kernel set, in base 2 so no division by L is needed:
// z = (S + clamp(bias, ±2^30)) >> pre_shift (no overflow: |S| < 2^25), u = max_j z − z clamped to
// [0, 31·L], x = (u·exp_mult) >> exp_shift ≈ u·S'·256/ln2 (x/256 = the exponent in base 2),
// n = x >> 8, f = x & 255 and e = ((508 − f)² + 132300) >> (n + es): 2^(−f/256) by a quadratic
// fitted on [0, 1) (within ±0.32 % of one constant times 2^(−y), the floor of x included), scaled by
// 2^−es so e ≤ 2^14 and N·e·255 < 2^31 (P·V stays int32, its pairs fit vpmaddwd). u, exp_mult < 2^15
// and t = 508 − f < 2^15: every product is one vpmaddwd lane. The row's exps sum to ≥ 1 (the max
// entry has e = P0 >> es ≥ 1). u = 31·L gives n ≥ 30, so e = 0 (padding, masks).
constexpr int32_t kAttentionBiasClamp = 1 << 30;
inline int32_t attention_bias_clamp(int32_t b) {
  return b < -kAttentionBiasClamp ? -kAttentionBiasClamp : b > kAttentionBiasClamp ? kAttentionBiasClamp : b;
}
// Scratch of the AVX-512 kernel (a zmm lane per query row; qattention_avx512.cc): byte offsets of its
// regions, each 64-byte aligned relative to the (32-byte aligned) scratch, and the total.
struct AttentionLanesLayout {
  size_t k8, ck, vq, qt, z, ep, bk, kt, er, bytes;
};
inline AttentionLanesLayout attention_lanes_layout(int64_t N, int64_t dh) {
  const size_t d4 = (size_t)(dh + 3) / 4, n2 = (size_t)(N + 1) / 2, d16 = (size_t)(dh + 15) / 16 * 16,
               n16 = (size_t)(N + 15) / 16 * 16;
  AttentionLanesLayout L;
  size_t at = 0;
  const auto take = [&at](size_t bytes) { const size_t o = at; at += (bytes + 63) / 64 * 64; return o; };
  L.k8 = take((size_t)N * d4 * 4);
  L.ck = take(n16 * 4);
  L.vq = take(n2 * d16 * 4);
  L.qt = take(d4 * 16 * 4);
  L.z = take((size_t)N * 16 * 4);
  L.ep = take(n2 * 16 * 4);
  L.bk = take((size_t)N * 16 * 4);
  L.kt = take(n16 * d4 * 4);
  L.er = take(n16 * 2);
  L.bytes = at;
  return L;
}
constexpr int kAttentionRowGroup = 16;  // query rows whose z and exps the AVX2 path keeps at a time
constexpr int32_t kAttentionExpQb = 508, kAttentionExpQc = 132300;
inline int attention_exp_shift(int64_t N) {
  const int64_t p0 = (int64_t)kAttentionExpQb * kAttentionExpQb + kAttentionExpQc, cap0 = (int64_t)INT32_MAX / (255 * N);
  const int64_t cap = cap0 < (1 << 14) ? cap0 : (1 << 14);
  int s = 0;
  while ((p0 >> s) > cap) ++s;
  return s;
}
inline int32_t attention_exp(int32_t u, const AttentionParams& p, int es) {  // u ∈ [0, 31L]
  const int32_t x = (u * p.exp_mult) >> p.exp_shift, n = x >> 8, t = kAttentionExpQb - (x & 255);
  const int32_t poly = t * t + kAttentionExpQc;
  return n + es > 31 ? 0 : poly >> (n + es);
}
// Normalisation folded into the output requantization: row i's ratio is mult·2^−shift·256/sum
// (P codes were at 2^−8). With b = bit length of sum (sum ∈ [1, 2^24]), inv = trunc(2^(30+b) / sum)
// ∈ (2^30, 2^31] with the quotient an IEEE double (correctly rounded, so the same on every ISA;
// a double division pipelines where a 64-bit integer one stalls: 7–10 % of a head at N = 49),
// m = (|mult|·inv) >> 31 and s = shift + b − 9: ≥ 29 significant bits in m.
inline void attention_row_scale(int32_t mult, int32_t shift, int64_t sum, int32_t* m, int32_t* s) {
  const int b = 64 - __builtin_clzll((uint64_t)sum);
  const uint64_t inv = (uint64_t)((double)(uint64_t(1) << (30 + b)) / (double)sum);
  uint64_t q = ((uint64_t)(mult < 0 ? -(int64_t)mult : (int64_t)mult) * inv) >> 31;  // < 2^31
  int64_t sh = (int64_t)shift + b - 9;
  if (sh > 62) {
    q = sh - 62 >= 63 ? 0 : q >> (sh - 62);
    sh = 62;
  } else if (sh < 0) {  // a ratio ≥ 2^31: saturate (no real model gets here)
    q = INT32_MAX;
    sh = 0;
  }
  *m = mult < 0 ? -(int32_t)q : (int32_t)q;
  *s = (int32_t)sh;
}

// in: s8 or s16; out p.out (s8, u8 or s16).
void layernorm_q_q_scalar(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows);
void layernorm_q_q_avx2(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows);
void layernorm_q_q_avx512(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows);  // qnorm_avx512.cc
void gelu_s8_s32_ibert_scalar(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y);
void gelu_s8_s32_ibert_avx2(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y);
void lookup_u8_scalar(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
void lookup_u8_avx2(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
// 64 codes per two vpermi2b and a blend on bit 7 (qlookup_avx512.cc); only on a CPU with AVX-512 VBMI.
void lookup_u8_avx512vbmi(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
void relu_x8_scalar(QType t, const void* x, int64_t n, int32_t zero_point, void* y);
void relu_x8_avx2(QType t, const void* x, int64_t n, int32_t zero_point, void* y);
void add_qq_q_scalar(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y);
void add_qq_q_avx2(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y);
void add_qq_q_avx512(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y);  // qops_avx512.cc
// rq: already narrowed to `out` (for_type).
void avgpool_q_q_scalar(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq,
                        QType out, void* y);
void avgpool_q_q_avx2(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq,
                      QType out, void* y);
void argmax_q_i64_scalar(QType in, const void* x, int64_t rows, int64_t D, int64_t* y);
void argmax_q_i64_avx2(QType in, const void* x, int64_t rows, int64_t D, int64_t* y);

// Shared scalar pieces (qkernels.cc) used by every kernel set for the per-row parts.
struct LnRow {
  int64_t s;    // Σx
  uint32_t f;   // floor(2^61 / isqrt(V·4^k)) ∈ (2^30, 2^31]; 0 when V = 0
  int32_t sh;   // 61 − F − k
};
LnRow layernorm_row_stats(int64_t sum, int64_t sumsq, int32_t D, int32_t F);
// The same for 8 rows on zmm (qnorm_avx512.cc; |sum| ≤ 2^30, sumsq < 2^45, as LayerNorm's inputs give):
// the rows' f and sh as arrays (the AVX-512 LayerNorm broadcasts them from there)
void layernorm_row_stats8_avx512(const int64_t* sum, const uint64_t* sumsq, int32_t D, int32_t F, int64_t* f,
                                 int64_t* sh);
// t = sign(y)·((|y|·f + 2^(sh−1)) >> sh): |y| < 2^31 and f ≤ 2^31 keep it inside uint64
inline int32_t ln_t(int64_t y, const LnRow& st) {
  const uint64_t ay = (uint64_t)(y < 0 ? -y : y);
  const int64_t t = (int64_t)((ay * st.f + (uint64_t(1) << (st.sh - 1))) >> st.sh);
  return (int32_t)(y < 0 ? -t : t);
}
// smallest sh with (sum >> sh) < 2^16 (sum > 0)
inline int softmax_sum_shift(int64_t sum) {
  const int bits = 64 - __builtin_clzll((uint64_t)sum);
  return bits > 16 ? bits - 16 : 0;
}
inline int32_t store_clamp(int64_t v, int32_t lo, int32_t hi) { return (int32_t)(v < lo ? lo : v > hi ? hi : v); }
void store_q(QType t, void* y, int64_t i, int32_t v);
int32_t load_q(QType t, const void* x, int64_t i);

}  // namespace detail
}  // namespace q
}  // namespace swinq
