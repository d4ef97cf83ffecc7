#include "notify/delivery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "common/thread_name.h"
#include "notify/delivery_policy.h"
#include "notify/envelope.h"

namespace inferd::notify {

namespace {

struct Task {
  int64_t id;
  std::string subscription_arn;
};

}  // namespace

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

// Everything the threads share. Worker threads hold it by shared_ptr so an abandoned thread can
// finish after the DeliveryWorker is gone; they touch store/signer/clock only under `use_mu`
// (shared) while !abandoned.
struct DeliveryWorker::State {
  NotifyStore* store;
  const Signer* signer;
  const Clock* clock;
  DeliveryOptions options;
  SendFn send;
  std::function<std::string()> public_url;

  std::mutex mu;
  std::condition_variable scheduler_cv;  // wake-ups for the scheduler
  std::condition_variable work_cv;       // tasks for the workers
  std::condition_variable idle_cv;       // a worker finished a task or exited
  std::condition_variable outcome_cv;    // outcomes for the outcome writer
  bool stopping = false;
  bool wake = false;
  std::deque<Task> queue;
  // Deliveries picked and not yet released: queued, being attempted, or their outcome being
  // committed. Never picked twice.
  std::set<int64_t> inflight;
  struct PerSubscription {
    int attempts = 0;  // queued or being attempted: at most max_inflight_per_subscription
    int held = 0;      // in `inflight`
  };
  std::map<std::string, PerSubscription> per_subscription;
  int active = 0;
  std::vector<bool> exited;
  // Attempts over whose outcome is not committed yet (the outcome writer's input).
  std::vector<std::pair<Task, DeliveryOutcome>> outcomes;
  bool outcomes_closed = false;  // Stop(): the outcome writer drains `outcomes` and exits

  std::shared_mutex use_mu;
  bool abandoned = false;  // written under use_mu (exclusive)

  // Picks due deliveries into `queue` (caller holds `mu`). Returns when the next one not yet due
  // becomes due (epoch seconds), if known.
  std::optional<double> ScheduleLocked(double now, int free_slots);
  // One attempt of one delivery, start to finish; what to record of it (nothing once abandoned,
  // or when the row is gone).
  std::optional<DeliveryOutcome> Execute(const Task& task);
  // The attempt is over: frees its worker (`was_active`) and its place among the subscription's
  // attempts, in one step, so the scheduler round this wakes already sees them free. The
  // delivery stays in flight until `outcome` is committed (queued for the outcome writer).
  void AttemptOver(const Task& task, std::optional<DeliveryOutcome> outcome, bool was_active);
  // Commits `batch` in one write, then releases its deliveries.
  void Record(const std::vector<std::pair<Task, DeliveryOutcome>>& batch);
  void ReleaseLocked(const Task& task);
};

std::optional<double> DeliveryWorker::State::ScheduleLocked(double now, int free_slots) {
  auto heads = store->DeliveryHeads();
  if (!heads.ok()) {
    spdlog::error("SNS delivery: {}", heads.error().message);
    return now + 1;
  }
  std::sort(heads->begin(), heads->end(), [](const DeliveryHead& a, const DeliveryHead& b) {
    return a.next_attempt < b.next_attempt;
  });
  const int cap = options.max_inflight_per_subscription;
  std::optional<double> next;
  for (const auto& head : *heads) {
    PerSubscription& sub = per_subscription[head.subscription_arn];
    if (sub.attempts >= cap) continue;  // a completion wakes the scheduler
    if (head.next_attempt > now) {
      next = std::min(next.value_or(head.next_attempt), head.next_attempt);
      continue;
    }
    if (free_slots <= 0) continue;
    // The earliest `cap + held`: those in flight may be among them.
    auto ids = store->DueDeliveries(head.subscription_arn, now, cap + sub.held);
    if (!ids.ok()) {
      spdlog::error("SNS delivery: {}", ids.error().message);
      continue;
    }
    for (int64_t id : *ids) {
      if (sub.attempts >= cap || free_slots <= 0) break;
      if (inflight.count(id)) continue;
      inflight.insert(id);
      ++sub.attempts;
      ++sub.held;
      --free_slots;
      queue.push_back({id, head.subscription_arn});
    }
  }
  for (auto it = per_subscription.begin(); it != per_subscription.end();) {
    it = it->second.held == 0 ? per_subscription.erase(it) : std::next(it);
  }
  return next;
}

void DeliveryWorker::State::ReleaseLocked(const Task& task) {
  inflight.erase(task.id);
  auto it = per_subscription.find(task.subscription_arn);
  if (it != per_subscription.end() && --it->second.held <= 0) per_subscription.erase(it);
}

void DeliveryWorker::State::AttemptOver(const Task& task, std::optional<DeliveryOutcome> outcome,
                                        bool was_active) {
  std::lock_guard lock(mu);
  if (was_active) --active;
  auto it = per_subscription.find(task.subscription_arn);
  if (it != per_subscription.end()) --it->second.attempts;
  if (outcome) {
    outcomes.emplace_back(task, *outcome);
    outcome_cv.notify_one();
  } else {
    ReleaseLocked(task);
  }
  wake = true;
  scheduler_cv.notify_one();
}

void DeliveryWorker::State::Record(const std::vector<std::pair<Task, DeliveryOutcome>>& batch) {
  std::vector<DeliveryOutcome> rows;
  rows.reserve(batch.size());
  for (const auto& [task, outcome] : batch) rows.push_back(outcome);
  if (Status st = store->RecordOutcomes(rows); !st.ok()) {
    // The rows stay due: those deliveries are attempted again (at-least-once).
    spdlog::error("SNS delivery: cannot record {} outcome(s): {}", rows.size(), st.error().message);
  }
  std::lock_guard lock(mu);
  for (const auto& [task, outcome] : batch) ReleaseLocked(task);
  wake = true;
  scheduler_cv.notify_one();
}

std::optional<DeliveryOutcome> DeliveryWorker::State::Execute(const Task& task) {
  Delivery d;
  EffectivePolicy policy;
  http::ClientRequest request;
  const DeliveryOutcome finished{task.id, true};
  {
    std::shared_lock use(use_mu);
    if (abandoned) return std::nullopt;
    auto loaded = store->LoadDelivery(task.id);
    if (!loaded.ok()) {
      if (loaded.error().code != Errc::kNotFound) {
        spdlog::error("SNS delivery {}: {}", task.id, loaded.error().message);
      }
      return std::nullopt;
    }
    d = std::move(loaded).value();
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
  state_->exited.assign(static_cast<size_t>(state_->options.threads), false);
  for (size_t i = 0; i < state_->exited.size(); ++i) {
    workers_.emplace_back(&DeliveryWorker::WorkerMain, state_, i);
  }
  scheduler_ = std::thread(&DeliveryWorker::SchedulerMain, this);
  outcome_writer_ = std::thread(&DeliveryWorker::OutcomeWriterMain, state_.get());
}

void DeliveryWorker::Wake() {
  std::lock_guard lock(state_->mu);
  state_->wake = true;
  state_->scheduler_cv.notify_one();
}

void DeliveryWorker::WorkerMain(std::shared_ptr<State> state, size_t index) {
  SetThreadName("sns-deliver");
  for (;;) {
    Task task;
    {
      std::unique_lock lock(state->mu);
      state->work_cv.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
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
  for (;;) {
    std::unique_lock lock(s.mu);
    if (s.stopping) return;
    s.wake = false;
    double now = ToEpochSeconds(s.clock->Now());
    int free_slots = s.options.threads - static_cast<int>(s.queue.size()) - s.active;
    // With every worker busy there is nothing to pick (and no due time worth a timer: the next
    // completion wakes the scheduler), so a burst of publishes' Wake()s costs no store reads.
    std::optional<double> next;
    if (free_slots > 0) {
      size_t queued = s.queue.size();
      next = s.ScheduleLocked(now, free_slots);
      if (s.queue.size() > queued) s.work_cv.notify_all();
    }
    // Sleep until the next delivery is due, a wake-up, or at most a second (a safety net for
    // rows queued behind in-flight ones).
    auto wait = std::chrono::milliseconds(1000);
    if (next) {
      auto until = std::chrono::milliseconds(static_cast<int64_t>((*next - now) * 1000) + 1);
      wait = std::clamp(until, std::chrono::milliseconds(1), wait);
    }
    s.scheduler_cv.wait_for(lock, wait, [&] { return s.stopping || s.wake; });
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
