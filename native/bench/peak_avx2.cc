// Register-only loops of the AVX2 kernel set's instruction sequences (inline asm: the compiler may
// neither drop nor reorder them, and nothing touches memory). Measurement loops, not kernels.
#include "peak_loops.h"

namespace swinq {
namespace bench {
namespace detail {

// Per iteration: 8 × (vpmaddubsw, vpmaddwd with ones, vpaddd) = 8 × 32 u8·s8 multiply-adds, the
// inner step of gemm_u8s8_s32_4x16_avx2. 4 accumulators, rotating temporaries (renamed).
void loop_int8_avx2(int64_t iters) {
  __asm__ volatile(
      "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpsrlw $15, %%ymm15, %%ymm15\n\t"
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm4\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm5\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm6\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm7\n\t"
      "vpmaddwd %%ymm15, %%ymm4, %%ymm4\n\t"
      "vpmaddwd %%ymm15, %%ymm5, %%ymm5\n\t"
      "vpmaddwd %%ymm15, %%ymm6, %%ymm6\n\t"
      "vpmaddwd %%ymm15, %%ymm7, %%ymm7\n\t"
      "vpaddd %%ymm4, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm5, %%ymm1, %%ymm1\n\t"
      "vpaddd %%ymm6, %%ymm2, %%ymm2\n\t"
      "vpaddd %%ymm7, %%ymm3, %%ymm3\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm8\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm9\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm10\n\t"
      "vpmaddubsw %%ymm14, %%ymm13, %%ymm11\n\t"
      "vpmaddwd %%ymm15, %%ymm8, %%ymm8\n\t"
      "vpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"
      "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"
      "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
      "vpaddd %%ymm8, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm9, %%ymm1, %%ymm1\n\t"
      "vpaddd %%ymm10, %%ymm2, %%ymm2\n\t"
      "vpaddd %%ymm11, %%ymm3, %%ymm3\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
}

// Per iteration: 12 independent vfmadd231ps ymm (12 × 8 lanes), enough chains to cover the FMA
// latency on two pipes. Zero operands: no denormals.
void loop_f32_avx2_fma(int64_t iters) {
  __asm__ volatile(
      "vxorps %%ymm12, %%ymm12, %%ymm12\n\t"
      "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
      "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
      "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm0\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm1\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm2\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm3\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm4\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm5\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm6\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm7\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm8\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm9\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm10\n\t"
      "vfmadd231ps %%ymm12, %%ymm13, %%ymm11\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "cc");
}

}  // namespace detail
}  // namespace bench
}  // namespace swinq
