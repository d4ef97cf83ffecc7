#include "common/process_load.h"

#include <time.h>

namespace inferd {

namespace {

int64_t Nanos(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

ProcessLoad::ProcessLoad(std::chrono::milliseconds interval)
    : interval_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count()),
      sampled_wall_ns_(Nanos(CLOCK_MONOTONIC)),
      sampled_cpu_ns_(Nanos(CLOCK_PROCESS_CPUTIME_ID)) {}

bool ProcessLoad::Below(double cores) {
  const int64_t wall = Nanos(CLOCK_MONOTONIC);
  int64_t last = sampled_wall_ns_.load(std::memory_order_relaxed);
  if (wall - last >= interval_ns_ &&
      sampled_wall_ns_.compare_exchange_strong(last, wall, std::memory_order_relaxed)) {
    const int64_t cpu = Nanos(CLOCK_PROCESS_CPUTIME_ID);
    const int64_t before = sampled_cpu_ns_.exchange(cpu, std::memory_order_relaxed);
    cores_.store(static_cast<double>(cpu - before) / static_cast<double>(wall - last),
                 std::memory_order_relaxed);
  }
  return cores_.load(std::memory_order_relaxed) < cores;
}

}  // namespace inferd
