// Few-bit codec kernels, scalar reference (layout and code rule: swinq/fewbit.h). The AVX2 forms
// (fewbit_f32_avx2.cc) write the same bytes; both are picked through f32::kernels.
#include <cstring>

#include "fewbit_bits.h"
#include "swinq/fewbit.h"

namespace swinq {
namespace {

inline uint32_t code_of(const FewbitCodec& c, float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u &= c.fold ? 0x7fffffffu : 0xffffffffu;  // |x| when folded, branch-free
  std::memcpy(&x, &u, 4);
  int acc = 0;
  for (int i = 0; i < c.nborders; ++i) acc += c.steps[i] & -(int)(x > c.borders[i]);  // branch-free
  return (uint32_t)acc;
}

template <int B>
void encode_scalar(const FewbitCodec& c, const float* x, size_t n, uint8_t* out) {
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    uint32_t w = 0;
    for (int j = 0; j < 8; ++j) w |= code_of(c, x[g + j]) << (B * j);
    for (int b = 0; b < B; ++b) out[g / 8 * B + b] = (uint8_t)(w >> (8 * b));
  }
  if (g < n) {
    const size_t rem = n - g;
    uint32_t w = 0;
    for (size_t j = 0; j < rem; ++j) w |= code_of(c, x[g + j]) << (B * j);
    const size_t bytes = (rem * B + 7) / 8;
    for (size_t b = 0; b < bytes; ++b) out[g / 8 * B + b] = (uint8_t)(w >> (8 * b));
  }
}

template <int B>
void decode_scalar(const FewbitCodec& c, const uint8_t* codes, const float* go, size_t n, float* gi) {
  constexpr uint32_t mask = (1u << B) - 1;
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    uint32_t w = 0;
    for (int b = 0; b < B; ++b) w |= (uint32_t)codes[g / 8 * B + b] << (8 * b);
    for (int j = 0; j < 8; ++j) gi[g + j] = go[g + j] * c.levels[(w >> (B * j)) & mask];
  }
  if (g < n) {
    const size_t rem = n - g, bytes = (rem * B + 7) / 8;
    uint32_t w = 0;
    for (size_t b = 0; b < bytes; ++b) w |= (uint32_t)codes[g / 8 * B + b] << (8 * b);
    for (size_t j = 0; j < rem; ++j) gi[g + j] = go[g + j] * c.levels[(w >> (B * j)) & mask];
  }
}

}  // namespace

void fewbit_encode_f32_scalar(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes) {
  with_fewbit_bits(c.bits, [&](auto b) { encode_scalar<decltype(b)::value>(c, x, n, codes); });
}

void fewbit_decode_mul_f32_scalar(const FewbitCodec& c, const uint8_t* codes, const float* grad_out, size_t n,
                                  float* grad_in) {
  with_fewbit_bits(c.bits, [&](auto b) { decode_scalar<decltype(b)::value>(c, codes, grad_out, n, grad_in); });
}

}  // namespace swinq
