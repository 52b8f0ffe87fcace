// The fused GEMM epilogue on ymm, shared by the dense AVX2 GEMM (qgemm_avx2.cc), its sparse-A
// path and the AVX-512 VNNI GEMM (qgemm_avx512.cc, which computes the sums on zmm and hands them
// over as ymm halves): bias (zero points folded), row-sum correction, ReLU, requantize, pack.
// Everything here is static inline: an object built for AVX-512 must not export a copy the
// linker could pick for the AVX2 one (scripts/check-avx2-objects.sh).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "qavx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

// Whether the requantized output's clamp [lo, hi] + zp is exactly its type's range, so the
// saturating packs (int32 → int16 → int8/uint8) apply it and the vpmaxsd/vpminsd pair can go
// (|x| < 2^30 after the fast requantization: adding the zero point cannot overflow).
static inline bool clamp_is_pack(const GemmCtx& c) {
  const int64_t zp = c.ep->rq.zero_point;
  switch (c.ep->out) {
    case QType::u8: return c.lo == -zp && c.hi == 255 - zp;
    case QType::s8: return c.lo == -128 - zp && c.hi == 127 - zp;
    case QType::s16: return c.lo == -32768 - zp && c.hi == 32767 - zp;
    default: return false;
  }
}

// With the fast requantization and the pack as the clamp: fz = f with the zero point folded into
// the rounding term, floor((x·m + r + zp·2^s) / 2^s) = floor((x·m + r) / 2^s) + zp exactly; the
// high dword of the 64-bit sum stays in int32 when |zp|·2^(s−32) < 2^30 (|x·m| < 2^62). Returns
// false (nothing folded) when some column of [n0, n0 + cols) has a larger shift.
static inline bool fold_zero_point(const GemmCtx& c, int64_t n0, int cols, const Rq8Fast* f, const __m256i* sv, int groups,
                                   Rq8Fast* fz) {
  const int64_t zp = c.ep->rq.zero_point, az = zp < 0 ? -zp : zp;
  for (int j = 0; j < cols; ++j)
    if ((az << (c.shift[n0 + j] - 32)) >= (int64_t(1) << 30)) return false;
  const __m256i z64 = _mm256_set1_epi64x(zp);
  for (int g = 0; g < groups; ++g) {
    fz[g] = f[g];
    fz[g].re = _mm256_add_epi64(f[g].re, _mm256_sllv_epi64(z64, _mm256_and_si256(sv[g], _mm256_set1_epi64x(0xffffffff))));
    fz[g].ro = _mm256_add_epi64(f[g].ro, _mm256_sllv_epi64(z64, _mm256_srli_epi64(sv[g], 32)));
  }
  return true;
}

// Per-panel epilogue constants, prepared once per 16-column panel rather than per 4-row tile.
struct PanelEp {
  __m256i bias0, bias1, m0v, m1v, s0v, s1v, lo, hi, zp, lo32, hi32;
  Rq8Fast f0, f1;
  Rq8Fast fz[2];  // zfold: f0, f1 with the zero point in the rounding term (fold_zero_point)
  int64_t n0;
  int ncols;
  bool sat, zfold;  // as Ep24's
};

static inline PanelEp panel_ep(const GemmCtx& c, int64_t p) {
  PanelEp e;  // field by field: value-initialising the struct is a rep stos per panel
  const __m256i zero = _mm256_setzero_si256();
  e.m0v = e.m1v = e.s0v = e.s1v = e.lo = e.hi = e.zp = e.lo32 = e.hi32 = zero;
  e.f0 = e.f1 = Rq8Fast{zero, zero, zero, zero, zero};
  e.n0 = p * 16;
  e.ncols = (int)std::min<int64_t>(16, c.B->N - e.n0);
  e.bias0 = _mm256_loadu_si256((const __m256i*)(c.bias_eff + e.n0));
  e.bias1 = _mm256_loadu_si256((const __m256i*)(c.bias_eff + e.n0 + 8));
  if (c.ep->out != QType::s32) {
    e.m0v = _mm256_loadu_si256((const __m256i*)(c.mult + e.n0));
    e.m1v = _mm256_loadu_si256((const __m256i*)(c.mult + e.n0 + 8));
    e.s0v = _mm256_loadu_si256((const __m256i*)(c.shift + e.n0));
    e.s1v = _mm256_loadu_si256((const __m256i*)(c.shift + e.n0 + 8));
    e.lo = _mm256_set1_epi64x(c.lo);
    e.hi = _mm256_set1_epi64x(c.hi);
    e.zp = _mm256_set1_epi32(c.ep->rq.zero_point);
    e.lo32 = _mm256_set1_epi32(c.lo);
    e.hi32 = _mm256_set1_epi32(c.hi);
    if (c.shifts_ge32) {
      e.f0 = rq8_fast_prepare(e.m0v, e.s0v);
      e.f1 = rq8_fast_prepare(e.m1v, e.s1v);
    }
  }
  e.sat = c.ep->out != QType::s32 && c.shifts_ge32 && clamp_is_pack(c);
  e.zfold = false;
  if (e.sat) {
    const Rq8Fast f[2] = {e.f0, e.f1};
    const __m256i sv[2] = {e.s0v, e.s1v};
    e.zfold = fold_zero_point(c, e.n0, e.ncols, f, sv, 2, e.fz);
  }
  return e;
}

template <int mr>
static inline __attribute__((always_inline)) void epilogue(const GemmCtx& c, int64_t m, const PanelEp& pe,
                                                           __m256i acc[4][2], const int32_t* rowsum) {
  // the context's flags read once (a __m256i store may alias anything: read through c, they are
  // re-loaded after every store)
  const QType out = c.ep->out;
  const bool relu = c.ep->relu, fast = c.shifts_ge32, sat = pe.sat, zfold = pe.zfold;
  const uint32_t wzp = (uint32_t)c.B->w_zero_point;
  char* const Cb = static_cast<char*>(c.C);
  const int64_t ldc = c.ldc;
  const int64_t n0 = pe.n0;
  const int ncols = pe.ncols;
  const __m256i bias0 = pe.bias0, bias1 = pe.bias1, m0v = pe.m0v, m1v = pe.m1v, s0v = pe.s0v, s1v = pe.s1v,
                lo = pe.lo, hi = pe.hi, zp = pe.zp, lo32 = pe.lo32, hi32 = pe.hi32;
  const Rq8Fast& f0 = pe.f0;
  const Rq8Fast& f1 = pe.f1;
  alignas(32) uint8_t tmp[64];
#pragma GCC unroll 4
  for (int r = 0; r < mr; ++r) {
    __m256i v0 = _mm256_add_epi32(acc[r][0], bias0), v1 = _mm256_add_epi32(acc[r][1], bias1);
    if (wzp) {
      const __m256i z = _mm256_set1_epi32((int32_t)(wzp * (uint32_t)rowsum[r]));
      v0 = _mm256_sub_epi32(v0, z);
      v1 = _mm256_sub_epi32(v1, z);
    }
    if (relu) {
      v0 = _mm256_max_epi32(v0, _mm256_setzero_si256());
      v1 = _mm256_max_epi32(v1, _mm256_setzero_si256());
    }
    const int64_t off = (m + r) * ldc + n0;
    if (out == QType::s32) {
      int32_t* dst = (int32_t*)Cb + off;
      if (ncols == 16) {
        _mm256_storeu_si256((__m256i*)dst, v0);
        _mm256_storeu_si256((__m256i*)(dst + 8), v1);
      } else {
        _mm256_store_si256((__m256i*)tmp, v0);
        _mm256_store_si256((__m256i*)(tmp + 32), v1);
        std::memcpy(dst, tmp, (size_t)ncols * 4);
      }
      continue;
    }
    const __m256i q0 = zfold ? requant8_fast_noclamp_avx2(v0, pe.fz[0])
                       : sat ? _mm256_add_epi32(requant8_fast_noclamp_avx2(v0, f0), zp)
                             : _mm256_add_epi32(fast ? requant8_fast_avx2(v0, f0, lo32, hi32)
                                                     : requant8_avx2(v0, m0v, s0v, lo, hi), zp);
    const __m256i q1 = zfold ? requant8_fast_noclamp_avx2(v1, pe.fz[1])
                       : sat ? _mm256_add_epi32(requant8_fast_noclamp_avx2(v1, f1), zp)
                             : _mm256_add_epi32(fast ? requant8_fast_avx2(v1, f1, lo32, hi32)
                                                     : requant8_avx2(v1, m1v, s1v, lo, hi), zp);
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);  // cols 0..15 as int16
    if (out == QType::s16) {
      int16_t* dst = (int16_t*)Cb + off;
      if (ncols == 16) _mm256_storeu_si256((__m256i*)dst, w16);
      else {
        _mm256_store_si256((__m256i*)tmp, w16);
        std::memcpy(dst, tmp, (size_t)ncols * 2);
      }
      continue;
    }
    const __m256i b8 = out == QType::u8 ? _mm256_packus_epi16(w16, w16) : _mm256_packs_epi16(w16, w16);
    const __m128i x16 = _mm256_castsi256_si128(_mm256_permute4x64_epi64(b8, 0x08));
    uint8_t* dst = (uint8_t*)Cb + off;
    // a table is applied by gemm_u8s8_q_avx2 after the row block (lookup_u8_avx2, 16 shuffles per 32
    // codes): per-tile byte lookups through a stored vector stall store forwarding (fc1 of micro-Swin
    // 0.090 → measured; see docs/integer-kernels.md)
    if (ncols == 16) {
      _mm_storeu_si128((__m128i*)dst, x16);
      continue;
    }
    _mm_store_si128((__m128i*)tmp, x16);
    std::memcpy(dst, tmp, (size_t)ncols);
  }
}

// Epilogue constants of 24 columns [n0, n0 + 24) (three 8-column groups).
struct Ep24 {
  __m256i bias[3], mv[3], sv[3];
  Rq8Fast f[3];
  __m256i lo, hi, zp, lo32, hi32;
  int64_t n0;
  bool sat;  // fast requantization and the clamp is the output type's range: the packs saturate
  bool zfold;  // sat and fz hold the zero point in the rounding term (fz: f with re, ro += zp·2^shift)
  Rq8Fast fz[3];
};

static inline Ep24 ep24(const GemmCtx& c, int64_t n0) {
  Ep24 e;  // no value-initialisation: a rep stos of this struct per tile cost 26 % on 8×48×192
  e.n0 = n0;
  e.sat = c.ep->out != QType::s32 && c.shifts_ge32 && clamp_is_pack(c);
  e.zfold = false;
  e.lo = e.hi = e.zp = e.lo32 = e.hi32 = _mm256_setzero_si256();
  for (int j = 0; j < 3; ++j) {
    e.mv[j] = e.sv[j] = _mm256_setzero_si256();
    e.f[j] = Rq8Fast{e.mv[j], e.mv[j], e.mv[j], e.mv[j], e.mv[j]};
  }
  for (int j = 0; j < 3; ++j) e.bias[j] = _mm256_loadu_si256((const __m256i*)(c.bias_eff + n0 + 8 * j));
  if (c.ep->out != QType::s32) {
    for (int j = 0; j < 3; ++j) {
      e.mv[j] = _mm256_loadu_si256((const __m256i*)(c.mult + n0 + 8 * j));
      e.sv[j] = _mm256_loadu_si256((const __m256i*)(c.shift + n0 + 8 * j));
      if (c.shifts_ge32) e.f[j] = rq8_fast_prepare(e.mv[j], e.sv[j]);
    }
    e.lo = _mm256_set1_epi64x(c.lo);
    e.hi = _mm256_set1_epi64x(c.hi);
    e.zp = _mm256_set1_epi32(c.ep->rq.zero_point);
    e.lo32 = _mm256_set1_epi32(c.lo);
    e.hi32 = _mm256_set1_epi32(c.hi);
  }
  if (e.sat) e.zfold = fold_zero_point(c, n0, 24, e.f, e.sv, 3, e.fz);
  return e;
}

// The fused epilogue of a full 4×24 tile (same integer steps as epilogue<>). The context's flags
// are read once: a __m256i store may alias anything, so reading them through c per row re-loads
// them after every store.
static inline __attribute__((always_inline)) void epilogue24(const GemmCtx& c, int64_t m, const Ep24& e,
                                                             __m256i acc[4][3], const int32_t* rowsum) {
  const QType out = c.ep->out;
  const bool relu = c.ep->relu, fast = c.shifts_ge32, sat = e.sat, zfold = e.zfold;
  const uint32_t wzp = (uint32_t)c.B->w_zero_point;
  char* const C = static_cast<char*>(c.C);
  const int64_t ldc = c.ldc;
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    __m256i v[3];
    for (int j = 0; j < 3; ++j) v[j] = _mm256_add_epi32(acc[r][j], e.bias[j]);
    if (wzp) {
      const __m256i z = _mm256_set1_epi32((int32_t)(wzp * (uint32_t)rowsum[r]));
      for (int j = 0; j < 3; ++j) v[j] = _mm256_sub_epi32(v[j], z);
    }
    if (relu)
      for (int j = 0; j < 3; ++j) v[j] = _mm256_max_epi32(v[j], _mm256_setzero_si256());
    const int64_t off = (m + r) * ldc + e.n0;
    if (out == QType::s32) {
      int32_t* dst = (int32_t*)C + off;
      for (int j = 0; j < 3; ++j) _mm256_storeu_si256((__m256i*)(dst + 8 * j), v[j]);
      continue;
    }
    for (int j = 0; j < 3; ++j)
      v[j] = zfold ? requant8_fast_noclamp_avx2(v[j], e.fz[j])
             : sat ? _mm256_add_epi32(requant8_fast_noclamp_avx2(v[j], e.f[j]), e.zp)
                   : _mm256_add_epi32(fast ? requant8_fast_avx2(v[j], e.f[j], e.lo32, e.hi32)
                                           : requant8_avx2(v[j], e.mv[j], e.sv[j], e.lo, e.hi),
                                      e.zp);
    const __m256i w01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xD8);  // cols 0..15 int16
    const __m256i w2 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[2], v[2]), 0xD8);   // cols 16..23 (twice)
    if (out == QType::s16) {
      int16_t* dst = (int16_t*)C + off;
      _mm256_storeu_si256((__m256i*)dst, w01);
      _mm_storeu_si128((__m128i*)(dst + 16), _mm256_castsi256_si128(w2));
      continue;
    }
    const __m256i b8 = out == QType::u8 ? _mm256_packus_epi16(w01, w2) : _mm256_packs_epi16(w01, w2);
    // b8 lanes: [cols 0..7, cols 16..23, cols 8..15, cols 16..23] as 8-byte groups
    const __m256i o = _mm256_permute4x64_epi64(b8, 0x18);  // groups 0, 2, 1 → cols 0..23
    uint8_t* dst = (uint8_t*)C + off;
    _mm_storeu_si128((__m128i*)dst, _mm256_castsi256_si128(o));
    _mm_storel_epi64((__m128i*)(dst + 16), _mm256_extracti128_si256(o, 1));
  }
}

// rowsum[r] = Σ_k A[m + r, k] for r < mr when the weights have a zero point (its correction in the
// epilogue), untouched otherwise.
static inline void row_sums(const GemmCtx& c, int64_t m, int mr, int32_t* rowsum) {
  if (c.B->w_zero_point)
    for (int r = 0; r < mr; ++r) rowsum[r] = (int32_t)rowsum_u8_avx2(c.A + (m + r) * c.lda, c.B->K);
}

// ep.table on rows [m0, m1) × panels [p0, p1) of the 8-bit output, after the rows' tiles are done
// (they are still in L1/L2), through the kernel set's lookup.
static inline void table_rows(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  if (!c.ep->table) return;
  const int64_t n0 = p0 * 16, n1 = std::min<int64_t>(p1 * 16, c.B->N);
  for (int64_t m = m0; m < m1; ++m) {
    uint8_t* row = (uint8_t*)c.C + m * c.ldc + n0;
    c.lookup(row, n1 - n0, c.ep->table, row);
  }
}

// The ymm GEMM driver both ymm kernel sets run (avx2: vpmaddubsw tiles; avxvnni: VEX vpdpbusd
// tiles), rows [m0, m1) × panels [p0, p1): row blocks of gemm_row_block rows; 4×24 tiles
// (Tiles::tile24: acc[4][3] from three 8-column slabs) when the set's tile takes these weights
// (Tiles::tile24_takes), N % 24 == 0, K % 4 == 0 and the panel range starts and ends on a 24-column
// boundary (48 = 3 panels: gemm_u8s8 splits panels in multiples of 3 then); every other tile and
// the < 4 leftover rows one 16-column panel at a time (Tiles::tile16<MR>: acc[4][2] for rows
// m … m + MR − 1 of panel p); the epilogues of this header.
template <class Tiles>
static inline void gemm_rows_ymm(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const bool wide = Tiles::tile24_takes(B) && B.N % 24 == 0 && B.K % 4 == 0 && p0 % 3 == 0 &&
                    (p1 == B.Np / 16 || p1 % 3 == 0);
  const int64_t mc = gemm_row_block(B.Kp), panel_bytes = b8_panel_bytes(B);
  alignas(32) int32_t rowsum[4] = {0, 0, 0, 0};
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t me = std::min(m1, mb + mc);
    int64_t mrest = mb;
    if (wide) {
      mrest = mb + (me - mb) / 4 * 4;
      const int64_t t1 = (std::min<int64_t>(p1 * 16, B.N) + 23) / 24;
      for (int64_t t = p0 * 16 / 24; t < t1; ++t) {
        const Ep24 e = ep24(c, t * 24);
        const int8_t* s[3];
        for (int j = 0; j < 3; ++j) {  // slab 3t + j: panel (3t + j) / 2, its half (3t + j) % 2
          const int64_t slab = 3 * t + j;
          s[j] = B.b8.data() + (slab >> 1) * panel_bytes + (slab & 1) * 32;
        }
        // the next 24 columns' slabs, panels (3t + 3) / 2 … (3t + 5) / 2, into L2 (avxvnni, cold
        // ViT-B weights: 6–11 % faster; avx2 0–3 %; the 16-column tiles below measured no gain)
        const int64_t pn = (3 * t + 3) >> 1, pl = (3 * t + 5) >> 1;
        NextWeights next(B.b8.data(), (int64_t)B.b8.size(), pn * panel_bytes, (pl - pn + 1) * panel_bytes, B.Kp,
                         (mrest - mb) / 4);
        for (int64_t m = mb; m < mrest; m += 4) {
          next.share();
          row_sums(c, m, 4, rowsum);
          __m256i acc[4][3];
          Tiles::tile24(c.A + m * c.lda, c.lda, s[0], s[1], s[2], B.K, acc);
          epilogue24(c, m, e, acc, rowsum);
        }
      }
    }
    for (int64_t p = p0; p < p1 && mrest < me; ++p) {
      const PanelEp pe = panel_ep(c, p);
      for (int64_t m = mrest; m < me; m += 4) {
        const int mr = (int)std::min<int64_t>(4, me - m);
        row_sums(c, m, mr, rowsum);
        __m256i acc[4][2];
        switch (mr) {
          case 4: Tiles::template tile16<4>(c, m, p, acc), epilogue<4>(c, m, pe, acc, rowsum); break;
          case 3: Tiles::template tile16<3>(c, m, p, acc), epilogue<3>(c, m, pe, acc, rowsum); break;
          case 2: Tiles::template tile16<2>(c, m, p, acc), epilogue<2>(c, m, pe, acc, rowsum); break;
          default: Tiles::template tile16<1>(c, m, p, acc), epilogue<1>(c, m, pe, acc, rowsum); break;
        }
      }
    }
    table_rows(c, mb, me, p0, p1);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
