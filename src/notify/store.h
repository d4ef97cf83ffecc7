// NotifyStore: durable state of the notification service in one SQLite database
// (<data-dir>/notify.db, WAL, synchronous=FULL: a call that returned has reached the disk).
//
//   topics         arn, region, name, attributes (JSON), tags (JSON)
//   subscriptions  arn, topic, protocol, endpoint, status, confirmation token, attributes (JSON)
//   messages       the outbox's messages: id, type, topic, subject, message, attributes, token,
//                  timestamp — one row per published message
//   deliveries     one row per (message, subscription) still to be delivered: attempts made and
//                  when the next one is due. A message row goes with its last delivery.
//
// Publishing writes the message and a delivery for every confirmed subscription of its topic in
// one transaction, so a message is either wholly in the outbox or not at all. The store has no
// notion of "in flight": the delivery worker tracks that in memory, so after a crash every row is
// simply due again (at-least-once).
//
// Thread-safe: one connection behind a mutex. Every call blocks on disk I/O: call it from the
// blocking pool or the delivery threads, never from an I/O thread.
#pragma once

#include <filesystem>
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
}

namespace inferd::notify {

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

class NotifyStore {
 public:
  static Result<std::unique_ptr<NotifyStore>> Open(const std::filesystem::path& path);
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
  // of deliveries written.
  Result<int> Publish(const std::vector<OutboxMessage>& messages, double now);
  // Publish of one message keyed by `dedup_id`, in one transaction: when the key is known the
  // earlier MessageId is returned and nothing is written; otherwise the message (and its
  // deliveries, if any) and the key are written and `message.message_id` is returned. Keys
  // recorded before `forget_before` are forgotten on the way. `deliveries` (optional) gets the
  // number of deliveries written.
  Result<std::string> PublishOnce(const OutboxMessage& message, const std::string& dedup_id,
                                  double now, double forget_before, int* deliveries = nullptr);
  // Per subscription with pending deliveries, the earliest one.
  Result<std::vector<DeliveryHead>> DeliveryHeads();
  // Ids of a subscription's deliveries due at `now`, earliest first, at most `limit`.
  Result<std::vector<int64_t>> DueDeliveries(const std::string& subscription_arn, double now,
                                             int limit);
  Result<Delivery> LoadDelivery(int64_t id);  // kNotFound when the row is gone
  // Removes a delivery (delivered, or given up); its message goes with its last delivery.
  Status FinishDelivery(int64_t id);
  Status RescheduleDelivery(int64_t id, int attempts, double next_attempt);
  Result<int64_t> CountDeliveries();

 private:
  explicit NotifyStore(std::unique_ptr<db::Database> db);
  Result<int64_t> InsertMessageLocked(const OutboxMessage& message);
  // The message and one delivery per confirmed subscription (none: nothing written); the number
  // of deliveries. Inside the caller's transaction.
  Result<int> PublishLocked(const OutboxMessage& message, double now);
  Status DropDeliveriesLocked(const std::string& where, const std::string& arg);
  Status DropOrphanMessagesLocked();

  std::mutex mu_;
  std::unique_ptr<db::Database> db_;
};

}  // namespace inferd::notify
