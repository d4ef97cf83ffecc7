// NotifyStore: durable state of the notification service in one SQLite database
// (<data-dir>/notify.db, WAL, synchronous=FULL: a call that returned has reached the disk).
//
//   topics         arn, region, name, attributes (JSON), tags (JSON)
//   subscriptions  arn, topic, protocol, endpoint, status, confirmation token, attributes (JSON)
//   messages       the outbox's messages: id, type, topic, subject, message, attributes, token,
//                  timestamp — one row per published message
//   deliveries     one row per (message, subscription) still to be delivered: attempts made,
//                  when the next one is due, and whether it is held. A message row goes with
//                  its last delivery. Ids are not reused while the process runs.
//   published      PublishOnce's dedup keys, the MessageId each was published as, its message
//                  row, and the tag it is held under (0: not held).
//
// Held publishes (PublishOnce with OnceOptions::hold): the message and its deliveries are
// written, but no scan finds the deliveries due until a later PublishOnce of the key with
// OnceOptions::release equal to the tag releases them. Any other PublishOnce of a held key
// replaces the held message (it is deleted, the new one written in its place). Older inferd
// versions committed a result's notification held while its output object committed and
// released it once both were durable; a data dir they left after a crash may still hold such
// rows, which the dispatcher's recovery releases (the output was durable) or replaces. Nothing
// writes held messages any more but the tests that recreate such data dirs. Held deliveries
// still unreleased when their key is forgotten (dedup retention) are deleted with it.
//
// Publishing writes the message and a delivery for every confirmed subscription of its topic
// atomically (one savepoint of one transaction), so a message is either wholly in the outbox or
// not at all. The store has no
// notion of "in flight": the delivery worker tracks that in memory, so after a crash every row is
// simply due again (at-least-once).
//
// Connections and group commit: every write (publishes, delivery outcomes, topic and
// subscription changes) is a piece of work run by one db::GroupCommit on the single write
// connection: callers that arrive while a commit is syncing share the next transaction, each in
// its own savepoint (a failing call rolls back alone), so one fsync covers many calls and the
// number of commits follows the disk, not the call rate. A write returns once its transaction
// has committed. Reads (the getters, lists, counts and the delivery worker's DeliveryHeads /
// DueDeliveries / LoadDelivery) run on a small pool of read-only connections: WAL readers see
// the last commit and never wait for the writer's transaction or its fsync. A thread that wrote
// and then reads sees its write (the commit returned before the read began); what must read and
// write atomically (InsertTopicIfAbsent, PublishOnce's dedup check) runs as one write.
//
// Thread-safe. Every call blocks on disk I/O: call it from the blocking pool or the delivery
// threads, never from an I/O thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "notify/types.h"

namespace inferd::db {
class Database;
class GroupCommit;
}  // namespace inferd::db

namespace inferd::notify {

namespace internal {
class ReaderPool;
}

struct SubscriptionCounts {
  int confirmed = 0;
  int pending = 0;
  int deleted = 0;
};

// The earliest pending delivery of one subscription.
struct DeliveryHead {
  std::string subscription_arn;
  double next_attempt = 0;
};

// A delivery Publish/PublishOnce wrote: its id and its subscription as the publish's transaction
// read it, so the delivery worker can send it without reading it back (DeliveryWorker::Offer).
struct FannedOut {
  size_t message = 0;  // index into Publish's `messages` (0 for PublishOnce)
  int64_t id = 0;
  Subscription subscription;
};

// What became of one delivery attempt, as the delivery worker records it.
struct DeliveryOutcome {
  int64_t id = 0;
  // true: delivered or given up, the row goes (and its message with its last delivery);
  // false: retried, `attempts` made so far and the next one due at `next_attempt`.
  bool finished = true;
  int attempts = 0;
  double next_attempt = 0;
};

// PublishOnce's held-message rules (see the file comment).
struct OnceOptions {
  int64_t hold = 0;     // > 0: write the message held under this tag
  int64_t release = 0;  // > 0: a held message of the key with this tag is released, not replaced
};

// What PublishOnce did.
struct OnceOutcome {
  std::string message_id;  // the new message's, or the earlier one's when the key was known
  std::vector<FannedOut> fanned_out;  // each delivery written
  bool written = false;               // this message was written (the key was not known)
  bool released = false;              // a held message of the key was released (now due)
};

class NotifyStore {
 public:
  static constexpr int kReadConnections = 4;

  static Result<std::unique_ptr<NotifyStore>> Open(const std::filesystem::path& path,
                                                   int read_connections = kReadConnections);
  ~NotifyStore();
  NotifyStore(const NotifyStore&) = delete;
  NotifyStore& operator=(const NotifyStore&) = delete;

  // ---- topics ----
  // Inserts `topic` unless its ARN exists; returns the stored topic either way (the caller
  // compares attributes for SNS's idempotency rule).
  Result<Topic> InsertTopicIfAbsent(const Topic& topic);
  Result<Topic> GetTopic(const std::string& arn);  // kNotFound when absent
  Status SetTopicAttributes(const std::string& arn, const AttributeMap& attributes);
  Status SetTopicTags(const std::string& arn, const TagMap& tags);
  // Removes the topic, its subscriptions and their pending deliveries. false when it did not exist.
  Result<bool> DeleteTopic(const std::string& arn);
  // Topic ARNs of a region in ARN order after `after_arn`; at most `limit` (+1 tells more exist).
  Result<std::vector<std::string>> ListTopics(const std::string& region,
                                              const std::string& after_arn, int limit);
  Result<SubscriptionCounts> CountSubscriptions(const std::string& topic_arn);

  // ---- subscriptions ----
  // The live (pending or confirmed) subscription of a topic to an endpoint, if any.
  Result<std::optional<Subscription>> FindSubscription(const std::string& topic_arn,
                                                       const std::string& protocol,
                                                       const std::string& endpoint);
  Result<Subscription> GetSubscription(const std::string& arn);  // kNotFound when absent
  // The subscription holding confirmation `token` for `topic_arn` (kNotFound when none).
  Result<Subscription> FindByToken(const std::string& topic_arn, const std::string& token);
  // Inserts or replaces `subscription`. In the same transaction: with `drop_deliveries`, removes
  // its pending deliveries; with `enqueue`, adds that message (a confirmation) for it, due `now`.
  Status PutSubscription(const Subscription& subscription, const OutboxMessage* enqueue,
                         bool drop_deliveries, double now);
  // Live subscriptions in ARN order after `after_arn`: of one topic, or (empty topic_arn) of
  // every topic in `region`. At most `limit` (+1 tells more exist).
  Result<std::vector<Subscription>> ListSubscriptions(const std::string& region,
                                                      const std::string& topic_arn,
                                                      const std::string& after_arn, int limit);
  // Removes deleted subscriptions changed before `deleted_before` and pending ones whose token
  // expired before `now`, unless deliveries are still pending for them. Returns how many.
  Result<int> PurgeSubscriptions(double deleted_before, double now);

  // ---- outbox ----
  // Writes each message with one delivery per confirmed subscription of its topic, due `now`,
  // all in one transaction. Messages nobody is subscribed to are not stored. Returns the number
  // of deliveries written; with `fanned_out`, also each delivery written (in id order).
  Result<int> Publish(const std::vector<OutboxMessage>& messages, double now,
                      std::vector<FannedOut>* fanned_out = nullptr);
  // Publish of one message keyed by `dedup_id`, atomically: when the key is known (and not
  // held) the earlier MessageId is returned and nothing is written; otherwise the message (and
  // its deliveries, if any) and the key are written and `message.message_id` is returned.
  // Concurrent calls with one key write one message and all return its MessageId. Keys
  // recorded before `forget_before` are not known any more (their rows are deleted on the way,
  // at most once a second). A known key whose message is held is released (once.release == its
  // tag) or replaced (see the file comment). The outcome also lists the deliveries written.
  // `before_insert`, if given, is called with the outcome when this message is written, not held,
  // with deliveries: inside the transaction, once the key was found unknown and the deliveries' ids
  // and subscriptions are known, before their rows are inserted (so before any of it is durable; if
  // an insert or the commit then fails, nothing of it is written and the call returns the
  // error). It is not called when the key's earlier message stands or is released. It runs with
  // the write connection held: it must not call the store.
  Result<OnceOutcome> PublishOnce(
      const OutboxMessage& message, const std::string& dedup_id, double now, double forget_before,
      const OnceOptions& once = {},
      const std::function<void(const OnceOutcome&)>& before_insert = {});
  // Per subscription with pending deliveries, the earliest one.
  Result<std::vector<DeliveryHead>> DeliveryHeads();
  // Ids of a subscription's deliveries due at `now`, earliest first, at most `limit`.
  Result<std::vector<int64_t>> DueDeliveries(const std::string& subscription_arn, double now,
                                             int limit);
  Result<Delivery> LoadDelivery(int64_t id);  // kNotFound when the row is gone
  // When the earliest of a subscription's deliveries due after `now` is due (none: nullopt).
  Result<std::optional<double>> NextAttemptAfter(const std::string& subscription_arn, double now);
  // Removes a delivery (delivered, or given up); its message goes with its last delivery.
  Status FinishDelivery(int64_t id);
  Status RescheduleDelivery(int64_t id, int attempts, double next_attempt);
  // Many outcomes in one write (FinishDelivery or RescheduleDelivery of each), all or none. Rows
  // already gone are skipped.
  Status RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes);
  Result<int64_t> CountDeliveries();

  // Transactions committed on the write connection since Open, and writes waiting for their
  // commit now (for tests and metrics).
  std::size_t commits() const { return commits_.load(); }
  std::size_t writes_waiting() const { return writes_waiting_.load(); }
  // Bumped after every committed change of topics or subscriptions that can change how, or
  // whether, a pending delivery is sent (topic attributes, DeleteTopic, PutSubscription, purges).
  // A copy of a delivery read at version v is still what LoadDelivery would return while the
  // version is v, except for its attempts (the delivery worker's own).
  uint64_t config_version() const { return config_version_.load(std::memory_order_acquire); }
  // Tests only: holds the write connection as a commit in progress does; every write waits
  // until the lock is released, reads do not.
  std::unique_lock<std::mutex> HoldWriterForTesting() { return std::unique_lock(write_mu_); }
  // Tests only: `hook` (empty: none) runs at every COMMIT of the write connection, before the
  // commit syncs, on the committing thread with the write connection held.
  void SetBeforeCommitForTesting(std::function<void()> hook) {
    std::lock_guard lock(write_mu_);
    before_commit_for_testing_ = std::move(hook);
  }

 private:
  NotifyStore(std::unique_ptr<db::Database> db, std::unique_ptr<internal::ReaderPool> readers);
  // Runs `work` on the write connection through the group commit; returns once its transaction
  // has committed. `work` runs with write_mu_ held, on whichever caller leads the batch.
  Status Write(const std::function<Status()>& work);
  Result<int64_t> InsertMessageLocked(const OutboxMessage& message);
  // The message and one delivery per confirmed subscription (none: nothing written); the number
  // of deliveries. Inside the caller's transaction.
  // `held`: the deliveries are written held. `row` (optional) gets the message's row id (0 when
  // nothing was written). `before_insert` (optional) is called once the deliveries are in
  // `fanned_out` and before any row is inserted (not when nobody is subscribed).
  Result<int> PublishLocked(const OutboxMessage& message, double now, size_t index,
                            std::vector<FannedOut>* fanned_out, bool held = false,
                            int64_t* row = nullptr,
                            const std::function<void()>& before_insert = {});
  // PublishOnce's dedup-key housekeeping: once a second, deletes keys recorded before
  // `forget_before` and held deliveries written before it.
  Status ForgetLocked(double now, double forget_before);
  // Marks the key released and its message's (row `row`) deliveries due.
  Status ReleaseLocked(const std::string& dedup_id, int64_t row);
  // Write() of a change config_version() counts: bumps it once the change has committed, when
  // `work` changed any row.
  Status ConfigWrite(const std::function<Status()>& work);
  Status DropDeliveriesLocked(const std::string& where, const std::string& arg);
  Status DropOrphanMessagesLocked();
  Status FinishLocked(int64_t id);
  Status RescheduleLocked(int64_t id, int attempts, double next_attempt);
  static int OnCommit(void* self);

  std::mutex write_mu_;  // the write connection: held by the group commit's leader
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<db::GroupCommit> group_;
  std::unique_ptr<internal::ReaderPool> readers_;
  std::atomic<std::size_t> commits_{0};
  std::atomic<std::size_t> writes_waiting_{0};
  std::atomic<uint64_t> config_version_{0};
  double forgot_at_;  // `now` of the last delete of old dedup keys; guarded by write_mu_
  // The highest delivery id handed out (guarded by write_mu_). New deliveries get ids above it,
  // so an id is never reused while the process runs (SQLite would reuse a deleted highest
  // rowid): the delivery worker's in-flight ids and pending outcomes name one row for good.
  int64_t last_delivery_id_ = 0;
  std::function<void()> before_commit_for_testing_;  // guarded by write_mu_
};

}  // namespace inferd::notify
