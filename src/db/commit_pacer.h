// CommitPacer: how soon a group-commit writer may start its next transaction.
//
// A group-commit writer that starts a transaction the moment the previous one has synced commits
// as often as the disk allows: at 10,000 accepts/s on the project's VMs the queue synced 1,700
// times a second, 6 accepts each. Every sync is a request to the device (on a VM, work of the
// host's too), and every commit rewrites the same few pages into the WAL. The pacer spaces
// commits to at most one per `interval` on average — a token bucket holding `burst` commits — so
// that under sustained load more writes share each sync, while a writer that commits now and
// then (fewer than one per interval, in bursts of at most `burst`) never waits.
//
// Not thread-safe: the one writer thread owns it. Time is passed in, so it is tested without
// sleeping.
#pragma once

#include <algorithm>
#include <chrono>

namespace inferd::db {

class CommitPacer {
 public:
  using Clock = std::chrono::steady_clock;

  // interval 0: never waits.
  CommitPacer(std::chrono::microseconds interval, int burst)
      : interval_(interval), burst_(std::max(1, burst)), tokens_(burst_) {}

  // How long a commit that could start at `now` must wait first (zero: start now).
  Clock::duration Wait(Clock::time_point now) const {
    if (interval_.count() == 0) return Clock::duration::zero();
    const double tokens = TokensAt(now);
    if (tokens >= 1.0) return Clock::duration::zero();
    return std::chrono::ceil<Clock::duration>((1.0 - tokens) *
                                              std::chrono::duration<double>(interval_));
  }

  // A commit started at `at` (after Wait said it may).
  void Started(Clock::time_point at) {
    if (interval_.count() == 0) return;
    tokens_ = std::max(0.0, TokensAt(at) - 1.0);
    last_ = at;
  }

 private:
  // Before the first commit last_ is the clock's epoch, long past: the bucket is full.
  double TokensAt(Clock::time_point now) const {
    const double refill =
        std::chrono::duration<double>(now - last_) / std::chrono::duration<double>(interval_);
    return std::min(static_cast<double>(burst_), tokens_ + refill);
  }

  std::chrono::microseconds interval_;
  int burst_;
  double tokens_;           // commits that may start at once, as of last_
  Clock::time_point last_;  // the latest commit's start
};

}  // namespace inferd::db
