// Runtime bit width → the codec kernels' compile-time one, for both ISAs' entry points.
#pragma once
#include <type_traits>

namespace swinq {

// f(std::integral_constant<int, B>{}) for B = bits ∈ {1, 2, 3, 4}; other widths do nothing
// (fewbit_encode / fewbit_decode_mul refuse them before any kernel runs).
template <typename F>
inline void with_fewbit_bits(int bits, F&& f) {
  switch (bits) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
  }
}

}  // namespace swinq
