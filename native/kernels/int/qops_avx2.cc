// AVX2 versions of the element-wise / row integer ops. Each matches the scalar reference in
// qkernels.cc bit-exactly; ragged tails run the same formulas in scalar code.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "qavx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

// 8 int32 (already inside the type's range) → 8 elements of `t` at dst.
static inline void store8(QType t, void* dst, __m256i q) {
  if (t == QType::s32) {
    _mm256_storeu_si256((__m256i*)dst, q);
    return;
  }
  const __m256i w = _mm256_packs_epi32(q, q);  // [q0..3 q0..3 | q4..7 q4..7]
  if (t == QType::s16) {
    _mm_storeu_si128((__m128i*)dst, _mm256_castsi256_si128(_mm256_permute4x64_epi64(w, 0x08)));
    return;
  }
  const __m256i b = t == QType::u8 ? _mm256_packus_epi16(w, w) : _mm256_packs_epi16(w, w);
  const __m128i x = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64((__m128i*)dst, x);
}

// 8 elements of `t` at src → 8 int32.
static inline __m256i load8(QType t, const void* src) {
  switch (t) {
    case QType::s8: return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)src));
    case QType::u8: return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)src));
    case QType::s16: return _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)src));
    default: return _mm256_loadu_si256((const __m256i*)src);
  }
}

// 16 elements of an 8/16-bit type → 16 int16.
static inline __m256i load16_i16(QType t, const void* src) {
  switch (t) {
    case QType::s8: return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)src));
    case QType::u8: return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)src));
    default: return _mm256_loadu_si256((const __m256i*)src);
  }
}

static inline int tsize(QType t) { return t == QType::s32 ? 4 : t == QType::s16 ? 2 : 1; }
static inline char* at(void* p, QType t, int64_t i) { return (char*)p + i * tsize(t); }
static inline const char* at(const void* p, QType t, int64_t i) { return (const char*)p + i * tsize(t); }

// ---------------------------------------------------------------------------------------------
void requantize_s32_q_avx2(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out, void* y) {
  const __m256i lo = _mm256_set1_epi64x(rq.qmin - (int64_t)rq.zero_point);
  const __m256i hi = _mm256_set1_epi64x(rq.qmax - (int64_t)rq.zero_point);
  const __m256i zp = _mm256_set1_epi32(rq.zero_point);
  const bool pc = rq.channels != 1;
  const __m256i m1 = _mm256_set1_epi32(rq.mult[0]), s1 = _mm256_set1_epi32(rq.shift[0]);
  bool fast = true;
  for (int32_t c = 0; c < rq.channels; ++c) fast = fast && rq.shift[c] >= 32;
  const __m256i lo32 = _mm256_set1_epi32((int32_t)std::max<int64_t>(INT32_MIN, rq.qmin - (int64_t)rq.zero_point));
  const __m256i hi32 = _mm256_set1_epi32((int32_t)std::min<int64_t>(INT32_MAX, rq.qmax - (int64_t)rq.zero_point));
  const Rq8Fast f1 = rq8_fast_prepare(m1, s1);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* xr = x + r * cols;
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      const __m256i m = pc ? _mm256_loadu_si256((const __m256i*)(rq.mult + c)) : m1;
      const __m256i s = pc ? _mm256_loadu_si256((const __m256i*)(rq.shift + c)) : s1;
      const __m256i xv = _mm256_loadu_si256((const __m256i*)(xr + c));
      const __m256i v = fast ? requant8_fast_avx2(xv, pc ? rq8_fast_prepare(m, s) : f1, lo32, hi32)
                             : requant8_avx2(xv, m, s, lo, hi);
      store8(out, at(y, out, r * cols + c), _mm256_add_epi32(v, zp));
    }
    for (; c < cols; ++c) {
      const int64_t ch = pc ? c : 0;
      store_q(out, y, r * cols + c, requantize_one(xr[c], rq.mult[ch], rq.shift[ch], rq.zero_point, rq.qmin, rq.qmax));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax. floor(u / L) for u < 2^17, L ≤ 2^12 is exactly (u·M) >> 32 with M = floor(2^32/L) + 1.
static inline __m256i div_small_avx2(__m256i u, __m256i M) {
  const __m256i qe = _mm256_srli_epi64(_mm256_mul_epu32(u, M), 32);
  const __m256i qo = _mm256_mul_epu32(_mm256_srli_epi64(u, 32), M);
  return _mm256_blend_epi32(qe, qo, 0xAA);  // odd: the high dword is already in place
}

void softmax_s32_u8_avx2(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                     const SoftmaxParams& p, uint8_t* y) {
  // scratch rows padded to a multiple of 8: the ragged tail runs as one masked vector, not scalar code
  const int64_t Dv = (D + 7) / 8 * 8, rem = D - (Dv - 8);
  // rows up to 1024 (window attention calls this per head) use the stack, not the heap
  alignas(32) int32_t zs[1024], es[1024];
  std::vector<int32_t> zb(Dv > 1024 ? Dv : 0), eb(Dv > 1024 ? Dv : 0);
  int32_t* z = Dv > 1024 ? zb.data() : zs;
  int32_t* e = Dv > 1024 ? eb.data() : es;
  const __m128i ps = _mm_cvtsi32_si128(p.pre_shift);
  const uint32_t Mdiv = (uint32_t)((uint64_t(1) << 32) / (uint64_t)p.L + 1);
  const __m256i Mv = _mm256_set1_epi32((int)Mdiv), Lv = _mm256_set1_epi32(p.L), qbv = _mm256_set1_epi32(p.qb),
                qcv = _mm256_set1_epi32(p.qc), imax = _mm256_set1_epi32(INT32_MAX), imin = _mm256_set1_epi32(INT32_MIN);
  const __m256i tailmask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const int32_t dmin = -31 * p.L;
  // exps are ≤ poly(0) = qb² + qc: int32 lane sums are exact when Dv/8 of them fit
  const bool sum32 = ((int64_t)p.qb * p.qb + p.qc) * (Dv / 8) < (int64_t(1) << 31);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* xr = x + r * D;
    const int32_t* tr = table ? table + (r % table_rows) * D : nullptr;
    __m256i mxv = imin;
    for (int64_t i = 0; i < Dv; i += 8) {
      const bool last = i + 8 > D;
      __m256i v = last ? _mm256_maskload_epi32(xr + i, tailmask) : _mm256_loadu_si256((const __m256i*)(xr + i));
      if (tr) {  // saturating int32 add
        const __m256i t = last ? _mm256_maskload_epi32(tr + i, tailmask) : _mm256_loadu_si256((const __m256i*)(tr + i));
        const __m256i s = _mm256_add_epi32(v, t);
        const __m256i ov = _mm256_srai_epi32(_mm256_andnot_si256(_mm256_xor_si256(v, t), _mm256_xor_si256(v, s)), 31);
        const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(v, 31), imax);
        v = _mm256_blendv_epi8(s, sat, ov);
      }
      v = _mm256_sra_epi32(v, ps);
      if (last) v = _mm256_blendv_epi8(imin, v, tailmask);
      _mm256_storeu_si256((__m256i*)(z + i), v);
      mxv = _mm256_max_epi32(mxv, v);
    }
    const int32_t mx = hmax_epi32_avx2(mxv);
    // z' = max(z, mx + dmin) keeps z − mx inside int32 and equals the scalar clamp of d at dmin
    const int32_t thr = (int32_t)std::max<int64_t>(INT32_MIN, (int64_t)mx + dmin);
    const __m256i mxb = _mm256_set1_epi32(mx), thrv = _mm256_set1_epi32(thr);
    __m256i sumv = _mm256_setzero_si256();
    for (int64_t i = 0; i < Dv; i += 8) {
      const __m256i d = _mm256_sub_epi32(_mm256_max_epi32(_mm256_loadu_si256((const __m256i*)(z + i)), thrv), mxb);
      const __m256i qn = div_small_avx2(_mm256_sub_epi32(_mm256_setzero_si256(), d), Mv);
      const __m256i rr = _mm256_add_epi32(d, _mm256_mullo_epi32(qn, Lv));
      const __m256i t = _mm256_add_epi32(rr, qbv);
      const __m256i poly = _mm256_add_epi32(_mm256_mullo_epi32(t, t), qcv);
      __m256i ex = _mm256_srlv_epi32(poly, qn);  // qn ≤ 31 and poly < 2^31: qn = 31 gives 0
      if (i + 8 > D) ex = _mm256_and_si256(ex, tailmask);
      _mm256_storeu_si256((__m256i*)(e + i), ex);
      if (sum32) sumv = _mm256_add_epi32(sumv, ex);
      else {
        sumv = _mm256_add_epi64(sumv, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(ex)));
        sumv = _mm256_add_epi64(sumv, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(ex, 1)));
      }
    }
    if (sum32)
      sumv = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(sumv)),
                              _mm256_cvtepu32_epi64(_mm256_extracti128_si256(sumv, 1)));
    const int64_t sum = (int64_t)hsum_epi64_avx2(sumv);
    const int sh = softmax_sum_shift(sum);
    const uint32_t f = (uint32_t)((uint64_t(1) << 31) / (uint64_t)(sum >> sh));
    const __m128i shv = _mm_cvtsi32_si128(sh);
    const __m256i fv = _mm256_set1_epi32((int)f), rnd = _mm256_set1_epi32(1 << 22), c255 = _mm256_set1_epi32(255);
    uint8_t* yr = y + r * D;
    for (int64_t i = 0; i < Dv; i += 8) {
      __m256i o = _mm256_mullo_epi32(_mm256_srl_epi32(_mm256_loadu_si256((const __m256i*)(e + i)), shv), fv);
      o = _mm256_min_epu32(_mm256_srli_epi32(_mm256_add_epi32(o, rnd), 23), c255);
      if (i + 8 <= D) store8(QType::u8, yr + i, o);
      else {
        alignas(16) uint8_t tmp[8];
        store8(QType::u8, tmp, o);
        std::memcpy(yr + i, tmp, (size_t)rem);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm
template <QType in, QType out>
static void layernorm_avx2_typed(const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows) {
  const int32_t D = p.D;
  const int32_t lo = std::max(p.qmin, qtype_min(out)) - p.zero_point, hi = std::min(p.qmax, qtype_max(out)) - p.zero_point;
  const __m256i lov = _mm256_set1_epi64x(lo), hiv = _mm256_set1_epi64x(hi), zpv = _mm256_set1_epi32(p.zero_point);
  const __m256i lo32 = _mm256_set1_epi32(lo), hi32 = _mm256_set1_epi32(hi);
  const __m256i ones = _mm256_set1_epi16(1), Dv = _mm256_set1_epi32(D);
  // per call: the 64-bit biases split into even/odd channel lanes, and whether every shift ≥ 32
  const int64_t D8 = D / 8 * 8;
  // on the stack up to D = 1024 (every ViT/Swin width but Swin-B/L's last stage): a heap block per
  // call was a malloc per row chunk, ten per LayerNorm at 2 threads on micro-Swin
  alignas(32) int64_t beo_stack[2 * 1024];
  std::vector<int64_t> beo_heap(D8 > 1024 ? (size_t)(2 * D8) : 0);  // (a sized constructor: resize() would
                                                                      // leave a weak symbol in this object)
  int64_t* const beo = D8 > 1024 ? beo_heap.data() : beo_stack;
  bool fast = true;
  for (int64_t c = 0; c < D8; c += 8)
    for (int j = 0; j < 4; ++j) {
      beo[2 * c + j] = p.bias[c + 2 * j];
      beo[2 * c + 4 + j] = p.bias[c + 2 * j + 1];
    }
  for (int32_t c = 0; c < D; ++c) fast = fast && p.shift[c] >= 32;
  // rows in blocks: first every row's sums and statistics (each row's isqrt and division chain is
  // independent of the others, so they overlap), then the normalisation
  constexpr int64_t kBlock = 16;
  LnRow stats[kBlock];  // .s: the row's sum
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t nb = std::min<int64_t>(kBlock, rows - r0);
    for (int64_t r = r0; r < r0 + nb; ++r) {
      const void* xr = at(x, in, r * D);
      __m256i s32 = _mm256_setzero_si256(), ss32 = _mm256_setzero_si256(), ss64 = _mm256_setzero_si256();
      int64_t c = 0;
      for (; c + 16 <= D; c += 16) {
        const __m256i v = load16_i16(in, at(xr, in, c));
        s32 = _mm256_add_epi32(s32, _mm256_madd_epi16(v, ones));
        const __m256i sq = _mm256_madd_epi16(v, v);  // ≤ 2^31: exact as uint32
        if (in == QType::s8) {
          ss32 = _mm256_add_epi32(ss32, sq);  // ≤ 2^15 a step, D ≤ 32768: the sum stays < 2^31
        } else {
          ss64 = _mm256_add_epi64(ss64, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(sq)));
          ss64 = _mm256_add_epi64(ss64, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(sq, 1)));
        }
      }
      if (in == QType::s8) {
        ss64 = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(ss32)),
                                _mm256_cvtepu32_epi64(_mm256_extracti128_si256(ss32, 1)));
      }
      int64_t s = hsum_epi32_avx2(s32);  // |Σx| ≤ 32768·2^15 = 2^30: no int32 wrap
      int64_t ss = (int64_t)hsum_epi64_avx2(ss64);
      for (; c < D; ++c) {
        int64_t v = load_q(in, xr, c);
        s += v;
        ss += v * v;
      }
      stats[r - r0] = layernorm_row_stats(s, ss, D, p.F);
    }
    for (int64_t r = r0; r < r0 + nb; ++r) {
      const void* xr = at(x, in, r * D);
      const LnRow& st = stats[r - r0];
      const int64_t s = st.s;
      int64_t c;
      const __m256i sb = _mm256_set1_epi32((int32_t)s), fv = _mm256_set1_epi64x(st.f);
      const __m256i rnd = _mm256_set1_epi64x(int64_t(1) << (st.sh - 1));
      const __m128i shc = _mm_cvtsi32_si128(st.sh);
      void* yr = at(y, out, (y_rows ? y_rows[r] : r) * D);
      for (c = 0; c < D8; c += 8) {
        const __m256i yv = _mm256_sub_epi32(_mm256_mullo_epi32(load8(in, at(xr, in, c)), Dv), sb);
        const __m256i ay = _mm256_abs_epi32(yv);
        // t = (|y|·f + 2^(sh−1)) >> sh per 64-bit lane (< 2^62, the result < 2^31), then the sign of y
        const __m256i te = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(ay, fv), rnd), shc);
        const __m256i to = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(ay, 32), fv), rnd), shc);
        const __m256i t = _mm256_sign_epi32(_mm256_blend_epi32(te, _mm256_slli_epi64(to, 32), 0xAA), yv);
        // affine + requant: ((int64)t·mult + bias) >> shift, per channel
        const __m256i m = _mm256_loadu_si256((const __m256i*)(p.mult.data() + c));
        const __m256i sh = _mm256_loadu_si256((const __m256i*)(p.shift.data() + c));
        const __m256i be = _mm256_loadu_si256((const __m256i*)(beo + 2 * c));
        const __m256i bo = _mm256_loadu_si256((const __m256i*)(beo + 2 * c + 4));
        const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(t, m), be);
        const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(t, 32), _mm256_srli_epi64(m, 32)), bo);
        __m256i q;
        if (fast) {  // shift ≥ 32: high dwords (|t·m + b| < 2^62 → fits int32 after >> 32), then vpsravd
          const __m256i h = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
          q = _mm256_srav_epi32(h, _mm256_sub_epi32(sh, _mm256_set1_epi32(32)));
          q = _mm256_min_epi32(_mm256_max_epi32(q, lo32), hi32);
        } else {
          const __m256i qe = clamp64_avx2(srav64_avx2(pe, _mm256_and_si256(sh, _mm256_set1_epi64x(0xffffffff))), lov, hiv);
          const __m256i qo = clamp64_avx2(srav64_avx2(po, _mm256_srli_epi64(sh, 32)), lov, hiv);
          q = _mm256_blend_epi32(qe, _mm256_slli_epi64(qo, 32), 0xAA);
        }
        store8(out, at(yr, out, c), _mm256_add_epi32(q, zpv));
      }
      for (; c < D; ++c) {
        int64_t yv = (int64_t)D * load_q(in, xr, c) - s;
        int32_t t = ln_t(yv, st);
        int64_t o = ((int64_t)t * p.mult[c] + p.bias[c]) >> p.shift[c];
        store_q(out, yr, c, store_clamp(o, lo, hi) + p.zero_point);
      }
    }
  }
}

void layernorm_q_q_avx2(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows) {
#define SWQ_LN(I, O) \
  if (in == QType::I && p.out == QType::O) return layernorm_avx2_typed<QType::I, QType::O>(x, rows, p, y, y_rows);
  SWQ_LN(s8, s8) SWQ_LN(s8, u8) SWQ_LN(s8, s16) SWQ_LN(s16, s8) SWQ_LN(s16, u8) SWQ_LN(s16, s16)
#undef SWQ_LN
}

// ---------------------------------------------------------------------------------------------
void gelu_s8_s32_ibert_avx2(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y) {
  const __m256i Bv = _mm256_set1_epi32(p.B), Cv = _mm256_set1_epi32(p.C);
  const __m128i shv = _mm_cvtsi32_si128(p.sh);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + i)));
    const __m256i d = _mm256_sub_epi32(_mm256_min_epi32(_mm256_abs_epi32(q), Bv), Bv);
    const __m256i d2 = _mm256_min_epi32(_mm256_sra_epi32(_mm256_mullo_epi32(d, d), shv), Cv);
    const __m256i erf = _mm256_sign_epi32(_mm256_sub_epi32(Cv, d2), q);
    _mm256_storeu_si256((__m256i*)(y + i), _mm256_mullo_epi32(q, _mm256_add_epi32(Cv, erf)));
  }
  for (; i < n; ++i) {
    int32_t q = x[i], aq = q < 0 ? -q : q;
    int64_t d = std::min(aq, p.B) - p.B;
    int32_t d2 = std::min((int32_t)((d * d) >> p.sh), p.C);
    int32_t erf = q > 0 ? p.C - d2 : q < 0 ? d2 - p.C : 0;
    y[i] = q * (p.C + erf);
  }
}

// 256-entry lookup as 16 vpshufb tables selected by the high nibble.
void lookup_u8_avx2(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y) {
  __m256i T[16];
  for (int j = 0; j < 16; ++j) T[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(table + 16 * j)));
  const __m256i nib = _mm256_set1_epi8(0x0f);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256((const __m256i*)(x + i));
    const __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
    __m256i res = _mm256_setzero_si256();
    for (int j = 0; j < 16; ++j) {
      const __m256i sel = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)j));
      res = _mm256_or_si256(res, _mm256_and_si256(sel, _mm256_shuffle_epi8(T[j], lo)));
    }
    _mm256_storeu_si256((__m256i*)(y + i), res);
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

void relu_x8_avx2(QType t, const void* x, int64_t n, int32_t zp, void* y) {
  const __m256i z = _mm256_set1_epi8((char)zp);
  const uint8_t* xs = (const uint8_t*)x;
  uint8_t* ys = (uint8_t*)y;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256((const __m256i*)(xs + i));
    _mm256_storeu_si256((__m256i*)(ys + i), t == QType::u8 ? _mm256_max_epu8(v, z) : _mm256_max_epi8(v, z));
  }
  for (; i < n; ++i) store_q(t, y, i, std::max(load_q(t, x, i), zp));
}

// ---------------------------------------------------------------------------------------------
void add_qq_q_avx2(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y) {
  const int32_t lo = std::max(p.qmin, qtype_min(ty)) - p.zy, hi = std::min(p.qmax, qtype_max(ty)) - p.zy;
  const __m256i za = _mm256_set1_epi16((int16_t)p.za), zb = _mm256_set1_epi16((int16_t)p.zb);
  const __m256i mab = _mm256_set1_epi32((int32_t)(((uint32_t)(uint16_t)p.mb << 16) | (uint16_t)p.ma));
  const __m256i rnd = _mm256_set1_epi32((1 << p.shift) >> 1), lov = _mm256_set1_epi32(lo), hiv = _mm256_set1_epi32(hi),
                zy = _mm256_set1_epi32(p.zy);
  const __m128i shv = _mm_cvtsi32_si128(p.shift);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i av = _mm256_sub_epi16(load16_i16(ta, at(a, ta, i)), za);
    const __m256i bv = _mm256_sub_epi16(load16_i16(tb, at(b, tb, i)), zb);
    __m256i l = _mm256_madd_epi16(_mm256_unpacklo_epi16(av, bv), mab);  // elements 0-3 | 8-11
    __m256i h = _mm256_madd_epi16(_mm256_unpackhi_epi16(av, bv), mab);  // elements 4-7 | 12-15
    l = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_sra_epi32(_mm256_add_epi32(l, rnd), shv), lov), hiv), zy);
    h = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_sra_epi32(_mm256_add_epi32(h, rnd), shv), lov), hiv), zy);
    const __m256i w = _mm256_packs_epi32(l, h);  // 0-7 | 8-15 in order
    if (ty == QType::s16) _mm256_storeu_si256((__m256i*)at(y, ty, i), w);
    else {
      const __m256i bb = ty == QType::u8 ? _mm256_packus_epi16(w, w) : _mm256_packs_epi16(w, w);
      _mm_storeu_si128((__m128i*)at(y, ty, i), _mm256_castsi256_si128(_mm256_permute4x64_epi64(bb, 0x08)));
    }
  }
  const int64_t r = (int64_t(1) << p.shift) >> 1;
  for (; i < n; ++i) {
    int64_t v = (int64_t)(load_q(ta, a, i) - p.za) * p.ma + (int64_t)(load_q(tb, b, i) - p.zb) * p.mb + r;
    store_q(ty, y, i, store_clamp(v >> p.shift, lo, hi) + p.zy);
  }
}

// ---------------------------------------------------------------------------------------------
void avgpool_q_q_avx2(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq,
                  QType out, void* y) {
  const __m256i lo = _mm256_set1_epi64x(rq.qmin - (int64_t)rq.zero_point);
  const __m256i hi = _mm256_set1_epi64x(rq.qmax - (int64_t)rq.zero_point);
  const __m256i zp = _mm256_set1_epi32(rq.zero_point), tz = _mm256_set1_epi32((int32_t)(T * in_zp));
  const bool pc = rq.channels != 1;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      __m256i s = _mm256_setzero_si256();
      for (int64_t t = 0; t < T; ++t) s = _mm256_add_epi32(s, load8(in, at(x, in, (b * T + t) * C + c)));
      s = _mm256_sub_epi32(s, tz);
      const __m256i m = pc ? _mm256_loadu_si256((const __m256i*)(rq.mult + c)) : _mm256_set1_epi32(rq.mult[0]);
      const __m256i sh = pc ? _mm256_loadu_si256((const __m256i*)(rq.shift + c)) : _mm256_set1_epi32(rq.shift[0]);
      store8(out, at(y, out, b * C + c), _mm256_add_epi32(requant8_avx2(s, m, sh, lo, hi), zp));
    }
    for (; c < C; ++c) {
      int32_t s = 0;
      for (int64_t t = 0; t < T; ++t) s += load_q(in, x, (b * T + t) * C + c) - in_zp;
      const int64_t ch = pc ? c : 0;
      store_q(out, y, b * C + c, requantize_one(s, rq.mult[ch], rq.shift[ch], rq.zero_point, rq.qmin, rq.qmax));
    }
  }
}

void argmax_q_i64_avx2(QType in, const void* x, int64_t rows, int64_t D, int64_t* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const void* xr = at(x, in, r * D);
    __m256i mx = _mm256_set1_epi32(INT32_MIN);
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) mx = _mm256_max_epi32(mx, load8(in, at(xr, in, i)));
    alignas(32) int32_t mm[8];
    _mm256_store_si256((__m256i*)mm, mx);
    int32_t best = *std::max_element(mm, mm + 8);
    for (int64_t j = i; j < D; ++j) best = std::max(best, load_q(in, xr, j));
    const __m256i bv = _mm256_set1_epi32(best);
    int64_t idx = -1;
    for (i = 0; i + 8 <= D && idx < 0; i += 8) {
      const int msk = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(load8(in, at(xr, in, i)), bv)));
      if (msk) idx = i + __builtin_ctz((unsigned)msk);
    }
    for (; idx < 0 && i < D; ++i)
      if (load_q(in, xr, i) == best) idx = i;
    y[r] = idx;
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
