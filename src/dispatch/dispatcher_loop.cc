// Dispatcher: the scheduling loop, the workers and the aux drainers.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "dispatch/dispatcher_impl.h"

namespace inferd::dispatch {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Ends-without-running an aux drainer handles before it yields the pool to other tasks.
constexpr int kDrainChunk = 32;
constexpr auto kPruneInterval = std::chrono::minutes(10);

}  // namespace

void Dispatcher::Impl::Loop() {
  std::unique_lock lock(mu);
  for (;;) {
    if (stopping) return;
    dirty = false;
    lock.unlock();
    Pass();
    lock.lock();
    if (stopping) return;
    // With backlog, look at the capacity again soon; otherwise at the next sweep or retry.
    auto wait = options.expiry_sweep_interval;
    if (!scheduler.KeysWithBacklog().empty() || !fail_batches.empty() || !retries.empty()) {
      wait = std::min(wait, options.capacity_poll_interval);
    }
    loop_cv.wait_for(lock, wait, [&] { return stopping || dirty; });
  }
}

void Dispatcher::Impl::AddFailBatch(std::string key, std::shared_ptr<const EndpointView> view,
                                    EndKind kind, std::deque<QueueEntry> entries) {
  if (entries.empty()) return;
  bool post = false;
  {
    std::lock_guard lock(mu);
    if (stopping) return;  // still Queued in the store: the next Start takes them
    fail_batches.push_back({std::move(key), std::move(view), kind, std::move(entries)});
    if (drainers < options.aux_threads) {
      ++drainers;
      post = true;
    }
  }
  if (post) Post([this] { Drain(); });
}

void Dispatcher::Impl::Pass() {
  const int64_t now = NowMs();
  const auto mono = clock.Monotonic();

  // Expiry sweep: queued invocations older than their RequestTTLSeconds end now, capacity or
  // not.
  if (mono >= next_sweep) {
    next_sweep = mono + options.expiry_sweep_interval;
    for (auto& [key, entries] : scheduler.TakeExpired(now)) {
      AddFailBatch(key, directory.FindKey(key), EndKind::kExpired, std::move(entries));
    }
  }
  if (mono >= next_prune) {
    next_prune = mono + kPruneInterval;
    const int64_t before =
        now - std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count();
    Post([this, before] {
      auto pruned = queue.PruneFinished(before);
      if (!pruned.ok()) {
        spdlog::warn("dispatch: pruning finished invocations failed: {}", pruned.error().message);
      } else if (*pruned > 0) {
        spdlog::info("dispatch: pruned {} finished invocation(s)", *pruned);
      }
    });
  }

  // Capacity of every endpoint with backlog; queues of deleted endpoints end. Then work goes to
  // free workers the same way accepts and freed slots hand it out.
  for (const std::string& key : scheduler.KeysWithBacklog()) {
    auto view = directory.FindKey(key);
    if (!view || view->deleting) {
      AddFailBatch(key, view, EndKind::kDeleted, scheduler.TakeAll(key));
      continue;
    }
    scheduler.SetCapacity(key, CapacityOf(*view));
  }
  Feed();

  // Notification retries that are due.
  std::vector<NotifyRetry> due;
  {
    std::lock_guard lock(mu);
    for (auto it = retries.begin(); it != retries.end();) {
      if (it->due <= mono) {
        due.push_back(*it);
        it = retries.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (NotifyRetry& r : due) {
    Post([this, r] { NotifyFromStore(r.seq, r); });
  }
}

void Dispatcher::Impl::Drain() {
  for (int i = 0; i < kDrainChunk; ++i) {
    QueueEntry entry;
    FailBatch* batch = nullptr;
    std::shared_ptr<const EndpointView> view;
    EndKind kind = EndKind::kExpired;
    std::string key;
    {
      std::lock_guard lock(mu);
      while (!fail_batches.empty() && fail_batches.front().entries.empty()) {
        fail_batches.pop_front();
      }
      if (stopping || fail_batches.empty()) {
        --drainers;
        return;
      }
      batch = &fail_batches.front();
      entry = batch->entries.front();
      batch->entries.pop_front();
      view = batch->view;
      kind = batch->kind;
      key = batch->key;
    }
    auto rec = queue.GetBySeq(entry.seq);
    if (!rec.ok()) {
      spdlog::error("dispatch: cannot read invocation #{}: {}", entry.seq, rec.error().message);
      continue;
    }
    if (!*rec || (*rec)->state != queue::InvocationState::kQueued) continue;
    if (!view) {
      spdlog::warn(
          "dispatch: invocation {} of endpoint {} ends as failed: the endpoint no longer exists, "
          "so no notification can be sent",
          (*rec)->inference_id, (*rec)->endpoint);
    }
    EndQueued(std::move(**rec), view, kind);
  }
  // Yield the pool to other tasks, then carry on.
  Post([this] { Drain(); });
}

std::optional<RunJob> Dispatcher::Impl::TakeRunnable() {
  const std::vector<std::string> keys = scheduler.KeysWithBacklog();
  if (keys.empty()) return std::nullopt;
  const int64_t now = NowMs();
  const size_t start = take_rotation.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& key = keys[(start + i) % keys.size()];
    auto view = directory.FindKey(key);
    if (!view || view->deleting) continue;  // the loop ends its queue
    for (;;) {
      Scheduler::Next next = scheduler.Assign(key, now);
      if (next.kind == Scheduler::Next::kExpired) {
        AddFailBatch(key, view, EndKind::kExpired, std::deque<QueueEntry>{next.entry});
        continue;
      }
      if (next.kind == Scheduler::Next::kRun) {
        return RunJob{key,
                      next.entry,
                      std::move(next.instance),
                      std::move(next.lease),
                      std::move(view),
                      std::nullopt,
                      nullptr};
      }
      break;
    }
  }
  return std::nullopt;
}

bool Dispatcher::Impl::ReserveWorker() {
  std::lock_guard lock(mu);
  if (!started || stopping || active_runs >= options.worker_threads) return false;
  ++active_runs;
  return true;
}

void Dispatcher::Impl::ReleaseWorker() {
  {
    std::lock_guard lock(mu);
    --active_runs;
  }
  idle_cv.notify_all();
}

bool Dispatcher::Impl::Hand(RunJob job) {
  {
    std::unique_lock lock(mu);
    if (!stopping) {
      run_jobs.push_back(std::move(job));
      lock.unlock();
      work_cv.notify_one();
      return true;
    }
  }
  // Stopping: the job (its lease) goes outside the lock; the invocation stays in the store
  // (Queued, or Started if handed over at acceptance) for the next Start.
  job = RunJob{};
  ReleaseWorker();
  return false;
}

bool Dispatcher::Impl::Feed() {
  bool fed = false;
  while (ReserveWorker()) {
    std::optional<RunJob> job = TakeRunnable();
    if (!job) {
      ReleaseWorker();
      break;
    }
    if (!Hand(std::move(*job))) break;
    fed = true;
  }
  return fed;
}

std::optional<RunJob> Dispatcher::Impl::TakeOnAccept(
    const std::string& key, const std::shared_ptr<const EndpointView>& view,
    queue::Invocation& inv) {
  const bool worker = scheduler.Idle(key) && ReserveWorker();
  std::optional<Capacity> capacity;
  if (worker) capacity = CapacityOf(*view);
  auto slot = scheduler.AssignOnAccept(key, capacity ? &*capacity : nullptr, inv.received_ms);
  if (!slot) {
    if (worker) ReleaseWorker();
    return std::nullopt;
  }
  inv.state = queue::InvocationState::kStarted;
  inv.attempts = 1;
  inv.variant = slot->first.variant;
  inv.instance = InstanceKey(slot->first);
  inv.started_ms = inv.received_ms;
  RunJob job{key,
             QueueEntry{0, inv.received_ms, inv.ttl_seconds},
             std::move(slot->first),
             std::move(slot->second),
             view,
             inv,  // the other copy goes to the store
             std::make_shared<StartGate>()};
  return job;
}

void Dispatcher::Impl::Worker() {
  for (;;) {
    std::optional<RunJob> job;
    {
      std::unique_lock lock(mu);
      work_cv.wait(lock, [&] { return workers_exit || !run_jobs.empty(); });
      if (run_jobs.empty()) return;
      job.emplace(std::move(run_jobs.front()));
      run_jobs.pop_front();
    }
    // Keeps its worker slot while there is runnable work: no hand-off, no wake-up.
    while (job) {
      Run(std::move(*job));
      job.reset();
      {
        std::lock_guard lock(mu);
        if (stopping) break;
      }
      job = TakeRunnable();
    }
    {
      std::lock_guard lock(mu);
      --active_runs;
    }
    idle_cv.notify_all();
  }
}

}  // namespace inferd::dispatch
