// Per-head time of one kernel set's attention kernel (ATT_KERNEL), this tree's against another tree's
// (…_old), linked side by side in one process: thread CPU time, min and median over rounds
// (bench/attention-heads.sh builds it).
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../native/kernels/int/qinternal.h"
#include "swinq/qkernels.h"

#ifndef ATT_KERNEL
#define ATT_KERNEL attention_u8s32_u8_avx2
#define ATT_NAME "avx2"
#endif
#define ATT_CAT2(a, b) a##b
#define ATT_CAT(a, b) ATT_CAT2(a, b)
#define ATT_OLD ATT_CAT(ATT_KERNEL, _old)
namespace swinq { namespace q { namespace detail {
void ATT_OLD(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y);
}}}  // namespace swinq::q::detail
using namespace swinq::q;

static double cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 40, reps = 20;
  std::printf("attention kernel %s, this tree (new) against the old revision\n", ATT_NAME);
  struct Shape { const char* name; int64_t W, N, H, dh; bool bias; };
  const int only = argc > 2 ? atoi(argv[2]) : -1;  // one shape (index), e.g. under callgrind
  std::mt19937 rng(7);
  int idx = -1;
  for (const Shape& s : {Shape{"N 49 dh 16 (micro-Swin)", 4, 49, 3, 16, true}, Shape{"N 49 dh 32 (Swin-T)", 2, 49, 3, 32, true},
                         Shape{"N 197 dh 64 (ViT-B)", 1, 197, 2, 64, false}}) {
    if (++idx, only >= 0 && idx != only) continue;
    const int64_t C = s.H * s.dh, heads = s.W * s.H;
    std::vector<uint8_t> qkv((size_t)(s.W * s.N * 3 * C)), y0((size_t)(heads * s.N * s.dh)), y1(y0.size());
    for (auto& v : qkv) v = (uint8_t)(rng() % 128);
    std::vector<int32_t> bias((size_t)(s.N * s.N));
    for (auto& v : bias) v = (int32_t)(rng() % 401) - 200;
    AttentionParams p;
    p.W = s.W, p.N = s.N, p.H = s.H, p.dh = s.dh, p.zp = 64, p.y_zp = 3, p.y_max = 255;
    p.bias = s.bias ? bias.data() : nullptr;
    p.bias_rows = s.N;
    const std::vector<int32_t> by_key = s.bias ? attention_bias_by_key(bias.data(), s.N, s.N) : std::vector<int32_t>();
    if (s.bias) p.bias_by_key = by_key.data(), p.bias_by_key_period = attention_bias_period(s.N, s.N);  // as attention_q has it
    attention_set_logit_scale(p, 0.02);
    quantize_multiplier(1.0 / 1024, &p.mult, &p.shift);
    // twice this tree's size: the old revision's kernel may lay its scratch out larger
    std::vector<uint8_t> scratch(2 * attention_scratch_bytes(s.N, s.dh) + 64);
    void* sp = scratch.data() + ((32 - (reinterpret_cast<uintptr_t>(scratch.data()) & 31)) & 31);
    std::vector<double> t_old, t_new;
    for (int r = 0; r < rounds; ++r)
      for (int which = 0; which < 2; ++which) {
        const double t0 = cpu_us();
        for (int k = 0; k < reps; ++k)
          for (int64_t t = 0; t < heads; ++t)
            (which ? detail::ATT_KERNEL : detail::ATT_OLD)(qkv.data(), p, t, sp,
                                                                                           (which ? y1 : y0).data());
        (which ? t_new : t_old).push_back((cpu_us() - t0) / (reps * heads));
      }
    if (y0 != y1) std::printf("  OUTPUTS DIFFER\n");
    std::sort(t_old.begin(), t_old.end()), std::sort(t_new.begin(), t_new.end());
    const double mo = t_old[0], mn = t_new[0], qo = t_old[t_old.size() / 2], qn = t_new[t_new.size() / 2];
    std::printf("%-26s old min %.2f med %.2f  new min %.2f med %.2f µs/head  new/old min %.3f med %.3f\n", s.name, mo, qo, mn,
                qn, mn / mo, qn / qo);
  }
  return 0;
}
