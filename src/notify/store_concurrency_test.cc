// NotifyStore under concurrency: group commit (many callers, few commits), exact dedup across
// threads, and reads that do not wait for the writer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <latch>
#include <set>
#include <thread>

#include "db/sqlite.h"
#include "notify/store.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

constexpr const char* kTopic = "arn:aws:sns:us-east-1:000000000000:t";
const std::string kSub = std::string(kTopic) + ":a";

class StoreConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reopen();
    Topic t;
    t.arn = kTopic;
    t.region = "us-east-1";
    t.name = "t";
    ASSERT_TRUE(store_->InsertTopicIfAbsent(t).ok());
    Subscription s;
    s.arn = kSub;
    s.topic_arn = kTopic;
    s.protocol = "http";
    s.endpoint = "http://127.0.0.1:1/a";
    s.owner = "000000000000";
    s.status = SubscriptionStatus::kConfirmed;
    ASSERT_TRUE(store_->PutSubscription(s, nullptr, false, 0).ok());
  }
  void Reopen() {
    store_.reset();
    auto s = NotifyStore::Open(path());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  std::filesystem::path path() const { return dir_.path() / "notify.db"; }
  static OutboxMessage Message(const std::string& id) {
    OutboxMessage m;
    m.message_id = id;
    m.topic_arn = kTopic;
    m.message = "body " + id;
    m.timestamp = "2026-01-01T00:00:00.000Z";
    return m;
  }
  // Polls `done` (no timing is asserted: the deadline only turns a hang into a failure).
  template <typename Pred>
  static bool WaitUntil(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  // Runs fn(i) for i in [0, n) on `threads` threads that start together.
  template <typename Fn>
  static void RunConcurrently(int n, int threads, Fn fn) {
    std::latch start(threads);
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        start.arrive_and_wait();
        for (int i; (i = next++) < n;) fn(i);
      });
    }
    for (auto& t : pool) t.join();
  }

  testing::TempDir dir_;
  std::unique_ptr<NotifyStore> store_;
};

TEST_F(StoreConcurrencyTest, ConcurrentPublishesShareCommitsAndSurviveReopen) {
  constexpr int kPublishes = 200;
  const std::size_t before = store_->commits();
  std::vector<std::string> returned(kPublishes);
  std::vector<int> deliveries(kPublishes, -1);
  RunConcurrently(kPublishes, 32, [&](int i) {
    auto id = testing::PublishOnceId(*store_, Message("m" + std::to_string(i)),
                                     "key" + std::to_string(i), 100, 0, &deliveries[i]);
    returned[i] = id.ok() ? *id : "error: " + id.error().message;
  });
  const std::size_t commits = store_->commits() - before;
  std::printf("%d concurrent PublishOnce: %zu commits (%.3f per publish)\n", kPublishes, commits,
              static_cast<double>(commits) / kPublishes);
  for (int i = 0; i < kPublishes; ++i) {
    EXPECT_EQ(returned[i], "m" + std::to_string(i));
    EXPECT_EQ(deliveries[i], 1);
  }
  EXPECT_EQ(*store_->CountDeliveries(), kPublishes);
  EXPECT_LE(commits, 100u) << "publishes did not share commits";
  EXPECT_GE(commits, 1u);

  Reopen();  // every publish that returned is on disk, its dedup key too
  EXPECT_EQ(*store_->CountDeliveries(), kPublishes);
  auto again = testing::PublishOnceId(*store_, Message("other"), "key7", 101, 0);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, "m7");
  EXPECT_EQ(*store_->CountDeliveries(), kPublishes);
}

TEST_F(StoreConcurrencyTest, OneDedupKeyFromManyThreadsPublishesOnce) {
  // The calls queue while the writer is busy, so they share one transaction: each must see the
  // key its predecessor wrote in that same, uncommitted, transaction.
  auto writer_busy = store_->HoldWriterForTesting();
  std::thread earlier(
      [&] { EXPECT_TRUE(testing::PublishOnceId(*store_, Message("e"), "k0", 100, 0).ok()); });
  ASSERT_TRUE(WaitUntil([&] { return store_->writes_waiting() == 1; }));
  constexpr int kCallers = 16;
  std::vector<std::string> returned(kCallers);
  std::atomic<int> written{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      int n = 0;
      auto id =
          testing::PublishOnceId(*store_, Message("m" + std::to_string(i)), "same-key", 100, 0, &n);
      returned[i] = id.ok() ? *id : "error: " + id.error().message;
      written += n;
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return store_->writes_waiting() == kCallers + 1; }));
  writer_busy.unlock();
  earlier.join();
  for (auto& t : callers) t.join();

  std::set<std::string> ids(returned.begin(), returned.end());
  ASSERT_EQ(ids.size(), 1u) << "callers got different MessageIds";
  EXPECT_EQ(returned[0].rfind("m", 0), 0u) << returned[0];
  EXPECT_EQ(written.load(), 1);
  auto count = store_->CountDeliveries();
  ASSERT_TRUE(count.ok()) << count.error().message;
  EXPECT_EQ(*count, 2);  // "e" and the one message of "same-key"
  bool found = false;
  auto due = store_->DueDeliveries(kSub, 100, 10);
  ASSERT_TRUE(due.ok()) << due.error().message;
  for (int64_t id : *due) {
    auto d = store_->LoadDelivery(id);
    ASSERT_TRUE(d.ok()) << d.error().message;
    found |= d->message.message_id == returned[0];
  }
  EXPECT_TRUE(found);
}

TEST_F(StoreConcurrencyTest, ForgottenKeysAreUnknownEvenBeforeTheirRowsAreDeleted) {
  // Old keys are deleted at most once a second; the lookup must not depend on that.
  ASSERT_EQ(*testing::PublishOnceId(*store_, Message("m1"), "k", 100.0, 0), "m1");
  ASSERT_EQ(*testing::PublishOnceId(*store_, Message("m2"), "k", 100.5, 100.2),
            "m2");  // m1's key expired
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("m3"), "k", 100.6, 100.2), "m2");
  EXPECT_EQ(*store_->CountDeliveries(), 2);
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("m4"), "k", 102.0, 101.0),
            "m4");  // deleted this time
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("m5"), "k", 102.1, 101.0), "m4");
}

TEST_F(StoreConcurrencyTest, DeliveryOutcomesFromManyThreadsShareCommits) {
  constexpr int kDeliveries = 200;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kDeliveries; ++i) messages.push_back(Message("m" + std::to_string(i)));
  ASSERT_EQ(*store_->Publish(messages, 1), kDeliveries);
  auto ids = store_->DueDeliveries(kSub, 1, kDeliveries);
  ASSERT_EQ(ids->size(), static_cast<size_t>(kDeliveries));

  const std::size_t before = store_->commits();
  std::atomic<int> failed{0};
  RunConcurrently(kDeliveries, 32, [&](int i) {
    // Every fourth is a retry scheduled for later, the rest are delivered.
    Status st = i % 4 == 0 ? store_->RescheduleDelivery((*ids)[i], 1, 50)
                           : store_->FinishDelivery((*ids)[i]);
    if (!st.ok()) ++failed;
  });
  const std::size_t commits = store_->commits() - before;
  std::printf("%d concurrent FinishDelivery/RescheduleDelivery: %zu commits\n", kDeliveries,
              commits);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_LE(commits, 100u) << "delivery outcomes did not share commits";

  Reopen();
  EXPECT_EQ(*store_->CountDeliveries(), kDeliveries / 4);
  EXPECT_TRUE(store_->DueDeliveries(kSub, 49, 10)->empty());
  EXPECT_EQ(store_->DueDeliveries(kSub, 50, kDeliveries)->size(),
            static_cast<size_t>(kDeliveries / 4));
  auto retried = store_->LoadDelivery((*ids)[0]);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->attempts, 1);
  EXPECT_EQ(store_->LoadDelivery((*ids)[1]).error().code, Errc::kNotFound);
}

TEST_F(StoreConcurrencyTest, DeliveryIdsAreNotReused) {
  // The delivery worker names deliveries by id in memory (in flight, outcomes to record): a
  // new delivery must not take the id of one just removed.
  ASSERT_EQ(*store_->Publish({Message("m1")}, 1), 1);
  auto first = store_->DueDeliveries(kSub, 1, 10);
  ASSERT_EQ(first->size(), 1u);
  ASSERT_TRUE(store_->FinishDelivery(first->front()).ok());
  ASSERT_EQ(*store_->Publish({Message("m2")}, 1), 1);
  auto second = store_->DueDeliveries(kSub, 1, 10);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_GT(second->front(), first->front());
  Reopen();
  ASSERT_EQ(*store_->Publish({Message("m3")}, 1), 1);
  auto third = store_->DueDeliveries(kSub, 1, 10);
  ASSERT_EQ(third->size(), 2u);
  EXPECT_GT(third->back(), second->front());
}

TEST_F(StoreConcurrencyTest, ReadsDoNotWaitForTheWriter) {
  ASSERT_EQ(*store_->Publish({Message("m1"), Message("m2")}, 1), 2);
  auto ids = store_->DueDeliveries(kSub, 1, 10);
  ASSERT_EQ(ids->size(), 2u);

  // Another connection holds notify.db's write lock with a row it has not committed…
  auto other = db::Database::Open(path(), "other connection", nullptr);
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE((*other)
                  ->Exec("BEGIN IMMEDIATE; INSERT INTO deliveries (message, subscription_arn, "
                         "attempts, next_attempt) VALUES (0, 'uncommitted', 0, 0)")
                  .ok());
  // …and the store's write connection is busy, as during a commit's fsync; a write queues.
  auto writer_busy = store_->HoldWriterForTesting();
  std::atomic<bool> finished{false};
  std::thread writer([&] { finished = store_->FinishDelivery((*ids)[1]).ok(); });

  std::promise<std::string> read;
  std::thread reader([&] {
    std::string out;
    auto d = store_->LoadDelivery((*ids)[0]);
    out += d.ok() ? d->message.message_id : "LoadDelivery failed";
    out += " heads=" + std::to_string(store_->DeliveryHeads()->size());
    out += " due=" + std::to_string(store_->DueDeliveries(kSub, 1, 10)->size());
    out += " count=" + std::to_string(*store_->CountDeliveries());
    out += " topic=" + (store_->GetTopic(kTopic).ok() ? std::string("ok") : "missing");
    out += " sub=" + (store_->GetSubscription(kSub).ok() ? std::string("ok") : "missing");
    out += " topics=" + std::to_string(store_->ListTopics("us-east-1", "", 10)->size());
    out += " subs=" + std::to_string(store_->ListSubscriptions("", kTopic, "", 10)->size());
    out += " confirmed=" + std::to_string(store_->CountSubscriptions(kTopic)->confirmed);
    auto found = store_->FindSubscription(kTopic, "http", "http://127.0.0.1:1/a");
    out += " found=" + std::string(found.ok() && found->has_value() ? "yes" : "no");
    read.set_value(out);
  });
  auto result = read.get_future();
  // Not a timing assertion: with reads behind the writer they would wait until released below.
  const bool returned = result.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  EXPECT_FALSE(finished.load());  // the write did wait
  writer_busy.unlock();
  ASSERT_TRUE((*other)->Exec("ROLLBACK").ok());
  reader.join();
  writer.join();
  ASSERT_TRUE(returned) << "reads waited for the write connection";
  EXPECT_EQ(result.get(),
            "m1 heads=1 due=2 count=2 topic=ok sub=ok topics=1 subs=1 confirmed=1 found=yes");
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(*store_->CountDeliveries(), 1);  // a read after a write sees it
}

// ---- held publishes (OnceOptions) ----

TEST_F(StoreConcurrencyTest, AHeldMessageIsDueOnlyOnceReleasedUnderItsTag) {
  auto held = store_->PublishOnce(Message("h1"), "k", 100, 0, OnceOptions{.hold = 7});
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_EQ(held->message_id, "h1");
  ASSERT_EQ(held->fanned_out.size(), 1u);
  const int64_t id = held->fanned_out[0].id;
  EXPECT_EQ(*store_->CountDeliveries(), 1);  // written, durable
  // No scan finds it: not due, no head, no later attempt.
  EXPECT_TRUE(store_->DueDeliveries(kSub, 1e9, 10)->empty());
  EXPECT_TRUE(store_->DeliveryHeads()->empty());
  EXPECT_FALSE(store_->NextAttemptAfter(kSub, 0)->has_value());
  // A publish of the key releasing its tag: the held message as it was, nothing new written.
  auto released = store_->PublishOnce(Message("again"), "k", 101, 0, OnceOptions{.release = 7});
  ASSERT_TRUE(released.ok()) << released.error().message;
  EXPECT_EQ(released->message_id, "h1");
  EXPECT_TRUE(released->released);
  EXPECT_FALSE(released->written);
  EXPECT_EQ(*store_->DueDeliveries(kSub, 1e9, 10), std::vector<int64_t>{id});
  ASSERT_EQ(store_->DeliveryHeads()->size(), 1u);
  // Released: the key is an ordinary published key now, a restart changes nothing.
  Reopen();
  EXPECT_EQ(*store_->DueDeliveries(kSub, 1e9, 10), std::vector<int64_t>{id});
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("again"), "k", 101, 0), "h1");
  EXPECT_EQ(*store_->CountDeliveries(), 1);
}

TEST_F(StoreConcurrencyTest, AfterARestartAHeldMessageIsReleasedByItsTagOrReplaced) {
  auto a = store_->PublishOnce(Message("held-a"), "a", 100, 0, OnceOptions{.hold = 1});
  auto b = store_->PublishOnce(Message("held-b"), "b", 100, 0, OnceOptions{.hold = 1});
  auto c = store_->PublishOnce(Message("held-c"), "c", 100, 0, OnceOptions{.hold = 2});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  Reopen();  // a crash before any release
  EXPECT_TRUE(store_->DueDeliveries(kSub, 1e9, 10)->empty());

  // Released by its tag: the held message as it was, nothing new written.
  auto ra = store_->PublishOnce(Message("recovered-a"), "a", 101, 0, OnceOptions{.release = 1});
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->message_id, "held-a");
  EXPECT_TRUE(ra->released);
  EXPECT_EQ(ra->fanned_out.size(), 0u);
  const int64_t a_id = a->fanned_out[0].id;
  EXPECT_EQ(*store_->DueDeliveries(kSub, 1e9, 10), std::vector<int64_t>{a_id});
  auto loaded = store_->LoadDelivery(a_id);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->message.message_id, "held-a");

  // Another tag, or no tag: the held message is replaced by the new one.
  auto rb = store_->PublishOnce(Message("rerun-b"), "b", 101, 0, OnceOptions{.release = 2});
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->message_id, "rerun-b");
  EXPECT_FALSE(rb->released);
  ASSERT_EQ(rb->fanned_out.size(), 1u);
  auto rc = testing::PublishOnceId(*store_, Message("failed-c"), "c", 101, 0);
  ASSERT_TRUE(rc.ok()) << rc.error().message;
  EXPECT_EQ(*rc, "failed-c");
  EXPECT_EQ(store_->LoadDelivery(b->fanned_out[0].id).error().code, Errc::kNotFound);
  EXPECT_EQ(store_->LoadDelivery(c->fanned_out[0].id).error().code, Errc::kNotFound);
  EXPECT_EQ(*store_->CountDeliveries(), 3);  // held-a, rerun-b, failed-c
  std::set<std::string> due;
  const std::vector<int64_t> ids = *store_->DueDeliveries(kSub, 1e9, 10);
  for (int64_t id : ids) {
    auto d = store_->LoadDelivery(id);
    ASSERT_TRUE(d.ok()) << d.error().message;
    due.insert(d->message.message_id);
  }
  EXPECT_EQ(due, (std::set<std::string>{"held-a", "rerun-b", "failed-c"}));
  // Each key now answers with what was published for it.
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("x"), "b", 102, 0), "rerun-b");
  EXPECT_EQ(*testing::PublishOnceId(*store_, Message("x"), "c", 102, 0), "failed-c");
}

TEST_F(StoreConcurrencyTest, AHeldKeyWithoutSubscribersIsStillReplaceable) {
  // The success topic had nobody subscribed: nothing stored but the key, held.
  OutboxMessage lonely = Message("held");
  lonely.topic_arn = std::string(kTopic) + "-nobody";
  auto held = store_->PublishOnce(lonely, "k", 100, 0, OnceOptions{.hold = 1});
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->fanned_out.size(), 0u);
  // Its output was not written after all: the error notification still goes out.
  auto failed = store_->PublishOnce(Message("error"), "k", 101, 0, OnceOptions{});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->message_id, "error");
  EXPECT_EQ(failed->fanned_out.size(), 1u);
}

TEST_F(StoreConcurrencyTest, HeldDeliveriesNeverReleasedGoWithTheirForgottenKey) {
  auto held = store_->PublishOnce(Message("held"), "k", 100, 0, OnceOptions{.hold = 1});
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(testing::PublishOnceId(*store_, Message("due"), "other", 100.5, 0).ok());
  EXPECT_EQ(*store_->CountDeliveries(), 2);
  // Past the retention of "k" (forget_before 150): its held delivery and message are deleted;
  // a due delivery is not the dedup housekeeping's business.
  ASSERT_TRUE(testing::PublishOnceId(*store_, Message("new"), "n", 200, 150).ok());
  EXPECT_EQ(*store_->CountDeliveries(), 2);  // "due" and "new"
  EXPECT_EQ(store_->LoadDelivery(held->fanned_out[0].id).error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace inferd::notify
