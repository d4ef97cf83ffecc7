#include "queue/invocation_store.h"

#include "common/strings.h"
#include "queue/store_internal.h"

namespace inferd::queue {

namespace {
// Enough for the blocking pool's Describe/List calls to run beside a LoadPending.
constexpr int kReadConnections = 2;
}  // namespace

std::string_view ToString(InvocationState state) {
  switch (state) {
    case InvocationState::kQueued:
      return "Queued";
    case InvocationState::kStarted:
      return "InProgress";
    case InvocationState::kCompleted:
      return "Completed";
    case InvocationState::kFailed:
      return "Failed";
  }
  return "Failed";
}

std::optional<InvocationState> ParseInvocationState(std::string_view name) {
  if (name == "Queued") return InvocationState::kQueued;
  if (name == "InProgress") return InvocationState::kStarted;
  if (name == "Completed") return InvocationState::kCompleted;
  if (name == "Failed") return InvocationState::kFailed;
  return std::nullopt;
}

Result<std::unique_ptr<InvocationStore>> InvocationStore::Open(
    const InvocationStoreOptions& options) {
  for (auto [name, value] : {std::pair{"max_batch", options.max_batch},
                             std::pair{"id_flush_rows", options.id_flush_rows},
                             std::pair{"id_chunk_rows", options.id_chunk_rows},
                             std::pair{"id_key_ranges", options.id_key_ranges},
                             std::pair{"endpoint_index_rows", options.endpoint_index_rows},
                             std::pair{"commit_burst", options.commit_burst},
                             std::pair{"checkpoint_frames", options.checkpoint_frames}}) {
    if (value < 1) {
      return Error(Errc::kValidation, std::string("invocation queue: ") + name +
                                          " must be at least 1, not " + std::to_string(value));
    }
  }
  if (options.commit_interval.count() < 0) {
    return Error(Errc::kValidation, "invocation queue: commit_interval must not be negative");
  }
  auto impl = std::make_unique<Impl>();
  impl->max_batch = options.max_batch;
  impl->pacer = db::CommitPacer(options.commit_interval, options.commit_burst);
  impl->endpoint_index_rows = options.endpoint_index_rows;
  impl->ids = std::make_unique<internal::IdIndex>(static_cast<size_t>(options.id_flush_rows),
                                                  static_cast<size_t>(options.id_chunk_rows),
                                                  static_cast<size_t>(options.id_key_ranges));
  INFERD_RETURN_IF_ERROR(
      impl->OpenWriter(options.path, options.checkpoint_frames));  // creates the schema
  INFERD_RETURN_IF_ERROR(impl->OpenReaders(options.path, kReadConnections));
  impl->StartWriter();
  return std::unique_ptr<InvocationStore>(new InvocationStore(std::move(impl)));
}

InvocationStore::InvocationStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

InvocationStore::~InvocationStore() = default;

void InvocationStore::Insert(Invocation invocation, std::function<void(Result<int64_t>)> done) {
  internal::Op op;
  op.kind = internal::OpKind::kInsert;
  op.endpoint_key = AsciiLower(invocation.endpoint);  // here, on the many callers' threads
  op.id_hash = internal::IdHash(invocation.region, op.endpoint_key, invocation.inference_id);
  op.inv = std::move(invocation);
  op.done_value = std::move(done);
  impl_->Submit(std::move(op));
}

void InvocationStore::MarkStarted(int64_t seq, int attempts, std::string variant,
                                  std::string instance, int64_t started_ms, Done done) {
  internal::Op op;
  op.kind = internal::OpKind::kStart;
  op.inv.seq = seq;
  op.inv.attempts = attempts;
  op.inv.variant = std::move(variant);
  op.inv.instance = std::move(instance);
  op.inv.started_ms = started_ms;
  op.done = std::move(done);
  impl_->Submit(std::move(op));
}

void InvocationStore::Requeue(int64_t seq, Done done) {
  internal::Op op;
  op.kind = internal::OpKind::kRequeue;
  op.inv.seq = seq;
  op.done = std::move(done);
  impl_->Submit(std::move(op));
}

void InvocationStore::Finish(const Invocation& finished, Done done) {
  internal::Op op;
  op.kind = internal::OpKind::kFinish;
  op.inv.seq = finished.seq;
  op.inv.state = finished.state;
  op.inv.finished_ms = finished.finished_ms;
  op.inv.failure_reason = finished.failure_reason;
  op.inv.response_content_type = finished.response_content_type;
  op.inv.notified = finished.notified;
  op.done = std::move(done);
  impl_->Submit(std::move(op));
}

void InvocationStore::MarkNotified(int64_t seq) {
  internal::Op op;
  op.kind = internal::OpKind::kNotified;
  op.inv.seq = seq;
  impl_->Submit(std::move(op));
}

void InvocationStore::FailCommitsForTesting(std::optional<Error> error) {
  std::lock_guard lock(impl_->mu_);
  impl_->failing_commits_.store(error.has_value(), std::memory_order_release);
  impl_->fail_commits_ = std::move(error);
}

InvocationStoreStats InvocationStore::Stats() const {
  InvocationStoreStats s;
  s.commits = impl_->commits_.load(std::memory_order_relaxed);
  s.writes = impl_->writes_.load(std::memory_order_relaxed);
  s.failed_batches = impl_->failed_batches_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace inferd::queue
