// Dispatcher::Impl, shared by the dispatcher_*.cc files (internal to dispatch/).
//
// Threads (all owned here):
//   loop      one thread: expiry sweeps, asks the fleet for capacity, turns queued entries into
//             run jobs while workers and slots are free, hands ended-without-running entries
//             (expired, endpoint deleted) to the aux pool, schedules notification retries.
//   workers   options.worker_threads threads, each running one invocation at a time (Run).
//             A worker that finishes one takes the next runnable invocation itself
//             (TakeRunnable), and an accept or a freed slot hands work to an idle worker directly
//             (Feed): under load no invocation waits for the loop, which is needed only for
//             capacity it does not know yet (a queue that was empty), sweeps and retries.
//   aux       a BlockingPool (options.aux_threads): ends queued invocations without running them,
//             publishes owed notifications and TestNotifications, completes Accept errors.
//
// Ownership of a queued invocation (exactly one at a time): the scheduler's queue → a run job
// (holding a slot lease) or a fail batch → the thread ending it; Cancel takes it out of the
// queue itself. A Requeue puts it back in the queue once durable.
//
// Locking: `mu` guards everything below it; the scheduler and the directory have their own
// locks. Never destroy a RunJob (its lease) while holding `mu`: releasing a lease calls Feed(),
// which takes `mu`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/blocking_pool.h"
#include "common/process_load.h"
#include "dispatch/dispatcher.h"
#include "dispatch/endpoint_directory.h"
#include "dispatch/metrics.h"
#include "dispatch/notification.h"
#include "dispatch/pipeline.h"
#include "dispatch/scheduler.h"
#include "http/client.h"
#include "notify/notifier.h"

namespace inferd::dispatch {

enum class EndKind { kExpired, kDeleted, kCancelled };

struct RunJob {
  std::string key;
  QueueEntry entry;
  InstanceRef instance;
  SlotLease lease;
  std::shared_ptr<const EndpointView> view;
  // Handed over at acceptance (TakeOnAccept): the invocation itself, which its Insert records
  // as Started; `inserted` opens with its seq once that write is durable. Otherwise (a queued
  // invocation) Run reads it by entry.seq and records its start.
  std::optional<queue::Invocation> accepted;
  std::shared_ptr<StartGate> inserted;
};

struct FailBatch {
  std::string key;
  std::shared_ptr<const EndpointView> view;  // null: the endpoint is gone (no notification)
  EndKind kind = EndKind::kExpired;
  std::deque<QueueEntry> entries;
};

struct NotifyRetry {
  int64_t seq = 0;
  std::chrono::steady_clock::time_point due;
  std::chrono::milliseconds backoff{1000};
  std::chrono::steady_clock::time_point give_up;
};

struct Dispatcher::Impl {
  Impl(DispatchOptions options, queue::InvocationStore& queue, catalog::CatalogStore& catalog,
       store::ObjectStore& objects, notify::Notifier& notifier, InstancesFn instances,
       const Clock& clock);

  const DispatchOptions options;
  queue::InvocationStore& queue;
  catalog::CatalogStore& catalog;
  store::ObjectStore& objects;
  notify::Notifier& notifier;
  const InstancesFn instances_fn;
  const Clock& clock;

  EndpointDirectory directory;
  Scheduler scheduler;
  Metrics metrics;
  http::Client client;
  std::atomic<bool> cancel{false};  // abandons model calls still running at Stop's deadline
  Pipeline pipeline;
  BlockingPool aux;
  // Builds a 2xx answer's notification at rest while its worker stores the output (Run).
  BlockingPool prepare{1, "dispatch-prep"};

  std::mutex mu;
  std::condition_variable loop_cv;  // the loop's wake-ups (dirty)
  std::condition_variable work_cv;  // run jobs for workers
  std::condition_variable idle_cv;  // active_runs went down; a slot may be free (InvokeSync)
  bool started = false;
  bool stopping = false;
  bool stopped = false;
  bool workers_exit = false;
  bool dirty = false;
  std::deque<RunJob> run_jobs;
  int active_runs = 0;  // run jobs queued or running
  // inferd's CPU use lately: below kRestCores (and one run at most) inferd is at rest (AtRest).
  ProcessLoad load;
  static constexpr double kRestCores = 0.5;
  std::deque<FailBatch> fail_batches;
  int drainers = 0;         // aux tasks draining fail_batches
  int store_callbacks = 0;  // Insert/Requeue callbacks not yet run (they use this object)
  std::vector<NotifyRetry> retries;
  std::map<int64_t, std::string> running;  // seq → "host:port", while a model call runs
  std::chrono::steady_clock::time_point next_sweep{};
  std::chrono::steady_clock::time_point next_prune{};
  std::atomic<size_t> take_rotation{0};  // fairness between endpoints (TakeRunnable)
  std::thread loop_thread;
  std::vector<std::thread> workers;

  int64_t NowMs() const;
  // The loop has something to look at.
  void Kick();
  // Runs `task` on the aux pool (inline once stopped).
  void Post(std::function<void()> task);
  // Around a store write whose callback uses this object: Stop() waits for the callbacks.
  void CallbackIssued();
  void CallbackDone();
  std::string Label(const std::shared_ptr<const EndpointView>& view,
                    const std::string& endpoint) const {
    return view ? view->name : endpoint;
  }
  // The endpoint's capacity now: its healthy instances (InstancesFn), its per-instance cap
  // (MaxConcurrentInvocationsPerInstance, else the default) and its variants' weights.
  Capacity CapacityOf(const EndpointView& view) const;
  // `instance` ("host:port") refused or dropped a request: no new work for
  // failed_instance_cooldown.
  void CoolDown(const std::string& instance);

  // ---- dispatcher_loop.cc ----
  void Loop();
  void Pass();
  void AddFailBatch(std::string key, std::shared_ptr<const EndpointView> view, EndKind kind,
                    std::deque<QueueEntry> entries);
  void Drain();
  void Worker();
  // The next runnable invocation of the endpoints with backlog, rotating between them, for a
  // worker slot (active_runs) the caller holds; heads that expired go to fail batches on the
  // way. nullopt when nothing can run now (no backlog, no free slot, capacity not known yet,
  // endpoint deleted: the loop's business).
  std::optional<RunJob> TakeRunnable();
  // Hands runnable invocations to idle workers from the calling thread (an accept's or a
  // requeue's callback, a released slot) while workers are free. true when it handed any.
  bool Feed();
  // For an invocation being accepted (before its Insert): a run job when a worker is idle and
  // its endpoint has a free slot and no backlog (Scheduler::AssignOnAccept); `inv` is then
  // marked Started on that instance, so its Insert records the start. nullopt: it is queued.
  std::optional<RunJob> TakeOnAccept(const std::string& key,
                                     const std::shared_ptr<const EndpointView>& view,
                                     queue::Invocation& inv);
  // A worker slot (active_runs) for a job about to be looked for or made: false when all are
  // taken, or before Start / once stopping. ReleaseWorker() gives one back.
  bool ReserveWorker();
  void ReleaseWorker();
  // Gives a job, with its reserved worker slot, to the workers; when stopping it is dropped and
  // the slot given back (false).
  bool Hand(RunJob job);

  // ---- dispatcher_run.cc ----
  // An invocation a worker runs, and the gate its result objects wait for.
  struct Begun {
    queue::Invocation inv;
    std::shared_ptr<StartGate> gate;
  };
  // A queued job's invocation read back and its start recorded (MarkStarted, not waited for);
  // an accepted job's as handed over. nullopt when it is not to run (ended or put back here).
  std::optional<Begun> Begin(RunJob& job);
  void Run(RunJob job);
  // At rest: at most one run job, and inferd has used under kRestCores lately. A worker at rest
  // hands work to other threads to shorten its path (Run); under load that would only add
  // context switches.
  bool AtRest();
  // The notification of `inv` completed with a 2xx answer (`content_type`, `body` when small
  // enough to embed) at `answered_ms`, prepared for Run to publish once the output is durable
  // (nullopt when preparing failed, logged: Run publishes it after the output as for failures).
  std::optional<notify::PreparedPublish> PrepareSuccess(
      const queue::Invocation& inv, const EndpointView& view, const std::string& topic,
      const std::string& content_type, const std::string* body, int64_t answered_ms);
  // Queued → Failed without running (expired, endpoint deleted, cancelled): Finish, failure
  // object, notification. The finished record (notified once the notification was handed
  // over); nullopt when it was no longer Queued.
  std::optional<queue::Invocation> EndQueued(queue::Invocation inv,
                                             const std::shared_ptr<const EndpointView>& view,
                                             EndKind kind);
  // Sets `inv`'s end in memory: `state` now (finished_ms, failure_reason,
  // response_content_type; not notified).
  void SetEnd(queue::Invocation& inv, queue::InvocationState state, std::string reason,
              std::string response_content_type) const;
  // SetEnd, then records it; the future is ready once the store has it durably. Finish waits
  // for it.
  std::future<Status> FinishAsync(queue::Invocation& inv, queue::InvocationState state,
                                  std::string reason, std::string response_content_type);
  Status Finish(queue::Invocation& inv, queue::InvocationState state, std::string reason,
                std::string response_content_type) {
    return FinishAsync(inv, state, std::move(reason), std::move(response_content_type)).get();
  }
  // Publishes the invocation's notification (if its endpoint has the topic) with the
  // invocation as idempotency key, then MarkNotified unless `mark_notified` is false (the
  // caller records it with the end). false when the publish failed (counted, logged): the
  // caller schedules a retry.
  // `release_held`: see notify::PublishRequest::release_held.
  bool Notify(const queue::Invocation& inv, const std::shared_ptr<const EndpointView>& view,
              std::optional<std::string> body, bool mark_notified = true, int64_t release_held = 0);
  // Whether a publish of `inv`'s notification to `topic` succeeded; a failure is counted
  // (NotificationFailures, under `label`) and logged.
  bool Published(const Result<std::string>& published, const queue::Invocation& inv,
                 const std::string& label, const std::string& topic);
  // What a notification of `inv` says, as its fields are now (embedding `body`).
  static NotificationFacts FactsOf(const queue::Invocation& inv, std::optional<std::string> body);
  // The topic an invocation that ended so goes to; nullptr when the endpoint has none.
  static const std::string* TopicOf(const std::shared_ptr<const EndpointView>& view, bool success);
  // The publish of that notification, keyed by the invocation's output id.
  static notify::PublishRequest NotificationOf(const NotificationFacts& f, const std::string& topic,
                                               const std::string& output_id);
  // For a finished invocation loaded from the store (restart, retry): makes sure its failure
  // object exists, then Notify with the body read back when it is to be embedded.
  void NotifyFromStore(int64_t seq, std::optional<NotifyRetry> retry);
  void ScheduleRetry(int64_t seq, std::optional<NotifyRetry> previous);

  // ---- dispatcher_api.cc ----
  // A stored invocation with its live facts: queue position while Queued, where it runs while
  // Started.
  InvocationStatus StatusOf(queue::Invocation inv);

  // ---- dispatcher_recovery.cc ----
  Status Recover();
  void RecoverStarted(int64_t seq, std::vector<int64_t>& owed);
};

}  // namespace inferd::dispatch
