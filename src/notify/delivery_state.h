// Internal to notify/'s DeliveryWorker: the state its threads share. delivery.cc has the threads
// and the attempt; delivery_schedule.cc what is picked when (store rounds, offers, memory mode).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "notify/delivery.h"

namespace inferd::notify {

namespace internal {

struct Task {
  int64_t id = 0;
  std::string subscription_arn;
  // The offered delivery, valid while the store's config_version() is `version`; null: read it
  // from the store.
  std::shared_ptr<const Delivery> delivery;
  uint64_t version = 0;
};

// Offers beyond these are dropped (the store serves them): a dead subscriber's backlog is not
// held in memory.
inline constexpr size_t kMaxOffered = 4096;
inline constexpr size_t kMaxOfferedBytes = 16 << 20;

}  // namespace internal

// Everything the threads share. Worker threads hold it by shared_ptr so an abandoned thread can
// finish after the DeliveryWorker is gone; they touch store/signer/clock only under `use_mu`
// (shared) while !abandoned. Everything else is guarded by `mu`.
struct DeliveryWorker::State {
  using Task = internal::Task;

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
  int waiting_workers = 0;  // worker threads waiting on work_cv for a task
  // Deliveries picked and not yet released: queued, being attempted, or their outcome being
  // committed. Never picked twice.
  std::set<int64_t> inflight;
  struct PerSubscription {
    int attempts = 0;            // queued or being attempted: at most max_inflight_per_subscription
    int held = 0;                // in `inflight`
    int unrecorded_retries = 0;  // of `held`: retry outcomes not committed yet
  };
  std::map<std::string, PerSubscription> per_subscription;  // entries with held > 0
  int active = 0;
  std::vector<bool> exited;
  // Attempts over whose outcome is not committed yet (the outcome writer's input).
  std::vector<std::pair<Task, DeliveryOutcome>> outcomes;
  bool outcomes_closed = false;  // Stop(): the outcome writer drains `outcomes` and exits

  // ---- offers and memory mode (see delivery.h) ----
  bool running = false;  // Start() until Stop(): offers are kept
  struct Offered {
    std::shared_ptr<const Delivery> delivery;
    uint64_t version;
    size_t bytes;
  };
  // Offered deliveries not picked yet: per subscription, by id.
  std::map<std::string, std::map<int64_t, Offered>> offered;
  std::set<int64_t> offered_ids;
  size_t offered_bytes = 0;
  // Subscriptions in memory mode: each of their due rows is in flight or offered, none of those
  // in flight waits for a retry outcome's commit, and their other rows are not due before the
  // time mapped here (infinity: none); the scheduler's timer covers that time.
  std::map<std::string, double> memory_mode;
  // The last store round left due rows unpicked for want of a free worker: a freed worker goes
  // to the scheduler, not straight to the offers.
  bool starved = false;
  std::atomic<uint64_t> sent_from_memory{0};

  std::shared_mutex use_mu;
  bool abandoned = false;  // written under use_mu (exclusive)

  // ---- delivery.cc ----
  // One attempt of one delivery, start to finish; what to record of it (nothing once abandoned,
  // or when the row is gone).
  std::optional<DeliveryOutcome> Execute(const Task& task);

  // ---- delivery_schedule.cc (callers hold `mu` where the name says Locked) ----
  int FreeSlotsLocked() const;
  // A store round: picks due deliveries of subscriptions in store mode into `queue` (at most
  // `free_slots`), moves subscriptions whose pending rows are all known into memory mode, then
  // queues offers. Returns when the next row not yet due becomes due (epoch seconds), if known.
  std::optional<double> ScheduleLocked(double now, int free_slots);
  // Queues offered deliveries of subscriptions in memory mode while workers and subscriptions
  // have room, lowest id first. Returns whether it woke a worker that was waiting for a task.
  bool PickOfferedLocked();
  // Takes the offers of `deliveries` (Offer()); returns whether a waiting worker was given one.
  bool OfferLocked(std::vector<std::shared_ptr<const Delivery>> deliveries, uint64_t version);
  // Every subscription back to store mode (rows were written without an offer, or offers were
  // dropped): the scheduler runs.
  void ToStoreModeLocked();
  void WakeSchedulerLocked();
  // The attempt is over: frees its worker (`was_active`) and its place among the subscription's
  // attempts, in one step, so the next pick already sees them free. The delivery stays in flight
  // until `outcome` is committed (queued for the outcome writer).
  void AttemptOver(const Task& task, std::optional<DeliveryOutcome> outcome, bool was_active);
  // Commits `batch` in one write, then releases its deliveries.
  void Record(const std::vector<std::pair<Task, DeliveryOutcome>>& batch);

  void ReleaseLocked(const Task& task);
  std::shared_ptr<const Delivery> TakeOfferedLocked(const std::string& subscription_arn, int64_t id,
                                                    uint64_t* version);
  void DropOffersLocked();
  // Memory mode for `subscription_arn` when the store holds no row of it due at `now` that is
  // neither in flight nor offered.
  void CheckMemoryModeLocked(const std::string& subscription_arn, double now);
};

}  // namespace inferd::notify
