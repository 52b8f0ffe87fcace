// The integer kernel tables, one per Isa (qplan_kernels.h): the only place an integer kernel is
// picked. The gemm_sparse_rows names are the sparse path's (qsparse.cc, qsparse_avx2.cc).
#include "int/qcheck.h"
#include "int/qinternal.h"
#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {

namespace {
using namespace detail;
const Kernels kScalar{requantize_s32_q_scalar, gemm_u8s8_q_scalar,        gemm_sparse_rows_scalar, count_nonzero_u8_scalar,
                      sparse_max_density_avx2,
                      matmul_u8x8_s32_scalar,  quantize_f32_q_scalar,     dequantize_q_f32_scalar,
                      softmax_s32_u8_scalar,   attention_u8s32_u8_scalar, layernorm_q_q_scalar,
                      gelu_s8_s32_ibert_scalar, lookup_u8_scalar,         relu_x8_scalar,
                      add_qq_q_scalar,         avgpool_q_q_scalar,        argmax_q_i64_scalar};
const Kernels kAvx2{requantize_s32_q_avx2,   gemm_u8s8_q_avx2,        gemm_sparse_rows_avx2, count_nonzero_u8_avx2,
                    sparse_max_density_avx2,
                    matmul_u8x8_s32_4x16_avx2, quantize_f32_q_avx2,   dequantize_q_f32_avx2,
                    softmax_s32_u8_avx2,     attention_u8s32_u8_avx2, layernorm_q_q_avx2,
                    gelu_s8_s32_ibert_avx2,  lookup_u8_avx2,          relu_x8_avx2,
                    add_qq_q_avx2,           avgpool_q_q_avx2,        argmax_q_i64_avx2};
// The AVX2 set with the GEMM, attention and LayerNorm on AVX-512 (VNNI for the products).
Kernels avx512vnni_set() {
  Kernels k = kAvx2;
  k.gemm = gemm_u8s8_q_avx512vnni;
  k.attention = attention_u8s32_u8_avx512vnni;
  k.layernorm = layernorm_q_q_avx512;
  k.add = add_qq_q_avx512;
  k.gemm_sparse = gemm_sparse_rows_avx512vnni;
  k.sparse_max_density = sparse_max_density_avx512vnni;
  // VBMI is not part of the set (Cascade Lake has VNNI without it); where present (Ice Lake,
  // Zen 4/5) the GELU table after fc1 is 64 codes per 3 instructions instead of 32 per ~40
  if (cpu_features().avx512vbmi) k.lookup = lookup_u8_avx512vbmi;
  return k;
}
const Kernels kAvx512Vnni = avx512vnni_set();
// The AVX2 set with the int8 GEMM on VEX vpdpbusd (ymm). The sparse path and its break-even stay
// AVX2's (measured against the AVX2 dense GEMM; docs/isa.md).
Kernels avxvnni_set() {
  Kernels k = kAvx2;
  k.gemm = gemm_u8s8_q_avxvnni;
  return k;
}
const Kernels kAvxVnni = avxvnni_set();
}  // namespace

const Kernels& kernels(Isa isa) {
  if (isa == Isa::scalar) return kScalar;
  if (!isa_available(isa)) fail(isa_unavailable_reason(isa_name(isa)));
  return isa == Isa::avx512vnni ? kAvx512Vnni : isa == Isa::avxvnni ? kAvxVnni : kAvx2;
}

}  // namespace q
}  // namespace swinq
