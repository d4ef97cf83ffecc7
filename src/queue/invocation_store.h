// InvocationStore: the durable record of every accepted asynchronous invocation (SQLite file
// `<data-dir>/queue.db`, WAL, synchronous=FULL).
//
// An invocation's life, as stored (the dispatcher drives it; this store only records it):
//
//   Insert ──► Queued ──MarkStarted──► Started ──Finish──► Completed | Failed
//                 └────────────Finish (expired, cancelled, endpoint deleted)──┘
//   Started ──Requeue──► Queued   (instance died before a result was written; retried)
//   Completed | Failed: `notified` false → true once the notification was handed to SNS.
//
// Durability and group commit: every write goes through one writer thread that commits whatever
// writes are waiting in one transaction (one fsync for many requests), so N concurrent Inserts cost
// about one fsync, not N. Each write's `done` runs on the writer thread once the transaction
// holding it is durable (or failed, with the error): keep callbacks short and non-blocking (post
// work elsewhere). MarkNotified has no callback: it is batched with the next commit.
//
// Reads (Get/List/Load) run on the caller's thread through a small pool of read connections (WAL
// readers do not block the writer); they block on disk: call them from a blocking pool.
// PruneFinished also blocks its caller, but deletes through the writer in small chunks (inserts
// keep flowing between them): never call it from a `done` callback.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace inferd::queue {

enum class InvocationState : int { kQueued = 0, kStarted = 1, kCompleted = 2, kFailed = 3 };
// "Queued", "InProgress", "Completed", "Failed" (the names the /inferd/ API shows).
std::string_view ToString(InvocationState state);
std::optional<InvocationState> ParseInvocationState(std::string_view name);

struct Invocation {
  int64_t seq = 0;  // assigned by Insert: the global acceptance order (FIFO within an endpoint)
  std::string region;
  std::string endpoint;  // the endpoint name as the caller wrote it (matched case-insensitively)
  std::string inference_id;
  std::string output_id;    // the uuid naming the output / failure objects
  int64_t received_ms = 0;  // epoch milliseconds of acceptance (the notification's receivedTime)
  int32_t ttl_seconds = 21600;
  int32_t invocation_timeout_seconds = 900;
  // Exactly one of the two: the input object, or the newer API's inline Body (≤ 128,000 bytes).
  std::string input_location;  // "s3://bucket/key" as given
  std::string inline_body;
  // As the caller supplied them; "" = not supplied.
  std::string content_type;
  std::string accept;
  std::string custom_attributes;
  // Decided at acceptance and returned in the 202.
  std::string output_location;   // s3://bucket/key
  std::string failure_location;  // "" when the endpoint has no S3FailurePath

  // ---- progress and outcome ----
  InvocationState state = InvocationState::kQueued;
  int attempts = 0;      // MarkStarted calls so far
  std::string variant;   // of the latest start
  std::string instance;  // "host:port" of the latest start
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  std::string failure_reason;         // Failed only
  std::string response_content_type;  // the container's Content-Type, when it answered
  bool notified = false;
};

// What a restart needs to rebuild the in-memory queues without loading whole records: a few
// dozen bytes per invocation, so a backlog of millions loads in about a second.
struct PendingRef {
  int64_t seq = 0;
  std::string region;
  std::string endpoint_key;  // lower-cased endpoint name
  int64_t received_ms = 0;
  int32_t ttl_seconds = 0;
  InvocationState state = InvocationState::kQueued;  // Queued/Started; or Completed/Failed when
  bool notified = false;                             // the notification is still owed
};

// Counters since Open (tests and metrics): commits ≪ writes under concurrency is group commit.
struct InvocationStoreStats {
  int64_t commits = 0;         // transactions committed by the writer
  int64_t writes = 0;          // writes (Insert, MarkStarted, ... , prune chunks) in them
  int64_t failed_batches = 0;  // transactions that failed (every write in them got the error)
};

struct InvocationStoreOptions {
  std::filesystem::path path;  // the database file; its directory must exist
  int max_batch = 4096;        // writes per transaction at most
  // Commits start at most one per commit_interval on average, in bursts of commit_burst
  // (db/commit_pacer.h): under sustained load more writes share each sync. 0: each commit
  // starts as soon as the previous one has synced.
  std::chrono::microseconds commit_interval{1000};
  int commit_burst = 4;
  // The InferenceId index (id_index.h): new rows' ids gather in memory until this many, then
  // are written to the table in chunks, one per transaction; a chunk holds at most
  // id_chunk_rows and lies within one of id_key_ranges equal slices of the hash space.
  int id_flush_rows = 16384;
  int id_chunk_rows = 1024;
  int id_key_ranges = 256;
  // The endpoint index List reads (store_internal.h): once this many new rows have committed,
  // the next transaction writes their entries in one go (≈ 0.55 µs of the writer's time per
  // row, so 256 add ≈ 0.14 ms to one commit in 25 at 10,000 accepts/s); List scans the rows not
  // yet written.
  int endpoint_index_rows = 256;
  // A checkpoint starts once a commit leaves this many frames (4 KiB pages) in the WAL
  // (db::CheckpointOptions::frames). Each copies them into the database file and syncs it: a
  // burst the device serves while the writer's next WAL syncs wait behind it. At 10,000
  // accepts/s 1,000 frames (SQLite's default) made 4 MB bursts 3–4 times a second and accept
  // p99 14.3 ms (median of ten 10 s runs); 250 frames, 1 MB bursts four times as often, 9.9 ms,
  // at the same closed-loop accept rate (docs/performance-rounds.md, fifteenth round).
  int checkpoint_frames = 250;
};

class InvocationStore {
 public:
  using Done = std::function<void(Status)>;

  static Result<std::unique_ptr<InvocationStore>> Open(const InvocationStoreOptions& options);
  // Commits the writes already submitted, then stops the writer thread.
  ~InvocationStore();
  InvocationStore(const InvocationStore&) = delete;
  InvocationStore& operator=(const InvocationStore&) = delete;

  // ---- writes (group-committed; `done` on the writer thread once durable; must not throw) ----
  // Stores `invocation` and gives it the next seq. It starts Queued, attempts 0, not notified —
  // or Started, with its attempts, variant, instance and started_ms, when the dispatcher handed
  // it to a model at acceptance (one write instead of Insert + MarkStarted). Its other progress
  // fields are ignored; any other state is refused (kInternal).
  void Insert(Invocation invocation, std::function<void(Result<int64_t>)> done);
  // Queued → Started: attempts = `attempts`, variant, instance, started_ms. kInvalidState unless
  // Queued (a Started invocation found at restart is Requeue'd first), kNotFound if unknown.
  void MarkStarted(int64_t seq, int attempts, std::string variant, std::string instance,
                   int64_t started_ms, Done done);
  // Started → Queued (attempts kept). kInvalidState unless Started, kNotFound if unknown.
  void Requeue(int64_t seq, Done done);
  // Queued/Started → `finished.state` (Completed or Failed) with finished_ms, failure_reason,
  // response_content_type, notified from `finished` (matched by finished.seq). kInvalidState if
  // the invocation is already finished (nothing changes), kNotFound if unknown.
  void Finish(const Invocation& finished, Done done);
  // notified = true. Fire and forget (committed with the next batch); ignored (logged) unless
  // the invocation is finished.
  void MarkNotified(int64_t seq);

  // ---- reads (blocking, caller's thread) ----
  Result<std::optional<Invocation>> GetBySeq(int64_t seq);
  // The newest invocation with this InferenceId on the endpoint (InferenceIds are the caller's
  // and need not be unique).
  Result<std::optional<Invocation>> Get(const std::string& region, const std::string& endpoint,
                                        const std::string& inference_id);
  struct ListQuery {
    std::string region;
    std::string endpoint;                 // matched case-insensitively
    std::vector<InvocationState> states;  // empty = all
    int64_t after_seq = 0;                // keyset pagination: seq > after_seq, ascending
    int limit = 100;                      // ≤ 0: an empty answer
  };
  Result<std::vector<Invocation>> List(const ListQuery& query);
  // At start-up: every Queued/Started invocation, and every finished one not yet notified, in
  // seq order. Streams: `each` runs on the caller's thread while a read connection is held (it
  // must not call LoadPending itself).
  Status LoadPending(const std::function<void(PendingRef&&)>& each);
  // Removes finished, notified invocations with finished_ms < before_ms; returns how many. The
  // newest invocation is always kept (so a seq is never handed out twice). kInternal when called
  // from a `done` callback (it would wait for the writer it runs on).
  Result<int64_t> PruneFinished(int64_t before_ms);

  InvocationStoreStats Stats() const;

  // Tests: while set, every transaction fails with `error` instead of committing (it is rolled
  // back, as after a failed COMMIT on a full or failing disk); nullopt ends it.
  void FailCommitsForTesting(std::optional<Error> error);

 private:
  struct Impl;
  explicit InvocationStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::queue
