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
    f.avx512vbmi = f.avx512f && (c & (1u << 1));
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = f.os_ymm && (a & (1u << 4));
  }
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

static bool has_avx2_set(const CpuFeatures& f) { return f.avx2 && f.fma && f.f16c; }
static bool has_avxvnni_set(const CpuFeatures& f) { return has_avx2_set(f) && f.avxvnni; }
static bool has_avx512vnni_set(const CpuFeatures& f) {
  return has_avx2_set(f) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
}

bool isa_available(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return has_avx2_set(f);
    case Isa::avxvnni: return has_avxvnni_set(f);
    case Isa::avx512vnni: return has_avx512vnni_set(f);
  }
  return false;
}

Isa best_isa() {
  if (isa_available(Isa::avx512vnni)) return Isa::avx512vnni;
  if (isa_available(Isa::avxvnni)) return Isa::avxvnni;
  return isa_available(Isa::avx2) ? Isa::avx2 : Isa::scalar;
}

// The best set until set_isa() says otherwise (the binding applies SWINQ_ISA through set_isa;
// the core reads no environment).
static std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{(int)best_isa()};
  return slot;
}

Isa active_isa() { return (Isa)isa_slot().load(std::memory_order_relaxed); }

void set_isa(Isa isa) {
  if (!isa_available(isa)) throw std::runtime_error(isa_unavailable_reason(isa_name(isa)));
  isa_slot().store((int)isa, std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512vnni: return "avx512vnni";
    default: return "scalar";
  }
}

bool parse_isa(const std::string& s, Isa* out) {
  if (s == "scalar") *out = Isa::scalar;
  else if (s == "avx2") *out = Isa::avx2;
  else if (s == "avxvnni") *out = Isa::avxvnni;
  else if (s == "avx512vnni") *out = Isa::avx512vnni;
  else if (s == "auto") *out = best_isa();
  else return false;
  return true;
}

std::string isa_unavailable_reason(const std::string& name) {
  const CpuFeatures& f = cpu_features();
  if (name == "scalar" || name == "auto") return "";
  if (name == "avx2") {
    if (isa_available(Isa::avx2)) return "";
    std::string lack = !f.os_ymm ? "OS-saved ymm state (xgetbv)" : !f.avx2 ? "AVX2" : !f.fma ? "FMA" : "F16C";
    return "isa 'avx2' needs AVX2+FMA+F16C; this CPU lacks " + lack;
  }
  if (name == "avx512vnni") {
    if (isa_available(Isa::avx512vnni)) return "";
    std::string lack = !has_avx2_set(f) ? "AVX2+FMA+F16C"
                       : !f.os_zmm     ? "OS-saved zmm state (xgetbv)"
                       : !f.avx512f    ? "AVX-512 F"
                       : !f.avx512bw   ? "AVX-512 BW"
                       : !f.avx512vl   ? "AVX-512 VL"
                                       : "AVX-512 VNNI";
    return "isa 'avx512vnni' needs AVX2+FMA+F16C and AVX-512 F/BW/VL/VNNI; this CPU lacks " + lack;
  }
  if (name == "avxvnni") {
    if (isa_available(Isa::avxvnni)) return "";
    return std::string("isa 'avxvnni' needs AVX2+FMA+F16C and AVX-VNNI; this CPU lacks ") +
           (!has_avx2_set(f) ? "AVX2+FMA+F16C" : "AVX-VNNI");
  }
  if (name == "avx512") {
    const bool has = f.avx512f && f.avx512bw && f.avx512vl;
    return "isa 'avx512': this build has no avx512 kernel set (kernel sets: scalar, avx2, avxvnni, avx512vnni); the CPU " +
           std::string(has ? "has" : "lacks") + " it";
  }
  return "unknown isa '" + name + "' (expected auto, scalar, avx2, avxvnni or avx512vnni)";
}

}  // namespace swinq
