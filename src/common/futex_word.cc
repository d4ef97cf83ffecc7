#include "common/futex_word.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace inferd {
namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op | FUTEX_PRIVATE_FLAG, value,
                 nullptr, nullptr, 0);
}

}  // namespace

uint32_t FutexWord::WaitWhile(uint32_t old) {
  uint32_t now = value_.load(std::memory_order_acquire);
  while (now == old) {
    // Returns at once (EAGAIN) if the value is no longer `old`; EINTR and spurious wake-ups
    // loop.
    Futex(&value_, FUTEX_WAIT, old);
    now = value_.load(std::memory_order_acquire);
  }
  return now;
}

void FutexWord::Set(uint32_t value) {
  // The pointer is taken before the store: after it the owner may destroy the word.
  std::atomic<uint32_t>* word = &value_;
  word->store(value, std::memory_order_release);
  Futex(word, FUTEX_WAKE, 1);
}

}  // namespace inferd
