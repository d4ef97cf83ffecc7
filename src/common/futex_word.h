// FutexWord: a 32-bit state one thread sleeps on until another changes it, with no mutex.
//
// The changer stores the new value and wakes the sleeper outside any lock, so the woken thread
// runs at once instead of blocking again on a mutex its waker still holds (what a condition
// variable signalled under its mutex costs: a second context switch per wake-up, measured in the
// group commits, docs/performance-rounds.md, eighteenth round).
//
// Lifetime: the sleeper may return, and the word go away, between the changer's store and its
// wake-up. That is allowed: the wake-up is a futex system call on the address alone (it reads
// nothing there), and a wake-up that reaches a later sleeper at the same address is spurious —
// every wait here re-checks the value. The same rule glibc gives sem_post.
//
// Linux only (futex(2)), as inferd is.
#pragma once

#include <atomic>
#include <cstdint>

namespace inferd {

class FutexWord {
 public:
  explicit FutexWord(uint32_t value) : value_(value) {}
  FutexWord(const FutexWord&) = delete;
  FutexWord& operator=(const FutexWord&) = delete;

  // Sleeps while the value is `old`; returns the value that ended the wait (acquire).
  uint32_t WaitWhile(uint32_t old);
  // Stores `value` (release) and wakes one sleeper. The word may be gone once this returns.
  void Set(uint32_t value);

 private:
  std::atomic<uint32_t> value_;
};

}  // namespace inferd
