#include "db/group_commit.h"

#include <cassert>
#include <utility>

#include "common/futex_word.h"
#include "db/sqlite.h"

namespace inferd::db {

namespace {
// A waiter's state; only its leader changes it, once (kDone or kLead).
enum : uint32_t { kQueued = 0, kDone = 1, kLead = 2 };
}  // namespace

struct GroupCommit::Waiter {
  const std::function<Status()>* work;
  Status result = OkStatus();  // written by the leader before it sets kDone
  FutexWord state{kQueued};
};

GroupCommit::GroupCommit(Database& db, std::mutex& db_mu, std::size_t max_batch)
    : db_(db), db_mu_(db_mu), max_batch_(max_batch == 0 ? 1 : max_batch) {}

std::size_t GroupCommit::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}

Status GroupCommit::Run(const std::function<Status()>& work) {
  Waiter me;
  me.work = &work;
  std::unique_lock lock(mu_);
  queue_.push_back(&me);
  if (leading_) {
    lock.unlock();
    if (me.state.WaitWhile(kQueued) == kDone) return std::move(me.result);
    lock.lock();  // handed the lead (kLead)
  }
  // A caller leads only when it queued into an empty queue or was handed the lead as the queue's
  // front (below): its work is always in the batch it leads, whatever max_batch.
  leading_ = true;
  Lead(lock, me);
  return std::move(me.result);
}

void GroupCommit::Lead(std::unique_lock<std::mutex>& lock, const Waiter& self) {
  assert(queue_.front() == &self);
  std::deque<Waiter*> batch;
  while (!queue_.empty() && batch.size() < max_batch_) {
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  lock.unlock();
  CommitBatch(batch);
  lock.lock();
  ++commits_;
  // Whoever queued during the commit, or did not fit in the batch, is led by the oldest of them.
  Waiter* next = queue_.empty() ? nullptr : queue_.front();
  if (next == nullptr) leading_ = false;
  lock.unlock();
  // Woken outside mu_ (FutexWord): the next leader first, so its commit starts while the
  // others wake.
  if (next != nullptr) next->state.Set(kLead);
  for (Waiter* w : batch) {
    if (w != &self) w->state.Set(kDone);
  }
}

void GroupCommit::CommitBatch(std::deque<Waiter*>& batch) {
  std::lock_guard db_lock(db_mu_);
  // A checkpoint handed to this database's writer (CheckpointOptions::writer_finishes) is
  // finished by the next leader, before its transaction: no commit can overtake it.
  db_.FinishCheckpointIfDue();
  Transaction tx(db_);
  if (!tx.status().ok()) {
    for (Waiter* w : batch) w->result = tx.status();
    return;
  }
  for (Waiter* w : batch) {
    if (Status st = db_.Exec("SAVEPOINT gc"); !st.ok()) {
      w->result = std::move(st);
      continue;
    }
    Status st = (*w->work)();
    if (!st.ok()) {
      (void)db_.Exec("ROLLBACK TO gc");
    }
    (void)db_.Exec("RELEASE gc");
    w->result = std::move(st);
  }
  Status committed = tx.Commit();
  if (!committed.ok()) {
    for (Waiter* w : batch) {
      if (w->result.ok()) w->result = committed;
    }
  }
}

}  // namespace inferd::db
