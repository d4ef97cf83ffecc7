#include "notify/delivery.h"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "common/thread_name.h"
#include "notify/delivery_policy.h"
#include "notify/delivery_state.h"
#include "notify/envelope.h"

namespace inferd::notify {

using internal::Task;

Status DeliveryOptions::Validate() const {
  if (threads < 1 || threads > 256) {
    return Error(Errc::kValidation, "delivery threads must be between 1 and 256");
  }
  if (max_inflight_per_subscription < 1) {
    return Error(Errc::kValidation, "deliveries in flight per subscription must be at least 1");
  }
  if (attempt_timeout < std::chrono::milliseconds(1)) {
    return Error(Errc::kValidation, "the delivery attempt timeout must be positive");
  }
  return OkStatus();
}

std::optional<DeliveryOutcome> DeliveryWorker::State::Execute(const Task& task) {
  std::shared_ptr<const Delivery> held = task.delivery;
  EffectivePolicy policy;
  http::ClientRequest request;
  const DeliveryOutcome finished{task.id, true};
  {
    std::shared_lock use(use_mu);
    if (abandoned) return std::nullopt;
    if (held && task.version != store->config_version()) held.reset();  // stale: read it back
    if (held) {
      sent_from_memory.fetch_add(1, std::memory_order_relaxed);
    } else {
      auto loaded = store->LoadDelivery(task.id);
      if (!loaded.ok()) {
        if (loaded.error().code != Errc::kNotFound) {
          spdlog::error("SNS delivery {}: {}", task.id, loaded.error().message);
        }
        return std::nullopt;
      }
      held = std::make_shared<const Delivery>(std::move(loaded).value());
    }
    const Delivery& d = *held;
    // Deliveries that lost their purpose since they were queued are dropped.
    const Subscription* sub = d.subscription ? &*d.subscription : nullptr;
    bool wanted = false;
    if (sub) {
      switch (d.message.type) {
        case MessageType::kNotification:
          wanted = sub->status == SubscriptionStatus::kConfirmed;
          break;
        case MessageType::kSubscriptionConfirmation:
          wanted = sub->status == SubscriptionStatus::kPending;
          break;
        case MessageType::kUnsubscribeConfirmation:
          wanted = sub->status == SubscriptionStatus::kDeleted;
          break;
      }
    }
    if (!wanted) return finished;
    policy = ResolvePolicy(d.topic_attributes, sub->attributes);
    auto built = BuildDeliveryRequest(d, *signer, public_url(), policy, options.attempt_timeout);
    if (!built.ok()) {
      spdlog::warn("SNS: cannot deliver message {} to {}: {}; giving up", d.message.message_id,
                   sub->endpoint, built.error().message);
      return finished;
    }
    request = std::move(built).value();
  }

  Result<http::ClientResponse> response = Error(Errc::kInternal, "not sent");
  try {
    response = send(request);
  } catch (const std::exception& e) {
    response = Error(Errc::kInternal, e.what());
  }

  std::shared_lock use(use_mu);
  if (abandoned) return std::nullopt;
  const Delivery& d = *held;
  const int attempt = d.attempts + 1;
  const std::string& endpoint = d.subscription->endpoint;
  std::string failure;
  if (response.ok()) {
    int status = response->status;
    if (status >= 200 && status < 300) {
      spdlog::debug("SNS: delivered {} {} to {} (attempt {})", TypeName(d.message.type),
                    d.message.message_id, endpoint, attempt);
      return finished;
    }
    if (status >= 400 && status < 500) {
      spdlog::warn("SNS: {} answered {} to {} {}; giving up (SNS does not retry client errors)",
                   endpoint, status, TypeName(d.message.type), d.message.message_id);
      return finished;
    }
    failure = "HTTP " + std::to_string(status);
  } else {
    failure = response.error().message;
  }
  auto delay = policy.retry.DelayBeforeRetry(attempt);
  if (!delay) {
    spdlog::warn("SNS: giving up {} {} to {} after {} attempt(s); last: {}",
                 TypeName(d.message.type), d.message.message_id, endpoint, attempt, failure);
    return finished;
  }
  double next = ToEpochSeconds(clock->Now()) + std::chrono::duration<double>(*delay).count();
  spdlog::info("SNS: attempt {} of {} {} to {} failed ({}); retrying in {} ms", attempt,
               TypeName(d.message.type), d.message.message_id, endpoint, failure, delay->count());
  return DeliveryOutcome{d.id, false, attempt, next};
}

DeliveryWorker::DeliveryWorker(NotifyStore& store, const Signer& signer, const Clock& clock,
                               DeliveryOptions options, SendFn send,
                               std::function<std::string()> public_url)
    : state_(std::make_shared<State>()) {
  state_->store = &store;
  state_->signer = &signer;
  state_->clock = &clock;
  state_->options = options;
  state_->send = std::move(send);
  state_->public_url = std::move(public_url);
}

DeliveryWorker::~DeliveryWorker() {
  if (started_ && !stopped_) Stop(std::chrono::steady_clock::now());
}

void DeliveryWorker::Start() {
  if (started_) return;
  started_ = true;
  {
    std::lock_guard lock(state_->mu);
    state_->running = true;
  }
  state_->exited.assign(static_cast<size_t>(state_->options.threads), false);
  for (size_t i = 0; i < state_->exited.size(); ++i) {
    workers_.emplace_back(&DeliveryWorker::WorkerMain, state_, i);
  }
  scheduler_ = std::thread(&DeliveryWorker::SchedulerMain, this);
  outcome_writer_ = std::thread(&DeliveryWorker::OutcomeWriterMain, state_.get());
}

void DeliveryWorker::Wake() {
  std::lock_guard lock(state_->mu);
  state_->ToStoreModeLocked();  // rows were written that nobody offered
}

void DeliveryWorker::Offer(std::vector<std::shared_ptr<const Delivery>> deliveries,
                           uint64_t config_version, bool delivery_first) {
  bool woke;
  {
    std::lock_guard lock(state_->mu);
    woke = state_->OfferLocked(std::move(deliveries), config_version);
  }
  if (woke && delivery_first) sched_yield();
}

uint64_t DeliveryWorker::sent_from_memory() const { return state_->sent_from_memory.load(); }

void DeliveryWorker::WorkerMain(std::shared_ptr<State> state, size_t index) {
  SetThreadName("sns-deliver");
  for (;;) {
    Task task;
    {
      std::unique_lock lock(state->mu);
      ++state->waiting_workers;
      state->work_cv.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      --state->waiting_workers;
      if (state->stopping) break;  // queued tasks stay due in the store
      task = std::move(state->queue.front());
      state->queue.pop_front();
      ++state->active;
    }
    state->AttemptOver(task, state->Execute(task), true);
    state->idle_cv.notify_all();
  }
  {
    std::lock_guard lock(state->mu);
    state->exited[index] = true;
  }
  state->idle_cv.notify_all();
}

// Workers do not wait for their outcome's commit: whatever attempts ended while one commit was
// syncing is recorded by the next, in one write. The hourly purge is a write too, so it is done
// here: the scheduler only reads and never waits for a commit.
void DeliveryWorker::OutcomeWriterMain(State* state) {
  SetThreadName("sns-outcomes");
  const auto interval =
      std::max<std::chrono::seconds>(state->options.purge_interval, std::chrono::seconds(1));
  auto last_purge = std::chrono::steady_clock::time_point{};
  for (;;) {
    if (std::chrono::steady_clock::now() - last_purge >= interval) {
      last_purge = std::chrono::steady_clock::now();
      double now = ToEpochSeconds(state->clock->Now());
      // Deleted subscriptions stay restorable for 3 days, as SNS's tokens.
      auto purged = state->store->PurgeSubscriptions(now - 3 * 24 * 3600, now);
      if (purged.ok() && *purged > 0) spdlog::info("SNS: purged {} old subscriptions", *purged);
    }
    std::vector<std::pair<Task, DeliveryOutcome>> batch;
    {
      std::unique_lock lock(state->mu);
      state->outcome_cv.wait_until(lock, last_purge + interval, [&] {
        return state->outcomes_closed || !state->outcomes.empty();
      });
      if (state->outcomes.empty()) {
        if (state->outcomes_closed) return;  // closed and drained
        continue;                            // time to purge
      }
      batch.swap(state->outcomes);
    }
    state->Record(batch);
  }
}

void DeliveryWorker::SchedulerMain() {
  SetThreadName("sns-schedule");
  State& s = *state_;
  bool timed_out = false;
  for (;;) {
    std::unique_lock lock(s.mu);
    if (s.stopping) return;
    s.wake = false;
    // The safety round: every subscription proves again that memory mode holds all its rows (a
    // row written with neither an offer nor a Wake() is found within a second).
    if (timed_out) s.memory_mode.clear();
    double now = ToEpochSeconds(s.clock->Now());
    // With every worker busy there is nothing to pick (and no due time worth a timer: the next
    // completion wakes the scheduler), so a burst of publishes' Wake()s costs no store reads.
    std::optional<double> next;
    if (const int free_slots = s.FreeSlotsLocked(); free_slots > 0) {
      next = s.ScheduleLocked(now, free_slots);
    }
    // Sleep until the next delivery is due, a wake-up, or at most a second (a safety net for
    // rows queued behind in-flight ones).
    auto wait = std::chrono::milliseconds(1000);
    if (next) {
      auto until = std::chrono::milliseconds(static_cast<int64_t>((*next - now) * 1000) + 1);
      wait = std::clamp(until, std::chrono::milliseconds(1), wait);
    }
    timed_out = !s.scheduler_cv.wait_for(lock, wait, [&] { return s.stopping || s.wake; });
  }
}

int DeliveryWorker::RunOnce() {
  std::deque<Task> tasks;
  {
    std::lock_guard lock(state_->mu);
    (void)state_->ScheduleLocked(ToEpochSeconds(state_->clock->Now()),
                                 std::numeric_limits<int>::max());
    tasks.swap(state_->queue);
  }
  for (const Task& task : tasks) state_->AttemptOver(task, state_->Execute(task), false);
  // No outcome writer runs here: record what the attempts left, as it would.
  std::vector<std::pair<Task, DeliveryOutcome>> batch;
  {
    std::lock_guard lock(state_->mu);
    batch.swap(state_->outcomes);
  }
  state_->Record(batch);
  return static_cast<int>(tasks.size());
}

void DeliveryWorker::Stop(std::chrono::steady_clock::time_point deadline) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    state_->running = false;  // offers are dropped: the store has them
    state_->DropOffersLocked();
    state_->memory_mode.clear();
  }
  state_->scheduler_cv.notify_all();
  state_->work_cv.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  {
    std::unique_lock lock(state_->mu);
    state_->idle_cv.wait_until(lock, deadline, [&] {
      return std::all_of(state_->exited.begin(), state_->exited.end(), [](bool e) { return e; });
    });
  }
  // The outcomes of the attempts that ended are committed before the store is let go.
  {
    std::lock_guard lock(state_->mu);
    state_->outcomes_closed = true;
  }
  state_->outcome_cv.notify_all();
  if (outcome_writer_.joinable()) outcome_writer_.join();
  {
    std::unique_lock use(state_->use_mu);
    state_->abandoned = true;
  }
  int abandoned = 0;
  for (size_t i = 0; i < workers_.size(); ++i) {
    bool exited;
    {
      std::lock_guard lock(state_->mu);
      exited = state_->exited[i];
    }
    if (exited) {
      workers_[i].join();
    } else {
      workers_[i].detach();  // it exits on its own once its HTTP exchange ends
      ++abandoned;
    }
  }
  if (abandoned > 0) {
    spdlog::warn(
        "SNS: {} delivery attempt(s) still in flight at shutdown; they will be retried "
        "after the next start",
        abandoned);
  }
}

}  // namespace inferd::notify
