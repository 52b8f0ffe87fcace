// Round trip of a cache line between two threads (two atomics ping-ponged), the floor under every
// hand-off of the thread pool: what one op costs to share between the cores this process got.
// bash bench/core-roundtrip.sh [round trips]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

alignas(64) static std::atomic<int> ping{0};
alignas(64) static std::atomic<int> pong{0};

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200000;
  for (int round = 0; round < 3; ++round) {
    ping = 0, pong = 0;
    std::thread t([n] {
      for (int i = 1; i <= n; ++i) {
        while (ping.load(std::memory_order_acquire) != i) {}
        pong.store(i, std::memory_order_release);
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; i <= n; ++i) {
      ping.store(i, std::memory_order_release);
      while (pong.load(std::memory_order_acquire) != i) {}
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
    t.join();
    std::printf("round trip %.0f ns\n", ns);
  }
  return 0;
}
