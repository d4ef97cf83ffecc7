// Sender: one thread's share of the load — its own io_context, its connections (one coroutine
// each, keep-alive, no thread per request) and, open loop, the schedule of due times.
//
// Closed loop: each connection takes the next request as soon as its previous one is answered
// (and, with --max-outstanding, while fewer than that many are sent but not completed).
// Open loop: request i of thread t is due at start + (i·threads + t)/rate; due requests wait in a
// FIFO until a connection is free, and their latency counts from the due time (no coordinated
// omission: a stalled server shows up as latency, not as fewer samples).
//
// A connection that fails (refused, reset, closed mid-answer) records the request as a transport
// error and reconnects after 10 ms.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "options.h"
#include "records.h"

namespace inferd::bench {

// Shared by every sender and the sink.
struct RunState {
  std::atomic<int64_t> outstanding{0};  // sent, not yet answered with an error or completed
  std::atomic<bool> stop{false};
  int64_t start_ns = 0;  // steady clock: the load's time zero
  // A record stops counting as outstanding (once).
  void Release(Record& r) {
    if (!r.released.exchange(true)) outstanding.fetch_sub(1, std::memory_order_relaxed);
  }
};

struct SenderStats {
  uint64_t sent = 0;
  uint64_t ok = 0;                        // answered 202 (invoke) / 200 (direct)
  uint64_t transport_errors = 0;          // no answer (connect/write/read failed)
  std::map<int, uint64_t> status_errors;  // other statuses
  std::string first_error;                // the first error's status and body (trimmed)
  uint64_t connects = 0;
  uint64_t bytes_out = 0, bytes_in = 0;
};

class Sender {
 public:
  // `table` is this thread's; `shared_body` is the direct mode's payload (may be empty).
  Sender(const LoadOptions& options, int thread_index, RecordTable& table, RunState& state,
         std::shared_ptr<const std::string> shared_body);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Runs the load on the calling thread until it is over (duration, request count or
  // state.stop) and every connection has finished its last request.
  void Run();
  const SenderStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::bench
