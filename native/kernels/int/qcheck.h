// Argument checks shared by the integer kernels' entry points (qkernels.cc, qattention.cc, ...).
#pragma once
#include <stdexcept>
#include <string>

#include "swinq/cpu.h"

namespace swinq {
namespace q {
[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }
#define QCHECK(cond, msg)          \
  do {                             \
    if (!(cond)) ::swinq::q::fail(msg); \
  } while (0)
// Only qsparse.cc still asks this (gemm_u8s8_uses_sparse); kernels are picked by q::kernels(Isa).
inline bool use_avx2(Isa isa) {
  if (isa == Isa::avx2 && best_isa() != Isa::avx2) fail("the AVX2 kernel set was requested on a CPU without AVX2+FMA");
  return isa == Isa::avx2;
}
}  // namespace q
}  // namespace swinq
