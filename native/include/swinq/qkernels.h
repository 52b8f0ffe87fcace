// Integer-only kernel library (int8/int16/int32). Plain pointers + sizes + params structs, so the
// executor (issue 4) can call them directly; weights are packed once (PackedB).
// Every op takes an explicit Isa (default: the active kernel set); the scalar, AVX2 and AVX-512
// versions agree bit-exactly. Bad sizes/params throw std::invalid_argument naming the field.
// Formulas, the rounding rule and error bounds: docs/integer-kernels.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "swinq/cpu.h"

namespace swinq {
class ThreadPool;  // swinq/threadpool.h
namespace q {

enum class QType : int32_t { s8 = 0, u8 = 1, s16 = 2, s32 = 3 };
struct AddParams;  // add_q's parameters (below)
const char* qtype_name(QType t);
int qtype_size(QType t);
int32_t qtype_min(QType t);
int32_t qtype_max(QType t);

// ---------------------------------------------------------------------------------------------
// Requantization — the one rounding rule of the library:
//   y = clamp(((int64)x·mult + 2^(shift−1)) >> shift  + zero_point, qmin, qmax)
// ">>" is a floor shift, so ties round toward +infinity ("round half up"); exact in int64 since
// |x·mult| ≤ 2^62. shift ∈ [0, 62] (0: no rounding term). mult may be negative.
struct Requant {
  const int32_t* mult = nullptr;   // `channels` entries (1 = per tensor)
  const int32_t* shift = nullptr;  // `channels` entries
  int32_t channels = 1;            // 1 = per tensor, else = the output channel count (last dim)
  int32_t zero_point = 0;
  int32_t qmin = INT32_MIN;        // clamp after adding the zero point; ReLU: qmin = zero_point
  int32_t qmax = INT32_MAX;
};
// ratio ≈ mult·2^−shift with |mult| ∈ [2^30, 2^31) (renormalised when rounding reaches 2^31).
// Throws when ratio is 0/non-finite or needs shift outside [0, 62].
void quantize_multiplier(double ratio, int32_t* mult, int32_t* shift);
inline int32_t requantize_one(int32_t x, int32_t mult, int32_t shift, int32_t zp, int32_t qmin, int32_t qmax) {
  int64_t p = (int64_t)x * mult + ((int64_t(1) << shift) >> 1);
  int64_t y = (p >> shift) + zp;
  return (int32_t)(y < qmin ? qmin : y > qmax ? qmax : y);
}
// Clamp bounds narrowed to the output type.
Requant for_type(Requant rq, QType out);
// x: [rows, cols] int32, channel = column. y: [rows, cols] of `out`.
void requantize(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out, void* y,
                Isa isa = active_isa());

// ---------------------------------------------------------------------------------------------
// GEMM  C[M,N] = Σ_k (A[m,k] − a_zp)·(W[k,n] − w_zp)  (+ bias, ReLU, requantize, table) — u8 × s8 → s32.
// W is packed once: [N/16][K/4][16][4] bytes for the vpmaddubsw kernel. vpmaddubsw saturates the
// pair sum a0·w0 + a1·w1 at ±32767; pack_b proves for every k-pair of every column that
// a_max·(|w0| + |w1|) ≤ 32767 and otherwise also packs an exact int16 copy ([N/16][K/2][16][2])
// that the exact (vpmaddwd) kernel uses. Results never saturate.
struct PackOptions {
  int32_t w_zero_point = 0;  // per-tensor weight zero point
  int32_t a_max = 255;       // largest activation code the GEMM will see (127 = "u7": always safe)
  int32_t a_pair_max = 510;  // largest a[k] + a[k+1] (softmax codes: ≤ 257, so attn·V with |v| ≤ 127 is safe)
  int32_t force_path = 0;    // 0 auto, 1 maddubs (refused if unsafe), 2 exact int16
  bool kmajor = false;       // also keep a K-major int16 copy for the sparse-A path (ReLU inputs, zp 0)
};
// 64-byte aligned storage: each 16-column panel of a K-major weight row is whole cache lines (the
// sparse-A path reads rows at random k; a split line costs a second line in L1).
template <typename T>
struct Align64Allocator {
  using value_type = T;
  Align64Allocator() = default;
  template <typename U>
  Align64Allocator(const Align64Allocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const Align64Allocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const Align64Allocator<U>&) const { return false; }
};
struct PackedB {
  int32_t K = 0, N = 0, Kp = 0, Np = 0;  // Kp: K rounded up to 4; Np: N rounded up to 16
  int32_t w_zero_point = 0;
  int32_t a_max = 255;
  bool maddubs_safe = false;   // the fast kernel is used
  int64_t unsafe_pairs = 0;    // k-pairs that could saturate (0 when safe)
  std::vector<int8_t> b8;      // fast layout (always filled; the scalar path reads it)
  std::vector<int16_t> b16;    // exact layout, only when !maddubs_safe
  std::vector<int32_t> colsum; // Σ_k W[k,n], n < N
  std::vector<int16_t, Align64Allocator<int16_t>> bk16;  // K-major [K][Np] int16 copy (only with PackOptions::kmajor)
  // K-major [K][Np] int8 copy (+32 bytes of slack) when kmajor and a_max ≤ 127: the sparse path's
  // vpmaddubsw kernel (any two s8 weights times codes ≤ 127 stay inside int16)
  std::vector<int8_t, Align64Allocator<int8_t>> bk8;
};
// w: K×N, element (k, n) at w[k·ldw + n]; or with `transposed` N×K, element (k, n) at w[n·ldw + k].
PackedB pack_b(const int8_t* w, int32_t K, int32_t N, int64_t ldw, bool transposed, const PackOptions& opt = {});

struct GemmEpilogue {
  const int32_t* bias = nullptr;  // [N] int32, or null
  int32_t a_zero_point = 0;
  bool relu = false;              // max(v, 0) on the int32 value before requantization
  QType out = QType::s32;         // s32: no requantization
  Requant rq;                     // used when out != s32 (channels 1 or N)
  const uint8_t* table = nullptr; // 8-bit outputs only: y = table[(uint8)y] (256 entries)
  // Sparse A (needs B.bk16): a zero code adds nothing to Σ a·w, so the sparse path compacts each
  // row's non-zero codes once and sums only their K-major weight rows
  // (gemm_u8s16_s32_sparse_1x64_avx2). Exact integer math: bit-identical to the dense path.
  // 0 auto (per call: the density of A, measured on a sample of rows, below sparse_max_density(K)),
  // 1 force sparse, 2 never.
  int32_t sparse = 0;
  // Residual (a linear into the residual stream, the add_q that follows it fused): right after a
  // tile's outputs are written (still in L1), they become add_q(residual, y) in place — add_q's
  // a = `residual` (residual_type, row stride ldr elements), b = the requantized GEMM value,
  // y of type out, with `*add` as its parameters. 8/16-bit out only; residual must not overlap C.
  const void* residual = nullptr;
  QType residual_type = QType::s16;
  int64_t ldr = 0;
  const AddParams* add = nullptr;
};
// Density (non-zero codes / codes of A) below which ep.sparse = 0 takes the sparse path: below the
// break-even measured on Swin-T and micro-Swin fc2 shapes against the kernel set's own dense GEMM
// (docs/sparsity.md: Zen 3 for avx2, Zen 5 for avx512vnni, whose dense GEMM is 3× faster while
// the sparse kernel is AVX2's); lower for codes up to 255 (no int8 K-major copy).
double sparse_max_density(const PackedB& B, Isa isa = active_isa());
// Whether gemm_u8s8 with these arguments takes the sparse path (for tests and benchmarks).
bool gemm_u8s8_uses_sparse(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep,
                           Isa isa = active_isa());
// What gemm_u8s8 derives from (B, ep) before its tiles run — the effective bias (zero points
// folded), per-column multipliers and shifts, the epilogue's flags — made once by gemm_prepare
// (which checks ep against B as gemm_u8s8 does) for a layer run many times with the same ep
// (linear_q: a batch-1 micro-Swin run spent ~2 % redoing it per call).
struct GemmPrep {
  int64_t np = 0;                              // B.Np it was made for
  std::vector<int32_t> bias_eff, mult, shift;  // Np each
  int32_t lo = 0, hi = 0;                      // clamp bounds minus the zero point
  bool shifts_ge32 = false, zp_folds = false;
};
GemmPrep gemm_prepare(const PackedB& B, const GemmEpilogue& ep);

// A: M×K u8, row stride lda. C: M×N of ep.out, row stride ldc (elements). With a pool, work is
// claimed in 32-row (or 16-column-panel) chunks by its threads; otherwise `threads` ≥ 1 std::threads
// (only when each gets ≥ 2^21 MACs). M = 1 is the GEMV path (N split, B streamed once). prep:
// gemm_prepare(B, ep) of this very ep (bias, requantization and zero points), or null.
// Weights of at most this many bytes stay in L2: gemm_u8s8 on a pool then splits rows (each thread
// sweeps all of them), and linear_q may join the executor's row regions (op.h RowSplit).
constexpr int64_t kGemmRowSplitMaxWeightBytes = 256 << 10;
void gemm_u8s8(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep, void* C,
               int64_t ldc, int threads = 1, Isa isa = active_isa(), ThreadPool* pool = nullptr,
               const GemmPrep* prep = nullptr);

// ---------------------------------------------------------------------------------------------
// MLP fc1 → fc2 fused per row block (mlp_u8s8): for each block of `rows_per_block` rows of A
//   H = gemm_u8s8(A[block], B1, ep1)   (8-bit u8 codes, e.g. ReLU with zero point 0, into a tile that
//                                       stays in L1/L2: the hidden activation never reaches memory)
//   C[block] = gemm_u8s8(H, B2, ep2)   (ep2.sparse as for any call: zero codes are skipped per block)
// Bit-identical to the two gemm_u8s8 calls. ep1.out must be u8 and B1.N == B2.K. rows_per_block
// 0: the largest multiple of 4 whose u8 tile is ≤ 64 KiB (≥ 4 rows; 16 KiB tiles measured 2–6 %
// slower: two calls per block). Measured no faster than the unfused calls on Zen 3 (0.99–1.01×,
// docs/sparsity.md), so no plan uses it yet. With a pool, blocks are
// claimed by its threads (each with its own tile).
void mlp_u8s8(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B1, const GemmEpilogue& ep1, const PackedB& B2,
              const GemmEpilogue& ep2, void* C, int64_t ldc, int64_t rows_per_block = 0, Isa isa = active_isa(),
              ThreadPool* pool = nullptr);

// ---------------------------------------------------------------------------------------------
// Softmax over rows: y[r] = softmax(S·(x[r] + table[r mod table_rows])) as uint8 codes at 2^−8
// (saturated to 255). Integer exp after I-BERT: e^p ≈ 0.3585(p + 1.353)² + 0.344 on (−ln2, 0].
// A table entry ≤ −2^30 masks (exp exactly 0).
struct SoftmaxParams {
  int32_t pre_shift = 0;  // logits >> pre_shift first (coarsens tiny scales so the poly fits int32)
  int32_t L = 0;          // ceil(ln2 / S'), S' = S·2^pre_shift
  int32_t qb = 0;         // floor(1.353 / S')
  int32_t qc = 0;         // floor(0.344 / (0.3585·S'^2))
};
SoftmaxParams softmax_params(double input_scale);
void softmax_u8(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                const SoftmaxParams& p, uint8_t* y, Isa isa = active_isa());

// ---------------------------------------------------------------------------------------------
// Attention read straight from the qkv linear's output, per window (or image) w and head h
// (C = H·dh; qkv [W, N, 3C] u8 with one zero point, so q, k, v share it):
//   S[i,j]  = Σ_d (q[w,i,h·dh+d] − zp)(k[w,j,C+h·dh+d] − zp)          int32, exact
//   z[i,j]  = (S[i,j] + clamp(bias[((w·H+h)·N + i) mod bias_rows][j], ±2^30)) >> sm.pre_shift
//   e[i,j]  = a base-2 integer exp of z − max_j z (qinternal.h attention_exp: within ±0.5 % of
//             one constant times e^(S'·(z − max)), S' = S·2^pre_shift), ≤ min(2^14, (2^31−1)/(255·N))
//   O[i,d]  = Σ_j e[i,j]·(v[w,j,2C+h·dh+d] − zp)                       int32, exact
//   y[w,h,i,d] = clamp(requantize(O, m_i, s_i) + y_zp, 0, y_max)        u8, layout [W, H, N, dh]
//                (or heads merged, rows placed by a table: y_ld, y_rows below)
// where m_i·2^−s_i ≈ mult·2^−shift·256/Σ_j e[i,j] (normalisation in the requant; mult/shift are
// the ratio for P codes at 2^−8, as before). Any N (windows or global), no window assumption.
// One (w, h) stays in L1 from q·kᵀ to P·V, and no q/k/v copies or int32 logits reach memory.
struct AttentionParams {
  int64_t W = 0, N = 0, H = 0, dh = 0;
  int32_t zp = 0;
  const int32_t* bias = nullptr;  // [bias_rows, N] or null
  int64_t bias_rows = 0;
  SoftmaxParams sm;                     // pre_shift and L (u = max − z is capped at 31·L)
  int32_t exp_mult = 0, exp_shift = 0;  // (u·exp_mult) >> exp_shift ≈ u·S'·256/ln2; exp_mult < 2^15
  int32_t mult = 0, shift = 0, y_zp = 0, y_max = 255;
  // Optional, with a bias: the same bias clamped and key-major (attention_bias_by_key), which the
  // AVX-512 kernel reads 16 query rows a load; without it that kernel gathers each block's bias.
  const int32_t* bias_by_key = nullptr;
  int64_t bias_by_key_period = 0;  // heads after which the rows' bias repeats (attention_bias_period)
  // Output layout. y_ld 0: y[W, H, N, dh]. y_ld ≥ C: heads merged, query row i of window w is row
  // w·N + i of y[·, y_ld] — or row y_rows[w·N + i] (W·N entries, each in range, checked by the
  // caller), so a window reverse / roll after the heads' merge costs nothing — at column h·dh.
  int64_t y_ld = 0;
  const int32_t* y_rows = nullptr;
  // Query rows [row_begin, row_end) of each head (row_end 0: to N): two threads can split one
  // window's rows (each packs the head's keys and values itself); the same integers per row.
  int64_t row_begin = 0, row_end = 0;
};
// Heads t after which bias row (t·N + i) mod bias_rows repeats: bias_rows / gcd(N, bias_rows).
int64_t attention_bias_period(int64_t N, int64_t bias_rows);
// bias [bias_rows, N] as [period][key j][row i padded to a multiple of 16], each entry clamped to
// ±kAttentionBiasClamp (what every kernel adds): entry (t mod period, j, i) is bias row
// (t·N + i) mod bias_rows, key j. For AttentionParams::bias_by_key.
std::vector<int32_t> attention_bias_by_key(const int32_t* bias, int64_t bias_rows, int64_t N);
// Sets p.sm, p.exp_mult and p.exp_shift for logits (q·kᵀ + bias) at logit_scale.
void attention_set_logit_scale(AttentionParams& p, double logit_scale);
constexpr int64_t kAttentionMaxN = 1024, kAttentionMaxDh = 256;
size_t attention_scratch_bytes(int64_t N, int64_t dh);
// (window, head) pairs t ∈ [t0, t1) of the W·H, t = w·H + h. scratch: attention_scratch_bytes(N, dh)
// bytes, 32-byte aligned, private to the caller's thread.
void attention_u8(const uint8_t* qkv, const AttentionParams& p, int64_t t0, int64_t t1, void* scratch, uint8_t* y,
                  Isa isa = active_isa());

// ---------------------------------------------------------------------------------------------
// LayerNorm over the last dim D (int8 or int16 in). With s = Σx, V = D·Σx² − s² (int64, exact)
// and y_i = D·x_i − s:  x̂_i = y_i / sqrt(V)  (= (x−μ)/σ).  k: smallest with V·4^k ≥ 2^60,
// σ' = isqrt(V·4^k) ∈ [2^30, 2^31); one division per row f = floor(2^61 / σ');
// t_i = sign(y_i)·((|y_i|·f + 2^(sh−1)) >> sh), sh = 61 − F − k, so t ≈ x̂_i·2^F.
// Output per channel c (affine folded): out = clamp(((int64)t·mult_c + bias_c) >> shift_c + zp).
struct LayerNormParams {
  int32_t D = 0;
  int32_t F = 0;                 // fraction bits of t: 29 − ceil(log2 √D), so |t| ≤ √D·2^F ≤ 2^29
  std::vector<int32_t> mult, shift;
  std::vector<int64_t> bias;     // includes the rounding term 2^(shift−1)
  int32_t zero_point = 0, qmin = 0, qmax = 0;
  QType out = QType::s8;
};
// gamma/beta may be null (1/0). out_scale: the output quantization step.
LayerNormParams layernorm_params(int32_t D, const float* gamma, const float* beta, double out_scale,
                                 int32_t out_zero_point, QType out);
// y_rows (optional): row r goes to row y_rows[r] of y instead of row r (a row permutation after
// the LayerNorm, such as Swin's window partition, folded into its stores; entries checked by the caller).
void layernorm(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, Isa isa = active_isa(),
               const int32_t* y_rows = nullptr);
uint64_t isqrt_u64(uint64_t v);  // floor(sqrt(v)) for every uint64

// ---------------------------------------------------------------------------------------------
// GELU. (a) I-BERT polynomial on int8 (input scale S) → int32 at scale p.out_scale:
//   erf(x/√2) ≈ sgn(x)·(1 − 0.2888·(min(|x|/√2, 1.769) − 1.769)²)
//   m = min(|q|, B); d = m − B; out = q·(C + sgn(q)·(C − d²)) (>> sh on d², C for tiny S)
// (b) any int8→8-bit function as a 256-entry table (GELU + output requant built offline in float).
struct GeluParams {
  int32_t B = 0, C = 0, sh = 0;
  double out_scale = 0;
};
GeluParams gelu_params(double input_scale);
void gelu_ibert_s8(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y, Isa isa = active_isa());
// table[code] for input codes (s8: code = (uint8)q) → round(gelu((q − in_zp)·in_scale)/out_scale) + out_zp, clamped.
void gelu_table(double in_scale, int32_t in_zp, QType in, double out_scale, int32_t out_zp, QType out, uint8_t table[256]);
void lookup_u8(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y, Isa isa = active_isa());
// ReLU on 8-bit codes with a zero point: y = max(x, zp)  (in: s8 or u8).
void relu_q8(QType t, const void* x, int64_t n, int32_t zero_point, void* y, Isa isa = active_isa());

// ---------------------------------------------------------------------------------------------
// Add with rescale of both operands (the residual stream):
//   y = clamp(((a − za)·ma + (b − zb)·mb + 2^(shift−1)) >> shift + zy),  |ma|, |mb| < 2^15
// so the products fit one vpmaddwd. a, b, y ∈ {s8, u8, s16}; s16 operands have zero point 0.
struct AddParams {
  int32_t ma = 0, mb = 0, shift = 0;
  int32_t za = 0, zb = 0, zy = 0;
  int32_t qmin = 0, qmax = 0;
};
AddParams add_params(double sa, int32_t za, double sb, int32_t zb, double sy, int32_t zy, QType out);
void add_q(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y,
           Isa isa = active_isa());

// ---------------------------------------------------------------------------------------------
// (Gathers of integer codes are the plan's index_map op: native/ops/movement.cc, index_map_* in
// kernels_f32.h, any element size.)

// Average pool over T tokens: y[b, c] = requantize(Σ_t (x[b, t, c] − in_zp)) with 1/T folded into rq.
void avgpool(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq,
             QType out, void* y, Isa isa = active_isa());

// First index of the maximum of each row (in: s8, u8, s16, s32).
void argmax(QType in, const void* x, int64_t rows, int64_t D, int64_t* y, Isa isa = active_isa());

}  // namespace q
}  // namespace swinq
