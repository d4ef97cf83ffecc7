// Dispatcher: construction, lifecycle, acceptance, endpoint changes and metrics.
#include "dispatch/dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "common/ids.h"
#include "common/thread_name.h"
#include "dispatch/dispatcher_impl.h"
#include "dispatch/naming.h"
#include "dispatch/notification.h"
#include "notify/notifier.h"

namespace inferd::dispatch {

Status DispatchOptions::Validate() const {
  auto bad = [](const std::string& what) {
    return Status(Error(Errc::kValidation, "dispatch options: " + what));
  };
  if (worker_threads < 1) return bad("worker_threads must be at least 1");
  if (aux_threads < 1) return bad("aux_threads must be at least 1");
  if (default_max_concurrency_per_instance < 1 || default_max_concurrency_per_instance > 1000) {
    return bad("default_max_concurrency_per_instance must be from 1 to 1000");
  }
  if (max_attempts < 1) return bad("max_attempts must be at least 1");
  if (expiry_sweep_interval.count() <= 0) return bad("expiry_sweep_interval must be positive");
  if (capacity_poll_interval.count() <= 0) return bad("capacity_poll_interval must be positive");
  if (memory_response_bytes > max_response_bytes) {
    return bad("memory_response_bytes must not exceed max_response_bytes");
  }
  return OkStatus();
}

Dispatcher::Impl::Impl(DispatchOptions o, queue::InvocationStore& q, catalog::CatalogStore& c,
                       store::ObjectStore& s, notify::Notifier& n, InstancesFn i, const Clock& k)
    : options(std::move(o)),
      queue(q),
      catalog(c),
      objects(s),
      notifier(n),
      instances_fn(std::move(i)),
      clock(k),
      client(http::ClientOptions{.connect_timeout = options.connect_timeout,
                                 .timeout = options.sync_timeout,
                                 .max_idle_per_host = 64}),
      pipeline(options, objects, client, cancel),
      aux(std::max(1, options.aux_threads), "dispatch-aux") {
  // A freed slot goes to an idle worker at once (InvokeSync may wait for one too).
  scheduler.SetOnRelease([this] {
    idle_cv.notify_all();
    Feed();
  });
}

int64_t Dispatcher::Impl::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

Capacity Dispatcher::Impl::CapacityOf(const EndpointView& view) const {
  Capacity cap;
  cap.instances = instances_fn(view.region, view.name);
  cap.max_per_instance = view.async && view.async->max_concurrency > 0
                             ? view.async->max_concurrency
                             : options.default_max_concurrency_per_instance;
  for (const VariantView& v : view.variants) cap.weights[v.name] = v.weight;
  return cap;
}

void Dispatcher::Impl::CoolDown(const std::string& instance) {
  scheduler.CoolDown(instance, NowMs() + std::chrono::duration_cast<std::chrono::milliseconds>(
                                             options.failed_instance_cooldown)
                                             .count());
}

void Dispatcher::Impl::Kick() {
  {
    std::lock_guard lock(mu);
    dirty = true;
  }
  loop_cv.notify_one();
  idle_cv.notify_all();
}

void Dispatcher::Impl::CallbackIssued() {
  std::lock_guard lock(mu);
  ++store_callbacks;
}

void Dispatcher::Impl::CallbackDone() {
  {
    std::lock_guard lock(mu);
    --store_callbacks;
  }
  idle_cv.notify_all();
}

void Dispatcher::Impl::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu);
    if (!stopped) {
      aux.Post(std::move(task));
      return;
    }
  }
  task();
}

Dispatcher::Dispatcher(DispatchOptions options, queue::InvocationStore& queue,
                       catalog::CatalogStore& catalog, store::ObjectStore& objects,
                       notify::Notifier& notifier, InstancesFn instances, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), queue, catalog, objects, notifier,
                                   std::move(instances), clock)) {}

Dispatcher::~Dispatcher() { Stop(std::chrono::steady_clock::now()); }

Status Dispatcher::Start() {
  Impl& d = *impl_;
  INFERD_RETURN_IF_ERROR(d.options.Validate());
  {
    std::lock_guard lock(d.mu);
    if (d.started || d.stopped) {
      return Error(Errc::kInvalidState, "the dispatcher was started already");
    }
  }
  INFERD_RETURN_IF_ERROR(d.Recover());
  std::lock_guard lock(d.mu);
  d.started = true;
  d.dirty = true;
  d.loop_thread = std::thread([&d] {
    SetThreadName("dispatch-loop");
    d.Loop();
  });
  for (int i = 0; i < d.options.worker_threads; ++i) {
    d.workers.emplace_back([&d] {
      SetThreadName("dispatch-run");
      d.Worker();
    });
  }
  return OkStatus();
}

void Dispatcher::Stop(std::chrono::steady_clock::time_point deadline) {
  Impl& d = *impl_;
  std::deque<RunJob> dropped;  // destroyed outside the lock (their leases)
  {
    std::lock_guard lock(d.mu);
    if (d.stopped) return;
    d.stopping = true;
    dropped = std::move(d.run_jobs);
    d.run_jobs.clear();
    d.active_runs -= static_cast<int>(dropped.size());
  }
  dropped.clear();  // still Queued in the store (Started, if handed over at acceptance): the
                    // next Start takes them up again
  d.loop_cv.notify_all();
  if (d.loop_thread.joinable()) d.loop_thread.join();
  {
    std::unique_lock lock(d.mu);
    if (!d.idle_cv.wait_until(lock, deadline, [&] { return d.active_runs == 0; })) {
      spdlog::warn(
          "dispatch: {} invocation(s) still running at the shutdown deadline: abandoned (they "
          "stay Started and are recovered at the next start)",
          d.active_runs);
      d.cancel = true;
    }
    d.workers_exit = true;
  }
  d.work_cv.notify_all();
  for (auto& t : d.workers) t.join();
  d.workers.clear();
  {
    // Accepts and requeues already handed to the store call back into this object.
    std::unique_lock lock(d.mu);
    d.idle_cv.wait(lock, [&] { return d.store_callbacks == 0; });
  }
  {
    std::lock_guard lock(d.mu);
    d.stopped = true;  // from here on Post() runs tasks inline
  }
  d.aux.Stop();  // runs the tasks already posted; drainers see `stopping` and return
  std::lock_guard lock(d.mu);
  d.retries.clear();
  d.fail_batches.clear();  // still Queued in the store
}

void Dispatcher::OnEndpointChange(catalog::EndpointChange change,
                                  const catalog::Resource& endpoint) {
  Impl& d = *impl_;
  if (change == catalog::EndpointChange::kRemoved) {
    d.directory.Remove(endpoint.region, endpoint.name);
    d.Kick();
    return;
  }
  auto view = ParseEndpoint(endpoint);
  if (!view.ok()) {
    spdlog::error("dispatch: endpoint {}: {}", endpoint.name, view.error().message);
    return;
  }
  d.directory.Put(*view);
  std::optional<AsyncConfig> topics_of;
  switch (change) {
    case catalog::EndpointChange::kCreated:
    case catalog::EndpointChange::kCapacityUpdated:
      topics_of = (*view)->async;
      break;
    case catalog::EndpointChange::kUpdated:
      topics_of = (*view)->pending_async ? (*view)->pending_async : (*view)->async;
      break;
    default:
      break;
  }
  if (topics_of) {
    std::set<std::string> topics;
    for (const std::string* t : {&topics_of->success_topic, &topics_of->error_topic}) {
      if (!t->empty()) topics.insert(*t);
    }
    if (!topics.empty()) {
      std::string name = endpoint.name;
      d.Post([&d, topics = std::move(topics), name] {
        for (const std::string& topic : topics) {
          notify::PublishRequest req;
          req.topic_arn = topic;
          req.message = TestNotificationMessage();
          auto r = d.notifier.Publish(req);
          if (!r.ok()) {
            spdlog::warn("dispatch: endpoint {}: the TestNotification to {} failed: {}", name,
                         topic, r.error().message);
          }
        }
      });
    }
  }
  d.Kick();
}

void Dispatcher::Wake() { impl_->Kick(); }

void Dispatcher::Accept(AcceptRequest request, std::function<void(Result<Accepted>)> done) {
  Impl& d = *impl_;
  auto reply_error = [&](Error e) {  // called at most once
    d.Post([done = std::move(done), e = std::move(e)]() mutable { done(std::move(e)); });
  };
  bool closing;
  {
    std::lock_guard lock(d.mu);
    closing = d.stopping || d.stopped;
  }
  if (closing) {
    reply_error(Error(Errc::kUnavailable, "inferd is shutting down; retry the invocation."));
    return;
  }
  auto view = d.directory.Find(request.region, request.endpoint);
  if (!view || view->deleting) {
    reply_error(Error(Errc::kValidation, fmt::format("Endpoint {} of account {} not found.",
                                                     request.endpoint, d.options.account_id)));
    return;
  }
  if (!view->async) {
    reply_error(Error(
        Errc::kValidation,
        fmt::format("Endpoint {} of account {} is not configured for asynchronous inference: it "
                    "has no AsyncInferenceConfig. Use InvokeEndpoint, or create an endpoint "
                    "whose configuration has an AsyncInferenceConfig.",
                    view->name, d.options.account_id)));
    return;
  }
  queue::Invocation inv;
  inv.region = request.region;
  inv.endpoint = request.endpoint;
  inv.inference_id = request.inference_id.empty() ? NewUuid() : request.inference_id;
  // Time-ordered: consecutive results sit next to each other in the object index.
  inv.output_id = NewTimeOrderedUuid();
  auto locations = MakeLocations(*view->async, view->name, request.output_path_extension,
                                 request.filename, inv.output_id);
  if (!locations.ok()) {
    reply_error(std::move(locations).error());
    return;
  }
  inv.output_location = locations->output;
  inv.failure_location = locations->failure;
  inv.received_ms = d.NowMs();
  inv.ttl_seconds = request.ttl_seconds;
  inv.invocation_timeout_seconds = request.invocation_timeout_seconds;
  inv.input_location = std::move(request.input_location);
  inv.inline_body = std::move(request.inline_body);
  inv.content_type = std::move(request.content_type);
  inv.accept = std::move(request.accept);
  inv.custom_attributes = std::move(request.custom_attributes);

  Accepted accepted{inv.inference_id, inv.output_location, inv.failure_location};
  QueueEntry entry{0, inv.received_ms, inv.ttl_seconds};
  std::string key = EndpointKey(inv.region, inv.endpoint);
  // With nothing queued and a slot free, a worker takes the invocation now: its Insert records
  // it Started, and its model call and result object are written while that Insert syncs (its
  // notification and end wait for it). The worker is woken first: its path is the longer.
  std::optional<RunJob> direct = d.TakeOnAccept(key, view, inv);
  std::shared_ptr<StartGate> inserted = direct ? direct->inserted : nullptr;
  if (direct) d.Hand(std::move(*direct));
  d.CallbackIssued();
  d.queue.Insert(std::move(inv), [&d, accepted = std::move(accepted), entry, key, inserted,
                                  done = std::move(done)](Result<int64_t> seq) mutable {
    if (!seq.ok()) {
      if (inserted) {
        inserted->Set(seq.error());  // its worker drops it: nothing was stored
      } else {
        d.scheduler.Arrived(key);
      }
      spdlog::error("dispatch: could not store an invocation of {}: {}", accepted.inference_id,
                    seq.error().message);
      done(Error(Errc::kInternal, "inferd could not store the invocation durably (" +
                                      seq.error().message + "); retry it."));
    } else if (inserted) {
      inserted->Set(OkStatus(), *seq);
      done(std::move(accepted));
    } else {
      entry.seq = *seq;
      // Straight to an idle worker; the loop only learns of a queue that was empty (its
      // endpoint's capacity may not be known yet), and polls capacity while backlog remains.
      const bool first = d.scheduler.Push(key, entry, /*arrived=*/true);
      if (!d.Feed() && first) d.Kick();
      done(std::move(accepted));
    }
    d.CallbackDone();
  });
}

std::string Dispatcher::RenderMetrics() const {
  const Impl& d = *impl_;
  std::vector<EndpointGauges> gauges;
  const int64_t now = d.NowMs();
  for (const auto& view : d.directory.All()) {
    if (!view->async) continue;
    Scheduler::Stats stats = d.scheduler.StatsOf(EndpointKey(view->region, view->name));
    EndpointGauges g;
    g.endpoint = view->name;
    g.queued = static_cast<int64_t>(stats.queued);
    g.backlog = g.queued + stats.running;
    g.instances = static_cast<int>(d.instances_fn(view->region, view->name).size());
    if (stats.oldest_received_ms) {
      g.oldest_age_seconds = std::max<double>(0, (now - *stats.oldest_received_ms) / 1000.0);
    }
    gauges.push_back(std::move(g));
  }
  return d.metrics.Render(gauges);
}

}  // namespace inferd::dispatch
