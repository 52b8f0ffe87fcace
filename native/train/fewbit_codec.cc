// Few-bit codec: the codec from a table, its checks and the entry points, which call the kernel of
// the active Isa's fp32 table (native/kernels/fewbit_f32*.cc). Layout and code rule: swinq/fewbit.h.
#include <cmath>
#include <stdexcept>
#include <string>

#include "swinq/cpu.h"
#include "swinq/fewbit.h"
#include "swinq/kernels_f32.h"

namespace swinq {
namespace {
void check_codec(const FewbitCodec& c);
}

FewbitCodec fewbit_codec(const FewbitTable& t) {
  FewbitCodec c;
  if (t.bits < 1 || t.bits > 4) throw std::invalid_argument("fewbit codec: bits must be 1..4, got " + std::to_string(t.bits));
  if (t.borders.size() > 15 || t.steps.size() != t.borders.size())
    throw std::invalid_argument("fewbit codec: need at most 15 borders with one step each, got " + std::to_string(t.borders.size()));
  if ((int)t.levels.size() != (1 << t.bits))
    throw std::invalid_argument("fewbit codec: need 2^bits = " + std::to_string(1 << t.bits) + " levels, got " +
                                std::to_string(t.levels.size()));
  c.bits = t.bits;
  c.fold = t.fold;
  c.nborders = (int)t.borders.size();
  for (int i = 0; i < c.nborders; ++i) {
    const float s = (float)t.borders[i];
    // A -1 step closes the band on the right: [x >= s] == [x > prev(s)] for every float x.
    c.borders[i] = t.steps[i] < 0 ? std::nextafter(s, -INFINITY) : s;
    c.steps[i] = t.steps[i] < 0 ? -1 : 1;
  }
  check_codec(c);
  c.sorted = true;
  for (int i = 0; i < c.nborders; ++i)
    if (c.steps[i] != 1 || (i > 0 && !(c.borders[i] >= c.borders[i - 1]))) c.sorted = false;
  for (int i = 0; i < 16; ++i) c.levels[i] = (float)t.levels[(size_t)i < t.levels.size() ? i : t.levels.size() - 1];
  return c;
}

namespace {

// Every reachable code must fit in `bits` bits, or packing would spill into the neighbour.
void check_codec(const FewbitCodec& c) {
  if (c.bits < 1 || c.bits > 4) throw std::invalid_argument("fewbit: codec bits must be 1..4, got " + std::to_string(c.bits));
  if (c.nborders < 0 || c.nborders > 15)
    throw std::invalid_argument("fewbit: codec borders must be 0..15, got " + std::to_string(c.nborders));
  int lo = 0, hi = 0;  // bounds on Σ steps over any subset of borders
  for (int i = 0; i < c.nborders; ++i) {
    if (c.steps[i] != 1 && c.steps[i] != -1) throw std::invalid_argument("fewbit: codec steps must be +1 or -1");
    (c.steps[i] > 0 ? hi : lo) += c.steps[i];
  }
  if (lo < 0 && !(c.nborders == 2 && c.steps[0] == 1 && c.steps[1] == -1 && c.borders[0] <= c.borders[1]))
    throw std::invalid_argument("fewbit: codec with -1 steps must be a band (+1, -1) with ordered borders");
  if (hi >= (1 << c.bits))
    throw std::invalid_argument("fewbit: " + std::to_string(c.nborders) + " borders give codes that do not fit in " +
                                std::to_string(c.bits) + " bits");
}

}  // namespace

void fewbit_encode(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes, size_t codes_bytes) {
  check_codec(c);
  const size_t need = fewbit_packed_bytes(n, c.bits);
  if (codes_bytes < need)
    throw std::invalid_argument("fewbit encode: codes buffer has " + std::to_string(codes_bytes) + " bytes, " +
                                std::to_string(n) + " elements at " + std::to_string(c.bits) + " bits need " + std::to_string(need));
  if (n == 0) return;
  f32::kernels(active_isa()).fewbit_encode(c, x, n, codes);
}

void fewbit_decode_mul(const FewbitCodec& c, const uint8_t* codes, size_t codes_bytes, const float* grad_out, size_t n,
                       float* grad_in) {
  check_codec(c);
  const size_t need = fewbit_packed_bytes(n, c.bits);
  if (codes_bytes != need)
    throw std::invalid_argument("fewbit decode: codes has " + std::to_string(codes_bytes) + " bytes, " + std::to_string(n) +
                                " elements at " + std::to_string(c.bits) + " bits need exactly " + std::to_string(need));
  if (n == 0) return;
  f32::kernels(active_isa()).fewbit_decode_mul(c, codes, grad_out, n, grad_in);
}

}  // namespace swinq
