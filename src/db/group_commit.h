// GroupCommit: many threads' small writes share one transaction, so one fsync covers them all.
//
// A caller hands Run() its work (statements on the shared connection) and blocks until the
// transaction holding it has committed. There is no thread of its own: the first caller to find
// no commit in progress becomes the leader, takes every waiting piece of work (up to max_batch),
// runs them in one BEGIN IMMEDIATE … COMMIT under the connection's mutex and wakes their
// callers; whoever queued while it was syncing is led by the next leader (the oldest waiter).
// So the number of commits follows the disk, not the call rate, and a lone caller pays one
// commit, as before. Callers sleep on a FutexWord of their own and the leader wakes them after
// releasing its mutex, so a woken caller never blocks again on that mutex.
//
// Each piece of work runs inside its own SAVEPOINT: one that returns an error is rolled back
// alone and that caller gets the error; the others still commit. A failed COMMIT fails every
// caller of the batch (nothing of it was written).
//
//   caller:  queued ──(leader: batch committed)──► done
//              └──(no leader)──► leads: takes the queue, commits, wakes, hands over ──► done
//
// With CheckpointOptions::writer_finishes, a leader first finishes a checkpoint the checkpointer
// handed over (Database::FinishCheckpointIfDue), before its BEGIN.
//
// Thread-safe. `work` runs on the leader's thread with `db_mu` held: it must only use the
// connection (no locks of its own that a caller could hold while calling Run) and must not
// begin or end transactions itself.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

#include "common/result.h"

namespace inferd::db {

class Database;

class GroupCommit {
 public:
  // `db` and `db_mu` (the mutex every other user of `db` holds) must outlive this object.
  GroupCommit(Database& db, std::mutex& db_mu, std::size_t max_batch = 256);
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Runs `work` inside a shared transaction; returns its status once that transaction has
  // committed (or the commit's error). A caller that acts on what it wrote before the commit
  // (NotifyStore::PublishOnce's offer) does so from inside `work`.
  Status Run(const std::function<Status()>& work);

  // Transactions committed so far (for tests and metrics).
  std::size_t commits() const;

 private:
  struct Waiter;
  // Commits one batch from the queue's front, where `self` is; releases `lock`, hands the lead
  // to the next waiter (if any) and wakes the batch's other callers.
  void Lead(std::unique_lock<std::mutex>& lock, const Waiter& self);
  void CommitBatch(std::deque<Waiter*>& batch);

  Database& db_;
  std::mutex& db_mu_;
  const std::size_t max_batch_;
  mutable std::mutex mu_;  // guards queue_, leading_, commits_; never held while waking
  std::deque<Waiter*> queue_;
  bool leading_ = false;
  std::size_t commits_ = 0;
};

}  // namespace inferd::db
