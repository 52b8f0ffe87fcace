#include "swinq/cpu.h"

#include <atomic>
#include <cpuid.h>
#include <stdexcept>

namespace swinq {

static CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29);
  if (osxsave) {
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_ymm = (lo & 0x6) == 0x6;                  // XMM and YMM state enabled by the OS
    f.os_zmm = f.os_ymm && (lo & 0xe0) == 0xe0;    // opmask, ZMM_Hi256, Hi16_ZMM
  }
  f.fma = fma && f.os_ymm;
  f.f16c = f16c && f.os_ymm;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.os_ymm && (b & (1u << 5));
    f.avx512f = f.os_zmm && (b & (1u << 16));
    f.avx512bw = f.avx512f && (b & (1u << 30));
    f.avx512vl = f.avx512f && (b & (1u << 31));
    f.avx512vnni = f.avx512f && (c & (1u << 11));
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = f.os_ymm && (a & (1u << 4));
  }
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

// The best set until set_isa() says otherwise (the binding applies SWINQ_ISA through set_isa;
// the core reads no environment).
static std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{(int)best_isa()};
  return slot;
}

Isa active_isa() { return (Isa)isa_slot().load(std::memory_order_relaxed); }

void set_isa(Isa isa) {
  if (isa == Isa::avx2 && best_isa() != Isa::avx2) throw std::runtime_error(isa_unavailable_reason("avx2"));
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

std::string isa_unavailable_reason(const std::string& name) {
  const CpuFeatures& f = cpu_features();
  if (name == "scalar" || name == "auto") return "";
  if (name == "avx2") {
    if (best_isa() == Isa::avx2) return "";
    std::string lack = !f.os_ymm ? "OS-saved ymm state (xgetbv)" : !f.avx2 ? "AVX2" : !f.fma ? "FMA" : "F16C";
    return "isa 'avx2' needs AVX2+FMA+F16C; this CPU lacks " + lack;
  }
  if (name == "avx512" || name == "avx512vnni" || name == "avxvnni") {
    const bool has = name == "avxvnni" ? f.avxvnni
                     : name == "avx512" ? (f.avx512f && f.avx512bw && f.avx512vl)
                                        : (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni);
    return "isa '" + name + "': this build has no " + name + " kernel set (kernel sets: scalar, avx2); the CPU " +
           (has ? "has" : "lacks") + " it";
  }
  return "unknown isa '" + name + "' (expected auto, scalar or avx2)";
}

}  // namespace swinq
