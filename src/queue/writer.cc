// The group-commit writer: one thread owns the write connection; every write is queued, and the
// thread commits whatever is waiting (up to max_batch) in one transaction, then runs the
// callbacks. While it syncs, new writes pile up for the next transaction, so the number of
// fsyncs follows the disk, not the request rate — and under sustained load at most one per
// commit_interval on average (db/commit_pacer.h).
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <cassert>
#include <string>

#include "common/thread_name.h"
#include "queue/store_internal.h"

namespace inferd::queue {

using internal::Op;
using internal::OpKind;

namespace {

// Runs a cached statement that returns no rows and rewinds it for its next use.
Status RunOnce(db::Stmt& s, const char* what) {
  const int rc = s.Step();
  s.Reset();
  if (rc != db::Stmt::kDone) return s.Fail(what);
  return OkStatus();
}

}  // namespace

namespace internal {

Status MoveIndexToTable(db::Database& db, std::string_view index, std::string_view through_table,
                        std::string_view copy) {
  bool old_index = false;
  {
    db::Stmt s(db, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?");
    if (!s.ok()) return db.Fail("look for an old index");
    s.Bind(index);
    old_index = s.Step() == db::Stmt::kRow;
  }
  const std::string through(through_table);
  const std::string start = "INSERT OR IGNORE INTO " + through + " VALUES (1, 0)";
  const std::string watermark =
      "UPDATE " + through + " SET seq = (SELECT coalesce(max(seq), 0) FROM invocations)";
  const std::string drop = "DROP INDEX " + std::string(index);
  db::Transaction tx(db);
  INFERD_RETURN_IF_ERROR(tx.status());
  INFERD_RETURN_IF_ERROR(db.Exec(start.c_str()));
  if (old_index) {
    INFERD_RETURN_IF_ERROR(db.Exec(std::string(copy).c_str()));
    INFERD_RETURN_IF_ERROR(db.Exec(watermark.c_str()));
    INFERD_RETURN_IF_ERROR(db.Exec(drop.c_str()));
  }
  return tx.Commit();
}

}  // namespace internal

Status InvocationStore::Impl::OpenWriter(const std::filesystem::path& path, int checkpoint_frames) {
  // The checkpointer's last step is the writer's, between two transactions (db/checkpointer.h).
  db::CheckpointOptions checkpoints;
  checkpoints.frames = checkpoint_frames;
  checkpoints.writer_finishes = true;
  checkpoints.wake_writer = [this] {
    // Under mu_, so that a writer between its check of CheckpointDue() and its wait is not
    // missed.
    std::lock_guard lock(mu_);
    cv_.notify_one();
  };
  auto db = db::Database::Open(path, "invocation queue database", internal::kSchema, checkpoints);
  if (!db.ok()) return std::move(db).error();
  auto& w = writer_conn;
  w.db = std::move(db).value();
  INFERD_RETURN_IF_ERROR(w.db->Exec(internal::kWriterPragmas));
  auto prepare = [&](std::unique_ptr<db::Stmt>& s, const char* sql) -> Status {
    s = std::make_unique<db::Stmt>(*w.db, sql);
    if (!s->ok()) return w.db->Fail(std::string("prepare ") + sql);
    return OkStatus();
  };
  INFERD_RETURN_IF_ERROR(prepare(w.insert,
                                 "INSERT INTO invocations (state, notified, received_ms, "
                                 "ttl_seconds, region, endpoint_key, id_hash, endpoint, "
                                 "inference_id, output_id, invocation_timeout_seconds, attempts, "
                                 "started_ms, finished_ms, variant, instance, failure_reason, "
                                 "response_content_type, content_type, accept, custom_attributes, "
                                 "input_location, output_location, failure_location, inline_body) "
                                 "VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '', "
                                 "'', ?, ?, ?, ?, ?, ?, ?)"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.start,
              "UPDATE invocations SET state = 1, attempts = ?, variant = ?, instance = ?, "
              "started_ms = ? WHERE seq = ? AND state = 0"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.requeue, "UPDATE invocations SET state = 0 WHERE seq = ? AND state = 1"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.finish,
              "UPDATE invocations SET state = ?, finished_ms = ?, failure_reason = ?, "
              "response_content_type = ?, notified = ? WHERE seq = ? AND state < 2"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.notified, "UPDATE invocations SET notified = 1 WHERE seq = ? AND state >= 2"));
  INFERD_RETURN_IF_ERROR(prepare(w.state_of, "SELECT state FROM invocations WHERE seq = ?"));
  INFERD_RETURN_IF_ERROR(prepare(w.prune_delete,
                                 "DELETE FROM invocations WHERE seq = ? AND state >= 2 AND "
                                 "notified = 1 AND finished_ms < ? RETURNING id_hash, region, "
                                 "endpoint_key"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.ids_insert, "INSERT OR IGNORE INTO invocation_ids (id_hash, seq) VALUES (?, ?)"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.ids_through, "UPDATE invocation_ids_through SET seq = ? WHERE one = 1"));
  INFERD_RETURN_IF_ERROR(
      prepare(w.ids_delete, "DELETE FROM invocation_ids WHERE id_hash = ? AND seq = ?"));
  // In key order, so that each endpoint's entries are appended to its range page by page.
  INFERD_RETURN_IF_ERROR(prepare(w.endpoints_insert,
                                 "INSERT OR IGNORE INTO invocation_endpoints (ep_region, ep_key, "
                                 "ep_seq) SELECT region, endpoint_key, seq FROM invocations WHERE "
                                 "seq > ? AND seq <= ? ORDER BY region, endpoint_key, seq"));
  INFERD_RETURN_IF_ERROR(prepare(w.endpoints_through,
                                 "UPDATE invocation_endpoints_through SET seq = ? WHERE one = 1"));
  INFERD_RETURN_IF_ERROR(prepare(w.endpoints_delete,
                                 "DELETE FROM invocation_endpoints WHERE ep_region = ? AND ep_key "
                                 "= ? AND ep_seq = ?"));
  INFERD_RETURN_IF_ERROR(OpenIdIndex());
  return OpenEndpointIndex();
}

Status InvocationStore::Impl::OpenEndpointIndex() {
  db::Database& db = *writer_conn.db;
  // Databases written before the endpoint index had an SQL index on (region, endpoint_key).
  INFERD_RETURN_IF_ERROR(internal::MoveIndexToTable(
      db, "invocations_by_endpoint", "invocation_endpoints_through",
      "INSERT OR IGNORE INTO invocation_endpoints (ep_region, ep_key, ep_seq) SELECT region, "
      "endpoint_key, seq FROM invocations INDEXED BY invocations_by_endpoint ORDER BY region, "
      "endpoint_key, seq"));
  auto one = [&](const char* sql, int64_t& value) -> Status {
    db::Stmt s(db, sql);
    if (s.Step() != db::Stmt::kRow) return db.Fail(sql);
    value = s.Int(0);
    return OkStatus();
  };
  INFERD_RETURN_IF_ERROR(
      one("SELECT seq FROM invocation_endpoints_through WHERE one = 1", endpoints_through));
  return one("SELECT coalesce(max(seq), 0) FROM invocations", last_seq);
}

Status InvocationStore::Impl::WriteEndpointChunk(int64_t upto) {
  auto& w = writer_conn;
  w.endpoints_insert->Bind(endpoints_through).Bind(upto);
  INFERD_RETURN_IF_ERROR(RunOnce(*w.endpoints_insert, "write the endpoint index"));
  w.endpoints_through->Bind(upto);
  return RunOnce(*w.endpoints_through, "write the endpoint index's watermark");
}

Status InvocationStore::Impl::OpenIdIndex() {
  db::Database& db = *writer_conn.db;
  // Databases written before the id index had an SQL index on id_hash.
  INFERD_RETURN_IF_ERROR(internal::MoveIndexToTable(
      db, "invocations_by_id", "invocation_ids_through",
      "INSERT OR IGNORE INTO invocation_ids (id_hash, seq) SELECT id_hash, seq FROM invocations"));
  std::vector<internal::IdIndex::Entry> tail;
  db::Stmt s(db,
             "SELECT id_hash, seq FROM invocations WHERE seq > (SELECT seq FROM "
             "invocation_ids_through) ORDER BY seq");
  if (!s.ok()) return db.Fail("prepare the id index's tail");
  int rc;
  while ((rc = s.Step()) == db::Stmt::kRow) tail.push_back({s.Int(0), s.Int(1)});
  if (rc != db::Stmt::kDone) return db.Fail("read the id index's tail");
  ids->Restore(std::move(tail));
  return OkStatus();
}

Status InvocationStore::Impl::WriteIdChunk(const internal::IdIndex::Chunk& chunk) {
  auto& w = writer_conn;
  for (const auto& e : chunk.entries) {
    w.ids_insert->Bind(e.id_hash).Bind(e.seq);
    INFERD_RETURN_IF_ERROR(RunOnce(*w.ids_insert, "write the id index"));
  }
  if (!chunk.last) return OkStatus();
  w.ids_through->Bind(chunk.through);
  return RunOnce(*w.ids_through, "write the id index's watermark");
}

void InvocationStore::Impl::StartWriter() {
  writer_ = std::thread([this] {
    SetThreadName("queue-writer");
    WriterLoop();
  });
}

InvocationStore::Impl::~Impl() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    writer_.join();
  }
}

void InvocationStore::Impl::Submit(Op op) {
  {
    std::unique_lock lock(mu_);
    if (!writer_exited_) {
      queue_.push_back(std::move(op));
      const bool wake = writer_idle_;
      lock.unlock();
      if (wake) cv_.notify_one();
      return;
    }
  }
  // Only reachable by a write submitted while the store is being destroyed (a programming error):
  // fail it rather than leave its caller waiting forever.
  assert(false && "InvocationStore write after destruction began");
  Error e(Errc::kUnavailable, "the invocation queue is shut down; restart inferd");
  if (op.done_value) op.done_value(e);
  if (op.done) op.done(e);
}

void InvocationStore::Impl::WriterLoop() {
  std::vector<Op> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writer_idle_ = true;
      cv_.wait(lock,
               [&] { return !queue_.empty() || stopping_ || writer_conn.db->CheckpointDue(); });
      writer_idle_ = false;
      if (writer_conn.db->CheckpointDue()) {
        // Between transactions, so no commit overtakes it; under load it takes the place of
        // (most of) the pacer's wait below.
        lock.unlock();
        writer_conn.db->FinishCheckpointIfDue();
        lock.lock();
        if (queue_.empty() && !stopping_) continue;
      }
      // Under sustained load, wait for more writes to share the commit (commit_pacer.h); writes
      // submitted meanwhile do not wake the writer.
      auto now = db::CommitPacer::Clock::now();
      if (auto wait = pacer.Wait(now); wait > wait.zero() && !stopping_) {
        cv_.wait_until(lock, now + wait, [&] { return stopping_; });
        now = db::CommitPacer::Clock::now();
      }
      pacer.Started(now);
      if (queue_.empty()) {  // stopping, and everything submitted has been committed
        writer_exited_ = true;
        return;
      }
      size_t n = std::min(queue_.size(), static_cast<size_t>(max_batch));
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

void InvocationStore::Impl::RunBatch(std::vector<Op>& batch) {
  std::vector<Result<int64_t>> results;
  results.reserve(batch.size());
  Status failed;  // the batch's SQLite failure, if any
  bool chunk_offered = false;
  int64_t endpoints_upto = 0;  // the endpoint chunk's end, when this transaction writes one
  pruned_ids.clear();
  {
    db::Transaction tx(*writer_conn.db);
    if (!tx.status().ok()) {
      failed = tx.status();
    } else {
      // The id chunk first, so that a prune in this batch also deletes the entries it writes.
      internal::IdIndex::Chunk chunk = ids->NextChunk();
      chunk_offered = chunk.due;
      if (chunk_offered) failed = WriteIdChunk(chunk);
      // Every committed row after the endpoint watermark, once there are enough of them.
      if (failed.ok() && last_seq - endpoints_through >= endpoint_index_rows) {
        endpoints_upto = last_seq;
        failed = WriteEndpointChunk(endpoints_upto);
      }
      bool sql_failed = false;
      for (auto& op : batch) {
        if (!failed.ok()) break;
        results.push_back(Apply(op, sql_failed));
        if (sql_failed) failed = results.back().error();
      }
      if (failed.ok() && failing_commits_.load(std::memory_order_acquire)) {
        std::lock_guard lock(mu_);
        if (fail_commits_) failed = *fail_commits_;
      }
      if (failed.ok()) failed = tx.Commit();
    }  // a failed batch rolls back here
  }
  if (chunk_offered) ids->ChunkDone(failed.ok());
  if (failed.ok() && endpoints_upto != 0) endpoints_through = endpoints_upto;
  // Entries of pruned rows still in memory would otherwise be written to the table later.
  if (failed.ok() && !pruned_ids.empty()) ids->Forget(pruned_ids);
  if (failed.ok()) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    writes_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
    // Findable by InferenceId before any callback runs (a Get after the 202 finds the row).
    std::vector<internal::IdIndex::Entry> inserted;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == OpKind::kInsert && results[i].ok()) {
        inserted.push_back({batch[i].id_hash, *results[i]});
        last_seq = std::max(last_seq, *results[i]);
      }
    }
    ids->Add(inserted);
  } else {
    failed_batches_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("invocation queue: a transaction of {} writes failed: {}", batch.size(),
                  failed.error().message);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    Result<int64_t> r = failed.ok() ? std::move(results[i]) : Result<int64_t>(failed.error());
    if (op.done_value) {
      op.done_value(std::move(r));
    } else if (op.done) {
      op.done(r.ok() ? OkStatus() : Status(std::move(r).error()));
    }
  }
}

Result<int64_t> InvocationStore::Impl::Apply(Op& op, bool& sql_failed) {
  auto& w = writer_conn;
  const Invocation& v = op.inv;
  auto update = [&](db::Stmt& s, const char* what) -> Result<int64_t> {
    int rc = s.Step();
    s.Reset();
    if (rc != db::Stmt::kDone) {
      sql_failed = true;
      return w.db->Fail(what);
    }
    if (w.db->Changes() == 0) return Explain(v.seq, what, sql_failed);
    return v.seq;
  };
  switch (op.kind) {
    case OpKind::kInsert: {
      const bool started = v.state == InvocationState::kStarted;
      if (!started && v.state != InvocationState::kQueued) {
        return Error(Errc::kInternal, "an invocation is inserted Queued or Started, not " +
                                          std::string(ToString(v.state)));
      }
      // The op outlives the Step, so its strings are bound without SQLite's copies.
      db::Stmt& s = *w.insert;
      s.Bind(static_cast<int64_t>(v.state));
      s.Bind(v.received_ms).Bind(static_cast<int64_t>(v.ttl_seconds)).BindView(v.region);
      s.BindView(op.endpoint_key)
          .Bind(op.id_hash)
          .BindView(v.endpoint)
          .BindView(v.inference_id)
          .BindView(v.output_id);
      s.Bind(static_cast<int64_t>(v.invocation_timeout_seconds));
      s.Bind(started ? v.attempts : 0).Bind(started ? v.started_ms : 0);
      s.BindView(started ? std::string_view(v.variant) : std::string_view(""));
      s.BindView(started ? std::string_view(v.instance) : std::string_view(""));
      s.BindView(v.content_type).BindView(v.accept).BindView(v.custom_attributes);
      s.BindView(v.input_location).BindView(v.output_location).BindView(v.failure_location);
      s.BindBlobView(v.inline_body);
      int rc = s.Step();
      s.Reset();
      if (rc != db::Stmt::kDone) {
        sql_failed = true;
        return w.db->Fail("insert invocation");
      }
      return static_cast<int64_t>(sqlite3_last_insert_rowid(w.db->handle()));
    }
    case OpKind::kStart: {
      db::Stmt& s = *w.start;
      s.Bind(v.attempts).Bind(v.variant).Bind(v.instance).Bind(v.started_ms).Bind(v.seq);
      return update(s, "start invocation");
    }
    case OpKind::kRequeue: {
      w.requeue->Bind(v.seq);
      return update(*w.requeue, "requeue invocation");
    }
    case OpKind::kFinish: {
      if (v.state != InvocationState::kCompleted && v.state != InvocationState::kFailed) {
        return Error(Errc::kInternal, "Finish needs state Completed or Failed, not " +
                                          std::string(ToString(v.state)));
      }
      db::Stmt& s = *w.finish;
      s.Bind(static_cast<int64_t>(v.state)).Bind(v.finished_ms).Bind(v.failure_reason);
      s.Bind(v.response_content_type).Bind(v.notified ? 1 : 0).Bind(v.seq);
      return update(s, "finish invocation");
    }
    case OpKind::kNotified: {
      w.notified->Bind(v.seq);
      auto r = update(*w.notified, "mark invocation notified");
      if (!r.ok() && !sql_failed) {
        spdlog::warn("invocation queue: MarkNotified({}) ignored: {}", v.seq, r.error().message);
      }
      return r;
    }
    case OpKind::kPrune:
      return ApplyPrune(op, sql_failed);
  }
  return Error(Errc::kInternal, "unknown queue write");
}

Result<int64_t> InvocationStore::Impl::Explain(int64_t seq, const char* what, bool& sql_failed) {
  db::Stmt& s = *writer_conn.state_of;
  s.Bind(seq);
  int rc = s.Step();
  int64_t state = rc == db::Stmt::kRow ? s.Int(0) : -1;
  s.Reset();
  if (rc == db::Stmt::kDone) {
    return Error(Errc::kNotFound, "Invocation " + std::to_string(seq) + " does not exist.");
  }
  if (rc != db::Stmt::kRow) {
    sql_failed = true;
    return writer_conn.db->Fail(what);
  }
  return Error(Errc::kInvalidState, std::string("Cannot ") + what + " " + std::to_string(seq) +
                                        ": it is " +
                                        std::string(ToString(internal::StateFromInt(state))) + ".");
}

// Deletes the rows PruneFinished chose on a read connection, checking the condition again.
Result<int64_t> InvocationStore::Impl::ApplyPrune(Op& op, bool& sql_failed) {
  auto& w = writer_conn;
  auto run = [&sql_failed](db::Stmt& s, const char* what) {
    Status st = RunOnce(s, what);
    sql_failed = sql_failed || !st.ok();
    return st;
  };
  int64_t deleted = 0;
  for (int64_t seq : op.seqs) {
    w.prune_delete->Bind(seq).Bind(op.inv.finished_ms);
    int rc = w.prune_delete->Step();
    const bool found = rc == db::Stmt::kRow;
    int64_t id_hash = 0;
    std::string region, endpoint_key;
    if (found) {
      id_hash = w.prune_delete->Int(0);
      region = w.prune_delete->Text(1);
      endpoint_key = w.prune_delete->Text(2);
      rc = w.prune_delete->Step();
    }
    w.prune_delete->Reset();
    if (rc != db::Stmt::kDone) {
      sql_failed = true;
      return w.db->Fail("prune invocations");
    }
    if (!found) continue;
    ++deleted;
    pruned_ids.push_back({id_hash, seq});
    // Its id entry, if already written to the table (RunBatch drops one still in memory once
    // this commits).
    w.ids_delete->Bind(id_hash).Bind(seq);
    if (Status st = run(*w.ids_delete, "prune the id index"); !st.ok()) return st.error();
    // Its endpoint entry, if already written (a row after the watermark has none).
    w.endpoints_delete->Bind(region).Bind(endpoint_key).Bind(seq);
    if (Status st = run(*w.endpoints_delete, "prune the endpoint index"); !st.ok()) {
      return st.error();
    }
  }
  return deleted;
}

}  // namespace inferd::queue
