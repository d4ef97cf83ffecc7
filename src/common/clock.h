// Clock: wall time and monotonic time, injected so TTLs, timeouts and backoff are testable
// without sleeping. SystemClock is the real one; FakeClock is moved by hand (FakeClock::Advance).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace inferd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
  static SystemClock& Instance();
};

// Thread-safe manual clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point start = {})
      : now_(start.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(now_.load()));
  }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(mono_.load()));
  }
  void Advance(std::chrono::nanoseconds d) {
    now_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d).count();
    mono_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d).count();
  }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_{0};
};

// Epoch seconds (with fraction) of a wall-clock time point, as AWS JSON timestamps carry them.
double ToEpochSeconds(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point FromEpochSeconds(double s);
// ISO-8601 UTC with milliseconds and 'Z', e.g. 2022-01-25T22:46:00.608Z.
std::string FormatIso8601Millis(std::chrono::system_clock::time_point t);

}  // namespace inferd
