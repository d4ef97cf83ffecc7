// DurableLog: inferd-echo's ECHO_DURABLE_FILE — every invocation's body made durable before its
// answer, and nothing else: the floor of a durable acknowledgement on this machine with inferd's
// HTTP stack (bench/run measures InvokeEndpointAsync's accept latency against it).
//
// One syncer thread group-commits as inferd's queue writer does: it takes every body waiting,
// writes them with one pwrite into the file and makes them durable with one fdatasync, then
// calls each one's `done`; under sustained load its syncs are spaced by the same CommitPacer
// (db/commit_pacer.h) with the queue's defaults, so that more bodies share each. The file is a
// ring (`ring_bytes`, zero-filled when opened), overwritten in place as a WAL that started over
// is, so a sync never has to record a larger file.
//
//   Append ──► pending ──(syncer: pwrite + fdatasync)──► done(ok) for the whole batch
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "db/commit_pacer.h"

namespace inferd::echo {

class DurableLog {
 public:
  struct Options {
    size_t ring_bytes = 16u << 20;
    // The pacer's (inferd's queue_commit_interval_us and commit_burst defaults); 0: each sync
    // starts as soon as the previous one has finished.
    std::chrono::microseconds interval{1000};
    int burst = 4;
  };
  // Creates (or truncates) `path` and fills it with `ring_bytes` zero bytes, synced.
  static Result<std::unique_ptr<DurableLog>> Open(const std::string& path, const Options& options);
  // Drains what is pending (each `done` is called), then stops the syncer.
  ~DurableLog();
  DurableLog(const DurableLog&) = delete;
  DurableLog& operator=(const DurableLog&) = delete;

  // `bytes` is copied; `done` runs on the syncer thread once they are durable (Status ok) or
  // could not be made so (the error).
  void Append(std::string_view bytes, std::function<void(Status)> done);

  // Syncs so far (tests).
  uint64_t syncs() const;

 private:
  DurableLog(UniqueFd fd, const Options& options);
  void Run();
  // Writes `data` at the ring's next offset (wrapping), without syncing.
  Status WriteRing(std::string_view data);

  const UniqueFd fd_;
  const size_t ring_bytes_;
  size_t offset_ = 0;  // syncer thread only
  db::CommitPacer pacer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_bytes_;
  std::vector<std::function<void(Status)>> pending_done_;
  bool stopping_ = false;
  std::atomic<uint64_t> syncs_{0};
  std::thread thread_;
};

}  // namespace inferd::echo
