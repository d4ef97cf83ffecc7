// DeliveryWorker: what is picked when — store rounds, offered deliveries and memory mode, the end
// of an attempt and the commit of its outcome. See delivery.h for the rules.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "notify/delivery_state.h"

namespace inferd::notify {

using internal::Task;

namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

size_t ApproximateBytes(const Delivery& d) {
  return sizeof(Delivery) + d.message.message.size() + d.message.topic_arn.size() +
         d.subscription_arn.size() + (d.subscription ? d.subscription->endpoint.size() : 0) + 256;
}

}  // namespace

int DeliveryWorker::State::FreeSlotsLocked() const {
  return options.threads - static_cast<int>(queue.size()) - active;
}

void DeliveryWorker::State::WakeSchedulerLocked() {
  wake = true;
  scheduler_cv.notify_one();
}

std::optional<double> DeliveryWorker::State::ScheduleLocked(double now, int free_slots) {
  auto heads = store->DeliveryHeads();
  if (!heads.ok()) {
    spdlog::error("SNS delivery: {}", heads.error().message);
    return now + 1;
  }
  std::sort(heads->begin(), heads->end(), [](const DeliveryHead& a, const DeliveryHead& b) {
    return a.next_attempt < b.next_attempt;
  });
  starved = false;
  const int cap = options.max_inflight_per_subscription;
  std::optional<double> next;
  // Memory mode ends when a row it does not hold becomes due: this round picks it.
  std::erase_if(memory_mode, [&](const auto& entry) { return entry.second <= now; });
  std::set<std::string> candidates;  // may be in memory mode after this round
  for (const auto& head : *heads) {
    if (memory_mode.count(head.subscription_arn)) continue;  // its offers are picked below
    if (head.next_attempt > now) {
      next = std::min(next.value_or(head.next_attempt), head.next_attempt);
      continue;
    }
    candidates.insert(head.subscription_arn);
    PerSubscription& sub = per_subscription[head.subscription_arn];
    if (sub.attempts >= cap) continue;  // a completion wakes the scheduler
    if (free_slots <= 0) {
      starved = true;
      continue;
    }
    // The earliest `cap + held`: those in flight may be among them.
    auto ids = store->DueDeliveries(head.subscription_arn, now, cap + sub.held);
    if (!ids.ok()) {
      spdlog::error("SNS delivery: {}", ids.error().message);
      continue;
    }
    for (int64_t id : *ids) {
      if (sub.attempts >= cap) break;
      if (inflight.count(id)) continue;
      if (free_slots <= 0) {
        starved = true;
        break;
      }
      inflight.insert(id);
      ++sub.attempts;
      ++sub.held;
      --free_slots;
      Task task{id, head.subscription_arn, nullptr, 0};
      task.delivery = TakeOfferedLocked(head.subscription_arn, id, &task.version);
      queue.push_back(std::move(task));
      work_cv.notify_one();
    }
  }
  for (auto it = per_subscription.begin(); it != per_subscription.end();) {
    it = it->second.held == 0 ? per_subscription.erase(it) : std::next(it);
  }
  if (running) {
    for (const auto& [arn, entries] : offered) candidates.insert(arn);
    for (const std::string& arn : candidates) CheckMemoryModeLocked(arn, now);
    if (!starved) PickOfferedLocked();
  }
  for (const auto& [arn, due] : memory_mode) {
    if (due != kNever) next = std::min(next.value_or(due), due);
  }
  return next;
}

void DeliveryWorker::State::CheckMemoryModeLocked(const std::string& arn, double now) {
  if (memory_mode.count(arn)) return;
  auto sub = per_subscription.find(arn);
  const int held = sub == per_subscription.end() ? 0 : sub->second.held;
  if (sub != per_subscription.end() && sub->second.unrecorded_retries > 0) return;
  auto offers = offered.find(arn);
  auto known_row = [&](int64_t id) {
    return inflight.count(id) || (offers != offered.end() && offers->second.count(id));
  };
  // First the earliest due rows, as many as are in flight and one more: a row among them that
  // only the store holds (offers dropped past the bound, a backlog the store serves) fails the
  // check after reading held + 1 ids, not as many as are offered (thousands in such a backlog,
  // and a round runs per completion). The full check reads a superset of these rows, so this
  // changes what is read, never the outcome; when fewer than held + 1 are due, they were all
  // read and the full check is not needed.
  auto head = store->DueDeliveries(arn, now, held + 1);
  if (!head.ok()) return;
  for (int64_t id : *head) {
    if (!known_row(id)) return;
  }
  if (head->size() > static_cast<size_t>(held)) {
    const size_t known =
        static_cast<size_t>(held) + (offers == offered.end() ? 0 : offers->second.size());
    auto due = store->DueDeliveries(arn, now, static_cast<int>(known) + 1);
    if (!due.ok() || due->size() > known) return;
    for (int64_t id : *due) {
      if (!known_row(id)) return;
    }
  }
  auto later = store->NextAttemptAfter(arn, now);
  if (!later.ok()) return;
  memory_mode[arn] = later->value_or(kNever);
}

std::shared_ptr<const Delivery> DeliveryWorker::State::TakeOfferedLocked(
    const std::string& subscription_arn, int64_t id, uint64_t* version) {
  if (!offered_ids.count(id)) return nullptr;
  auto sub = offered.find(subscription_arn);
  if (sub == offered.end()) return nullptr;
  auto it = sub->second.find(id);
  if (it == sub->second.end()) return nullptr;
  std::shared_ptr<const Delivery> d = std::move(it->second.delivery);
  *version = it->second.version;
  offered_bytes -= it->second.bytes;
  offered_ids.erase(id);
  sub->second.erase(it);
  if (sub->second.empty()) offered.erase(sub);
  return d;
}

void DeliveryWorker::State::DropOffersLocked() {
  offered.clear();
  offered_ids.clear();
  offered_bytes = 0;
}

void DeliveryWorker::State::ToStoreModeLocked() {
  memory_mode.clear();
  WakeSchedulerLocked();
}

bool DeliveryWorker::State::OfferLocked(std::vector<std::shared_ptr<const Delivery>> deliveries,
                                        uint64_t version) {
  if (!running || stopping) return false;  // the store has them
  bool for_the_scheduler = false;
  for (auto& d : deliveries) {
    // Already picked from the store (the scheduler was quicker): it is read back.
    if (inflight.count(d->id) || offered_ids.count(d->id)) continue;
    if (!memory_mode.count(d->subscription_arn)) for_the_scheduler = true;
    const size_t bytes = ApproximateBytes(*d);
    const int64_t id = d->id;
    offered[d->subscription_arn].emplace(id, Offered{std::move(d), version, bytes});
    offered_ids.insert(id);
    offered_bytes += bytes;
  }
  if (offered_ids.size() > internal::kMaxOffered || offered_bytes > internal::kMaxOfferedBytes) {
    DropOffersLocked();
    ToStoreModeLocked();
    return false;
  }
  if (for_the_scheduler || starved) {
    WakeSchedulerLocked();  // its round picks the offers too
    return false;
  }
  return PickOfferedLocked();
}

bool DeliveryWorker::State::PickOfferedLocked() {
  int free_slots = FreeSlotsLocked();
  if (free_slots <= 0 || offered.empty()) return false;
  // A task queued while a worker waits wakes it (they wait on `mu`, held here).
  bool queued = false;
  const uint64_t version = store->config_version();
  const int cap = options.max_inflight_per_subscription;
  for (auto it = offered.begin(); it != offered.end() && free_slots > 0;) {
    if (!memory_mode.count(it->first)) {
      ++it;  // the scheduler picks it from the store
      continue;
    }
    auto& entries = it->second;
    PerSubscription* sub = nullptr;
    while (!entries.empty() && free_slots > 0) {
      auto first = entries.begin();
      if (first->second.version != version) {
        // Topics or subscriptions changed since it was offered: the store says what to send.
        DropOffersLocked();
        ToStoreModeLocked();
        return queued && waiting_workers > 0;
      }
      if (sub == nullptr) sub = &per_subscription[it->first];
      if (sub->attempts >= cap) break;
      inflight.insert(first->first);
      ++sub->attempts;
      ++sub->held;
      --free_slots;
      offered_bytes -= first->second.bytes;
      offered_ids.erase(first->first);
      queue.push_back({first->first, it->first, std::move(first->second.delivery), version});
      entries.erase(first);
      work_cv.notify_one();
      queued = true;
    }
    it = entries.empty() ? offered.erase(it) : std::next(it);
  }
  return queued && waiting_workers > 0;
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
  Task done{task.id, task.subscription_arn, nullptr, 0};
  bool memory = memory_mode.count(task.subscription_arn) > 0;
  if (outcome) {
    if (!outcome->finished) {
      // A retry leaves its row pending in the store: the scheduler picks it when due.
      if (it != per_subscription.end()) ++it->second.unrecorded_retries;
      memory_mode.erase(task.subscription_arn);
      memory = false;
    }
    outcomes.emplace_back(std::move(done), *outcome);
    outcome_cv.notify_one();
  } else {
    // No outcome (abandoned, or the row could not be read): whatever the store holds stays.
    ReleaseLocked(done);
    memory_mode.erase(task.subscription_arn);
    memory = false;
  }
  if (!memory || starved) {
    WakeSchedulerLocked();
  } else {
    PickOfferedLocked();
  }
}

void DeliveryWorker::State::Record(const std::vector<std::pair<Task, DeliveryOutcome>>& batch) {
  std::vector<DeliveryOutcome> rows;
  rows.reserve(batch.size());
  for (const auto& [task, outcome] : batch) rows.push_back(outcome);
  const Status st = store->RecordOutcomes(rows);
  if (!st.ok()) {
    // The rows stay due: those deliveries are attempted again (at-least-once).
    spdlog::error("SNS delivery: cannot record {} outcome(s): {}", rows.size(), st.error().message);
  }
  std::lock_guard lock(mu);
  bool schedule = false;
  for (const auto& [task, outcome] : batch) {
    if (!outcome.finished) {
      auto it = per_subscription.find(task.subscription_arn);
      if (it != per_subscription.end()) --it->second.unrecorded_retries;
    }
    ReleaseLocked(task);
    if (!st.ok()) memory_mode.erase(task.subscription_arn);
    // A row released in store mode may be due again; in memory mode it is gone.
    if (!memory_mode.count(task.subscription_arn)) schedule = true;
  }
  if (schedule) WakeSchedulerLocked();
}

}  // namespace inferd::notify
