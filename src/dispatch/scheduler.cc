#include "dispatch/scheduler.h"

#include <algorithm>
#include <cstdint>

namespace inferd::dispatch {

namespace {

bool BySeq(const QueueEntry& e, int64_t seq) { return e.seq < seq; }

}  // namespace

std::string InstanceKey(const InstanceRef& instance) {
  return instance.host + ":" + std::to_string(instance.port);
}

SlotLease& SlotLease::operator=(SlotLease&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    endpoint_key_ = std::move(other.endpoint_key_);
    instance_ = std::move(other.instance_);
    backlog_ = other.backlog_;
  }
  return *this;
}

void SlotLease::Release() {
  if (Scheduler* owner = std::exchange(owner_, nullptr)) {
    owner->Release(endpoint_key_, instance_, backlog_);
  }
}

bool Scheduler::Push(const std::string& key, const QueueEntry& entry, bool arrived) {
  std::lock_guard lock(mu_);
  EndpointQueue& q = queues_[key];
  if (arrived && q.arriving > 0) --q.arriving;
  q.earliest_expiry_ms = std::min(q.earliest_expiry_ms, entry.ExpiryMs());
  auto& entries = q.entries;
  if (entries.empty() || entries.back().seq < entry.seq) {
    entries.push_back(entry);
    return entries.size() == 1;
  }
  auto it = std::lower_bound(entries.begin(), entries.end(), entry.seq, BySeq);
  if (it != entries.end() && it->seq == entry.seq) return false;  // already queued
  entries.insert(it, entry);
  return false;
}

bool Scheduler::Remove(const std::string& key, int64_t seq) {
  std::lock_guard lock(mu_);
  auto q = queues_.find(key);
  if (q == queues_.end()) return false;
  auto& entries = q->second.entries;
  auto it = std::lower_bound(entries.begin(), entries.end(), seq, BySeq);
  if (it == entries.end() || it->seq != seq) return false;
  entries.erase(it);
  return true;
}

std::optional<int64_t> Scheduler::Position(const std::string& key, int64_t seq) const {
  std::lock_guard lock(mu_);
  auto q = queues_.find(key);
  if (q == queues_.end()) return std::nullopt;
  const auto& entries = q->second.entries;
  auto it = std::lower_bound(entries.begin(), entries.end(), seq, BySeq);
  if (it == entries.end() || it->seq != seq) return std::nullopt;
  return it - entries.begin();
}

std::deque<QueueEntry> Scheduler::TakeAll(const std::string& key) {
  std::lock_guard lock(mu_);
  auto q = queues_.find(key);
  if (q == queues_.end()) return {};
  q->second.earliest_expiry_ms = INT64_MAX;
  return std::exchange(q->second.entries, {});
}

std::vector<std::pair<std::string, std::deque<QueueEntry>>> Scheduler::TakeExpired(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::deque<QueueEntry>>> out;
  for (auto& [key, q] : queues_) {
    if (now_ms <= q.earliest_expiry_ms) continue;  // none can have expired yet
    auto& entries = q.entries;
    expiry_scanned_ += entries.size();
    // The kept entries first, both groups in order (a queue with nothing expired moves nothing).
    auto expired = std::stable_partition(entries.begin(), entries.end(),
                                         [&](const QueueEntry& e) { return !e.ExpiredAt(now_ms); });
    int64_t earliest = INT64_MAX;  // among the entries kept
    for (auto it = entries.begin(); it != expired; ++it) {
      earliest = std::min(earliest, it->ExpiryMs());
    }
    if (expired != entries.end()) {
      out.emplace_back(key, std::deque<QueueEntry>(expired, entries.end()));
      entries.erase(expired, entries.end());
    }
    q.earliest_expiry_ms = earliest;
  }
  return out;
}

uint64_t Scheduler::expiry_scanned() const {
  std::lock_guard lock(mu_);
  return expiry_scanned_;
}

std::vector<std::string> Scheduler::KeysWithBacklog() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, q] : queues_) {
    if (!q.entries.empty()) out.push_back(key);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Scheduler::SetCapacity(const std::string& key, Capacity capacity) {
  std::lock_guard lock(mu_);
  queues_[key].capacity = std::move(capacity);
}

int Scheduler::PickLocked(EndpointQueue& q, const std::string& target_variant, int64_t now_ms) {
  const Capacity& cap = q.capacity;
  auto weight = [&](const std::string& variant) {
    auto it = cap.weights.find(variant);
    return it == cap.weights.end() ? 1.0 : it->second;
  };
  // Per variant, its best instance with a free slot: (index, its state).
  std::map<std::string, std::pair<int, const InstanceState*>> best;
  bool any_positive = false;
  for (size_t i = 0; i < cap.instances.size(); ++i) {
    const InstanceRef& ref = cap.instances[i];
    if (weight(ref.variant) > 0) any_positive = true;
    if (!target_variant.empty() && ref.variant != target_variant) continue;
    const InstanceState& s = instances_[InstanceKey(ref)];  // node-based: stays valid
    if (s.outstanding >= cap.max_per_instance || s.cool_until_ms > now_ms) continue;
    auto [it, inserted] = best.try_emplace(ref.variant, static_cast<int>(i), &s);
    if (inserted) continue;
    const InstanceState& b = *it->second.second;
    if (s.outstanding < b.outstanding ||
        (s.outstanding == b.outstanding && s.assigned < b.assigned)) {
      it->second = {static_cast<int>(i), &s};
    }
  }
  if (best.empty()) return -1;
  if (!target_variant.empty()) return best.begin()->second.first;
  // Smooth weighted round robin among the eligible variants.
  double total = 0;
  const std::string* chosen = nullptr;
  for (const auto& [variant, index] : best) {
    double w = any_positive ? weight(variant) : 1.0;
    if (w <= 0) continue;
    double& current = q.wrr[variant];
    current += w;
    total += w;
    if (!chosen || current > q.wrr[*chosen]) chosen = &variant;
  }
  if (!chosen) return -1;  // only zero-weight variants have room
  q.wrr[*chosen] -= total;
  return best[*chosen].first;
}

SlotLease Scheduler::LeaseLocked(const std::string& key, EndpointQueue& q, const InstanceRef& ref,
                                 bool backlog) {
  std::string instance = InstanceKey(ref);
  InstanceState& s = instances_[instance];
  ++s.outstanding;
  ++s.assigned;
  if (backlog) ++q.running;
  return SlotLease(this, key, std::move(instance), backlog);
}

Scheduler::Next Scheduler::Assign(const std::string& key, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Next next;
  auto it = queues_.find(key);
  if (it == queues_.end() || it->second.entries.empty()) return next;
  EndpointQueue& q = it->second;
  if (q.entries.front().ExpiredAt(now_ms)) {
    next.kind = Next::kExpired;
    next.entry = q.entries.front();
    q.entries.pop_front();
    return next;
  }
  int index = PickLocked(q, "", now_ms);
  if (index < 0) return next;
  next.kind = Next::kRun;
  next.entry = q.entries.front();
  q.entries.pop_front();
  next.instance = q.capacity.instances[index];
  next.lease = LeaseLocked(key, q, next.instance, /*backlog=*/true);
  return next;
}

std::optional<std::pair<InstanceRef, SlotLease>> Scheduler::AcquireDirect(
    const std::string& key, Capacity capacity, const std::string& target_variant, int64_t now_ms) {
  std::lock_guard lock(mu_);
  EndpointQueue& q = queues_[key];
  q.capacity = std::move(capacity);
  int index = PickLocked(q, target_variant, now_ms);
  if (index < 0) return std::nullopt;
  InstanceRef ref = q.capacity.instances[index];
  SlotLease lease = LeaseLocked(key, q, ref, /*backlog=*/false);
  return std::make_pair(std::move(ref), std::move(lease));
}

bool Scheduler::Idle(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = queues_.find(key);
  return it == queues_.end() || (it->second.entries.empty() && it->second.arriving == 0);
}

std::optional<std::pair<InstanceRef, SlotLease>> Scheduler::AssignOnAccept(const std::string& key,
                                                                           const Capacity* capacity,
                                                                           int64_t now_ms) {
  std::lock_guard lock(mu_);
  EndpointQueue& q = queues_[key];
  if (capacity) q.capacity = *capacity;  // fresh: the queue's runs use it too
  if (capacity && q.entries.empty() && q.arriving == 0) {
    int index = PickLocked(q, "", now_ms);
    if (index >= 0) {
      InstanceRef ref = q.capacity.instances[index];
      SlotLease lease = LeaseLocked(key, q, ref, /*backlog=*/true);
      return std::make_pair(std::move(ref), std::move(lease));
    }
  }
  ++q.arriving;
  return std::nullopt;
}

void Scheduler::Arrived(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = queues_.find(key);
  if (it != queues_.end() && it->second.arriving > 0) --it->second.arriving;
}

void Scheduler::CoolDown(const std::string& instance, int64_t until_ms) {
  std::lock_guard lock(mu_);
  InstanceState& s = instances_[instance];
  s.cool_until_ms = std::max(s.cool_until_ms, until_ms);
}

void Scheduler::Release(const std::string& key, const std::string& instance, bool backlog) {
  {
    std::lock_guard lock(mu_);
    if (auto it = instances_.find(instance); it != instances_.end() && it->second.outstanding > 0) {
      --it->second.outstanding;
    }
    if (backlog) {
      if (auto q = queues_.find(key); q != queues_.end() && q->second.running > 0) {
        --q->second.running;
      }
    }
  }
  if (on_release_) on_release_();
}

Scheduler::Stats Scheduler::StatsOf(const std::string& key) const {
  std::lock_guard lock(mu_);
  Stats stats;
  auto it = queues_.find(key);
  if (it == queues_.end()) return stats;
  const EndpointQueue& q = it->second;
  stats.queued = q.entries.size();
  stats.running = q.running;
  stats.instances = static_cast<int>(q.capacity.instances.size());
  if (!q.entries.empty()) stats.oldest_received_ms = q.entries.front().received_ms;
  return stats;
}

size_t Scheduler::TotalQueued() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, q] : queues_) n += q.entries.size();
  return n;
}

int Scheduler::Outstanding(const std::string& instance) const {
  std::lock_guard lock(mu_);
  auto it = instances_.find(instance);
  return it == instances_.end() ? 0 : it->second.outstanding;
}

}  // namespace inferd::dispatch
