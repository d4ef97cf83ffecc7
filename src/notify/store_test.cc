#include "notify/store.h"

#include <gtest/gtest.h>

#include "db/sqlite.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

constexpr const char* kTopic = "arn:aws:sns:us-east-1:000000000000:t";

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    store_.reset();
    auto s = NotifyStore::Open(dir_.path() / "notify.db");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  void AddTopic(const std::string& arn = kTopic) {
    Topic t;
    t.arn = arn;
    t.region = "us-east-1";
    t.name = arn.substr(arn.rfind(':') + 1);
    ASSERT_TRUE(store_->InsertTopicIfAbsent(t).ok());
  }
  Subscription AddSubscription(const std::string& id, SubscriptionStatus status,
                               const std::string& topic = kTopic) {
    Subscription s;
    s.arn = topic + ":" + id;
    s.topic_arn = topic;
    s.protocol = "http";
    s.endpoint = "http://127.0.0.1:1/" + id;
    s.owner = "000000000000";
    s.status = status;
    EXPECT_TRUE(store_->PutSubscription(s, nullptr, false, 0).ok());
    return s;
  }
  OutboxMessage Message(const std::string& id) {
    OutboxMessage m;
    m.message_id = id;
    m.topic_arn = kTopic;
    m.subject = "subj";
    m.message = "body " + id;
    m.attributes["a"] = {"String", "v"};
    m.timestamp = "2026-01-01T00:00:00.000Z";
    return m;
  }

  testing::TempDir dir_;
  std::unique_ptr<NotifyStore> store_;
};

TEST_F(StoreTest, PublishFansOutToConfirmedSubscriptionsAndSurvivesReopen) {
  AddTopic();
  AddSubscription("a", SubscriptionStatus::kConfirmed);
  AddSubscription("b", SubscriptionStatus::kConfirmed);
  AddSubscription("c", SubscriptionStatus::kPending);
  auto n = store_->Publish({Message("m1")}, 100);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 2);

  Reopen();  // what was committed is on disk
  auto heads = store_->DeliveryHeads();
  ASSERT_TRUE(heads.ok());
  ASSERT_EQ(heads->size(), 2u);
  for (const auto& h : *heads) EXPECT_EQ(h.next_attempt, 100);
  auto due = store_->DueDeliveries(std::string(kTopic) + ":a", 100, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_TRUE(store_->DueDeliveries(std::string(kTopic) + ":a", 99, 10)->empty());

  auto d = store_->LoadDelivery(due->front());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->message.message_id, "m1");
  EXPECT_EQ(d->message.message, "body m1");
  EXPECT_EQ(d->message.subject.value_or(""), "subj");
  EXPECT_EQ(d->message.attributes.at("a").value, "v");
  ASSERT_TRUE(d->subscription.has_value());
  EXPECT_EQ(d->subscription->endpoint, "http://127.0.0.1:1/a");
  EXPECT_EQ(d->attempts, 0);

  ASSERT_TRUE(store_->RescheduleDelivery(d->id, 1, 150).ok());
  Reopen();
  d = store_->LoadDelivery(due->front());
  EXPECT_EQ(d->attempts, 1);
  EXPECT_EQ(d->next_attempt, 150);

  // The message row goes with its last delivery.
  auto all_heads = store_->DeliveryHeads();
  ASSERT_TRUE(all_heads.ok());
  for (const auto& h : *all_heads) {
    auto ids = store_->DueDeliveries(h.subscription_arn, 1000, 10);
    ASSERT_TRUE(ids.ok());
    for (int64_t id : *ids) ASSERT_TRUE(store_->FinishDelivery(id).ok());
  }
  EXPECT_EQ(*store_->CountDeliveries(), 0);
  EXPECT_FALSE(store_->LoadDelivery(d->id).ok());
}

TEST_F(StoreTest, ADatabaseFromBeforeHeldPublishesIsUpgradedWithItsRowsDue) {
  AddTopic();
  Subscription sub = AddSubscription("a", SubscriptionStatus::kConfirmed);
  ASSERT_EQ(*testing::PublishOnceId(*store_, Message("m1"), "key", 100, 0), "m1");
  store_.reset();
  {
    // Make it what an older inferd wrote: no held/hold/message columns, the old index.
    auto db = db::Database::Open(dir_.path() / "notify.db", "old", nullptr);
    ASSERT_TRUE(db.ok());
    for (const char* sql :
         {"DROP INDEX deliveries_ready", "DROP INDEX deliveries_held",
          "ALTER TABLE deliveries DROP COLUMN held", "ALTER TABLE published DROP COLUMN hold",
          "ALTER TABLE published DROP COLUMN message",
          "CREATE INDEX deliveries_due ON deliveries(subscription_arn, next_attempt, id)"}) {
      ASSERT_TRUE((*db)->Exec(sql).ok()) << sql;
    }
  }
  Reopen();
  auto due = store_->DueDeliveries(sub.arn, 1e9, 10);
  ASSERT_TRUE(due.ok()) << due.error().message;
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(store_->LoadDelivery((*due)[0])->message.message_id, "m1");
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("m2"), "key", 101, 0),
            "m1");  // the key is known
  auto held = store_->PublishOnce(Message("m3"), "new", 101, 0, OnceOptions{.hold = 1});
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_EQ(store_->DueDeliveries(sub.arn, 1e9, 10)->size(), 1u);
}

// PublishOnce's `before_insert` sees the deliveries before they commit (a reader does not see them
// yet); it is not called when the key's earlier message stands, nor for a held message or one
// nobody is subscribed to.
TEST_F(StoreTest, PublishOnceTellsWhatItWroteBeforeTheCommit) {
  AddTopic();
  AddSubscription("a", SubscriptionStatus::kConfirmed);
  int64_t readable_then = -1;
  std::vector<FannedOut> seen;
  auto first = store_->PublishOnce(Message("m1"), "key", 100, 0, {}, [&](const OnceOutcome& o) {
    EXPECT_TRUE(o.written);
    seen = o.fanned_out;
    readable_then = *store_->CountDeliveries();  // a read connection: committed rows only
  });
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->written);
  EXPECT_EQ(readable_then, 0);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].id, first->fanned_out[0].id);
  EXPECT_EQ(*store_->CountDeliveries(), 1);

  int calls = 0;
  auto count_calls = [&](const OnceOutcome&) { ++calls; };
  auto again = store_->PublishOnce(Message("m2"), "key", 101, 0, {}, count_calls);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->written);
  EXPECT_EQ(again->message_id, "m1");
  EXPECT_EQ(*store_->CountDeliveries(), 1);

  auto held = store_->PublishOnce(Message("m3"), "held", 102, 0, {.hold = 7}, count_calls);
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->written);
  ASSERT_EQ(held->fanned_out.size(), 1u);
  EXPECT_EQ(*store_->CountDeliveries(), 2);
  EXPECT_EQ(calls, 0);

  std::vector<FannedOut> fresh_seen;
  auto other = store_->PublishOnce(Message("m4"), "fresh", 103, 0, {}, [&](const OnceOutcome& o) {
    fresh_seen = o.fanned_out;
    ++calls;
  });
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(fresh_seen.size(), 1u);
  EXPECT_GT(fresh_seen[0].id, held->fanned_out[0].id);
}

TEST_F(StoreTest, PublishOnceWithNobodySubscribedDoesNotCallWritten) {
  AddTopic();
  bool called = false;
  auto r = store_->PublishOnce(Message("m1"), "key", 100, 0, {},
                               [&](const OnceOutcome&) { called = true; });
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->written);
  EXPECT_TRUE(r->fanned_out.empty());
  EXPECT_FALSE(called);
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("m2"), "key", 101, 0), "m1");
}

TEST_F(StoreTest, NobodySubscribedStoresNothing) {
  AddTopic();
  AddSubscription("p", SubscriptionStatus::kPending);
  EXPECT_EQ(*store_->Publish({Message("m")}, 1), 0);
  EXPECT_EQ(*store_->CountDeliveries(), 0);
}

TEST_F(StoreTest, DeleteTopicDropsSubscriptionsAndPendingDeliveries) {
  AddTopic();
  AddSubscription("a", SubscriptionStatus::kConfirmed);
  ASSERT_EQ(*store_->Publish({Message("m1"), Message("m2")}, 1), 2);
  EXPECT_TRUE(*store_->DeleteTopic(kTopic));
  EXPECT_FALSE(*store_->DeleteTopic(kTopic));
  EXPECT_EQ(*store_->CountDeliveries(), 0);
  EXPECT_FALSE(store_->GetSubscription(std::string(kTopic) + ":a").ok());
  EXPECT_EQ(store_->GetTopic(kTopic).error().code, Errc::kNotFound);
}

TEST_F(StoreTest, SubscriptionLifecycleAndConfirmationEnqueue) {
  AddTopic();
  Subscription s = AddSubscription("a", SubscriptionStatus::kPending);
  s.token = "tok";
  OutboxMessage confirm = Message("c1");
  confirm.type = MessageType::kSubscriptionConfirmation;
  confirm.token = "tok";
  ASSERT_TRUE(store_->PutSubscription(s, &confirm, false, 5).ok());
  EXPECT_EQ(*store_->CountDeliveries(), 1);
  auto by_token = store_->FindByToken(kTopic, "tok");
  ASSERT_TRUE(by_token.ok());
  EXPECT_EQ(by_token->arn, s.arn);
  EXPECT_FALSE(store_->FindByToken(kTopic, "other").ok());
  auto found = store_->FindSubscription(kTopic, "http", s.endpoint);
  ASSERT_TRUE(found.ok() && found->has_value());

  s.status = SubscriptionStatus::kConfirmed;
  ASSERT_TRUE(store_->PutSubscription(s, nullptr, true, 6).ok());
  EXPECT_EQ(*store_->CountDeliveries(), 0);  // the confirmation is no longer needed
  auto counts = store_->CountSubscriptions(kTopic);
  EXPECT_EQ(counts->confirmed, 1);

  s.status = SubscriptionStatus::kDeleted;
  s.changed = 10;
  ASSERT_TRUE(store_->PutSubscription(s, nullptr, true, 10).ok());
  EXPECT_FALSE(store_->FindSubscription(kTopic, "http", s.endpoint)->has_value());
  EXPECT_TRUE(store_->ListSubscriptions("us-east-1", "", "", 10)->empty());
  EXPECT_EQ(store_->CountSubscriptions(kTopic)->deleted, 1);
  // A purge that deletes nothing leaves config_version (the delivery worker's copies valid).
  const uint64_t version = store_->config_version();
  EXPECT_EQ(*store_->PurgeSubscriptions(5, 100), 0);  // deleted after the cut-off
  EXPECT_EQ(store_->config_version(), version);
  EXPECT_EQ(*store_->PurgeSubscriptions(11, 100), 1);
  EXPECT_GT(store_->config_version(), version);
}

TEST_F(StoreTest, ListsPageInArnOrder) {
  AddTopic();
  AddTopic("arn:aws:sns:us-east-1:000000000000:u");
  for (const char* id : {"c", "a", "b"}) AddSubscription(id, SubscriptionStatus::kConfirmed);
  AddSubscription("z", SubscriptionStatus::kPending, "arn:aws:sns:us-east-1:000000000000:u");
  auto page = store_->ListSubscriptions("us-east-1", "", "", 2);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->size(), 3u);  // limit + 1
  EXPECT_EQ((*page)[0].arn, std::string(kTopic) + ":a");
  auto by_topic = store_->ListSubscriptions("", kTopic, std::string(kTopic) + ":a", 10);
  ASSERT_EQ(by_topic->size(), 2u);
  EXPECT_EQ(store_->ListTopics("us-east-1", "", 10)->size(), 2u);
  EXPECT_TRUE(store_->ListTopics("eu-west-1", "", 10)->empty());
}

}  // namespace
}  // namespace inferd::notify
