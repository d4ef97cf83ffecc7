// BodyPipe: a bounded, single-producer single-consumer byte pipe that streams a request or response
// body between an I/O thread (async side, never blocks) and a blocking-pool thread (blocking side).
//
//   request:  server (AsyncPush, I/O thread)  ──►  handler on the pool (Read, blocking)
//   response: handler on the pool (Write, blocking)  ──►  server (AsyncPop, I/O thread)
//
// At most `capacity` bytes are buffered (Write splits its data to stay within it; AsyncPush may
// exceed it by one chunk, since a chunk larger than the capacity is taken once the pipe is empty),
// so a 1 GB body costs O(capacity) bytes of memory.
//
// End of stream: the producer calls Close() once all data is written; the consumer sees 0 bytes
// (an empty chunk) once the buffered bytes are drained. Fail(error) is immediate: the buffered
// bytes are discarded and the consumer's next (or pending) read gets the error — a failed stream
// is useless to the consumer, and it should stop as soon as possible. If the consumer gives up
// (Abandon()), buffered bytes are discarded and the producer's blocked, pending and future pushes
// fail with kUnavailable so it can stop (the server then closes the connection).
//
// Single producer, single consumer: at most one AsyncPush and one AsyncPop may be pending, and
// the producer must not mix a pending AsyncPush with Write (nor the consumer AsyncPop with Read).
//
// Thread-safety: every method may be called from any thread. Each callback runs exactly once,
// never under the pipe's lock: inline when the operation can complete at once, otherwise on the
// thread of the call that completes it (the other side's Write/Read/AsyncPush/AsyncPop, Close,
// Fail or Abandon) — callers bridge them to their executor (e.g. asio::post) rather than doing
// I/O in them. A callback still pending when the pipe is destroyed is dropped without running, so
// both sides keep the pipe alive (shared_ptr) until they are done with it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"

namespace inferd::http {

// A pull-style source of bytes: Read returns 0 at the end. Used by stores and handlers.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `buf`; 0 = end of data. Blocking.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// A ByteSource over bytes the caller keeps alive (a view: nothing is copied).
class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override;
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

class BodyPipe final : public ByteSource {
 public:
  explicit BodyPipe(size_t capacity = 1 << 20);

  // ---- producer ----
  // Blocking: waits while the pipe is full. kUnavailable if the consumer abandoned the pipe;
  // kInvalidState after Close()/Fail().
  Status Write(std::string_view data);
  // Non-blocking: takes `data` now if it fits (or the pipe is empty), else later; `done` runs once
  // the bytes are taken (or with kUnavailable if the consumer abandoned the pipe, with the error if
  // the producer Fail()s while it is pending, kInvalidState after Close()/Fail()). An empty
  // `data` completes at once.
  void AsyncPush(std::string data, std::function<void(Status)> done);
  // End of data. Idempotent; ignored after Fail() or Abandon().
  void Close();
  // The stream is broken (see above); the first Close()/Fail() wins.
  void Fail(Error error);

  // ---- consumer ----
  // Blocking read (ByteSource): waits for data; 0 at the end. Returns the producer's error if it
  // failed, kUnavailable after Abandon().
  Result<size_t> Read(char* buf, size_t n) override;
  // Non-blocking: `done(status, chunk)` with the next buffered chunk (as pushed; the unread rest
  // of it after a partial Read); an empty chunk = end. Pending until data, Close, Fail or Abandon.
  void AsyncPop(std::function<void(Status, std::string)> done);
  // The consumer will read no more; pending and future pushes fail. A pending AsyncPop completes
  // with kUnavailable.
  void Abandon();

  size_t capacity() const { return capacity_; }
  // Bytes currently buffered (for tests and metrics).
  size_t buffered() const;

 private:
  struct Wakeups;  // callbacks collected under the lock, run after it is released
  // Moves a pending push into the buffer and hands buffered data (or the end) to a pending pop,
  // as far as the state allows; wakes blocked callers.
  void SettleLocked(Wakeups& w);
  std::string TakeFrontLocked();

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t buffered_ = 0;      // bytes in chunks_ not yet read
  size_t front_offset_ = 0;  // bytes of chunks_.front() already read
  bool closed_ = false;
  bool abandoned_ = false;
  Error error_;
  bool failed_ = false;
  // Pending async operations (at most one of each: single producer, single consumer).
  std::string pending_push_;
  std::function<void(Status)> push_done_;
  std::function<void(Status, std::string)> pop_done_;
};

}  // namespace inferd::http
