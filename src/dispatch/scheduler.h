// Scheduler: which queued invocation runs next, and where. No I/O, no threads, no clock of its
// own (callers pass `now_ms`), so every rule is tested with plain values.
//
// Per endpoint (key = EndpointKey(region, name)):
//   - a first-in-first-out queue of compact entries {seq, received_ms, ttl_seconds} (24 bytes),
//     ordered by seq (the acceptance order; a requeued entry goes back to its seq position);
//   - the capacity last reported for it: its healthy instances, the per-instance cap
//     (MaxConcurrentInvocationsPerInstance) and the variants' weights.
// Per instance ("host:port"): outstanding requests (slots in use), requests assigned so far,
// and a cool-down after it refused or dropped a request.
//
// Assign(): an expired head is handed out as expired (it needs no slot); otherwise the head goes
// to a variant chosen by smooth weighted round robin (deterministic, proportional to the
// weights) among the variants that have an instance with a free slot — variants of weight 0 get
// nothing while some variant has a positive weight; then to that variant's instance with the
// fewest outstanding requests (ties: the one assigned fewer so far). An instance never holds
// more than the cap: a slot is a move-only SlotLease whose destruction frees it, so no path can
// leak one. With no free slot (0 instances included) entries wait.
//
// Thread-safe: one mutex; SlotLease may be released on any thread; the on_release callback runs
// after the lock is dropped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dispatch/dispatcher.h"

namespace inferd::dispatch {

struct QueueEntry {
  int64_t seq = 0;
  int64_t received_ms = 0;
  int32_t ttl_seconds = 0;
  // Expired once it waited longer than its RequestTTLSeconds: at any time after this.
  int64_t ExpiryMs() const { return received_ms + static_cast<int64_t>(ttl_seconds) * 1000; }
  bool ExpiredAt(int64_t now_ms) const { return now_ms > ExpiryMs(); }
};

// "host:port"
std::string InstanceKey(const InstanceRef& instance);

class Scheduler;

// One slot on one instance. Move-only; released by Release() or destruction.
class SlotLease {
 public:
  SlotLease() = default;
  SlotLease(SlotLease&& other) noexcept { *this = std::move(other); }
  SlotLease& operator=(SlotLease&& other) noexcept;
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { Release(); }

  void Release();
  bool held() const { return owner_ != nullptr; }
  const std::string& instance() const { return instance_; }

 private:
  friend class Scheduler;
  SlotLease(Scheduler* owner, std::string endpoint_key, std::string instance, bool backlog)
      : owner_(owner),
        endpoint_key_(std::move(endpoint_key)),
        instance_(std::move(instance)),
        backlog_(backlog) {}

  Scheduler* owner_ = nullptr;
  std::string endpoint_key_;
  std::string instance_;
  bool backlog_ = false;  // counted as the endpoint's work in progress
};

struct Capacity {
  std::vector<InstanceRef> instances;  // healthy ones
  int max_per_instance = 1;
  std::map<std::string, double> weights;  // by variant; absent = 1.0
};

class Scheduler {
 public:
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void SetOnRelease(std::function<void()> on_release) { on_release_ = std::move(on_release); }

  // ---- queues ----
  // true when the entry is the first of its endpoint's queue (it was empty). `arrived`: the
  // entry is an accept that AssignOnAccept counted as arriving; it is queued now.
  bool Push(const std::string& key, const QueueEntry& entry, bool arrived = false);
  // Removes a queued entry; false when it is not queued.
  bool Remove(const std::string& key, int64_t seq);
  // 0-based position of a queued entry.
  std::optional<int64_t> Position(const std::string& key, int64_t seq) const;
  // Empties an endpoint's queue (endpoint deleted), in order.
  std::deque<QueueEntry> TakeAll(const std::string& key);
  // Removes and returns the entries expired at now_ms, per endpoint key, in order. A queue is
  // scanned only once the earliest expiry among its entries may have passed (the sweep runs every
  // second under the lock the accept path takes: scanning 500,000 queued entries each time held
  // it ≈ 2 ms); entries scanned so far are counted in `expiry_scanned` (tests).
  std::vector<std::pair<std::string, std::deque<QueueEntry>>> TakeExpired(int64_t now_ms);
  uint64_t expiry_scanned() const;
  std::vector<std::string> KeysWithBacklog() const;

  // ---- capacity ----
  void SetCapacity(const std::string& key, Capacity capacity);

  struct Next {
    enum Kind { kNothing, kRun, kExpired } kind = kNothing;
    QueueEntry entry;
    InstanceRef instance;  // kRun
    SlotLease lease;       // kRun
  };
  // See the file comment. kNothing: empty queue, or no free slot.
  Next Assign(const std::string& key, int64_t now_ms);
  // A slot for a request that is not queued (InvokeEndpoint): like Assign's choice, on the
  // endpoint's capacity as given (which is remembered), honouring `target_variant` ("" = by
  // weight; a named variant is used whatever its weight). nullopt when no slot is free.
  std::optional<std::pair<InstanceRef, SlotLease>> AcquireDirect(const std::string& key,
                                                                 Capacity capacity,
                                                                 const std::string& target_variant,
                                                                 int64_t now_ms);
  // ---- invocations being accepted ----
  // A slot for an invocation being accepted, so that it runs without being queued: only when
  // its endpoint has nothing queued and nothing arriving (it passes no one) and `capacity`
  // (remembered, as for AcquireDirect) has a free slot; chosen as Assign chooses, and counted
  // as the endpoint's work in progress like Assign's. Otherwise nullopt, and the invocation is
  // counted as arriving — no later accept of the endpoint gets a slot here — until its Push
  // (arrived = true) or Arrived() when its accept failed. `capacity` (remembered whenever
  // given) null: no worker is free.
  std::optional<std::pair<InstanceRef, SlotLease>> AssignOnAccept(const std::string& key,
                                                                  const Capacity* capacity,
                                                                  int64_t now_ms);
  void Arrived(const std::string& key);
  // Nothing queued or arriving for `key` now (AssignOnAccept decides again under its lock).
  bool Idle(const std::string& key) const;

  // The instance refused or dropped a request: no new work for it before until_ms.
  void CoolDown(const std::string& instance, int64_t until_ms);

  // ---- facts ----
  struct Stats {
    size_t queued = 0;
    int running = 0;    // assigned by Assign and not yet released
    int instances = 0;  // as last reported
    std::optional<int64_t> oldest_received_ms;
  };
  Stats StatsOf(const std::string& key) const;
  size_t TotalQueued() const;
  int Outstanding(const std::string& instance) const;

 private:
  friend class SlotLease;
  struct InstanceState {
    int outstanding = 0;
    uint64_t assigned = 0;
    int64_t cool_until_ms = 0;
  };
  struct EndpointQueue {
    std::deque<QueueEntry> entries;
    // No entry expires before this (a lower bound: lowered by Push, made exact by a scan).
    int64_t earliest_expiry_ms = INT64_MAX;
    int arriving = 0;  // accepts on their way to `entries` (AssignOnAccept)
    int running = 0;
    Capacity capacity;
    std::map<std::string, double> wrr;  // smooth weighted round robin: current weights
  };
  // The chosen instance (index into q.capacity.instances) or -1.
  int PickLocked(EndpointQueue& q, const std::string& target_variant, int64_t now_ms);
  SlotLease LeaseLocked(const std::string& key, EndpointQueue& q, const InstanceRef& ref,
                        bool backlog);
  void Release(const std::string& key, const std::string& instance, bool backlog);

  mutable std::mutex mu_;
  uint64_t expiry_scanned_ = 0;
  std::unordered_map<std::string, EndpointQueue> queues_;
  std::unordered_map<std::string, InstanceState> instances_;
  std::function<void()> on_release_;
};

}  // namespace inferd::dispatch
