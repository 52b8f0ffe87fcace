// Register-only measurement loops (peak.cc, peak_avx2.cc). Each runs `iters` ≥ 1 iterations; the
// work per iteration is stated beside it in kOps* (operations, 1 multiply-add = 2).
#pragma once
#include <cstdint>

namespace swinq {
namespace bench {
namespace detail {

void loop_int8_scalar(int64_t iters);       // 8 × (imul, add) on general registers
void loop_f32_sse(int64_t iters);           // 8 × (mulps, addps) xmm: the baseline x86-64 vector unit
void loop_int8_avx2(int64_t iters);         // 8 × (vpmaddubsw, vpmaddwd, vpaddd) ymm
void loop_f32_avx2_fma(int64_t iters);      // 12 × vfmadd231ps ymm
void loop_int8_avxvnni(int64_t iters);      // 12 × {vex} vpdpbusd ymm
void loop_int8_avx512bw(int64_t iters);     // 8 × (vpmaddubsw, vpmaddwd, vpaddd) zmm
void loop_int8_avx512vnni(int64_t iters);   // 12 × vpdpbusd zmm
void loop_f32_avx512_fma(int64_t iters);    // 12 × vfmadd231ps zmm

constexpr double kOpsInt8Scalar = 8 * 2;
constexpr double kOpsF32Sse = 8 * 4 * 2;
constexpr double kOpsInt8Avx2 = 8 * 32 * 2;
constexpr double kOpsF32Avx2 = 12 * 8 * 2;
constexpr double kOpsInt8AvxVnni = 12 * 32 * 2;
constexpr double kOpsInt8Avx512bw = 8 * 64 * 2;
constexpr double kOpsInt8Avx512Vnni = 12 * 64 * 2;
constexpr double kOpsF32Avx512 = 12 * 16 * 2;

}  // namespace detail
}  // namespace bench
}  // namespace swinq
