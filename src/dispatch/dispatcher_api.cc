// Dispatcher: InvokeEndpoint (real-time) and the /inferd/ invocation API.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "dispatch/dispatcher_impl.h"

namespace inferd::dispatch {

namespace {

using queue::InvocationState;

Error NotFound(const std::string& endpoint, const std::string& id) {
  return Error(Errc::kNotFound,
               fmt::format("Invocation {} of endpoint {} not found.", id, endpoint));
}

// The newest invocation with this InferenceId on the endpoint; kNotFound when there is none.
Result<queue::Invocation> Lookup(queue::InvocationStore& store, const std::string& region,
                                 const std::string& endpoint, const std::string& inference_id) {
  auto rec = store.Get(region, endpoint, inference_id);
  if (!rec.ok()) return std::move(rec).error();
  if (!*rec) return NotFound(endpoint, inference_id);
  return std::move(**rec);
}

}  // namespace

Result<SyncResponse> Dispatcher::InvokeSync(const SyncRequest& request) {
  Impl& d = *impl_;
  auto view = d.directory.Find(request.region, request.endpoint);
  if (!view || view->deleting) {
    return Error(Errc::kValidation, fmt::format("Endpoint {} of account {} not found.",
                                                request.endpoint, d.options.account_id));
  }
  if (view->async) {
    return Error(Errc::kValidation,
                 fmt::format("Endpoint {} of account {} is configured for asynchronous inference "
                             "(it has an AsyncInferenceConfig) and accepts only "
                             "InvokeEndpointAsync.",
                             view->name, d.options.account_id));
  }
  if (!request.target_variant.empty() && !view->HasVariant(request.target_variant)) {
    return Error(Errc::kValidation,
                 fmt::format("The target variant {} is not a production variant of endpoint {}.",
                             request.target_variant, view->name));
  }
  const std::string key = EndpointKey(view->region, view->name);
  Capacity cap = d.CapacityOf(*view);
  const bool any = std::any_of(cap.instances.begin(), cap.instances.end(), [&](const auto& i) {
    return request.target_variant.empty() || i.variant == request.target_variant;
  });
  if (!any) {
    return Error(
        Errc::kThrottled,
        fmt::format("Endpoint {} has no healthy instance{} to serve the request yet. "
                    "Retry once it is InService.",
                    view->name,
                    request.target_variant.empty() ? "" : " of variant " + request.target_variant),
        "ModelNotReadyException");
  }
  // A slot on the least busy instance; wait a while when every instance is at its cap.
  std::optional<std::pair<InstanceRef, SlotLease>> slot;
  const auto give_up = std::chrono::steady_clock::now() + d.options.sync_slot_wait;
  for (;;) {
    slot = d.scheduler.AcquireDirect(key, cap, request.target_variant, d.NowMs());
    if (slot) break;
    std::unique_lock lock(d.mu);
    if (d.idle_cv.wait_until(lock, give_up) == std::cv_status::timeout) {
      return Error(Errc::kThrottled,
                   fmt::format("Every instance of endpoint {} is serving its maximum of {} "
                               "concurrent requests. Retry later.",
                               view->name, cap.max_per_instance));
    }
  }
  const InstanceRef instance = slot->first;

  http::ClientRequest req = ModelRequest(instance, request.content_type, request.accept,
                                         request.custom_attributes, request.inference_id);
  req.body = request.body;
  req.timeout = d.options.sync_timeout;
  req.cancel = &d.cancel;
  const auto started = std::chrono::steady_clock::now();
  auto res = d.client.Do(req);
  slot->second.Release();
  if (!res.ok()) {
    const Error& e = res.error();
    if (http::IsRequestTimeout(e)) {
      return Error(Errc::kModelError,
                   "Your invocation timed out while waiting for a response from container "
                   "primary. Review the latency metrics for each container in Amazon CloudWatch, "
                   "resolve the issue, and try again.",
                   "ModelError");
    }
    d.CoolDown(InstanceKey(instance));
    return Error(Errc::kUnavailable,
                 fmt::format("The model instance {} of endpoint {} failed before answering ({}). "
                             "Retry the request.",
                             InstanceKey(instance), view->name, e.message));
  }
  d.metrics.Observe(Summary::kModelLatency, view->name, instance.variant,
                    static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count()));
  const int status = res->status;
  if (status >= 400 && status < 500) {
    d.metrics.Add(Counter::kInvocation4xxErrors, view->name, instance.variant);
  } else if (status >= 500) {
    d.metrics.Add(Counter::kInvocation5xxErrors, view->name, instance.variant);
  }
  if (status < 200 || status >= 300) {
    return Error(Errc::kModelError,
                 fmt::format("Received {} error ({}) from primary with message \"{}\". See the "
                             "logs of endpoint {} (inferd logs {}) in account {} for more "
                             "information.",
                             status >= 500 ? "server" : "client", status, res->body, view->name,
                             view->name, d.options.account_id),
                 "ModelError");
  }
  SyncResponse out;
  out.status = status;
  out.content_type = std::string(res->headers.Get("Content-Type").value_or(""));
  out.body = std::move(res->body);
  out.variant = instance.variant;
  out.custom_attributes =
      std::string(res->headers.Get("X-Amzn-SageMaker-Custom-Attributes").value_or(""));
  return out;
}

InvocationStatus Dispatcher::Impl::StatusOf(queue::Invocation inv) {
  InvocationStatus status;
  if (inv.state == InvocationState::kQueued) {
    status.queue_position = scheduler.Position(EndpointKey(inv.region, inv.endpoint), inv.seq);
  } else if (inv.state == InvocationState::kStarted) {
    std::lock_guard lock(mu);
    auto it = running.find(inv.seq);
    status.instance = it != running.end() ? it->second : inv.instance;
  }
  status.invocation = std::move(inv);
  return status;
}

Result<InvocationStatus> Dispatcher::Describe(const std::string& region,
                                              const std::string& endpoint,
                                              const std::string& inference_id) {
  auto inv = Lookup(impl_->queue, region, endpoint, inference_id);
  if (!inv.ok()) return std::move(inv).error();
  return impl_->StatusOf(std::move(inv).value());
}

Result<std::vector<InvocationStatus>> Dispatcher::List(
    const std::string& region, const std::string& endpoint,
    const std::vector<queue::InvocationState>& states, int64_t after_seq, int limit) {
  Impl& d = *impl_;
  queue::InvocationStore::ListQuery query;
  query.region = region;
  query.endpoint = endpoint;
  query.states = states.empty() ? std::vector<InvocationState>{InvocationState::kQueued,
                                                               InvocationState::kStarted}
                                : states;
  query.after_seq = after_seq;
  query.limit = limit;
  auto list = d.queue.List(query);
  if (!list.ok()) return std::move(list).error();
  std::vector<InvocationStatus> out;
  out.reserve(list->size());
  for (queue::Invocation& inv : *list) out.push_back(d.StatusOf(std::move(inv)));
  return out;
}

Result<InvocationStatus> Dispatcher::Cancel(const std::string& region, const std::string& endpoint,
                                            const std::string& inference_id) {
  Impl& d = *impl_;
  auto inv = Lookup(d.queue, region, endpoint, inference_id);
  if (!inv.ok()) return std::move(inv).error();
  auto not_queued = [&](std::string_view state) {
    return Error(Errc::kInvalidState,
                 fmt::format("Invocation {} of endpoint {} is {}: only queued invocations can be "
                             "cancelled.",
                             inference_id, endpoint, state));
  };
  if (inv->state != InvocationState::kQueued) return not_queued(queue::ToString(inv->state));
  const std::string key = EndpointKey(inv->region, inv->endpoint);
  if (!d.scheduler.Remove(key, inv->seq)) return not_queued("being dispatched");
  auto finished =
      d.EndQueued(std::move(inv).value(), d.directory.FindKey(key), EndKind::kCancelled);
  if (!finished) return not_queued("no longer queued");
  InvocationStatus status;
  status.invocation = std::move(*finished);
  return status;
}

}  // namespace inferd::dispatch
