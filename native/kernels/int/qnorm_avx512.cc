// Integer LayerNorm on AVX-512 (the avx512vnni set): the same integers as layernorm_q_q_scalar and
// the AVX2 form (qops_avx2.cc), 16 channels per zmm, the ragged last block with lane masks instead
// of scalar code. Rows in blocks of 16: first every row's sums, their statistics 8 rows a zmm
// (layernorm_row_stats8_avx512), then the normalisation.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "qavx512.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

namespace {
constexpr int64_t kMaxStackD = 1024;

template <QType in>
inline __m512i load16_i32(const void* src, __mmask16 m) {  // 16 codes → int32
  if (in == QType::s8) return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, src));
  return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, src));
}
template <QType out>
inline void store16(void* dst, __m512i q, __mmask16 m) {  // q already inside the type's range
  if (out == QType::s16) _mm256_mask_storeu_epi16(dst, m, _mm512_cvtepi32_epi16(q));
  else _mm_mask_storeu_epi8(dst, m, _mm512_cvtepi32_epi8(q));
}
constexpr int tsize(QType t) { return t == QType::s16 ? 2 : 1; }

}  // namespace

// Bit length of the 8 uint32 in v (0 → 0), from their exact doubles' exponents.
static inline __m512i bitlen8_u32(__m256i v) {
  const __m512i e = _mm512_srli_epi64(_mm512_castpd_si512(_mm512_cvtepu32_pd(v)), 52);  // 1023 + ⌊log2⌋, 0 for 0
  return _mm512_maskz_sub_epi64(_mm512_test_epi64_mask(e, e), e, _mm512_set1_epi64(1022));
}

// layernorm_row_stats for 8 rows at once, the same integers: V = D·Σx² − (Σx)² (here < 2^61 in
// int64: |Σx| ≤ 2^30, Σx² < 2^45), k from V's bit length, isqrt(V·4^k) from the double square root
// then stepped to the exact floor, f = ⌊2^61 / isqrt⌋ from the double quotient then stepped to the
// exact floor (the double results are within one unit, so one step each way suffices).
void layernorm_row_stats8_avx512(const int64_t* sum, const uint64_t* sumsq, int32_t D, int32_t F, int64_t* f_out,
                                 int64_t* sh_out) {
  const __m512i s = _mm512_loadu_si512((const void*)sum), ss = _mm512_loadu_si512((const void*)sumsq),
                Dv = _mm512_set1_epi64(D), one = _mm512_set1_epi64(1);
  const __m512i dss = _mm512_add_epi64(_mm512_mul_epu32(ss, Dv), _mm512_slli_epi64(_mm512_mul_epu32(_mm512_srli_epi64(ss, 32), Dv), 32));
  const __m512i V = _mm512_sub_epi64(dss, _mm512_mul_epi32(s, s));
  const __m512i hb = bitlen8_u32(_mm512_cvtepi64_epi32(_mm512_srli_epi64(V, 32))),
                lb = bitlen8_u32(_mm512_cvtepi64_epi32(V));
  const __m512i bits = _mm512_mask_add_epi64(lb, _mm512_test_epi64_mask(hb, hb), hb, _mm512_set1_epi64(32));
  const __m512i k = _mm512_max_epi64(_mm512_srli_epi64(_mm512_sub_epi64(_mm512_set1_epi64(62), bits), 1), _mm512_setzero_si512());
  const __m512i u = _mm512_sllv_epi64(V, _mm512_add_epi64(k, k));  // [2^60, 2^62) unless V = 0
  const __m512d ud = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepu32_pd(_mm512_cvtepi64_epi32(_mm512_srli_epi64(u, 32))),
                                                 _mm512_set1_pd(4294967296.0)),
                                   _mm512_cvtepu32_pd(_mm512_cvtepi64_epi32(u)));
  __m512i r = _mm512_cvtepu32_epi64(_mm512_cvttpd_epu32(_mm512_sqrt_pd(ud)));
  r = _mm512_mask_sub_epi64(r, _mm512_cmpgt_epu64_mask(_mm512_mul_epu32(r, r), u), r, one);
  const __m512i r1 = _mm512_add_epi64(r, one);
  r = _mm512_mask_add_epi64(r, _mm512_cmple_epu64_mask(_mm512_mul_epu32(r1, r1), u), r, one);
  const __m512i p61 = _mm512_set1_epi64(int64_t(1) << 61);
  __m512i f = _mm512_cvtepu32_epi64(_mm512_cvttpd_epu32(_mm512_div_pd(_mm512_set1_pd(2305843009213693952.0),
                                                                      _mm512_cvtepu32_pd(_mm512_cvtepi64_epi32(r)))));
  f = _mm512_mask_sub_epi64(f, _mm512_cmpgt_epu64_mask(_mm512_mul_epu32(f, r), p61), f, one);
  f = _mm512_mask_add_epi64(f, _mm512_cmple_epu64_mask(_mm512_add_epi64(_mm512_mul_epu32(f, r), r), p61), f, one);
  const __mmask8 nz = _mm512_test_epi64_mask(V, V);
  _mm512_storeu_si512((void*)f_out, _mm512_maskz_mov_epi64(nz, f));
  _mm512_storeu_si512((void*)sh_out, _mm512_mask_sub_epi64(one, nz, _mm512_set1_epi64(61 - F), k));
}

namespace {

// One 16-channel block of a row: t = sign(y)·((|y|·f + 2^(sh−1)) >> sh) for y = D·x − Σx (per
// 64-bit lane: < 2^62, the result < 2^31), then the affine + requant ((int64)t·mult + bias) >> shift
// per channel, clamped, + zero point. me, mo, sv, be: the block's per-channel constants
// (layernorm_avx512_typed).
struct LnRowConst {
  __m512i sb, fv, rnd;
  __m128i shc;
};
struct LnConst {
  __m512i Dv, lo32, hi32, lo64, hi64, zpv;
};
template <bool kFast>
inline __m512i ln_block(__m512i xv, const LnRowConst& r, const LnConst& k, const int32_t* me, const int32_t* mo,
                        const int32_t* sv, const int64_t* be) {
  const __m512i yv = _mm512_sub_epi32(_mm512_mullo_epi32(xv, k.Dv), r.sb);
  const __m512i ay = _mm512_abs_epi32(yv);
  const __m512i te = _mm512_srl_epi64(_mm512_add_epi64(_mm512_mul_epu32(ay, r.fv), r.rnd), r.shc);
  const __m512i to = _mm512_srl_epi64(_mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(ay, 32), r.fv), r.rnd), r.shc);
  __m512i t = _mm512_mask_blend_epi32(0xAAAA, te, _mm512_slli_epi64(to, 32));
  t = _mm512_mask_sub_epi32(t, _mm512_cmplt_epi32_mask(yv, _mm512_setzero_si512()), _mm512_setzero_si512(), t);
  const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(t, _mm512_load_si512((const void*)me)), _mm512_load_si512((const void*)be));
  const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(t, 32), _mm512_load_si512((const void*)mo)),
                                      _mm512_load_si512((const void*)(be + 8)));
  __m512i q;
  if (kFast) {  // shift ≥ 32: high dwords (|t·m + b| < 2^62 → fits int32 after >> 32), then vpsravd by shift − 32
    const __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
    q = _mm512_min_epi32(_mm512_max_epi32(_mm512_srav_epi32(h, _mm512_load_si512((const void*)sv)), k.lo32), k.hi32);
  } else {  // per 64-bit lane: arithmetic shift, clamp (sv: the shifts)
    const __m512i sh = _mm512_load_si512((const void*)sv);
    const __m512i qe = _mm512_min_epi64(
        _mm512_max_epi64(_mm512_srav_epi64(pe, _mm512_and_si512(sh, _mm512_set1_epi64(0xffffffff))), k.lo64), k.hi64);
    const __m512i qo = _mm512_min_epi64(_mm512_max_epi64(_mm512_srav_epi64(po, _mm512_srli_epi64(sh, 32)), k.lo64), k.hi64);
    q = _mm512_mask_blend_epi32(0xAAAA, qe, _mm512_slli_epi64(qo, 32));
  }
  return _mm512_add_epi32(q, k.zpv);
}

template <QType in, QType out, bool kFast>
void layernorm_avx512_rows(const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows,
                           const int32_t* me, const int32_t* mo, const int32_t* sv, const int64_t* beo) {
  const int32_t D = p.D;
  const int32_t lo = std::max(p.qmin, qtype_min(out)) - p.zero_point, hi = std::min(p.qmax, qtype_max(out)) - p.zero_point;
  LnConst k;
  k.Dv = _mm512_set1_epi32(D);
  k.lo32 = _mm512_set1_epi32(lo), k.hi32 = _mm512_set1_epi32(hi);
  k.lo64 = _mm512_set1_epi64(lo), k.hi64 = _mm512_set1_epi64(hi);
  k.zpv = _mm512_set1_epi32(p.zero_point);
  const __m512i ones = _mm512_set1_epi16(1), zero = _mm512_setzero_si512(), lo32_mask = _mm512_set1_epi64(0xffffffff);
  const int64_t Dfull = D / 16 * 16;
  const __mmask16 tail16 = (__mmask16)((1u << (D % 16)) - 1);
  const __mmask32 tail32 = (__mmask32)(D % 32 == 0 ? 0xffffffffu : (1u << (D % 32)) - 1);
  // Rows in blocks: every row's sums, then all their statistics (8 rows a zmm; the square root and
  // division chains of the block's calls overlap), then the normalisation. The statistics as
  // arrays the normalisation broadcasts from: LnRow structs read back field by field from the
  // zmm stores cost 30 % more (docs/latency.md).
  constexpr int64_t kBlock = 32;
  alignas(64) int64_t sums[kBlock], fs[kBlock], shs[kBlock];
  alignas(64) uint64_t sumsqs[kBlock];
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t nb = std::min<int64_t>(kBlock, rows - r0);
    for (int64_t r = r0; r < r0 + nb; ++r) {
      const char* xr = static_cast<const char*>(x) + r * D * tsize(in);
      __m512i s32 = zero, ss32 = zero, ss64 = zero;
      for (int64_t c = 0; c < D; c += 32) {
        const __m512i v = load32_i16_avx512(in, xr + c * tsize(in), c + 32 <= D ? (__mmask32)0xffffffffu : tail32);
        s32 = _mm512_add_epi32(s32, _mm512_madd_epi16(v, ones));
        const __m512i sq = _mm512_madd_epi16(v, v);  // ≤ 2^31: exact as uint32
        if (in == QType::s8) {
          ss32 = _mm512_add_epi32(ss32, sq);  // ≤ 2^15 a step, D ≤ 32768: the sum stays < 2^31
        } else {
          // the even and odd uint32 lanes widened in place (an and, a shift: no lane crossing)
          ss64 = _mm512_add_epi64(ss64, _mm512_and_si512(sq, lo32_mask));
          ss64 = _mm512_add_epi64(ss64, _mm512_srli_epi64(sq, 32));
        }
      }
      if (in == QType::s8) ss64 = _mm512_add_epi64(_mm512_and_si512(ss32, lo32_mask), _mm512_srli_epi64(ss32, 32));
      // |Σx| ≤ 32768·2^15 = 2^30: no int32 wrap
      sums[r - r0] = _mm512_reduce_add_epi32(s32);
      sumsqs[r - r0] = (uint64_t)_mm512_reduce_add_epi64(ss64);
    }
    for (int64_t i = nb; i < (nb + 7) / 8 * 8; ++i) sums[i] = 0, sumsqs[i] = 0;  // (V = 0, unused)
    for (int64_t i = 0; i < nb; i += 8) layernorm_row_stats8_avx512(sums + i, sumsqs + i, D, p.F, fs + i, shs + i);
    for (int64_t r = r0; r < r0 + nb; ++r) {
      const char* xr = static_cast<const char*>(x) + r * D * tsize(in);
      char* yr = static_cast<char*>(y) + (y_rows ? y_rows[r] : r) * D * tsize(out);
      const int64_t i = r - r0;
      LnRowConst rc;
      rc.sb = _mm512_set1_epi32((int32_t)sums[i]);
      rc.fv = _mm512_set1_epi64(fs[i]);
      rc.rnd = _mm512_set1_epi64(int64_t(1) << (shs[i] - 1));
      rc.shc = _mm_cvtsi32_si128((int)shs[i]);
      int64_t c = 0;
      for (; c < Dfull; c += 16) {
        const __m512i q = ln_block<kFast>(load16_i32<in>(xr + c * tsize(in), 0xffff), rc, k, me + c, mo + c, sv + c, beo + 2 * c);
        store16<out>(yr + c * tsize(out), q, 0xffff);
      }
      if (c < D) {
        const __m512i q = ln_block<kFast>(load16_i32<in>(xr + c * tsize(in), tail16), rc, k, me + c, mo + c, sv + c, beo + 2 * c);
        store16<out>(yr + c * tsize(out), q, tail16);
      }
    }
  }
}

template <QType in, QType out>
void layernorm_avx512_typed(const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows) {
  const int32_t D = p.D;
  const int64_t Dp = (D + 15) / 16 * 16;
  // Per-channel constants once per call, 16 channels a block (0 past D): the multipliers for the
  // even lanes (as given) and the odd ones (moved to the low dwords), the shifts (− 32 on the fast
  // path), the 64-bit biases as [8 even channels][8 odd channels]. On the stack up to D = 1024
  // (sized vectors beyond: resize() would leave a weak symbol here).
  alignas(64) int32_t ch_stack[3 * kMaxStackD];
  alignas(64) int64_t beo_stack[2 * kMaxStackD];
  const bool heap = Dp > kMaxStackD;
  std::vector<int32_t> ch_heap(heap ? (size_t)(3 * Dp) : 0);
  std::vector<int64_t> beo_heap(heap ? (size_t)(2 * Dp) : 0);
  int32_t* const me = heap ? ch_heap.data() : ch_stack;
  int32_t* const mo = me + Dp;
  int32_t* const sv = mo + Dp;
  int64_t* const beo = heap ? beo_heap.data() : beo_stack;
  bool fast = true;
  for (int32_t c = 0; c < D; ++c) fast = fast && p.shift[c] >= 32;
  for (int64_t c = 0; c < Dp; ++c) {
    const bool in_d = c < D, odd_in = (c | 1) < D;
    me[c] = in_d ? p.mult[c] : 0;
    mo[c] = c % 2 == 0 && odd_in ? p.mult[c + 1] : 0;  // lane 2j's low dword: channel 2j + 1's multiplier
    sv[c] = !in_d ? 0 : fast ? p.shift[c] - 32 : p.shift[c];
  }
  for (int64_t c = 0; c < Dp; c += 16)
    for (int j = 0; j < 8; ++j) {
      beo[2 * c + j] = c + 2 * j < D ? p.bias[c + 2 * j] : 0;
      beo[2 * c + 8 + j] = c + 2 * j + 1 < D ? p.bias[c + 2 * j + 1] : 0;
    }
  if (fast) layernorm_avx512_rows<in, out, true>(x, rows, p, y, y_rows, me, mo, sv, beo);
  else layernorm_avx512_rows<in, out, false>(x, rows, p, y, y_rows, me, mo, sv, beo);
}
}  // namespace

void layernorm_q_q_avx512(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows) {
#define SWQ_LN(I, O) \
  if (in == QType::I && p.out == QType::O) return layernorm_avx512_typed<QType::I, QType::O>(x, rows, p, y, y_rows);
  SWQ_LN(s8, s8) SWQ_LN(s8, u8) SWQ_LN(s8, s16) SWQ_LN(s16, s8) SWQ_LN(s16, u8) SWQ_LN(s16, s16)
#undef SWQ_LN
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
