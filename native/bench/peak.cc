// The machine's own peaks: register-only loops of each kernel set's inner instruction sequence,
// timed as the best of many ~0.5 ms runs (a shared machine preempts long runs). Every loop is
// inline asm, so no compiler ISA flag is involved (the assembler takes any instruction); the
// AVX-512 and VNNI loops only run when cpu_features() has them: no kernel of this build uses those
// instructions; the loops say what such kernels could reach.
#include <algorithm>
#include <chrono>

#include "peak_loops.h"
#include "swinq/bench.h"

namespace swinq {
namespace bench {
namespace detail {

void loop_int8_scalar(int64_t iters) {
  int64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, x = 3;
  __asm__ volatile(
      ".p2align 5\n"
      "1:\n\t"
      "imul $37, %[x], %%r8\n\t"
      "add %%r8, %[a0]\n\t"
      "imul $41, %[x], %%r9\n\t"
      "add %%r9, %[a1]\n\t"
      "imul $43, %[x], %%r10\n\t"
      "add %%r10, %[a2]\n\t"
      "imul $47, %[x], %%r11\n\t"
      "add %%r11, %[a3]\n\t"
      "imul $53, %[x], %%r8\n\t"
      "add %%r8, %[a0]\n\t"
      "imul $59, %[x], %%r9\n\t"
      "add %%r9, %[a1]\n\t"
      "imul $61, %[x], %%r10\n\t"
      "add %%r10, %[a2]\n\t"
      "imul $67, %[x], %%r11\n\t"
      "add %%r11, %[a3]\n\t"
      "dec %[n]\n\t"
      "jnz 1b"
      : [n] "+r"(iters), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3)
      : [x] "r"(x)
      : "r8", "r9", "r10", "r11", "cc");
}

void loop_f32_sse(int64_t iters) {
  __asm__ volatile(
      "xorps %%xmm8, %%xmm8\n\t"
      "xorps %%xmm9, %%xmm9\n\t"
      "xorps %%xmm0, %%xmm0\n\t"
      "xorps %%xmm1, %%xmm1\n\t"
      "xorps %%xmm2, %%xmm2\n\t"
      "xorps %%xmm3, %%xmm3\n\t"
      "xorps %%xmm4, %%xmm4\n\t"
      "xorps %%xmm5, %%xmm5\n\t"
      "xorps %%xmm6, %%xmm6\n\t"
      "xorps %%xmm7, %%xmm7\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "movaps %%xmm8, %%xmm10\n\t mulps %%xmm9, %%xmm10\n\t addps %%xmm10, %%xmm0\n\t"
      "movaps %%xmm8, %%xmm11\n\t mulps %%xmm9, %%xmm11\n\t addps %%xmm11, %%xmm1\n\t"
      "movaps %%xmm8, %%xmm12\n\t mulps %%xmm9, %%xmm12\n\t addps %%xmm12, %%xmm2\n\t"
      "movaps %%xmm8, %%xmm13\n\t mulps %%xmm9, %%xmm13\n\t addps %%xmm13, %%xmm3\n\t"
      "movaps %%xmm8, %%xmm10\n\t mulps %%xmm9, %%xmm10\n\t addps %%xmm10, %%xmm4\n\t"
      "movaps %%xmm8, %%xmm11\n\t mulps %%xmm9, %%xmm11\n\t addps %%xmm11, %%xmm5\n\t"
      "movaps %%xmm8, %%xmm12\n\t mulps %%xmm9, %%xmm12\n\t addps %%xmm12, %%xmm6\n\t"
      "movaps %%xmm8, %%xmm13\n\t mulps %%xmm9, %%xmm13\n\t addps %%xmm13, %%xmm7\n\t"
      "dec %[n]\n\t"
      "jnz 1b"
      : [n] "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "cc");
}

#define SWQ_12(OP, A, B, R) \
  OP " " A ", " B ", " R "0\n\t" OP " " A ", " B ", " R "1\n\t" OP " " A ", " B ", " R "2\n\t" \
  OP " " A ", " B ", " R "3\n\t" OP " " A ", " B ", " R "4\n\t" OP " " A ", " B ", " R "5\n\t" \
  OP " " A ", " B ", " R "6\n\t" OP " " A ", " B ", " R "7\n\t" OP " " A ", " B ", " R "8\n\t" \
  OP " " A ", " B ", " R "9\n\t" OP " " A ", " B ", " R "10\n\t" OP " " A ", " B ", " R "11\n\t"
#define SWQ_CLOBBER_16                                                                                            \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", \
      "xmm14", "xmm15", "cc"

void loop_int8_avxvnni(int64_t iters) {
  __asm__ volatile(
      "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
      ".p2align 5\n"
      "1:\n\t" SWQ_12("%{vex%} vpdpbusd", "%%ymm12", "%%ymm13", "%%ymm")
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : SWQ_CLOBBER_16);
}

void loop_int8_avx512bw(int64_t iters) {
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm15, %%zmm15, %%zmm15\n\t"
      "vpsrlw $15, %%zmm15, %%zmm15\n\t"
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vpmaddubsw %%zmm14, %%zmm13, %%zmm4\n\t vpmaddubsw %%zmm14, %%zmm13, %%zmm5\n\t"
      "vpmaddubsw %%zmm14, %%zmm13, %%zmm6\n\t vpmaddubsw %%zmm14, %%zmm13, %%zmm7\n\t"
      "vpmaddwd %%zmm15, %%zmm4, %%zmm4\n\t vpmaddwd %%zmm15, %%zmm5, %%zmm5\n\t"
      "vpmaddwd %%zmm15, %%zmm6, %%zmm6\n\t vpmaddwd %%zmm15, %%zmm7, %%zmm7\n\t"
      "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t vpaddd %%zmm5, %%zmm1, %%zmm1\n\t"
      "vpaddd %%zmm6, %%zmm2, %%zmm2\n\t vpaddd %%zmm7, %%zmm3, %%zmm3\n\t"
      "vpmaddubsw %%zmm14, %%zmm13, %%zmm8\n\t vpmaddubsw %%zmm14, %%zmm13, %%zmm9\n\t"
      "vpmaddubsw %%zmm14, %%zmm13, %%zmm10\n\t vpmaddubsw %%zmm14, %%zmm13, %%zmm11\n\t"
      "vpmaddwd %%zmm15, %%zmm8, %%zmm8\n\t vpmaddwd %%zmm15, %%zmm9, %%zmm9\n\t"
      "vpmaddwd %%zmm15, %%zmm10, %%zmm10\n\t vpmaddwd %%zmm15, %%zmm11, %%zmm11\n\t"
      "vpaddd %%zmm8, %%zmm0, %%zmm0\n\t vpaddd %%zmm9, %%zmm1, %%zmm1\n\t"
      "vpaddd %%zmm10, %%zmm2, %%zmm2\n\t vpaddd %%zmm11, %%zmm3, %%zmm3\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : SWQ_CLOBBER_16);
}

void loop_int8_avx512vnni(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
      ".p2align 5\n"
      "1:\n\t" SWQ_12("vpdpbusd", "%%zmm12", "%%zmm13", "%%zmm")
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : SWQ_CLOBBER_16);
}

void loop_f32_avx512_fma(int64_t iters) {
  __asm__ volatile(
      "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
      ".p2align 5\n"
      "1:\n\t" SWQ_12("vfmadd231ps", "%%zmm12", "%%zmm13", "%%zmm")
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : [n] "+r"(iters)
      :
      : SWQ_CLOBBER_16);
}

}  // namespace detail

namespace {

struct LoopDef {
  const char* name;
  const char* sequence;
  void (*loop)(int64_t);
  double ops_per_iter;
  bool (*has)();
  const char* needs;
};

bool has_always() { return true; }
bool has_avx2() { return isa_available(Isa::avx2); }
bool has_avxvnni() { return cpu_features().avxvnni; }
bool has_avx512bw() { return cpu_features().avx512f && cpu_features().avx512bw; }
bool has_avx512vnni() { return cpu_features().avx512f && cpu_features().avx512vnni; }
bool has_avx512f() { return cpu_features().avx512f; }

const LoopDef kLoops[] = {
    {"int8_scalar", "imul+add (64-bit registers)", detail::loop_int8_scalar, detail::kOpsInt8Scalar, has_always, ""},
    {"f32_scalar", "mulps+addps xmm (SSE2, the baseline x86-64 vector unit)", detail::loop_f32_sse,
     detail::kOpsF32Sse, has_always, ""},
    {"int8_avx2", "vpmaddubsw+vpmaddwd+vpaddd ymm", detail::loop_int8_avx2, detail::kOpsInt8Avx2, has_avx2,
     "AVX2+FMA+F16C"},
    {"f32_avx2", "vfmadd231ps ymm", detail::loop_f32_avx2_fma, detail::kOpsF32Avx2, has_avx2, "AVX2+FMA+F16C"},
    {"int8_avxvnni", "{vex} vpdpbusd ymm", detail::loop_int8_avxvnni, detail::kOpsInt8AvxVnni, has_avxvnni,
     "AVX-VNNI"},
    {"int8_avx512bw", "vpmaddubsw+vpmaddwd+vpaddd zmm", detail::loop_int8_avx512bw, detail::kOpsInt8Avx512bw,
     has_avx512bw, "AVX-512 F+BW with OS zmm state"},
    {"int8_avx512vnni", "vpdpbusd zmm", detail::loop_int8_avx512vnni, detail::kOpsInt8Avx512Vnni, has_avx512vnni,
     "AVX-512 F+VNNI with OS zmm state"},
    {"f32_avx512", "vfmadd231ps zmm", detail::loop_f32_avx512_fma, detail::kOpsF32Avx512, has_avx512f,
     "AVX-512 F with OS zmm state"},
};

// Best of `reps` runs of ~0.3–1 ms: iterations sized from a first short run.
double best_gops(const LoopDef& d) {
  using clk = std::chrono::steady_clock;
  auto secs = [&](int64_t n) {
    const auto t0 = clk::now();
    d.loop(n);
    return std::chrono::duration<double>(clk::now() - t0).count();
  };
  secs(1000);  // warm-up: wakes the vector unit (upper halves power up on first use)
  int64_t n = 1000;
  while (n < (int64_t)1 << 30) {
    if (secs(n) > 2e-4) break;
    n *= 4;
  }
  double best = 1e30;
  for (int r = 0; r < 40; ++r) best = std::min(best, secs(n));
  return d.ops_per_iter * (double)n / best / 1e9;
}

Peak run(const LoopDef& d) {
  Peak p;
  p.name = d.name;
  p.sequence = d.sequence;
  p.available = d.has();
  if (p.available) p.gops = best_gops(d);
  else p.reason = std::string("CPU lacks ") + d.needs;
  return p;
}

const LoopDef& find(const char* name) {
  for (const LoopDef& d : kLoops)
    if (std::string(d.name) == name) return d;
  return kLoops[0];
}

}  // namespace

std::vector<Peak> measure_peaks() {
  std::vector<Peak> out;
  for (const LoopDef& d : kLoops) out.push_back(run(d));
  return out;
}

// The loop of the instruction sequence the set's GEMM runs (avx512vnni: vpdpbusd and vfmadd231ps
// on zmm).
Peak peak_int8(Isa isa) {
  return run(find(isa == Isa::avx512vnni ? "int8_avx512vnni"
                  : isa == Isa::avxvnni  ? "int8_avxvnni"
                  : isa == Isa::avx2     ? "int8_avx2"
                                         : "int8_scalar"));
}
Peak peak_f32(Isa isa) {
  return run(find(isa == Isa::avx512vnni ? "f32_avx512" : isa == Isa::scalar ? "f32_scalar" : "f32_avx2"));
}

double clock_ghz() {
  const int64_t iters = 3000000;
  double best = 1e30;
  for (int rep = 0; rep < 300; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t x = 0;
    for (int64_t i = 0; i < iters; i += 8)
      __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                       "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                       : "+r"(x));
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return (double)iters / best / 1e9;
}

}  // namespace bench
}  // namespace swinq
