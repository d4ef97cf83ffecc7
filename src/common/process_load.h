// ProcessLoad: how much CPU this process used lately, sampled cheaply from any thread.
//
// Below(cores) is true when, over the last completed interval (at least `interval` long), the
// process's CPU time grew by less than `cores` × the interval's wall time. The first caller
// after an interval has passed takes the next sample (CLOCK_PROCESS_CPUTIME_ID, one system
// call); every other call reads an atomic. For decisions that only pay off when the process is
// nearly idle (a scheduling hint at rest that would cost throughput under load).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace inferd {

class ProcessLoad {
 public:
  explicit ProcessLoad(std::chrono::milliseconds interval = std::chrono::milliseconds(50));

  // The process used less than `cores` of CPU over the last interval (true before the first).
  bool Below(double cores);

 private:
  const int64_t interval_ns_;
  std::atomic<int64_t> sampled_wall_ns_;
  std::atomic<int64_t> sampled_cpu_ns_;
  std::atomic<double> cores_{0.0};  // CPU used per wall second over the last interval
};

}  // namespace inferd
