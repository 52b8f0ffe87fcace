// Run-time CPU feature detection and kernel-set selection.
#pragma once
#include <string>

namespace swinq {

enum class Isa { scalar = 0, avx2 = 1 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512vnni = false, avxvnni = false;
};

const CpuFeatures& cpu_features();
// The kernel set in use: the best the CPU supports, unless SWINQ_ISA=scalar is set in the
// environment or set_isa() forced it. set_isa(avx2) on a CPU without AVX2 throws.
Isa active_isa();
void set_isa(Isa isa);
Isa best_isa();
const char* isa_name(Isa isa);
bool parse_isa(const std::string& s, Isa* out);  // "scalar" | "avx2" | "auto" (auto = best)

}  // namespace swinq
