#include "db/group_commit.h"

#include <utility>

#include "db/sqlite.h"

namespace inferd::db {

struct GroupCommit::Waiter {
  const std::function<Status()>* work;
  Status result = OkStatus();
  bool done = false;
  bool lead = false;  // handed the lead by the previous leader
  std::condition_variable cv;
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
  while (!me.done) {
    if (leading_ && !me.lead) {
      me.cv.wait(lock);
      continue;
    }
    me.lead = false;
    Lead(lock, me);
    if (!me.done) me.lead = true;  // the batch was capped before this caller: lead the next one
  }
  return std::move(me.result);
}

void GroupCommit::Lead(std::unique_lock<std::mutex>& lock, const Waiter& self) {
  leading_ = true;
  std::deque<Waiter*> batch;
  while (!queue_.empty() && batch.size() < max_batch_) {
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  lock.unlock();
  CommitBatch(batch);
  lock.lock();
  ++commits_;
  for (Waiter* w : batch) {
    w->done = true;
    w->cv.notify_one();
  }
  // Whoever queued during the commit is led by the oldest of them. A leader whose own work is
  // still queued (the batch was capped) keeps the lead: Run loops.
  if (!self.done) return;
  if (queue_.empty()) {
    leading_ = false;
  } else {
    queue_.front()->lead = true;
    queue_.front()->cv.notify_one();
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
