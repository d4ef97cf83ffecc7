// EchoHandler: inferd-echo's HTTP face — a small, fast hosting-contract server (spec §7.1) for
// tests and benchmarks. POST /invocations echoes the body; request headers (or environment
// variables, for the whole process) make it slow, fail, crash, start slowly or report its
// environment; GET /stats reports the concurrency it saw. See README.md for the knobs.
//
// Threads: Handle() runs on an I/O thread. Requests without a delay are answered there at once;
// delayed ones wait on the BlockingPool (a worker sleeps, so SAGEMAKER_MODEL_SERVER_WORKERS caps
// how many are served at a time, like a real container's workers). Stop() wakes every sleeping
// worker so shutdown is prompt. With a DurableLog (ECHO_DURABLE_FILE) an invocation's answer
// waits until its body is durable, and is sent from the log's syncer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/blocking_pool.h"
#include "http/message.h"
#include "inferd-echo/durable_log.h"

namespace inferd::echo {

struct EchoOptions {
  std::chrono::milliseconds delay{0};          // ECHO_DELAY_MS: default per-request delay
  int status = 200;                            // ECHO_STATUS: default response status
  uint64_t crash_after = 0;                    // ECHO_CRASH_AFTER: _exit(3) on request N+1
  std::chrono::milliseconds startup_delay{0};  // ECHO_STARTUP_DELAY_MS: /ping 503 until then
  bool fail_ping = false;                      // ECHO_FAIL_PING: /ping always 503
  std::string model_dir = "/opt/ml/model";     // SM_MODEL_DIR: what X-Echo-Model describes
};

class EchoHandler : public http::Handler {
 public:
  // `started` is when the process started (for ECHO_STARTUP_DELAY_MS).
  // `durable`, when set, must outlive every request (ECHO_DURABLE_FILE).
  EchoHandler(EchoOptions options, BlockingPool& pool,
              std::chrono::steady_clock::time_point started, DurableLog* durable = nullptr);

  void Handle(http::Request request, http::Responder respond) override;
  http::Response ErrorResponse(const http::Request& request, const Error& error) override;

  // Wakes every delayed request now and makes later delays return at once.
  void Stop();

 private:
  void Invoke(const http::Request& request, http::Responder respond);
  http::Response Answer(const http::Request& request, int status) const;
  // Sends `r`, once `body` is durable when there is a DurableLog; ends the request's in-flight
  // count.
  void Finish(std::string_view body, http::Response r, http::Responder respond);
  // Sleeps up to `d`; returns early when Stop() is called.
  void Sleep(std::chrono::milliseconds d);

  const EchoOptions options_;
  BlockingPool& pool_;
  const std::chrono::steady_clock::time_point started_;
  DurableLog* const durable_;

  std::atomic<uint64_t> requests_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> max_in_flight_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace inferd::echo
