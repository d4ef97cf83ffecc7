// Reads through a small pool of read connections (WAL: readers see the last commit and never
// block the writer), and PruneFinished, which chooses rows here and deletes them via the writer.
#include <algorithm>
#include <future>
#include <string>

#include "common/strings.h"
#include "queue/store_internal.h"

namespace inferd::queue {

using db::Stmt;

namespace internal {

InvocationState StateFromInt(int64_t v) {
  switch (v) {
    case 0:
      return InvocationState::kQueued;
    case 1:
      return InvocationState::kStarted;
    case 2:
      return InvocationState::kCompleted;
    default:
      return InvocationState::kFailed;
  }
}

Invocation ReadInvocation(Stmt& s) {
  Invocation v;
  v.seq = s.Int(0);
  v.state = StateFromInt(s.Int(1));
  v.notified = s.Int(2) != 0;
  v.received_ms = s.Int(3);
  v.ttl_seconds = static_cast<int32_t>(s.Int(4));
  v.region = s.Text(5);
  v.endpoint = s.Text(6);
  v.inference_id = s.Text(7);
  v.output_id = s.Text(8);
  v.invocation_timeout_seconds = static_cast<int32_t>(s.Int(9));
  v.attempts = static_cast<int>(s.Int(10));
  v.started_ms = s.Int(11);
  v.finished_ms = s.Int(12);
  v.variant = s.Text(13);
  v.instance = s.Text(14);
  v.failure_reason = s.Text(15);
  v.response_content_type = s.Text(16);
  v.content_type = s.Text(17);
  v.accept = s.Text(18);
  v.custom_attributes = s.Text(19);
  v.input_location = s.Text(20);
  v.output_location = s.Text(21);
  v.failure_location = s.Text(22);
  v.inline_body = s.Blob(23);
  return v;
}

}  // namespace internal

namespace {

// Rewinds a cached statement when a read ends, however it ends: a statement left mid-result
// would keep its read transaction (and the WAL) open.
struct Rewind {
  Stmt& s;
  ~Rewind() { s.Reset(); }
};

Result<std::optional<Invocation>> ReadOne(Stmt& s, const char* what) {
  int rc = s.Step();
  if (rc == Stmt::kRow) return std::optional<Invocation>(internal::ReadInvocation(s));
  if (rc == Stmt::kDone) return std::optional<Invocation>();
  return s.Fail(what);
}

}  // namespace

Status InvocationStore::Impl::OpenReaders(const std::filesystem::path& path, int count) {
  const std::string cols = internal::kColumns;
  for (int i = 0; i < count; ++i) {
    auto db = db::Database::Open(path, "invocation queue database", nullptr);
    if (!db.ok()) return std::move(db).error();
    auto r = std::make_unique<internal::Reader>();
    r->db = std::move(db).value();
    auto prepare = [&](std::unique_ptr<Stmt>& s, const std::string& sql) -> Status {
      s = std::make_unique<Stmt>(*r->db, sql);
      if (!s->ok()) return r->db->Fail("prepare " + sql);
      return OkStatus();
    };
    INFERD_RETURN_IF_ERROR(
        prepare(r->by_seq, "SELECT " + cols + " FROM invocations WHERE seq = ?"));
    // One match on the row's strings for both of Get's sources of candidate seqs.
    const std::string same_id = " AND region = ? AND endpoint_key = ? AND inference_id = ?";
    INFERD_RETURN_IF_ERROR(prepare(
        r->by_id, "SELECT " + cols +
                      " FROM invocations WHERE seq IN (SELECT seq FROM invocation_ids WHERE "
                      "id_hash = ?)" +
                      same_id + " ORDER BY seq DESC LIMIT 1"));
    INFERD_RETURN_IF_ERROR(
        prepare(r->by_seq_and_id, "SELECT " + cols + " FROM invocations WHERE seq = ?" + same_id));
    // The states filter is a bit mask (bit n = state n), so one cached statement serves all.
    INFERD_RETURN_IF_ERROR(prepare(r->list_indexed, "SELECT " + cols + internal::kListIndexedFrom));
    INFERD_RETURN_IF_ERROR(prepare(r->list_tail, "SELECT " + cols + internal::kListTailFrom));
    INFERD_RETURN_IF_ERROR(prepare(
        r->pending,
        "SELECT seq, state, notified, received_ms, ttl_seconds, region, endpoint_key FROM "
        "invocations INDEXED BY invocations_pending WHERE state < 2 OR notified = 0 ORDER BY "
        "seq"));
    INFERD_RETURN_IF_ERROR(prepare(r->max_seq, "SELECT MAX(seq) FROM invocations"));
    INFERD_RETURN_IF_ERROR(prepare(
        r->prune_select,
        "SELECT seq FROM invocations WHERE seq > ? AND seq < ? AND state >= 2 AND notified = 1 "
        "AND finished_ms < ? ORDER BY seq LIMIT ?"));
    free_readers_.push_back(r.get());
    readers.push_back(std::move(r));
  }
  return OkStatus();
}

Result<std::optional<Invocation>> InvocationStore::GetBySeq(int64_t seq) {
  return impl_->WithReader([&](internal::Reader& r) {
    Rewind rewind{*r.by_seq};
    r.by_seq->Bind(seq);
    return ReadOne(*r.by_seq, "get invocation");
  });
}

Result<std::optional<Invocation>> InvocationStore::Get(const std::string& region,
                                                       const std::string& endpoint,
                                                       const std::string& inference_id) {
  std::string key = AsciiLower(endpoint);
  const int64_t id_hash = internal::IdHash(region, key, inference_id);
  // Rows whose id is still in memory first (the newest), then the table.
  std::vector<int64_t> recent;
  impl_->ids->Lookup(id_hash, recent);
  std::sort(recent.rbegin(), recent.rend());
  return impl_->WithReader([&](internal::Reader& r) -> Result<std::optional<Invocation>> {
    std::optional<Invocation> newest;
    for (int64_t seq : recent) {
      Rewind rewind{*r.by_seq_and_id};
      r.by_seq_and_id->Bind(seq).Bind(region).Bind(key).Bind(inference_id);
      auto row = ReadOne(*r.by_seq_and_id, "get invocation by inference id");
      if (!row.ok()) return row;
      if (*row) {
        newest = std::move(*row);
        break;
      }
    }
    Rewind rewind{*r.by_id};
    r.by_id->Bind(id_hash).Bind(region).Bind(key).Bind(inference_id);
    auto stored = ReadOne(*r.by_id, "get invocation by inference id");
    if (!stored.ok()) return stored;
    if (*stored && (!newest || (*stored)->seq > newest->seq)) return stored;
    return newest;
  });
}

Result<std::vector<Invocation>> InvocationStore::List(const ListQuery& query) {
  std::vector<Invocation> out;
  if (query.limit <= 0) return out;
  int64_t mask = 0;
  for (InvocationState s : query.states) mask |= int64_t{1} << static_cast<int>(s);
  if (query.states.empty()) mask = 0xF;
  std::string key = AsciiLower(query.endpoint);
  return impl_->WithReader([&](internal::Reader& r) -> Result<std::vector<Invocation>> {
    // Both parts read one snapshot: the writer may move the endpoint watermark in between.
    db::ReadTransaction snapshot(*r.db);
    INFERD_RETURN_IF_ERROR(snapshot.status());
    for (Stmt* part : {r.list_indexed.get(), r.list_tail.get()}) {
      const int64_t left = query.limit - static_cast<int64_t>(out.size());
      if (left <= 0) break;
      Stmt& s = *part;
      Rewind rewind{s};
      s.Bind(query.region).Bind(key).Bind(query.after_seq).Bind(mask).Bind(left);
      int rc;
      while ((rc = s.Step()) == Stmt::kRow) out.push_back(internal::ReadInvocation(s));
      if (rc != Stmt::kDone) return s.Fail("list invocations");
    }
    return std::move(out);
  });
}

Status InvocationStore::LoadPending(const std::function<void(PendingRef&&)>& each) {
  return impl_->WithReader([&](internal::Reader& r) -> Status {
    Stmt& s = *r.pending;
    Rewind rewind{s};
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) {
      PendingRef p;
      p.seq = s.Int(0);
      p.state = internal::StateFromInt(s.Int(1));
      p.notified = s.Int(2) != 0;
      p.received_ms = s.Int(3);
      p.ttl_seconds = static_cast<int32_t>(s.Int(4));
      p.region = s.Text(5);
      p.endpoint_key = s.Text(6);
      each(std::move(p));
    }
    if (rc != Stmt::kDone) return s.Fail("load pending invocations");
    return OkStatus();
  });
}

Result<int64_t> InvocationStore::PruneFinished(int64_t before_ms) {
  if (std::this_thread::get_id() == impl_->writer_.get_id()) {
    return Error(Errc::kInternal,
                 "PruneFinished called from a queue write callback (it would wait for itself)");
  }
  // The newest row stays: SQLite gives a new row max(seq)+1, and a pruned newest seq would be
  // handed out again.
  auto keep = impl_->WithReader([&](internal::Reader& r) -> Result<int64_t> {
    Rewind rewind{*r.max_seq};
    if (r.max_seq->Step() != Stmt::kRow) return r.max_seq->Fail("read the newest seq");
    return r.max_seq->Int(0);
  });
  if (!keep.ok()) return std::move(keep).error();
  int64_t after = 0;
  int64_t total = 0;
  for (;;) {
    auto chunk = impl_->WithReader([&](internal::Reader& r) -> Result<std::vector<int64_t>> {
      Stmt& s = *r.prune_select;
      Rewind rewind{s};
      s.Bind(after).Bind(*keep).Bind(before_ms).Bind(internal::kPruneChunk);
      std::vector<int64_t> seqs;
      int rc;
      while ((rc = s.Step()) == Stmt::kRow) seqs.push_back(s.Int(0));
      if (rc != Stmt::kDone) return s.Fail("select invocations to prune");
      return seqs;
    });
    if (!chunk.ok()) return std::move(chunk).error();
    if (chunk->empty()) break;
    after = chunk->back();
    bool last = chunk->size() < static_cast<size_t>(internal::kPruneChunk);

    std::promise<Result<int64_t>> promise;
    auto future = promise.get_future();
    internal::Op op;
    op.kind = internal::OpKind::kPrune;
    op.inv.finished_ms = before_ms;
    op.seqs = std::move(chunk).value();
    op.done_value = [&promise](Result<int64_t> r) { promise.set_value(std::move(r)); };
    impl_->Submit(std::move(op));
    Result<int64_t> deleted = future.get();
    if (!deleted.ok()) return std::move(deleted).error();
    total += *deleted;
    if (last) break;
  }
  return total;
}

}  // namespace inferd::queue
