// Few-bit backward (Novikov et al., ICML 2023): keep a b-bit code per activation element instead
// of the fp32 input, and replace f'(x) by a piecewise-constant q(x) in backward.
//
// Solver: q minimises J = ∫_L^R (f'(x) - q(x))^2 w(x) dx over q with 2^b contiguous pieces. Exact
// dynamic programming over borders on a uniform grid (prefix sums of w, f'w, f'^2 w from
// Gauss-Legendre quadrature split at every kink of f' and w, so an interval's cost is O(1)),
// then a local polish of each border off the grid that only accepts improvements.
//
// Codec: code(x) = Σ_i step_i·[x > s_i] over the inner borders s_i (step_i = +1 for interval
// tables, so code = number of borders strictly below x: a tie goes to the left interval, NaN and
// -inf get code 0, +inf the top code). Band tables (relu6, hardtanh, hardsigmoid) use steps
// (+1, -1) to give 1-bit "inside the band" codes; a -1 border closes the band ([x >= s]).
// Folded tables (even f') compare |x|. Codes are packed LSB-first as a bitstream:
// element i occupies bits [i·b, (i+1)·b), byte j holds bits 8j..8j+7; 8 codes fill exactly b
// bytes; a buffer holds ceil(n·b/8) bytes, unused high bits of the last byte are 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swinq {

enum class FewbitWeight { uniform = 0, normal = 1, histogram = 2 };

struct FewbitOptions {
  double lo = 0, hi = 0;             // domain; lo == hi == 0 picks the default for the weight
  FewbitWeight weight = FewbitWeight::uniform;
  std::vector<double> hist_edges;    // histogram weight: m+1 ascending edges (the domain)...
  std::vector<double> hist_counts;   // ...and m non-negative counts (normalised to a density)
  // Function parameters; NaN = the PyTorch default. elu/celu: p0 = alpha; leaky_relu: p0 = slope;
  // softplus: p0 = beta, p1 = threshold; threshold: p0 = threshold, p1 = value; hardtanh: p0 = min, p1 = max.
  double p0 = __builtin_nan(""), p1 = __builtin_nan("");
  int grid = 0;                      // grid cells for the DP, up to 16384; 0 = default (fewbit_default_grid)
  bool polish = true;                // refine borders off the grid (never makes J worse)
  // Even f' only (tanh, sigmoid, softsign, tanhshrink): codes bucket |x|, so all 2^b levels serve
  // one half-line. Borders live on [0, R]; J is still over the whole (symmetric) domain.
  bool fold = false;
};

struct FewbitTable {
  std::string fn;
  int bits = 0;
  double lo = 0, hi = 0;
  FewbitWeight weight = FewbitWeight::uniform;
  bool exact = false;                 // f' is piecewise constant: q == f' (error 0)
  bool fold = false;                  // borders apply to |x|
  std::vector<double> borders;        // inner borders, ascending (2^bits - 1 for solved tables)
  std::vector<int8_t> steps;          // +1 / -1 per border (see code(x) above)
  std::vector<double> levels;         // 2^bits levels, indexed by code
  double error = 0;                   // J of (borders, levels) by the same quadrature
  int grid = 0;
  // What the kernels use: fp32 borders/levels (compares and the multiply are done in fp32).
  std::vector<float> borders_f32, levels_f32;
};

constexpr int fewbit_default_grid = 4096;  // with polish, J agrees to ~1e-11 from 1024 up (docs/fewbit.md)

// Names of the built-in functions; exact ones have a piecewise-constant derivative.
const std::vector<std::string>& fewbit_function_names();
bool fewbit_is_exact(const std::string& fn);
bool fewbit_has_function(const std::string& fn);
bool fewbit_has_even_derivative(const std::string& fn);  // may be folded

// The cached table for (fn, bits, options). Throws std::invalid_argument naming the bad field.
std::shared_ptr<const FewbitTable> fewbit_table(const std::string& fn, int bits, const FewbitOptions& opt = {});

// J of an arbitrary table (inner borders ascending, borders.size()+1 levels) by the solver's quadrature.
double fewbit_objective(const std::string& fn, const std::vector<double>& borders, const std::vector<double>& levels,
                        const FewbitOptions& opt = {});

// The optimal levels for fixed borders (weighted means of f' per interval); returns their J.
double fewbit_fit_levels(const std::string& fn, const std::vector<double>& borders, const FewbitOptions& opt,
                         std::vector<double>* levels);

// f(x) and f'(x) in double (reference; used by forward and tests).
double fewbit_eval(const std::string& fn, double x, const FewbitOptions& opt = {});
double fewbit_eval_deriv(const std::string& fn, double x, const FewbitOptions& opt = {});
// y[i] = f(x[i]) in fp32 (computed in double).
void fewbit_apply_f32(const std::string& fn, const FewbitOptions& opt, const float* x, size_t n, float* y);

// ---- codec -------------------------------------------------------------------------------------

inline size_t fewbit_packed_bytes(size_t n, int bits) { return (n * (size_t)bits + 7) / 8; }

// A codec view of a table: up to 15 borders, 1..4 bits, levels padded to 16 entries.
struct FewbitCodec {
  int bits = 0;
  int nborders = 0;
  float borders[15] = {};
  int32_t steps[15] = {};
  float levels[16] = {};
  // All steps +1 and borders non-decreasing: the code is a count of a prefix, so SIMD may
  // binary-search it (same result as the linear count).
  bool sorted = false;
  bool fold = false;  // compare |x| (sign bit cleared; NaN stays NaN)
};
FewbitCodec fewbit_codec(const FewbitTable& t);

// The kernels (native/kernels/fewbit_f32*.cc, picked through f32::kernels): codes holds
// fewbit_packed_bytes(n, bits) bytes. Kernels assume checked sizes; fewbit_encode/decode_mul check.
void fewbit_encode_f32_scalar(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes);
void fewbit_encode_f32_avx2(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes);
// grad_in[i] = grad_out[i] * levels[code_i] (one fp32 multiply: scalar and AVX2 agree bit for bit).
void fewbit_decode_mul_f32_scalar(const FewbitCodec& c, const uint8_t* codes, const float* grad_out, size_t n,
                                  float* grad_in);
void fewbit_decode_mul_f32_avx2(const FewbitCodec& c, const uint8_t* codes, const float* grad_out, size_t n,
                                float* grad_in);

// The kernel of active_isa()'s table; throw std::invalid_argument when a size is wrong.
void fewbit_encode(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes, size_t codes_bytes);
void fewbit_decode_mul(const FewbitCodec& c, const uint8_t* codes, size_t codes_bytes, const float* grad_out,
                       size_t n, float* grad_in);

}  // namespace swinq
