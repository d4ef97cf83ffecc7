// Dispatcher: start-up recovery (Start → Recover) of what the store says is unfinished.
#include <spdlog/spdlog.h>

#include <future>

#include "dispatch/dispatcher_impl.h"
#include "dispatch/reasons.h"

namespace inferd::dispatch {

using queue::InvocationState;

Status Dispatcher::Impl::Recover() {
  auto all = catalog.All(catalog::Kind::kEndpoint);
  if (!all.ok()) return std::move(all).error();
  for (const catalog::Resource& r : *all) {
    auto view = ParseEndpoint(r);
    if (view.ok()) {
      directory.Put(*view);
    } else {
      spdlog::error("dispatch: endpoint {}: {}", r.name, view.error().message);
    }
  }
  std::vector<int64_t> started, owed;
  size_t queued = 0;
  Status loaded = queue.LoadPending([&](queue::PendingRef&& p) {
    switch (p.state) {
      case InvocationState::kQueued:
        scheduler.Push(EndpointKey(p.region, p.endpoint_key),
                       {p.seq, p.received_ms, p.ttl_seconds});
        ++queued;
        break;
      case InvocationState::kStarted:
        started.push_back(p.seq);
        break;
      default:
        owed.push_back(p.seq);
        break;
    }
  });
  INFERD_RETURN_IF_ERROR(loaded);
  const size_t owed_before = owed.size();
  for (int64_t seq : started) RecoverStarted(seq, owed);
  if (queued + started.size() + owed_before > 0) {
    spdlog::info(
        "dispatch: recovered {} queued and {} started invocation(s); {} notification(s) owed",
        queued, started.size(), owed.size());
  }
  for (int64_t seq : owed) {
    Post([this, seq] { NotifyFromStore(seq, std::nullopt); });
  }
  return OkStatus();
}

void Dispatcher::Impl::RecoverStarted(int64_t seq, std::vector<int64_t>& owed) {
  auto rec = queue.GetBySeq(seq);
  if (!rec.ok() || !*rec) {
    spdlog::error("dispatch: cannot read started invocation #{}: {}", seq,
                  rec.ok() ? "gone" : rec.error().message);
    return;
  }
  queue::Invocation inv = std::move(**rec);
  if (inv.state != InvocationState::kStarted) return;
  auto finish = [&](InvocationState state, std::string content_type, std::string reason) {
    Status st = Finish(inv, state, std::move(reason), std::move(content_type));
    if (!st.ok()) {
      spdlog::error("dispatch: invocation {}: could not record its end: {}", inv.inference_id,
                    st.error().message);
      return;
    }
    owed.push_back(seq);
  };
  // A result object written before the crash is the result: the invocation is not run again.
  auto output = pipeline.HeadOwned(inv.output_location, inv.output_id);
  if (output.ok()) {
    spdlog::info("dispatch: invocation {} completed before the restart; not run again",
                 inv.inference_id);
    finish(InvocationState::kCompleted, output->attributes.content_type, "");
    return;
  }
  auto failure = pipeline.HeadOwned(inv.failure_location, inv.output_id);
  if (failure.ok()) {
    spdlog::info("dispatch: invocation {} failed before the restart; not run again",
                 inv.inference_id);
    std::string reason = HeaderOf(*failure, kFailureReasonHeader).value_or(reasons::Unrecorded());
    std::string content_type = failure->attributes.content_type;
    finish(InvocationState::kFailed, content_type == kReasonContentType ? "" : content_type,
           reason);
    return;
  }
  for (const auto* e : {&output, &failure}) {
    if (!e->ok() && e->error().code != Errc::kNotFound) {
      spdlog::warn(
          "dispatch: invocation {}: cannot tell whether its result exists ({}); running "
          "it again (the same keys are overwritten)",
          inv.inference_id, e->error().message);
    }
  }
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  queue.Requeue(seq, [promise](Status s) { promise->set_value(std::move(s)); });
  Status st = future.get();
  if (!st.ok()) {
    spdlog::error("dispatch: invocation {} could not be queued again: {}", inv.inference_id,
                  st.error().message);
    return;
  }
  scheduler.Push(EndpointKey(inv.region, inv.endpoint),
                 {inv.seq, inv.received_ms, inv.ttl_seconds});
}

}  // namespace inferd::dispatch
