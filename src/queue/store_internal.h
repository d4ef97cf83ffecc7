// Internal to queue/: InvocationStore::Impl, shared by invocation_store.cc (open, glue),
// writer.cc (the group-commit writer thread) and reads.cc (the read-connection pool).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "db/commit_pacer.h"
#include "db/sqlite.h"
#include "queue/id_index.h"
#include "queue/invocation_store.h"

namespace inferd::queue::internal {

// The table. Small fixed columns first and inline_body last, so that LoadPending and the
// transition checks decode a row without touching a large body's overflow pages.
//
// Indexes, each paid by every Insert, so only those a query needs:
// - none on the InferenceId: Get finds rows through `invocation_ids` (id_hash, seq), written in
//   bulk off the insert path (id_index.h), with id_hash = IdHash(region, endpoint_key,
//   inference_id); Get compares the strings on the rows it finds, newest first.
// - none on the endpoint either: List reads `invocation_endpoints` (ep_region, ep_key, ep_seq:
//   names of their own, so that a join with the table needs no qualified columns) for the rows
//   up to `invocation_endpoints_through`, written in bulk off the insert path (an SQL index put
//   a leaf page into every commit: ≈ 3 % of an accept's CPU), and scans the rows after it.
// - invocations_pending: partial, on seq, holding only rows LoadPending returns; rows leave it
//   when they are finished and notified, so it stays as small as the backlog.
inline constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS invocations (
  seq INTEGER PRIMARY KEY,
  state INTEGER NOT NULL,
  notified INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  ttl_seconds INTEGER NOT NULL,
  region TEXT NOT NULL,
  endpoint_key TEXT NOT NULL,
  id_hash INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  inference_id TEXT NOT NULL,
  output_id TEXT NOT NULL,
  invocation_timeout_seconds INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL,
  variant TEXT NOT NULL,
  instance TEXT NOT NULL,
  failure_reason TEXT NOT NULL,
  response_content_type TEXT NOT NULL,
  content_type TEXT NOT NULL,
  accept TEXT NOT NULL,
  custom_attributes TEXT NOT NULL,
  input_location TEXT NOT NULL,
  output_location TEXT NOT NULL,
  failure_location TEXT NOT NULL,
  inline_body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS invocation_ids (
  id_hash INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (id_hash, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS invocation_ids_through (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS invocation_endpoints (
  ep_region TEXT NOT NULL,
  ep_key TEXT NOT NULL,
  ep_seq INTEGER NOT NULL,
  PRIMARY KEY (ep_region, ep_key, ep_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS invocation_endpoints_through (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_pending ON invocations(seq) WHERE state < 2 OR notified = 0;
)sql";

// The columns ReadInvocation expects, in its order.
inline constexpr const char* kColumns =
    "seq, state, notified, received_ms, ttl_seconds, region, endpoint, inference_id, output_id, "
    "invocation_timeout_seconds, attempts, started_ms, finished_ms, variant, instance, "
    "failure_reason, response_content_type, content_type, accept, custom_attributes, "
    "input_location, output_location, failure_location, inline_body";
Invocation ReadInvocation(db::Stmt& s);

// List's two parts, each "SELECT " + kColumns + one of these, run in one read transaction.
// Parameters: region, endpoint_key, after_seq, the states mask (bit n = state n), limit. The rows
// up to the endpoint watermark, through invocation_endpoints' primary key (in seq order):
inline constexpr const char* kListIndexedFrom =
    " FROM invocation_endpoints CROSS JOIN invocations ON seq = ep_seq WHERE ep_region = ?1 AND "
    "ep_key = ?2 AND ep_seq > ?3 AND ep_seq <= (SELECT seq FROM invocation_endpoints_through) AND "
    "((?4 >> state) & 1) = 1 ORDER BY ep_seq LIMIT ?5";
// ... and the rows after it (fewer than endpoint_index_rows + a transaction's), by rowid range:
inline constexpr const char* kListTailFrom =
    " FROM invocations WHERE seq > max(?3, (SELECT seq FROM invocation_endpoints_through)) AND "
    "region = ?1 AND endpoint_key = ?2 AND ((?4 >> state) & 1) = 1 ORDER BY seq LIMIT ?5";
InvocationState StateFromInt(int64_t v);

// FNV-1a (64 bits) of region, endpoint_key and inference_id, each followed by a NUL. Stored in
// the table: never change it.
inline int64_t IdHash(std::string_view region, std::string_view endpoint_key,
                      std::string_view inference_id) {
  uint64_t h = 14695981039346656037ull;
  for (std::string_view s : {region, endpoint_key, inference_id}) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h *= 1099511628211ull;  // the NUL separator (h ^= 0)
  }
  return static_cast<int64_t>(h);
}

// Rows one prune write deletes at most (inserts are committed between chunks).
inline constexpr int kPruneChunk = 2000;
// The writer's page cache: the pages of invocation_ids an id chunk lands on are spread over the
// whole table, and LoadPending / List / prune reads share the file; with SQLite's 2 MiB default
// the id table's pages (≈ 25 bytes per row: 25 MB at 1,000,000 rows) would be re-read from disk.
inline constexpr const char* kWriterPragmas = "PRAGMA cache_size = -65536;";  // 64 MiB

enum class OpKind { kInsert, kStart, kRequeue, kFinish, kNotified, kPrune };

// One queued write. `inv` carries the record (kInsert), the start (kStart: attempts, variant,
// instance, started_ms), the outcome (kFinish) or, for kPrune, finished_ms = before_ms.
struct Op {
  OpKind kind = OpKind::kInsert;
  Invocation inv;
  std::string endpoint_key;                         // kInsert
  int64_t id_hash = 0;                              // kInsert
  std::function<void(Result<int64_t>)> done_value;  // kInsert (seq), kPrune (rows deleted)
  InvocationStore::Done done;                       // kStart, kRequeue, kFinish
  std::vector<int64_t> seqs;                        // kPrune: the rows to delete
};

// A bulk-written index's table replacing an SQL index of older databases (the writer's Open):
// makes sure `through_table` has its row and, if `index` exists, runs `copy` (its entries into
// the table), sets the watermark to the newest row and drops the index — one transaction.
Status MoveIndexToTable(db::Database& db, std::string_view index, std::string_view through_table,
                        std::string_view copy);

// A read connection and its prepared statements (reset after every use, so that no read
// transaction stays open and blocks checkpoints).
struct Reader {
  std::unique_ptr<db::Database> db;
  std::unique_ptr<db::Stmt> by_seq, by_id, by_seq_and_id, list_indexed, list_tail, pending, max_seq,
      prune_select;
};

// The writer's connection and cached statements (used only by the writer thread after Open).
struct WriterConn {
  std::unique_ptr<db::Database> db;
  std::unique_ptr<db::Stmt> insert, start, requeue, finish, notified, state_of, prune_delete;
  std::unique_ptr<db::Stmt> ids_insert, ids_through, ids_delete;
  std::unique_ptr<db::Stmt> endpoints_insert, endpoints_through, endpoints_delete;
};

}  // namespace inferd::queue::internal

namespace inferd::queue {

struct InvocationStore::Impl {
  ~Impl();  // stops the writer after it drained the queue

  Status OpenWriter(const std::filesystem::path& path, int checkpoint_frames);
  // The id index: migrates a database that still has the old SQL index, then reads back the
  // rows after the watermark (writer connection, before the writer starts).
  Status OpenIdIndex();
  // Inside the writer's transaction: the id index's next chunk, if one is due.
  Status WriteIdChunk(const internal::IdIndex::Chunk& chunk);
  // The endpoint index: migrates a database that still has the old SQL index, then reads the
  // watermark and the newest seq (writer connection, before the writer starts).
  Status OpenEndpointIndex();
  // Inside the writer's transaction: the rows after the watermark, through `upto`, into
  // invocation_endpoints, and the watermark moved to `upto`.
  Status WriteEndpointChunk(int64_t upto);
  Status OpenReaders(const std::filesystem::path& path, int count);
  void StartWriter();

  // ---- writer (writer.cc) ----
  void Submit(internal::Op op);
  void WriterLoop();
  void RunBatch(std::vector<internal::Op>& batch);
  // One write inside the open transaction: its own result (a logical failure such as
  // kInvalidState leaves the others alone); `sql_failed` set when SQLite failed (the batch then
  // rolls back).
  Result<int64_t> Apply(internal::Op& op, bool& sql_failed);
  Result<int64_t> ApplyPrune(internal::Op& op, bool& sql_failed);
  // Why an UPDATE guarded by state changed nothing: kNotFound or kInvalidState.
  Result<int64_t> Explain(int64_t seq, const char* what, bool& sql_failed);

  // ---- readers (reads.cc) ----
  template <typename F>
  auto WithReader(F&& f) {
    internal::Reader* r;
    {
      std::unique_lock lock(readers_mu_);
      readers_cv_.wait(lock, [&] { return !free_readers_.empty(); });
      r = free_readers_.back();
      free_readers_.pop_back();
    }
    struct Return {
      Impl* impl;
      internal::Reader* r;
      ~Return() {
        {
          std::lock_guard lock(impl->readers_mu_);
          impl->free_readers_.push_back(r);
        }
        impl->readers_cv_.notify_one();
      }
    } back{this, r};
    return f(*r);
  }

  int max_batch = 4096;
  db::CommitPacer pacer{std::chrono::microseconds(0), 1};  // the writer thread's (Open sets it)
  std::unique_ptr<internal::IdIndex> ids;
  // Writer thread: the id entries of the rows the running transaction pruned.
  std::vector<internal::IdIndex::Entry> pruned_ids;
  // The endpoint index (writer thread): once endpoint_index_rows rows have committed after the
  // watermark `endpoints_through`, the next transaction writes them all to invocation_endpoints.
  int endpoint_index_rows = 256;
  int64_t endpoints_through = 0;
  int64_t last_seq = 0;  // the newest committed row
  // Declared before writer_conn, so destroyed after it: the checkpointer thread's wake_writer
  // (OpenWriter) uses them until writer_conn's Database has stopped it.
  std::mutex mu_;
  std::condition_variable cv_;

  internal::WriterConn writer_conn;
  std::vector<std::unique_ptr<internal::Reader>> readers;

  std::deque<internal::Op> queue_;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  bool writer_exited_ = false;      // guarded by mu_
  bool writer_idle_ = false;        // guarded by mu_: waiting for writes (Submit wakes it)
  std::thread writer_;

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<internal::Reader*> free_readers_;  // guarded by readers_mu_

  std::atomic<int64_t> commits_{0}, writes_{0}, failed_batches_{0};
  // FailCommitsForTesting: the flag keeps mu_ off every transaction's path; the error is
  // guarded by mu_.
  std::atomic<bool> failing_commits_{false};
  std::optional<Error> fail_commits_;
};

}  // namespace inferd::queue
