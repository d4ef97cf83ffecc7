// Sink: an SNS HTTP(S) subscriber endpoint on its own thread and io_context.
//
// - SubscriptionConfirmation: GETs the envelope's SubscribeURL, as a real subscriber does (not
//   needed when inferd runs with sns_auto_confirm).
// - Notification (envelope, or raw delivery): parses the Message JSON; a SageMaker
//   "InferenceResult" whose inferenceId is "<prefix>-<thread>-<seq>" completes that record
//   (arrival time, eventTime, Completed/Failed) once — repeats count as duplicates, ids it did not
//   send as foreign. TestNotifications are counted and otherwise ignored.
// Every request is answered 200 with an empty body (keep-alive).
//
// Without record tables (--sink-only) completions are counted per (prefix, thread, seq) so
// duplicates are still told apart; --id-prefix may then list several prefixes (a,b,c), as left by
// several runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"
#include "options.h"
#include "records.h"
#include "sender.h"

namespace inferd::bench {

struct SinkStats {
  uint64_t requests = 0;    // HTTP requests received
  uint64_t completed = 0;   // distinct invocations completed (Completed or Failed)
  uint64_t failed = 0;      // of which invocationStatus Failed
  uint64_t duplicates = 0;  // repeated notifications of an invocation already counted
  uint64_t foreign = 0;     // InferenceResults for ids this run did not send
  uint64_t test_notifications = 0;
  uint64_t confirmations = 0;  // SubscribeURL visited with a 2xx answer
  uint64_t confirm_failures = 0;
  uint64_t malformed = 0;             // bodies that were not an SNS envelope / SageMaker message
  int64_t first_ns = 0, last_ns = 0;  // arrival of the first / last completion (steady)
  int64_t first_wall_ms = 0, last_wall_ms = 0;  // the same, wall clock
  std::vector<uint32_t> per_second;             // completions counted in each second since Start()
};

class Sink {
 public:
  // `tables[t]` is sender thread t's; empty in --sink-only mode.
  Sink(const LoadOptions& options, std::vector<RecordTable*> tables, RunState& state);
  ~Sink();  // Stop()
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Binds options.sink_listen and starts the thread. kUnavailable when the address is taken.
  Status Start();
  uint16_t port() const;
  void Stop();

  // Thread-safe snapshots.
  SinkStats stats() const;
  uint64_t completed() const;
  uint64_t confirmations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::bench
