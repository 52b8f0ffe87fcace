// Integer kernels: argument checks, packing, parameter builders and the scalar reference of every
// op (the contract the AVX2 versions match bit-exactly). The public functions validate and call
// the kernel of the Isa's table (q::kernels, kernels_q.cc); none of them tests the Isa itself.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "qcheck.h"
#include "qinternal.h"
#include "swinq/qplan_kernels.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace q {

using detail::load_q;
using detail::store_clamp;
using detail::store_q;


const char* qtype_name(QType t) {
  switch (t) {
    case QType::s8: return "s8";
    case QType::u8: return "u8";
    case QType::s16: return "s16";
    case QType::s32: return "s32";
  }
  return "?";
}
int qtype_size(QType t) { return t == QType::s32 ? 4 : t == QType::s16 ? 2 : 1; }
int32_t qtype_min(QType t) { return t == QType::s8 ? -128 : t == QType::u8 ? 0 : t == QType::s16 ? -32768 : INT32_MIN; }
int32_t qtype_max(QType t) { return t == QType::s8 ? 127 : t == QType::u8 ? 255 : t == QType::s16 ? 32767 : INT32_MAX; }
static bool valid_qtype(QType t) { return (int)t >= 0 && (int)t <= 3; }

namespace detail {
void store_q(QType t, void* y, int64_t i, int32_t v) {
  switch (t) {
    case QType::s8: ((int8_t*)y)[i] = (int8_t)v; break;
    case QType::u8: ((uint8_t*)y)[i] = (uint8_t)v; break;
    case QType::s16: ((int16_t*)y)[i] = (int16_t)v; break;
    case QType::s32: ((int32_t*)y)[i] = v; break;
  }
}
int32_t load_q(QType t, const void* x, int64_t i) {
  switch (t) {
    case QType::s8: return ((const int8_t*)x)[i];
    case QType::u8: return ((const uint8_t*)x)[i];
    case QType::s16: return ((const int16_t*)x)[i];
    case QType::s32: return ((const int32_t*)x)[i];
  }
  return 0;
}
}  // namespace detail


// ---------------------------------------------------------------------------------------------
// Requantization

void quantize_multiplier(double ratio, int32_t* mult, int32_t* shift) {
  QCHECK(std::isfinite(ratio) && ratio != 0.0, "quantize_multiplier: ratio must be finite and non-zero");
  int e = 0;
  double m = std::frexp(std::fabs(ratio), &e);  // |ratio| = m·2^e, m ∈ [0.5, 1)
  int64_t mi = (int64_t)std::floor(m * 2147483648.0 + 0.5);
  int s = 31 - e;
  if (mi == (int64_t(1) << 31)) {  // rounding reached 2^31: renormalise
    mi >>= 1;
    s -= 1;
  }
  while (s > 62) {  // very small ratios: drop mantissa bits
    mi = (mi + 1) >> 1;
    s -= 1;
  }
  QCHECK(s >= 0, "quantize_multiplier: ratio " + std::to_string(ratio) + " too large (needs shift < 0)");
  *mult = (int32_t)(ratio < 0 ? -mi : mi);
  *shift = s;
}

Requant for_type(Requant rq, QType out) {
  rq.qmin = std::max(rq.qmin, qtype_min(out));
  rq.qmax = std::min(rq.qmax, qtype_max(out));
  return rq;
}

static void check_requant(const Requant& rq, int64_t cols, const char* who) {
  std::string w = who;
  QCHECK(rq.mult && rq.shift, w + ": requant mult/shift missing");
  QCHECK(rq.channels == 1 || rq.channels == cols,
         w + ": requant channels must be 1 or " + std::to_string(cols) + ", got " + std::to_string(rq.channels));
  for (int32_t c = 0; c < rq.channels; ++c)
    QCHECK(rq.shift[c] >= 0 && rq.shift[c] <= 62,
           w + ": requant shift[" + std::to_string(c) + "] = " + std::to_string(rq.shift[c]) + " outside [0, 62]");
  QCHECK(rq.qmin <= rq.qmax, w + ": requant qmin > qmax");
}

void requantize(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq0, QType out, void* y, Isa isa) {
  QCHECK(rows >= 0 && cols >= 0, "requantize: negative size");
  QCHECK(valid_qtype(out), "requantize: bad output type");
  check_requant(rq0, cols, "requantize");
  QCHECK(rq0.zero_point >= qtype_min(out) && rq0.zero_point <= qtype_max(out), "requantize: zero_point outside the output type");
  Requant rq = for_type(rq0, out);
  if (rows * cols == 0) return;
  QCHECK(x && y, "requantize: null buffer");
  kernels(isa).requantize(x, rows, cols, rq, out, y);
}

void detail::requantize_s32_q_scalar(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out,
                                     void* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      int64_t ch = rq.channels == 1 ? 0 : c;
      store_q(out, y, r * cols + c,
              requantize_one(x[r * cols + c], rq.mult[ch], rq.shift[ch], rq.zero_point, rq.qmin, rq.qmax));
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM

PackedB pack_b(const int8_t* w, int32_t K, int32_t N, int64_t ldw, bool transposed, const PackOptions& opt) {
  QCHECK(K >= 1 && K <= 65536, "pack_b: K must be in [1, 65536], got " + std::to_string(K));
  QCHECK(N >= 1, "pack_b: N must be ≥ 1, got " + std::to_string(N));
  QCHECK(w, "pack_b: null weights");
  QCHECK(ldw >= (transposed ? K : N), "pack_b: ldw " + std::to_string(ldw) + " smaller than the row length");
  QCHECK(opt.a_max >= 1 && opt.a_max <= 255, "pack_b: a_max must be in [1, 255]");
  QCHECK(opt.a_pair_max >= 1 && opt.a_pair_max <= 510, "pack_b: a_pair_max must be in [1, 510]");
  QCHECK(opt.w_zero_point >= -128 && opt.w_zero_point <= 127, "pack_b: w_zero_point outside int8");
  QCHECK(opt.force_path >= 0 && opt.force_path <= 2, "pack_b: force_path must be 0, 1 or 2");
  PackedB B;
  B.K = K;
  B.N = N;
  B.Kp = (K + 3) / 4 * 4;
  B.Np = (N + 15) / 16 * 16;
  B.w_zero_point = opt.w_zero_point;
  B.a_max = opt.a_max;
  auto at = [&](int64_t k, int64_t n) -> int8_t { return transposed ? w[n * ldw + k] : w[k * ldw + n]; };
  const int64_t kq = B.Kp / 4;
  B.b8.assign((size_t)B.Np / 16 * kq * 64, 0);
  B.colsum.assign(N, 0);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t p = n / 16, j = n % 16;
    int32_t cs = 0;
    for (int64_t k = 0; k < K; ++k) {
      int8_t v = at(k, n);
      cs += v;
      B.b8[(size_t)((p * kq + k / 4) * 64 + j * 4 + k % 4)] = v;
    }
    B.colsum[n] = cs;
  }
  // The saturation proof: pairs (k, k+1), k even, are what one vpmaddubsw lane adds. The largest
  // |a0·w0 + a1·w1| over a0, a1 ≤ a_max, a0 + a1 ≤ a_pair_max puts as much as allowed on the larger |w|.
  int64_t unsafe = 0;
  const int32_t a_big = std::min(opt.a_max, opt.a_pair_max), a_small = std::min(opt.a_max, opt.a_pair_max - a_big);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; k += 2) {
      int32_t w0 = std::abs((int32_t)at(k, n)), w1 = k + 1 < K ? std::abs((int32_t)at(k + 1, n)) : 0;
      if (w0 < w1) std::swap(w0, w1);
      if (a_big * w0 + a_small * w1 > 32767) ++unsafe;
    }
  B.unsafe_pairs = unsafe;
  B.maddubs_safe = unsafe == 0 && opt.force_path != 2;
  QCHECK(!(opt.force_path == 1 && unsafe), "pack_b: force_path=maddubs refused: " + std::to_string(unsafe) +
                                               " weight pairs could saturate vpmaddubsw (a_max·(|w0|+|w1|) > 32767)");
  if (!B.maddubs_safe) {
    const int64_t kp2 = B.Kp / 2;
    B.b16.assign((size_t)B.Np / 16 * kp2 * 32, 0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t p = n / 16, j = n % 16;
      for (int64_t k = 0; k < K; ++k) B.b16[(size_t)((p * kp2 + k / 2) * 32 + j * 2 + k % 2)] = at(k, n);
    }
  }
  if (opt.kmajor) {
    B.bk16.assign((size_t)K * B.Np, 0);
    if (opt.a_max <= 127) B.bk8.assign((size_t)K * B.Np + 32, 0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        B.bk16[(size_t)(k * B.Np + n)] = at(k, n);
        if (!B.bk8.empty()) B.bk8[(size_t)(k * B.Np + n)] = at(k, n);
      }
  }
  return B;
}

namespace detail {
void epilogue_one_scalar(const GemmCtx& c, int64_t m, int64_t n, uint32_t acc, uint32_t zr) {
  const GemmEpilogue& ep = *c.ep;
  int32_t v = (int32_t)(acc + (uint32_t)c.bias_eff[n] - zr);
  if (ep.relu && v < 0) v = 0;
  if (ep.out == QType::s32) {
    ((int32_t*)c.C)[m * c.ldc + n] = v;
    return;
  }
  int32_t q = requantize_one(v, c.mult[n], c.shift[n], 0, c.lo, c.hi) + ep.rq.zero_point;
  if (ep.table) q = load_q(ep.out, ep.table, (uint8_t)q);
  store_q(ep.out, c.C, m * c.ldc + n, q);
}

void gemm_u8s8_q_scalar(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const int64_t kq = B.Kp / 4;
  for (int64_t m = m0; m < m1; ++m) {
    const uint8_t* a = c.A + m * c.lda;
    uint32_t rowsum = 0;
    for (int64_t k = 0; k < B.K; ++k) rowsum += a[k];
    const uint32_t zr = (uint32_t)B.w_zero_point * rowsum;
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t j = 0; j < 16; ++j) {
        const int64_t n = p * 16 + j;
        if (n >= B.N) break;
        uint32_t acc = 0;  // int32 two's-complement arithmetic, as the SIMD code
        const int8_t* b = B.b8.data() + p * kq * 64 + j * 4;
        for (int64_t k = 0; k < B.K; ++k) acc += (uint32_t)((int32_t)a[k] * b[(k / 4) * 64 + k % 4]);
        epilogue_one_scalar(c, m, n, acc, zr);
      }
  }
}
}  // namespace detail

// The checks of B and ep, and what gemm_u8s8 derives from them before any tile runs: the effective
// bias (bias − a_zp·colsum + K·a_zp·w_zp, padded to Np), the per-column multipliers and shifts
// (padding shifts 32, so the fast form stays valid), and the flags of the SIMD epilogue.
static void gemm_expand(const PackedB& B, const GemmEpilogue& ep, int32_t* bias_eff, int32_t* mult, int32_t* shift,
                        GemmPrep* flags) {
  QCHECK(B.K > 0 && B.N > 0 && (int64_t)B.b8.size() == (int64_t)B.Np / 16 * detail::b8_panel_bytes(B) &&
             (int64_t)B.colsum.size() == B.N,
         "gemm_u8s8: PackedB is empty or inconsistent");
  QCHECK(B.maddubs_safe || (int64_t)B.b16.size() == (int64_t)B.Np / 16 * detail::b16_panel_elems(B),
         "gemm_u8s8: PackedB lacks the exact int16 copy");
  QCHECK(B.bk16.empty() || (int64_t)B.bk16.size() == (int64_t)B.K * B.Np,
         "gemm_u8s8: PackedB K-major copy has the wrong size");
  QCHECK(B.bk8.empty() || ((int64_t)B.bk8.size() == (int64_t)B.K * B.Np + 32 && !B.bk16.empty() && B.a_max <= 127),
         "gemm_u8s8: PackedB K-major int8 copy is inconsistent");
  QCHECK(ep.sparse >= 0 && ep.sparse <= 2, "gemm_u8s8: ep.sparse must be 0, 1 or 2");
  QCHECK(ep.sparse != 1 || !B.bk16.empty(), "gemm_u8s8: ep.sparse = 1 needs pack_b(..., kmajor = true)");
  QCHECK(valid_qtype(ep.out), "gemm_u8s8: bad output type");
  QCHECK(ep.a_zero_point >= 0 && ep.a_zero_point <= 255, "gemm_u8s8: a_zero_point outside uint8");
  QCHECK(!ep.table || ep.out == QType::s8 || ep.out == QType::u8, "gemm_u8s8: a table needs an 8-bit output");
  std::fill(bias_eff + B.N, bias_eff + B.Np, 0);
  const int32_t za = ep.a_zero_point, zw = B.w_zero_point;
  for (int32_t n = 0; n < B.N; ++n)
    bias_eff[n] = (int32_t)((uint32_t)(ep.bias ? ep.bias[n] : 0) - (uint32_t)za * (uint32_t)B.colsum[n] +
                            (uint32_t)B.K * (uint32_t)za * (uint32_t)zw);
  flags->shifts_ge32 = flags->zp_folds = false;
  flags->lo = flags->hi = 0;
  if (ep.out == QType::s32) return;
  check_requant(ep.rq, B.N, "gemm_u8s8");
  QCHECK(ep.rq.zero_point >= qtype_min(ep.out) && ep.rq.zero_point <= qtype_max(ep.out),
         "gemm_u8s8: requant zero_point outside the output type");
  Requant rq = for_type(ep.rq, ep.out);
  std::fill(mult + B.N, mult + B.Np, 0);
  for (int32_t n = 0; n < B.N; ++n) {
    mult[n] = rq.mult[rq.channels == 1 ? 0 : n];
    shift[n] = rq.shift[rq.channels == 1 ? 0 : n];
  }
  bool ge32 = true;
  for (int32_t n = 0; n < B.N; ++n) ge32 = ge32 && shift[n] >= 32;
  for (int32_t n = B.N; n < B.Np; ++n) shift[n] = 32;  // padding columns: keep the fast form valid
  const int64_t azp = ep.rq.zero_point < 0 ? -(int64_t)ep.rq.zero_point : ep.rq.zero_point;
  bool folds = ge32;
  for (int32_t n = 0; n < B.N && folds; ++n) folds = (azp << (shift[n] - 32)) < (int64_t(1) << 30);
  flags->shifts_ge32 = ge32;
  flags->zp_folds = folds;
  flags->lo = rq.qmin - rq.zero_point;
  flags->hi = rq.qmax - rq.zero_point;
}

GemmPrep gemm_prepare(const PackedB& B, const GemmEpilogue& ep) {
  GemmPrep p;
  p.np = B.Np;
  p.bias_eff.assign((size_t)B.Np, 0);
  p.mult.assign((size_t)B.Np, 0);
  p.shift.assign((size_t)B.Np, 0);
  gemm_expand(B, ep, p.bias_eff.data(), p.mult.data(), p.shift.data(), &p);
  return p;
}

static void check_add(QType ta, QType tb, const AddParams& p, QType ty);

// ep.residual: y = add_q(residual, y) on the tile [m0, m1) × panels [p0, p1) just written.
static void residual_add(const detail::GemmCtx& c, const Kernels& k, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const GemmEpilogue& ep = *c.ep;
  const int64_t N = c.B->N, n0 = p0 * 16, n1 = std::min<int64_t>(N, p1 * 16);
  if (n0 >= n1 || m0 >= m1) return;
  const int64_t er = qtype_size(ep.residual_type), ey = qtype_size(ep.out);
  const uint8_t* r = static_cast<const uint8_t*>(ep.residual);
  uint8_t* y = static_cast<uint8_t*>(c.C);
  if (n0 == 0 && n1 == N && c.ldc == N && ep.ldr == N) {  // whole rows: one call
    k.add(ep.residual_type, r + m0 * N * er, ep.out, y + m0 * N * ey, (m1 - m0) * N, *ep.add, ep.out, y + m0 * N * ey);
    return;
  }
  for (int64_t m = m0; m < m1; ++m) {
    uint8_t* ym = y + (m * c.ldc + n0) * ey;
    k.add(ep.residual_type, r + (m * ep.ldr + n0) * er, ep.out, ym, n1 - n0, *ep.add, ep.out, ym);
  }
}

void gemm_u8s8(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep, void* C,
               int64_t ldc, int threads, Isa isa, ThreadPool* pool, const GemmPrep* prep) {
  QCHECK(M >= 0, "gemm_u8s8: M must be ≥ 0");
  QCHECK(lda >= B.K, "gemm_u8s8: lda " + std::to_string(lda) + " < K " + std::to_string(B.K));
  QCHECK(ldc >= B.N, "gemm_u8s8: ldc " + std::to_string(ldc) + " < N " + std::to_string(B.N));
  QCHECK(threads >= 1 && threads <= 256, "gemm_u8s8: threads must be in [1, 256]");
  QCHECK(!prep || (prep->np == B.Np && (int64_t)prep->bias_eff.size() == B.Np && (int64_t)prep->mult.size() == B.Np &&
                   (int64_t)prep->shift.size() == B.Np),
         "gemm_u8s8: GemmPrep was made for other weights");
  // per-call expansions (bias with zero points folded, multipliers per column) on the stack for
  // the usual widths: three heap allocations were ~5 % of a 8×48×192 call; none with a GemmPrep
  // (a linear layer's, made once at load: the per-call expansion was ~2 % of a batch-1 run)
  constexpr int32_t kStackCols = 2048;
  int32_t stack_buf[3 * kStackCols];
  std::vector<int32_t> heap_buf(!prep && B.Np > kStackCols ? 3 * (size_t)B.Np : 0);
  GemmPrep flags;
  const int32_t *bias_eff, *mult, *shift;
  if (prep) {
    if (M == 0) return;
    bias_eff = prep->bias_eff.data(), mult = prep->mult.data(), shift = prep->shift.data();
    flags.shifts_ge32 = prep->shifts_ge32, flags.zp_folds = prep->zp_folds, flags.lo = prep->lo, flags.hi = prep->hi;
  } else {
    int32_t* const buf = B.Np > kStackCols ? heap_buf.data() : stack_buf;
    gemm_expand(B, ep, buf, buf + B.Np, buf + 2 * (int64_t)B.Np, &flags);
    if (M == 0) return;
    bias_eff = buf, mult = buf + B.Np, shift = buf + 2 * (int64_t)B.Np;
  }
  QCHECK(A && C, "gemm_u8s8: null buffer");
  if (ep.residual) {
    QCHECK(ep.out != QType::s32 && ep.add, "gemm_u8s8: a residual needs an 8/16-bit output and add parameters");
    QCHECK(ep.ldr >= B.N, "gemm_u8s8: ldr " + std::to_string(ep.ldr) + " < N " + std::to_string(B.N));
    check_add(ep.residual_type, ep.out, *ep.add, ep.out);
  }
  const Kernels& k = kernels(isa);
  const bool q8 = ep.out != QType::s32;
  detail::GemmCtx c{&B,        A,           lda,    C,       ldc,   &ep,  bias_eff, q8 ? mult : nullptr, q8 ? shift : nullptr,
                    flags.lo,  flags.hi,    flags.shifts_ge32,  flags.zp_folds, k.lookup};
  const bool sparse = detail::use_sparse_a(M, A, lda, B, ep, k);  // per call: the layer's measured density
  const auto rows_kernel = sparse ? k.gemm_sparse : k.gemm;
  auto run = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    rows_kernel(c, m0, m1, p0, p1);
    if (ep.residual) residual_add(c, k, m0, m1, p0, p1);
  };
  const int64_t panels = B.Np / 16;
  const int64_t work = M * B.Kp * B.Np;
  if (pool && pool->threads() > 1) {
    const int64_t th = pool->threads();
    auto busiest = [&](int64_t units, int64_t per, int64_t total) {  // share of the busiest thread
      const int64_t n = (units + per - 1) / per;
      return (double)std::min(total, ((n + th - 1) / th) * per) / (double)total;
    };
    // Rows, when B stays in L2 (every row part sweeps all of it): one contiguous part of whole 4-row
    // tiles per thread (ThreadPool::parallel_for_static), the rows the row-wise ops around it give
    // that thread, and whole output rows (a panel split writes 16–48-byte pieces of the same rows
    // from both threads). Accepted up to 0.08 more than an even panel split for the busiest thread
    // (M = 49: 7 of 13 tiles); 8-row claimed chunks of micro-Swin fc1 (196×48×192, Zen 5 VNNI) made
    // 2 threads 0.78× of 1. Otherwise 32- or 16-row chunks or 16-column panels, whichever leaves the
    // busiest thread the least work: Swin-T stage 3 (M = 196) in 32-row chunks gave one of 2 threads
    // 4 of 7 chunks (+14 %), stage 4 (M = 49) 32 of 49 rows (+30 %); its 24–96 panels split evenly.
    const int64_t tiles = (M + 3) / 4, per = (tiles + th - 1) / th * 4;
    const double r32 = busiest(M, 32, M), r16 = busiest(M, 16, M), rr = (double)std::min(M, per) / (double)M,
                 pp = busiest(panels, 1, panels);
    // Larger weights split by rows too when each thread's rows are one row block of the kernel (B
    // then streams through each thread once) and A is not much smaller than B (8·M ≥ N): a panel
    // split has every thread read all of A, half of it written by the other core just before, and
    // a line from the other core costs far more than one more streamed line of B. Swin-T 224 at 2
    // threads on far vCPUs (cache-line round trip ≈ 600 ns): stage 3 fc2 (196×1536×384) 1.58–1.86
    // → 1.00–1.04 ms a run for its six, fc1 (196×384×1536) 1.13–1.26 → 1.07–1.10; stage 4 (M = 49,
    // N = 768, 3072) 5–25 % slower by rows, so it keeps panels (docs/latency.md).
    const bool b_in_l2 = (int64_t)B.Kp * B.Np <= kGemmRowSplitMaxWeightBytes,
               b_once = per <= detail::gemm_row_block(B.Kp) && 8 * M >= B.N;
    if (M >= 16 && (b_in_l2 || b_once) && rr <= pp + 0.08) {
      pool->parallel_for_static(M, 4, [&](int64_t b, int64_t e) { run(b, e, 0, panels); });
    } else if (M >= 16 && r32 <= pp + 0.02) {
      pool->parallel_for((M + 31) / 32, 1, [&](int64_t b, int64_t e) { run(b * 32, std::min(M, e * 32), 0, panels); });
    } else if (M >= 16 && r16 <= pp + 0.02) {
      pool->parallel_for((M + 15) / 16, 1, [&](int64_t b, int64_t e) { run(b * 16, std::min(M, e * 16), 0, panels); });
    } else {
      int64_t chunk = std::max<int64_t>(1, panels / (4 * th));
      if (B.N % 24 == 0) chunk = (chunk + 2) / 3 * 3;  // 48-column chunks keep the 4×24 tile
      pool->parallel_for(panels, chunk, [&](int64_t b, int64_t e) { run(0, M, b, e); });
    }
    return;
  }
  int t = (int)std::min<int64_t>(threads, std::max<int64_t>(1, work / (1 << 21)));  // a spawn costs ~20-50 µs
  std::vector<std::thread> spawned;
  if (M >= 4 * (int64_t)t && M >= 16) {
    // split rows in multiples of 4 (the micro-tile height)
    const int64_t tiles = (M + 3) / 4;
    for (int i = 1; i < t; ++i) {
      int64_t m0 = tiles * i / t * 4, m1 = std::min<int64_t>(M, tiles * (i + 1) / t * 4);
      if (m0 < m1) spawned.emplace_back(run, m0, m1, 0, panels);
    }
    run(0, std::min<int64_t>(M, tiles / t * 4), 0, panels);
  } else {
    t = (int)std::min<int64_t>(t, panels);
    for (int i = 1; i < t; ++i) spawned.emplace_back(run, 0, M, panels * i / t, panels * (i + 1) / t);
    run(0, M, 0, panels / t);
  }
  for (auto& th : spawned) th.join();
}

// ---------------------------------------------------------------------------------------------
// Softmax

SoftmaxParams softmax_params(double S) {
  QCHECK(std::isfinite(S) && S > 0, "softmax_params: input_scale must be positive");
  SoftmaxParams p;
  // Coarsen scales finer than 2^-10 so poly(0) ≈ 2.79/S'^2 stays ≤ ~2^21.5 (int32 with headroom).
  while (S * std::ldexp(1.0, p.pre_shift) < std::ldexp(1.0, -10)) ++p.pre_shift;
  QCHECK(p.pre_shift <= 30, "softmax_params: input_scale too small");
  const double Sp = S * std::ldexp(1.0, p.pre_shift);
  QCHECK(std::log(2.0) / Sp > 1.0, "softmax_params: input_scale " + std::to_string(S) + " ≥ ln2: too coarse for integer exp");
  p.L = (int32_t)std::ceil(std::log(2.0) / Sp);
  p.qb = (int32_t)std::floor(1.353 / Sp);
  p.qc = (int32_t)std::floor(0.344 / (0.3585 * Sp * Sp));
  return p;
}

static void check_softmax(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                          const SoftmaxParams& p, uint8_t* y) {
  QCHECK(rows >= 0 && D >= 1 && D <= (1 << 24), "softmax_u8: D must be in [1, 2^24]");
  QCHECK(!table || table_rows >= 1, "softmax_u8: table_rows must be ≥ 1 with a table");
  QCHECK(p.L >= 2 && p.L <= (1 << 12) && p.pre_shift >= 0 && p.pre_shift <= 30 && p.qb >= 0 && p.qc >= 0 &&
             (int64_t)(p.L + p.qb) * (p.L + p.qb) + p.qc < (int64_t(1) << 31),
         "softmax_u8: params out of range (build them with softmax_params)");
  QCHECK(rows == 0 || (x && y), "softmax_u8: null buffer");
}

void softmax_u8(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                const SoftmaxParams& p, uint8_t* y, Isa isa) {
  check_softmax(x, rows, D, table, table_rows, p, y);
  kernels(isa).softmax(x, rows, D, table, table_rows, p, y);
}

void detail::softmax_s32_u8_scalar(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                                   const SoftmaxParams& p, uint8_t* y) {
  std::vector<int32_t> z(D), e(D);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* xr = x + r * D;
    const int32_t* tr = table ? table + (r % table_rows) * D : nullptr;
    int32_t mx = INT32_MIN;
    for (int64_t i = 0; i < D; ++i) {
      // logits + table, saturated to int32, then coarsened
      int64_t v = (int64_t)xr[i] + (tr ? tr[i] : 0);
      v = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v;
      z[i] = (int32_t)v >> p.pre_shift;
      mx = std::max(mx, z[i]);
    }
    int64_t sum = 0;
    const int32_t dmin = -31 * p.L;  // below this the exp is 0 anyway (q ≥ 31)
    for (int64_t i = 0; i < D; ++i) {
      int64_t d = (int64_t)z[i] - mx;  // ≤ 0
      int32_t di = (int32_t)std::max<int64_t>(d, dmin);
      int32_t qn = (-di) / p.L;             // floor, since −di ≥ 0
      int32_t rr = di + qn * p.L;           // (−L, 0]
      int32_t t = rr + p.qb;
      int32_t poly = t * t + p.qc;
      int32_t ex = qn >= 31 ? 0 : poly >> qn;
      e[i] = ex;
      sum += ex;
    }
    // normalise the sum into [2^15, 2^16) so f = 2^31/sum' has ≥ 15 bits and e'·f ≤ 2^31
    const int sh = detail::softmax_sum_shift(sum);
    const uint32_t f = (uint32_t)((uint64_t(1) << 31) / (uint64_t)(sum >> sh));
    for (int64_t i = 0; i < D; ++i) {
      uint32_t o = ((uint32_t)(e[i] >> sh) * f + (1u << 22)) >> 23;
      y[r * D + i] = (uint8_t)std::min<uint32_t>(o, 255);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

namespace {
// floor(√n), digit by digit; used only at compile time, to build kSqrtAt
constexpr uint64_t isqrt_digits(uint64_t n) {
  uint64_t r = 0, bit = uint64_t(1) << 62;
  while (bit > n) bit >>= 2;
  for (; bit; bit >>= 2) {
    if (n >= r + bit) {
      n -= r + bit;
      r = (r >> 1) + bit;
    } else {
      r >>= 1;
    }
  }
  return r;
}
// kSqrtAt.v[i] = floor(√(i·2^56)) for i ∈ [64, 256]: √ at the ends of the bins of u ∈ [2^62, 2^64)
// that share a top byte. Between two ends, the chord is within 8e-6 (relative) of the concave √.
struct SqrtAt {
  uint64_t v[257];
};
constexpr SqrtAt make_sqrt_at() {
  SqrtAt t{};
  for (uint64_t i = 64; i < 256; ++i) t.v[i] = isqrt_digits(i << 56);
  t.v[256] = uint64_t(1) << 32;
  return t;
}
constexpr SqrtAt kSqrtAt = make_sqrt_at();
static_assert(kSqrtAt.v[64] == (uint64_t(1) << 31) && kSqrtAt.v[128] == 3037000499ull, "sqrt table");
}  // namespace

// Integer arithmetic only (the plan promises no float between quantize and dequantize): normalise to
// u = v·4^k ∈ [2^62, 2^64), interpolate √u between the table's bin ends (relative error < 8e-6, plus
// 1.2e-7 from the dropped low bits), one integer Newton step (error ε²/2 < 4e-11: within a unit of
// √u < 2^32), shift back. An integer Newton step from any x > 0 gives floor((x + floor(u/x))/2) ≥
// floor(√u) (AM–GM), so r ≥ floor(√v), and stepping down while r² > v makes it exact for every uint64.
uint64_t isqrt_u64(uint64_t v) {
  if (v == 0) return 0;
  const int s = __builtin_clzll(v) & ~1;  // even, so √(v·2^s) = √v·2^(s/2)
  const uint64_t u = v << s;
  const uint64_t i = u >> 56, frac = (u >> 40) & 0xffff;
  uint64_t x = kSqrtAt.v[i] + (((kSqrtAt.v[i + 1] - kSqrtAt.v[i]) * frac) >> 16);  // ∈ [2^31, 2^32]
  x = (x + u / x) >> 1;  // u/x < 2^33: no overflow
  uint64_t r = x >> (s / 2);
  if (r > 4294967295ull) r = 4294967295ull;
  while (r * r > v) --r;  // r ≤ 2^32−1 so r·r cannot overflow; at most one step (see above)
  return r;
}

namespace detail {
LnRow layernorm_row_stats(int64_t sum, int64_t sumsq, int32_t D, int32_t F) {
  LnRow st{sum, 0, 1};
  const uint64_t V = (uint64_t)((__int128)D * sumsq - (__int128)sum * sum);  // exact, ≥ 0, ≤ 2^60
  if (V == 0) return st;
  // normalise V·4^k into [2^60, 2^62) so isqrt keeps ~31 significant bits even for tiny variances
  const int bits = 64 - __builtin_clzll(V);
  const int k = bits >= 61 ? 0 : (62 - bits) / 2;  // smallest k with bitlen(V) + 2k ≥ 61
  const uint64_t sd = isqrt_u64(V << (2 * k));  // ∈ [2^30, 2^31), ≈ √V·2^k
  st.f = (uint32_t)((uint64_t(1) << 61) / sd);  // the one division per row
  st.sh = 61 - F - k;
  return st;
}
}  // namespace detail

static int32_t ln_frac_bits(int32_t D) {
  int c = 0;
  while ((int64_t(1) << (2 * c)) < D) ++c;  // c = ceil(log2 √D)
  return 29 - c;
}

LayerNormParams layernorm_params(int32_t D, const float* gamma, const float* beta, double out_scale,
                                 int32_t out_zero_point, QType out) {
  QCHECK(D >= 1 && D <= 32768, "layernorm_params: D must be in [1, 32768], got " + std::to_string(D));
  QCHECK(out != QType::s32, "layernorm_params: output must be s8, u8 or s16");
  QCHECK(std::isfinite(out_scale) && out_scale > 0, "layernorm_params: out_scale must be positive");
  QCHECK(out_zero_point >= qtype_min(out) && out_zero_point <= qtype_max(out), "layernorm_params: zero point outside the output type");
  LayerNormParams p;
  p.D = D;
  p.F = ln_frac_bits(D);
  p.out = out;
  p.zero_point = out_zero_point;
  p.qmin = qtype_min(out);
  p.qmax = qtype_max(out);
  p.mult.resize(D);
  p.shift.resize(D);
  p.bias.resize(D);
  for (int32_t c = 0; c < D; ++c) {
    const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
    QCHECK(std::isfinite(g) && std::isfinite(b), "layernorm_params: gamma/beta[" + std::to_string(c) + "] not finite");
    // out = t·2^-F·g/s + b/s ;  t·mult·2^-shift with mult·2^-shift ≈ g·2^-F/s
    const double ratio = g * std::ldexp(1.0, -p.F) / out_scale;
    int32_t m = 0, s = 32;  // γ ≈ 0: the output is the constant β/out_scale (shift 32 keeps the fast SIMD form)
    if (std::fabs(ratio) >= std::ldexp(1.0, -32)) quantize_multiplier(ratio, &m, &s);
    // bias_c = round(b/s·2^shift) + 2^(shift−1) must stay < 2^61 so t·m + bias fits int64:
    // large β/out_scale with a tiny γ trades multiplier bits for bias range.
    const double bo = std::max(-1e9, std::min(1e9, b / out_scale));  // beyond that the output saturates anyway
    while (s > 0 && std::fabs(bo) * std::ldexp(1.0, s) >= std::ldexp(1.0, 61)) {
      m = (int32_t)(((int64_t)m + 1) >> 1);
      --s;
    }
    const double bb = std::nearbyint(bo * std::ldexp(1.0, s));
    p.mult[c] = m;
    p.shift[c] = s;
    p.bias[c] = (int64_t)bb + ((int64_t(1) << s) >> 1);
  }
  return p;
}

static void check_layernorm(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y) {
  QCHECK(in == QType::s8 || in == QType::s16, "layernorm: input must be s8 or s16");
  QCHECK(p.D >= 1 && p.D <= 32768 && (int32_t)p.mult.size() == p.D && (int32_t)p.shift.size() == p.D &&
             (int32_t)p.bias.size() == p.D,
         "layernorm: params inconsistent with D (build them with layernorm_params)");
  QCHECK(p.F == ln_frac_bits(p.D), "layernorm: params F does not match D");
  QCHECK(p.out != QType::s32 && valid_qtype(p.out), "layernorm: output must be s8, u8 or s16");
  for (int32_t c = 0; c < p.D; ++c)
    QCHECK(p.shift[c] >= 0 && p.shift[c] <= 62 && p.bias[c] <= (int64_t(1) << 62) + (int64_t(1) << 61) &&
               p.bias[c] >= -(int64_t(1) << 62),
           "layernorm: shift/bias[" + std::to_string(c) + "] out of range");
  QCHECK(rows >= 0, "layernorm: rows must be ≥ 0");
  QCHECK(rows == 0 || (x && y), "layernorm: null buffer");
}

void layernorm(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, Isa isa, const int32_t* y_rows) {
  check_layernorm(in, x, rows, p, y);
  kernels(isa).layernorm(in, x, rows, p, y, y_rows);
}

void detail::layernorm_q_q_scalar(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y,
                                  const int32_t* y_rows) {
  const int32_t D = p.D;
  const int32_t lo = std::max(p.qmin, qtype_min(p.out)) - p.zero_point, hi = std::min(p.qmax, qtype_max(p.out)) - p.zero_point;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t s = 0, ss = 0;
    for (int32_t c = 0; c < D; ++c) {
      int64_t v = load_q(in, x, r * D + c);
      s += v;
      ss += v * v;
    }
    detail::LnRow st = detail::layernorm_row_stats(s, ss, D, p.F);
    for (int32_t c = 0; c < D; ++c) {
      int64_t yv = (int64_t)D * load_q(in, x, r * D + c) - s;
      int32_t t = detail::ln_t(yv, st);
      int64_t o = ((int64_t)t * p.mult[c] + p.bias[c]) >> p.shift[c];
      store_q(p.out, y, (y_rows ? y_rows[r] : r) * D + c, store_clamp(o, lo, hi) + p.zero_point);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GELU, table lookup, ReLU

GeluParams gelu_params(double S) {
  QCHECK(std::isfinite(S) && S > 0, "gelu_params: input_scale must be positive");
  GeluParams p;
  const double Se = S / std::sqrt(2.0);
  QCHECK(std::floor(1.769 / Se) <= 46340, "gelu_params: input_scale too small (< 5.4e-5)");  // d² < 2^31
  p.B = (int32_t)std::floor(1.769 / Se);
  double C = 1.0 / (0.2888 * Se * Se);
  // keep q·2C < 2^31 for |q| ≤ 128: C < 2^22
  while (C / std::ldexp(1.0, p.sh) >= std::ldexp(1.0, 22)) ++p.sh;
  p.C = (int32_t)std::floor(C / std::ldexp(1.0, p.sh));
  QCHECK(p.C >= 1, "gelu_params: input_scale too large");
  p.out_scale = S * 0.2888 * Se * Se * std::ldexp(1.0, p.sh) / 2.0;
  return p;
}

static inline int32_t gelu_one(int32_t q, const GeluParams& p) {
  int32_t aq = q < 0 ? -q : q;
  int32_t m = std::min(aq, p.B);
  int64_t d = m - p.B;
  int32_t d2 = (int32_t)((d * d) >> p.sh);
  d2 = std::min(d2, p.C);  // |erf| ≤ 1 even after the floors
  int32_t erf = q > 0 ? p.C - d2 : q < 0 ? d2 - p.C : 0;
  return q * (p.C + erf);
}

void gelu_ibert_s8(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y, Isa isa) {
  QCHECK(n >= 0, "gelu_ibert_s8: n must be ≥ 0");
  QCHECK(p.B >= 0 && p.B <= 46340 && p.C >= 1 && p.C < (1 << 22) && p.sh >= 0 && p.sh <= 31,
         "gelu_ibert_s8: params out of range (build them with gelu_params)");
  QCHECK(n == 0 || (x && y), "gelu_ibert_s8: null buffer");
  kernels(isa).gelu_ibert(x, n, p, y);
}

void detail::gelu_s8_s32_ibert_scalar(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_one(x[i], p);
}

void gelu_table(double in_scale, int32_t in_zp, QType in, double out_scale, int32_t out_zp, QType out, uint8_t table[256]) {
  QCHECK(in == QType::s8 || in == QType::u8, "gelu_table: input must be s8 or u8");
  QCHECK(out == QType::s8 || out == QType::u8, "gelu_table: output must be s8 or u8");
  QCHECK(in_scale > 0 && out_scale > 0, "gelu_table: scales must be positive");
  for (int code = 0; code < 256; ++code) {
    int32_t q = in == QType::s8 ? (int8_t)code : code;
    double v = (q - in_zp) * in_scale;
    double g = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    double o = std::nearbyint(g / out_scale) + out_zp;
    o = std::max<double>(qtype_min(out), std::min<double>(qtype_max(out), o));
    table[code] = (uint8_t)(int32_t)o;
  }
}

void lookup_u8(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y, Isa isa) {
  QCHECK(n >= 0 && table, "lookup_u8: n ≥ 0 and a table are required");
  QCHECK(n == 0 || (x && y), "lookup_u8: null buffer");
  kernels(isa).lookup(x, n, table, y);
}

void detail::lookup_u8_scalar(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

void relu_q8(QType t, const void* x, int64_t n, int32_t zp, void* y, Isa isa) {
  QCHECK(t == QType::s8 || t == QType::u8, "relu_q8: type must be s8 or u8");
  QCHECK(zp >= qtype_min(t) && zp <= qtype_max(t), "relu_q8: zero point outside the type");
  QCHECK(n >= 0 && (n == 0 || (x && y)), "relu_q8: bad buffer");
  kernels(isa).relu(t, x, n, zp, y);
}

void detail::relu_x8_scalar(QType t, const void* x, int64_t n, int32_t zp, void* y) {
  for (int64_t i = 0; i < n; ++i) store_q(t, y, i, std::max(load_q(t, x, i), zp));
}

// ---------------------------------------------------------------------------------------------
// Add

AddParams add_params(double sa, int32_t za, double sb, int32_t zb, double sy, int32_t zy, QType out) {
  QCHECK(sa > 0 && sb > 0 && sy > 0, "add_params: scales must be positive");
  QCHECK(out != QType::s32, "add_params: output must be s8, u8 or s16");
  AddParams p;
  // largest shift such that both multipliers stay below 2^15
  // |ma| + |mb| < 2^15 and shift ≤ 30 keep (a−za)·ma + (b−zb)·mb + 2^(shift−1) inside int32.
  const double ra = sa / sy, rb = sb / sy, r = ra + rb;
  int s = 0;
  while (s < 30 && r * std::ldexp(1.0, s + 1) < 32766.0) ++s;
  QCHECK(r * std::ldexp(1.0, s) < 32766.0, "add_params: scale ratio too large (sa/sy + sb/sy ≥ 2^15)");
  p.shift = s;
  p.ma = (int32_t)std::nearbyint(ra * std::ldexp(1.0, s));
  p.mb = (int32_t)std::nearbyint(rb * std::ldexp(1.0, s));
  p.za = za;
  p.zb = zb;
  p.zy = zy;
  p.qmin = qtype_min(out);
  p.qmax = qtype_max(out);
  return p;
}

static void check_add(QType ta, QType tb, const AddParams& p, QType ty) {
  for (QType t : {ta, tb, ty}) QCHECK(t == QType::s8 || t == QType::u8 || t == QType::s16, "add_q: types must be s8, u8 or s16");
  QCHECK(std::abs(p.ma) + std::abs(p.mb) < 32768 && p.shift >= 0 && p.shift <= 30,
         "add_q: need |ma| + |mb| < 2^15 and shift in [0, 30]");
  QCHECK(p.za >= qtype_min(ta) && p.za <= qtype_max(ta) && (ta != QType::s16 || p.za == 0),
         "add_q: za " + std::to_string(p.za) + " must lie in " + qtype_name(ta) + " (and be 0 for s16)");
  QCHECK(p.zb >= qtype_min(tb) && p.zb <= qtype_max(tb) && (tb != QType::s16 || p.zb == 0),
         "add_q: zb " + std::to_string(p.zb) + " must lie in " + qtype_name(tb) + " (and be 0 for s16)");
  QCHECK(p.zy >= qtype_min(ty) && p.zy <= qtype_max(ty), "add_q: zy " + std::to_string(p.zy) + " outside " + qtype_name(ty));
}

void add_q(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y, Isa isa) {
  check_add(ta, tb, p, ty);
  QCHECK(n >= 0 && (n == 0 || (a && b && y)), "add_q: bad buffer");
  kernels(isa).add(ta, a, tb, b, n, p, ty, y);
}

void detail::add_qq_q_scalar(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty,
                             void* y) {
  const int32_t lo = std::max(p.qmin, qtype_min(ty)) - p.zy, hi = std::min(p.qmax, qtype_max(ty)) - p.zy;
  const int64_t rnd = (int64_t(1) << p.shift) >> 1;
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = (int64_t)(load_q(ta, a, i) - p.za) * p.ma + (int64_t)(load_q(tb, b, i) - p.zb) * p.mb + rnd;
    store_q(ty, y, i, store_clamp(v >> p.shift, lo, hi) + p.zy);
  }
}

// ---------------------------------------------------------------------------------------------
// Average pool, argmax

void avgpool(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq0, QType out,
             void* y, Isa isa) {
  QCHECK(in == QType::s8 || in == QType::u8 || in == QType::s16, "avgpool: input must be s8, u8 or s16");
  QCHECK(valid_qtype(out), "avgpool: bad output type");
  QCHECK(batch >= 0 && T >= 1 && T <= 16384 && C >= 1, "avgpool: need batch ≥ 0, T in [1, 16384], C ≥ 1");
  QCHECK(in_zp >= qtype_min(in) && in_zp <= qtype_max(in) && (in != QType::s16 || in_zp == 0), "avgpool: bad in_zp");
  check_requant(rq0, C, "avgpool");
  QCHECK(batch == 0 || (x && y), "avgpool: null buffer");
  kernels(isa).avgpool(in, x, batch, T, C, in_zp, for_type(rq0, out), out, y);
}

void detail::avgpool_q_q_scalar(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp,
                                const Requant& rq, QType out, void* y) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < C; ++c) {
      int32_t s = 0;
      for (int64_t t = 0; t < T; ++t) s += load_q(in, x, (b * T + t) * C + c) - in_zp;
      const int64_t ch = rq.channels == 1 ? 0 : c;
      store_q(out, y, b * C + c, requantize_one(s, rq.mult[ch], rq.shift[ch], rq.zero_point, rq.qmin, rq.qmax));
    }
}

void argmax(QType in, const void* x, int64_t rows, int64_t D, int64_t* y, Isa isa) {
  QCHECK(valid_qtype(in), "argmax: bad input type");
  QCHECK(rows >= 0 && D >= 1, "argmax: need rows ≥ 0 and D ≥ 1");
  QCHECK(rows == 0 || (x && y), "argmax: null buffer");
  kernels(isa).argmax(in, x, rows, D, y);
}

void detail::argmax_q_i64_scalar(QType in, const void* x, int64_t rows, int64_t D, int64_t* y) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    int32_t bv = load_q(in, x, r * D);
    for (int64_t i = 1; i < D; ++i) {
      int32_t v = load_q(in, x, r * D + i);
      if (v > bv) bv = v, best = i;
    }
    y[r] = best;
  }
}

}  // namespace q
}  // namespace swinq
