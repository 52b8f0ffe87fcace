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
}  // namespace q
}  // namespace swinq
