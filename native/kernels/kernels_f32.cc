// The fp32 kernel tables, one per Isa (kernels_f32.h): the only place an fp32 kernel is picked.
#include "swinq/kernels_f32.h"

#include "swinq/fewbit.h"

namespace swinq {
namespace f32 {

namespace {
const Kernels kScalar{gemm_f32_scalar,   matmul_f32_scalar, layernorm_f32_scalar,     softmax_f32_scalar,
                      unary_f32_scalar,  binary_f32_scalar, index_map_scalar,         fewbit_encode_f32_scalar,
                      fewbit_decode_mul_f32_scalar};
const Kernels kAvx2{gemm_f32_6x16_avx2, matmul_f32_avx2, layernorm_f32_avx2,     softmax_f32_avx2,
                    unary_f32_avx2,     binary_f32_avx2, index_map_avx2,         fewbit_encode_f32_avx2,
                    fewbit_decode_mul_f32_avx2};
// The AVX2 set with the GEMM on zmm (the other fp32 kernels are row-bound, not FMA-bound).
Kernels avx512_set() {
  Kernels k = kAvx2;
  k.gemm = gemm_f32_8x32_avx512;
  return k;
}
const Kernels kAvx512 = avx512_set();
}  // namespace

// avxvnni has no fp32 kernels of its own: the AVX2 ones
const Kernels& kernels(Isa isa) { return isa == Isa::scalar ? kScalar : isa == Isa::avx512vnni ? kAvx512 : kAvx2; }

}  // namespace f32
}  // namespace swinq
