// Attention (qkernels.h attention_u8): the checks and the scalar reference; the Isa's kernel comes
// from q::kernels. The AVX2 version (qattention_avx2.cc) computes the same integers; every
// operation is exact, so order is free.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "qinternal.h"
#include "qcheck.h"
#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {

// Scratch layout of the AVX2 path (each region 32-byte aligned; n16 = N rounded up to 16):
//   kp  int32 [ceil(N/8)][ceil(dh/2)][8]      k − zp as int16 d-pairs, j-blocks of 8
//   qp  int32 [N][ceil(dh/2)]                 (q − zp) d-pairs as two int16
//   vp  int16 [ceil(dh/8)][ceil(N/2)][8][2]   v − zp, d-blocks of 8 with j-pairs
//   s   int32 [G][n16]                        z of one group of G = kAttentionRowGroup query rows
//   pe  int16 [G][n16]                        their exps e, zero beyond N (read as int32 j-pairs)
//   w   int16 [N + 1][max(2·ceil(dh/2), dh rounded up to 8)]   widened k / v rows
namespace {
inline size_t al32(size_t b) { return (b + 31) / 32 * 32; }
}  // namespace

size_t attention_scratch_bytes(int64_t N, int64_t dh) {
  const size_t d2 = (size_t)(dh + 1) / 2, n2 = (size_t)(N + 1) / 2, d8 = (size_t)(dh + 7) / 8 * 8,
               n16 = (size_t)(N + 15) / 16 * 16, w16 = std::max(d8, 2 * d2);
  const size_t G = detail::kAttentionRowGroup;
  const size_t avx2 = al32(n16 * d2 * 4) + al32((size_t)N * d2 * 4) + al32(d8 * n2 * 4) + al32(G * n16 * 4) +
                      al32(G * n16 * 2) + al32(((size_t)N + 1) * w16 * 2);
  return std::max(avx2, detail::attention_lanes_layout(N, dh).bytes);  // the AVX-512 kernel's own layout
}

int64_t attention_bias_period(int64_t N, int64_t bias_rows) {
  QCHECK(N >= 1 && bias_rows >= 1, "attention_bias_period: need N ≥ 1 and bias_rows ≥ 1");
  return bias_rows / std::gcd(N, bias_rows);
}

std::vector<int32_t> attention_bias_by_key(const int32_t* bias, int64_t bias_rows, int64_t N) {
  QCHECK(bias && N >= 1 && N <= kAttentionMaxN && bias_rows >= 1, "attention_bias_by_key: need a bias, N ∈ [1, " +
                                                                     std::to_string(kAttentionMaxN) + "], bias_rows ≥ 1");
  const int64_t P = attention_bias_period(N, bias_rows), n16 = (N + 15) / 16 * 16;
  QCHECK(P <= (int64_t(1) << 40) / (N * n16), "attention_bias_by_key: bias_rows too large");
  std::vector<int32_t> out((size_t)(P * N * n16 + 16), 0);  // + 16: a block of rows starting past n16 − 16 reads on
  for (int64_t ph = 0; ph < P; ++ph)
    for (int64_t i = 0; i < N; ++i) {
      const int32_t* row = bias + ((ph * N + i) % bias_rows) * N;
      for (int64_t j = 0; j < N; ++j) out[(size_t)((ph * N + j) * n16 + i)] = detail::attention_bias_clamp(row[j]);
    }
  return out;
}

// The reference: the same integers as attention_u8s32_u8_avx2, one row at a time.
void detail::attention_u8s32_u8_scalar(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* /*scratch*/,
                                       uint8_t* y) {
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, w = t / p.H, h = t % p.H;
  const uint8_t* base = qkv + w * N * 3 * C;
  const int es = detail::attention_exp_shift(N);
  const int32_t umax = 31 * p.sm.L;
  std::vector<int32_t> z((size_t)N), e((size_t)N);
  const AttentionOutRows out = attention_out_rows(p, t, y);
  for (int64_t i = p.row_begin, ie = p.row_end ? p.row_end : N; i < ie; ++i) {
    const uint8_t* qi = base + i * 3 * C + h * dh;
    const int32_t* tb = p.bias ? p.bias + ((t * N + i) % p.bias_rows) * N : nullptr;
    int32_t mx = INT32_MIN;
    for (int64_t j = 0; j < N; ++j) {
      const uint8_t* kj = base + j * 3 * C + C + h * dh;
      int32_t acc = 0;
      for (int64_t d = 0; d < dh; ++d) acc += ((int32_t)qi[d] - p.zp) * ((int32_t)kj[d] - p.zp);
      const int32_t b = tb ? detail::attention_bias_clamp(tb[j]) : 0;
      z[(size_t)j] = (acc + b) >> p.sm.pre_shift;
      mx = std::max(mx, z[(size_t)j]);
    }
    int64_t sum = 0;
    for (int64_t j = 0; j < N; ++j) {
      e[(size_t)j] = detail::attention_exp((int32_t)std::min<int64_t>((int64_t)mx - z[(size_t)j], umax), p, es);
      sum += e[(size_t)j];
    }
    int32_t m, s;
    detail::attention_row_scale(p.mult, p.shift, sum, &m, &s);
    for (int64_t d = 0; d < dh; ++d) {
      int32_t acc = 0;
      for (int64_t j = 0; j < N; ++j) acc += e[(size_t)j] * ((int32_t)base[j * 3 * C + 2 * C + h * dh + d] - p.zp);
      out.row(i)[d] = (uint8_t)requantize_one(acc, m, s, p.y_zp, 0, p.y_max);
    }
  }
}

void attention_set_logit_scale(AttentionParams& p, double logit_scale) {
  p.sm = softmax_params(logit_scale);  // S' = logit_scale·2^pre_shift ∈ [2^−10, ln2): L ≤ 710
  // x per unit of u: r = S'·256/ln2 ∈ [0.36, 256); exp_mult = round(r·2^exp_shift) ∈ [2^14, 2^15)
  const double r = std::ldexp(logit_scale, p.sm.pre_shift) * 256.0 / std::log(2.0);
  int cs = 0;
  while (r * std::ldexp(1.0, cs + 1) < 32768.0) ++cs;
  int64_t c = std::llround(r * std::ldexp(1.0, cs));
  if (c >= 32768) c >>= 1, --cs;  // rounded up to 2^15: the same ratio one shift lower
  QCHECK(cs >= 0 && c >= 1, "attention_set_logit_scale: logit_scale out of range");
  p.exp_mult = (int32_t)c;
  p.exp_shift = cs;
}

void attention_u8(const uint8_t* qkv, const AttentionParams& p, int64_t t0, int64_t t1, void* scratch, uint8_t* y,
                  Isa isa) {
  QCHECK(p.W >= 0 && p.H >= 1 && p.N >= 1 && p.N <= kAttentionMaxN && p.dh >= 1 && p.dh <= kAttentionMaxDh,
         "attention_u8: need W ≥ 0, H ≥ 1, N ∈ [1, " + std::to_string(kAttentionMaxN) + "], dh ∈ [1, " +
             std::to_string(kAttentionMaxDh) + "]");
  QCHECK(t0 >= 0 && t0 <= t1 && t1 <= p.W * p.H, "attention_u8: head range outside [0, W·H]");
  QCHECK(p.zp >= 0 && p.zp <= 255 && p.y_zp >= 0 && p.y_zp <= p.y_max && p.y_max <= 255,
         "attention_u8: zero points / y_max outside uint8 (y_zp ≤ y_max)");
  QCHECK(!p.bias || p.bias_rows >= 1, "attention_u8: bias_rows must be ≥ 1 with a bias");
  QCHECK(!p.bias_by_key || (p.bias && p.bias_by_key_period == attention_bias_period(p.N, p.bias_rows)),
         "attention_u8: bias_by_key needs the bias it was made from and bias_by_key_period = attention_bias_period");
  QCHECK(p.shift >= 0 && p.shift <= 62 && p.mult != 0, "attention_u8: mult/shift out of range");
  QCHECK(p.y_ld == 0 ? !p.y_rows : p.y_ld >= p.H * p.dh, "attention_u8: y_ld must be 0 (no y_rows) or ≥ H·dh");
  QCHECK(p.row_begin >= 0 && p.row_end >= 0 && p.row_end <= p.N && p.row_begin <= (p.row_end ? p.row_end : p.N),
         "attention_u8: query rows [row_begin, row_end) must lie in [0, N] (row_end 0: N)");
  QCHECK(p.sm.L >= 2 && p.sm.L <= 1024 && p.sm.pre_shift >= 0 && p.sm.pre_shift <= 30 && p.exp_mult >= 1 &&
             p.exp_mult < (1 << 15) && p.exp_shift >= 0 && p.exp_shift <= 31,
         "attention_u8: exp params out of range (set them with attention_set_logit_scale)");
  if (t0 == t1) return;
  QCHECK(qkv && y && scratch, "attention_u8: null buffer");
  QCHECK((reinterpret_cast<uintptr_t>(scratch) & 31) == 0, "attention_u8: scratch must be 32-byte aligned");
  const auto head = kernels(isa).attention;
  for (int64_t t = t0; t < t1; ++t) head(qkv, p, t, scratch, y);
}

}  // namespace q
}  // namespace swinq
