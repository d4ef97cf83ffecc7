// Dispatcher: the asynchronous inference pipeline (spec §2.2, §3, §4, §6, §9). It accepts
// invocations (durably, through queue::InvocationStore), keeps one first-in-first-out queue per
// endpoint in memory, and runs each invocation on a healthy instance of the endpoint:
//
//   Accept → Insert (group commit) → 202
//   queued ──slot free on an instance──► [expired? → failure "expired"]
//          → MarkStarted → input (store or inline) streamed into POST /invocations
//          → answer streamed into the output object (2xx) or the failure object (non-2xx)
//          → Finish → notification (SNS outbox, idempotent per invocation) → MarkNotified
//
// Scheduling: per endpoint FIFO; the variant is chosen by current weights among variants with a
// free slot; the instance by least outstanding work; never more than
// MaxConcurrentInvocationsPerInstance (or the documented default) in flight on one instance.
// With no capacity (0 instances included) invocations wait and drain when capacity returns.
//
// Exactly one result per accepted invocation, across crashes: the start is durable before a
// result object is written; results are written atomically to keys fixed at acceptance; on
// restart a Started invocation whose output or failure object exists is finished from it, not
// run again; notifications are published with the invocation as idempotency key. See
// docs/sagemaker-compat.md ("Delivery guarantee").
//
// Endpoint knowledge comes from the catalog's endpoint observer (OnEndpointChange) and, at
// Start(), from the catalog store: the dispatcher keeps its own parsed snapshot (no catalog read
// or JSON parse per invocation).
//
// Thread-safety: every public method may be called from any thread. Accept() never blocks
// (callable on an I/O thread); Describe/List/Cancel/InvokeSync block (blocking pool).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/store.h"
#include "common/clock.h"
#include "common/result.h"
#include "queue/invocation_store.h"

namespace inferd::store {
class ObjectStore;
}
namespace inferd::notify {
class Notifier;
}

namespace inferd::dispatch {

// A running instance of an endpoint, as the fleet reports it.
struct InstanceRef {
  std::string variant;
  std::string host;  // "127.0.0.1"
  uint16_t port = 0;
};
// The healthy instances of (region, endpoint name); called often (cheap, thread-safe).
using InstancesFn =
    std::function<std::vector<InstanceRef>(const std::string& region, const std::string& endpoint)>;

struct DispatchOptions {
  std::string account_id = "000000000000";
  // Invocations in flight at once over all endpoints (threads running the pipeline).
  int worker_threads = 64;
  // MaxConcurrentInvocationsPerInstance when an endpoint's AsyncInferenceConfig sets none (and
  // for endpoints without AsyncInferenceConfig, for InvokeEndpoint).
  int default_max_concurrency_per_instance = 4;
  // An instance that dies or resets the connection mid-request: the invocation runs again on
  // another instance, at most this many attempts in all, then fails with the reason.
  int max_attempts = 3;
  // How often queued invocations are checked against their RequestTTLSeconds.
  std::chrono::milliseconds expiry_sweep_interval{1000};
  // Finished, notified invocations are kept this long for status lookups, then pruned.
  std::chrono::hours retention{24};
  // Connect timeout to instances.
  std::chrono::milliseconds connect_timeout{2000};
  // InvokeEndpoint (real-time): how long the container may take (SageMaker: 60 s).
  std::chrono::milliseconds sync_timeout{60000};

  // ---- added with the implementation (all optional) ----
  // Threads that end queued invocations without running them (expired, endpoint deleted),
  // publish notifications owed after a restart, retry failed publishes and send
  // TestNotifications: never competing with model calls for worker_threads.
  int aux_threads = 4;
  // With backlog but no free slot, how often the healthy instances are asked for again (Wake()
  // makes it sooner).
  std::chrono::milliseconds capacity_poll_interval{100};
  // An instance that refused or dropped a request gets no new work for this long (the fleet
  // notices a dead instance within a few hundred milliseconds and replaces it).
  std::chrono::milliseconds failed_instance_cooldown{1000};
  // Container answers larger than this fail (SageMaker: async payloads up to 1 GB).
  uint64_t max_response_bytes = 1ull << 30;
  // Answers with a Content-Length up to this are held in memory and stored after the call;
  // larger or chunked ones stream into the object store while they arrive.
  size_t memory_response_bytes = 1 << 20;
  // A failed notification publish is retried (backoff 1 s doubling to 60 s) for this long, then
  // given up (logged; counted in NotificationFailures at every failed attempt).
  std::chrono::milliseconds notification_retry_for{3600 * 1000};
  // How long Wait-for-slot lasts for InvokeEndpoint when every instance is at its cap, before
  // the call fails with ThrottlingException.
  std::chrono::milliseconds sync_slot_wait{5000};

  // kValidation naming the bad field.
  Status Validate() const;
};

// InvokeEndpointAsync's members after the front end checked their formats and ranges.
struct AcceptRequest {
  std::string region;
  std::string endpoint;
  std::string inference_id;  // "" → a generated UUID
  std::string input_location;
  std::string inline_body;  // exclusive with input_location
  std::string content_type, accept, custom_attributes;
  std::string output_path_extension;  // "" = none
  std::string filename;               // "" = none
  int32_t ttl_seconds = 21600;
  int32_t invocation_timeout_seconds = 900;
};
struct Accepted {
  std::string inference_id;
  std::string output_location;
  std::string failure_location;  // "" when the endpoint has no S3FailurePath
};

// InvokeEndpoint (real-time) request and answer.
struct SyncRequest {
  std::string region;
  std::string endpoint;
  std::string body;
  std::string content_type, accept, custom_attributes;
  std::string target_variant;  // "" = by weight
  std::string inference_id;
};
struct SyncResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string variant;
  std::string custom_attributes;  // from the container's X-Amzn-SageMaker-Custom-Attributes
};

// One invocation as the /inferd/ API shows it: the stored record plus live facts.
struct InvocationStatus {
  queue::Invocation invocation;
  // While in progress: where it runs and since when.
  std::string instance;
  std::optional<int64_t> queue_position;  // 0-based, while queued (when known)
};

class Dispatcher {
 public:
  Dispatcher(DispatchOptions options, queue::InvocationStore& queue, catalog::CatalogStore& catalog,
             store::ObjectStore& objects, notify::Notifier& notifier, InstancesFn instances,
             const Clock& clock);
  ~Dispatcher();  // Stop(now)
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Loads the endpoints from the catalog and the unfinished invocations from the queue
  // (finishing recovered ones whose result already exists, re-queueing the rest, publishing owed
  // notifications), then starts the threads.
  Status Start();
  // Stops taking new work; invocations in flight get until `deadline` to finish, after which
  // their requests are abandoned (they stay Started and are recovered on the next Start).
  void Stop(std::chrono::steady_clock::time_point deadline);

  // The catalog's endpoint observer (catalog::Catalog::SetEndpointObserver). Sends the
  // TestNotification on kCreated/kUpdated/kCapacityUpdated; fails the queued invocations of a
  // deleted endpoint ("endpoint deleted", with notifications); moves queued work to the new
  // configuration after an update. Returns quickly (work is handed to the dispatcher's threads).
  void OnEndpointChange(catalog::EndpointChange change, const catalog::Resource& endpoint);
  // Capacity may have changed (the fleet started or lost instances): look again soon.
  void Wake();

  // InvokeEndpointAsync. Errors (runtime ValidationError texts): unknown endpoint
  // ("Endpoint <name> of account <account> not found."), an endpoint without
  // AsyncInferenceConfig, an endpoint being deleted. `done` runs once, on another thread, after
  // the invocation is durable (or with the error).
  void Accept(AcceptRequest request, std::function<void(Result<Accepted>)> done);

  // InvokeEndpoint on an endpoint without AsyncInferenceConfig (ValidationError on an async
  // one). The container's non-2xx answer is an Error with aws_code "ModelError". Blocking.
  Result<SyncResponse> InvokeSync(const SyncRequest& request);

  // ---- the /inferd/ API (blocking) ----
  Result<InvocationStatus> Describe(const std::string& region, const std::string& endpoint,
                                    const std::string& inference_id);
  // Queued and in-progress invocations of an endpoint, oldest first (states as filter).
  Result<std::vector<InvocationStatus>> List(const std::string& region, const std::string& endpoint,
                                             const std::vector<queue::InvocationState>& states,
                                             int64_t after_seq, int limit);
  // A queued invocation ends as a failure "cancelled" (with its notification). kInvalidState when
  // it already started or finished; kNotFound when unknown.
  Result<InvocationStatus> Cancel(const std::string& region, const std::string& endpoint,
                                  const std::string& inference_id);

  // GET /metrics: spec §6's metrics in Prometheus text exposition format, labelled
  // {endpoint, variant}.
  std::string RenderMetrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::dispatch
