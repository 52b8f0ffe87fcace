// Kernel benchmarks of the core (no Node here; the binding only converts arguments): timing loops
// with their own data, the machine's measured peaks (register-only loops), the clock.
// Wall-clock numbers: min and median of `reps` runs after one warm-up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/qkernels.h"

namespace swinq {
namespace bench {

struct Timing {
  double min_ms = 0, median_ms = 0;
};

// One register-only loop: the instruction sequence of a kernel set with no memory operands, so it
// runs at the core's issue limit. gops: int8 (or fp32) operations per second / 1e9, 1 multiply-add
// = 2 ops; best of many ~1 ms runs. available = false: the CPU (or OS) lacks the instructions; the
// loop was not run and `reason` says why.
struct Peak {
  std::string name;      // "int8_avx2", "int8_avxvnni", "int8_avx512vnni", "int8_scalar", "f32_avx2_fma", ...
  std::string sequence;  // the instructions timed, e.g. "vpmaddubsw+vpmaddwd+vpaddd ymm"
  bool available = false;
  std::string reason;
  double gops = 0;
};
// Every loop this build knows; the ones the CPU lacks come back with available = false.
std::vector<Peak> measure_peaks();
// The int8 and fp32 peaks of a kernel set (what its GEMMs are measured against).
Peak peak_int8(Isa isa);
Peak peak_f32(Isa isa);
// A chain of dependent adds (1 per cycle): cycles per ns, best of short runs.
double clock_ghz();

// u8×s8 GEMM M×K×N on generated data (weights in [−64, 63], provably safe for vpmaddubsw).
struct GemmOptions {
  int threads = 1, reps = 9;
  q::QType out = q::QType::s32;  // s32, or u8 with fused bias + requantization
  int32_t path = 0;              // PackOptions::force_path
  bool spawn = false;            // fresh std::threads per call instead of a persistent pool
  Isa isa = Isa::scalar;
};
struct GemmResult {
  Timing t;
  double gops = 0;  // 2·M·K·N / min time
  bool maddubs_safe = false;
};
GemmResult gemm_u8s8(int64_t M, int64_t K, int64_t N, const GemmOptions& o);

// fp32 linear M×K·K×N through a one-op plan (packed weights, the executor's tiling and pool):
// mean seconds per call over `iters` calls. threads 0 = all cores.
double gemm_f32_seconds(int64_t M, int64_t K, int64_t N, int64_t iters, int threads);

// Sparse-A u8×s8 GEMM M×K×N (a ReLU output feeding fc2) against the dense path on the same data:
// codes in [1, a_max] with the given share of non-zeros, i.i.d. per code, or per input channel
// (`channels`: channel k is non-zero with probability 2·density·u_k, u_k uniform — dead and busy
// channels as a trained ReLU layer has them). Dense, forced-sparse and auto runs interleaved.
struct SparseGemmOptions {
  int reps = 9;
  int32_t a_max = 127;  // ≤ 127: the int8 quad kernel; 255: the int16 pair kernel
  bool channels = false;
  Isa isa = Isa::scalar;
  uint32_t seed = 1;
};
struct SparseGemmResult {
  Timing dense, sparse, automatic;
  double density = 0;         // measured share of non-zero codes
  bool auto_sparse = false;   // what gemm_u8s8 chose with ep.sparse = 0
  double break_even = 0;      // sparse_max_density of the packed weights
};
SparseGemmResult gemm_u8s8_sparse(int64_t M, int64_t K, int64_t N, double density, const SparseGemmOptions& o);

Timing softmax_u8(int64_t rows, int64_t D, int reps, Isa isa);
Timing layernorm_s16(int64_t rows, int64_t D, int reps, Isa isa);
Timing add_q(int64_t n, int reps, Isa isa, q::QType t);

}  // namespace bench
}  // namespace swinq
