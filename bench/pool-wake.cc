// A batch-1 run after a pause, as between a server's requests: the pool's worker has gone to sleep.
// Each run: a pause, wake_sleepers() (as Plan::run does first), 3 µs of the caller's own work, then
// 14 static pool jobs of ≈ 5 µs of work each at 1 thread (micro-Swin's 14 jobs). Prints, for 1 and
// 2 threads, the run's min / median, the first job's median and what wake_sleepers() cost the caller.
// bash bench/pool-wake.sh [pause µs (default 1000)] [runs]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "swinq/threadpool.h"

using clk = std::chrono::steady_clock;
static volatile double sink;
static void work(int64_t units) {  // a dependent chain: ≈ 0.33 µs a unit on a 4 GHz core
  double x = 1;
  for (int64_t i = 0; i < units * 200; ++i) x = x * 1.0000001 + 1e-9;
  sink = x;
}
static double us(clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }
static double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[(size_t)(p * (double)(v.size() - 1))];
}

int main(int argc, char** argv) {
  const int pause_us = argc > 1 ? std::atoi(argv[1]) : 1000, runs = argc > 2 ? std::atoi(argv[2]) : 300;
  for (int threads : {1, 2}) {
    swinq::ThreadPool pool(threads);
    std::vector<double> run, first, wake;
    for (int r = 0; r < runs; ++r) {
      if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
      const auto t0 = clk::now();
      pool.wake_sleepers();
      const auto t1 = clk::now();
      work(9);
      for (int j = 0; j < 14; ++j) {
        const auto a = clk::now();
        pool.parallel_for_static(16, 1, [](int64_t b, int64_t e) { work(e - b); });
        if (j == 0) first.push_back(us(a, clk::now()));
      }
      run.push_back(us(t0, clk::now()));
      wake.push_back(us(t0, t1));
    }
    std::printf("%d thread%s, %d µs pause: run min %.1f median %.1f µs; first job median %.1f µs; wake_sleepers median %.1f µs\n",
                threads, threads > 1 ? "s" : "", pause_us, pct(run, 0), pct(run, 0.5), pct(first, 0.5), pct(wake, 0.5));
  }
}
