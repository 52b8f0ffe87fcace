// Run-time CPU feature detection and kernel-set selection.
#pragma once
#include <string>

namespace swinq {

// The kernel sets this build has: scalar; avx2; two supersets of avx2 — avxvnni (the int8 GEMM on
// VEX vpdpbusd ymm: AVX-VNNI CPUs without AVX-512) and avx512vnni (the GEMM, attention, LayerNorm
// and more on zmm). A CPU feature (below) is not a kernel set (docs/isa.md). The best available
// is avx512vnni, then avxvnni, then avx2.
enum class Isa { scalar = 0, avx2 = 1, avx512vnni = 2, avxvnni = 3 };

// What the CPU reports through cpuid AND the OS saves (xgetbv XCR0): a feature whose register
// state the OS does not save across context switches is reported absent.
struct CpuFeatures {
  bool os_ymm = false;      // XCR0 bits 1-2: the OS saves xmm/ymm state
  bool os_zmm = false;      // XCR0 bits 5-7 as well: opmask and zmm state
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
  bool avx512vbmi = false;  // vpermb / vpermi2b (cpuid 7.0 ecx bit 1): the avx512vnni set's table lookups
  bool avxvnni = false;     // VEX-encoded vpdpbusd on ymm (cpuid 7.1 eax bit 4)
};

const CpuFeatures& cpu_features();
// The kernel set in use: the best the CPU supports, unless set_isa() forced one (the addon calls
// it for SWINQ_ISA at load, native/binding/plan.cc). set_isa(avx2) on a CPU without AVX2 throws (so does any set the CPU lacks).
Isa active_isa();
void set_isa(Isa isa);
Isa best_isa();
bool isa_available(Isa isa);  // the CPU runs this kernel set
const char* isa_name(Isa isa);
bool parse_isa(const std::string& s, Isa* out);  // "scalar" | "avx2" | "avxvnni" | "avx512vnni" | "auto" (auto = best)
// Why `name` cannot be forced here (a clear message: unknown name, a CPU feature this build has no
// kernel set for, or a kernel set the CPU lacks); empty when set_isa(parse_isa(name)) will work.
std::string isa_unavailable_reason(const std::string& name);

}  // namespace swinq
