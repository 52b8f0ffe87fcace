#include "swinq/cpu.h"

#include <atomic>
#include <cpuid.h>
#include <cstdlib>
#include <stdexcept>

namespace swinq {

static CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  bool ymm_os = false, zmm_os = false;
  if (osxsave) {
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    ymm_os = (lo & 0x6) == 0x6;           // XMM and YMM state enabled by the OS
    zmm_os = ymm_os && (lo & 0xe0) == 0xe0;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm_os && (b & (1u << 5));
    f.avx512f = zmm_os && (b & (1u << 16));
    f.avx512vnni = zmm_os && (c & (1u << 11));
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = ymm_os && (a & (1u << 4));
  f.fma = f.fma && ymm_os;
  f.f16c = f.f16c && ymm_os;
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa best_isa() {
  const CpuFeatures& f = cpu_features();
  return (f.avx2 && f.fma && f.f16c) ? Isa::avx2 : Isa::scalar;
}

static Isa initial_isa() {
  const char* env = std::getenv("SWINQ_ISA");
  Isa isa;
  if (env && parse_isa(env, &isa) && (isa == Isa::scalar || best_isa() == Isa::avx2)) return isa;
  return best_isa();
}

static std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{(int)initial_isa()};
  return slot;
}

Isa active_isa() { return (Isa)isa_slot().load(std::memory_order_relaxed); }

void set_isa(Isa isa) {
  if (isa == Isa::avx2 && best_isa() != Isa::avx2) throw std::runtime_error("this CPU has no AVX2+FMA");
  isa_slot().store((int)isa, std::memory_order_relaxed);
}

const char* isa_name(Isa isa) { return isa == Isa::avx2 ? "avx2" : "scalar"; }

bool parse_isa(const std::string& s, Isa* out) {
  if (s == "scalar") *out = Isa::scalar;
  else if (s == "avx2") *out = Isa::avx2;
  else if (s == "auto") *out = best_isa();
  else return false;
  return true;
}

}  // namespace swinq
