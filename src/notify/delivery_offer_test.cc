// DeliveryWorker's offered deliveries (memory mode): sent without reading them back, in order,
// never twice, still delivered after a crash, and never sent from a stale copy.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "notify/delivery.h"
#include "notify/delivery_state.h"
#include "notify/notifier.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeSender;
using testing::TempDir;

// Records every body in arrival order; holds each request while `holding` (the first request
// held is the one in flight).
struct HoldingSender {
  std::mutex mu;
  std::condition_variable cv;
  bool holding = false;
  int held = 0;
  std::vector<std::string> bodies;

  SendFn fn(std::shared_ptr<HoldingSender> self) {
    return [self](const http::ClientRequest& r) -> Result<http::ClientResponse> {
      std::unique_lock lock(self->mu);
      ++self->held;
      self->cv.notify_all();
      self->cv.wait(lock, [&] { return !self->holding; });
      --self->held;
      self->bodies.push_back(r.body);
      self->cv.notify_all();
      http::ClientResponse resp;
      resp.status = 200;
      return resp;
    };
  }
  template <typename Pred>
  bool WaitUntil(Pred pred, milliseconds timeout = seconds(10)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
  void Hold(bool on) {
    std::lock_guard lock(mu);
    holding = on;
    cv.notify_all();
  }
  std::vector<std::string> Messages() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& b : bodies) {
      boost::system::error_code ec;
      auto v = boost::json::parse(b, ec);
      out.push_back(!ec && v.is_object() && v.as_object().contains("Message")
                        ? testing::Str(v.at("Message"))
                        : "raw:" + b);
    }
    return out;
  }
};

class DeliveryOfferTest : public ::testing::Test {
 protected:
  std::unique_ptr<Notifier> Make(SendFn send, const Clock& clock) {
    // One delivery in flight per subscription: order is observable.
    return testing::OpenDeliveryNotifier(dir_.path(), std::move(send), clock);
  }
  // A topic with one subscription; returns the subscription's ARN.
  std::string Setup(Notifier& n) {
    topic_ = *n.CreateTopic({}, "t", {}, {});
    auto arn = n.Subscribe({}, {topic_, "http", "http://127.0.0.1:1/hook", {}, false});
    EXPECT_TRUE(arn.ok()) << arn.error().message;
    return *arn;
  }
  void Publish(Notifier& n, const std::string& message) {
    auto id = n.Publish({topic_, message, std::nullopt, {}, ""});
    ASSERT_TRUE(id.ok()) << id.error().message;
  }
  // Publishes m0, waits until it is held in flight, then publishes m1..m<count-1>.
  void PublishBehindAHeldOne(Notifier& n, HoldingSender& sender, int count) {
    sender.Hold(true);
    Publish(n, "m0");
    ASSERT_TRUE(sender.WaitUntil([&] { return sender.held == 1; }));
    for (int i = 1; i < count; ++i) Publish(n, "m" + std::to_string(i));
  }

  TempDir dir_;
  std::string topic_;
};

TEST_F(DeliveryOfferTest, OfferedDeliveriesAreSentInOrderWithoutReadingThemBack) {
  auto sender = std::make_shared<HoldingSender>();
  auto n = Make(sender->fn(sender), SystemClock::Instance());
  Setup(*n);
  n->Start();
  PublishBehindAHeldOne(*n, *sender, 20);
  sender->Hold(false);
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->bodies.size() == 20; }));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.push_back("m" + std::to_string(i));
  EXPECT_EQ(sender->Messages(), expected);  // in order, each once
  // m1..m19 were offered before any was picked: none was read back from the store.
  EXPECT_GE(n->delivery().sent_from_memory(), 19u);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

// More offers than the worker keeps (internal::kMaxOffered) while the subscriber is stuck: they
// are dropped and the store serves the backlog (the memory-mode check then stops at the first row
// only the store holds), every message is delivered once, and once the backlog is gone offers are
// sent from memory again. Raw deliveries: no signatures, so the test stays fast.
TEST_F(DeliveryOfferTest, AfterTooManyOffersTheStoreServesThemAndOffersResume) {
  auto sender = std::make_shared<HoldingSender>();
  auto n = Make(sender->fn(sender), SystemClock::Instance());
  const std::string sub = Setup(*n);
  ASSERT_TRUE(n->SetSubscriptionAttribute({}, sub, "RawMessageDelivery", "true").ok());
  n->Start();
  sender->Hold(true);
  Publish(*n, "m0");
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->held == 1; }));
  constexpr int kThreads = 4;
  constexpr int kBacklog = static_cast<int>(internal::kMaxOffered) + 200;
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = t; i < kBacklog; i += kThreads) {
        auto id = n->Publish({topic_, "b" + std::to_string(i), std::nullopt, {}, ""});
        EXPECT_TRUE(id.ok());
      }
    });
  }
  for (auto& p : publishers) p.join();
  sender->Hold(false);
  ASSERT_TRUE(
      sender->WaitUntil([&] { return sender->bodies.size() == 1 + kBacklog; }, seconds(60)));
  std::vector<std::string> got = sender->Messages();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), got.size());  // each once
  ASSERT_TRUE(sender->WaitUntil([&] { return *n->store().CountDeliveries() == 0; }));

  // The backlog is gone: a held delivery's followers are offered and sent as handed over.
  const uint64_t from_memory = n->delivery().sent_from_memory();
  sender->Hold(true);
  Publish(*n, "after0");
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->held == 1; }));
  for (int i = 1; i < 20; ++i) Publish(*n, "after" + std::to_string(i));
  sender->Hold(false);
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->bodies.size() == 1 + kBacklog + 20; }));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  EXPECT_GE(n->delivery().sent_from_memory() - from_memory, 19u);
  got = sender->Messages();
  std::vector<std::string> tail(got.end() - 20, got.end()), expected;
  for (int i = 0; i < 20; ++i) expected.push_back("raw:after" + std::to_string(i));
  EXPECT_EQ(tail, expected);  // in order
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

// A prepared publish (the async pipeline's result notification) is handed to the delivery
// threads inside its transaction, before its rows are even inserted: the subscriber has the POST
// while the commit is held back. A plain publish is offered only once committed.
TEST_F(DeliveryOfferTest, APreparedPublishIsSentWhileItsCommitIsStillPending) {
  FakeSender sender;
  auto n = Make(sender.fn(), SystemClock::Instance());
  Setup(*n);
  n->Start();
  // Until its outcome is recorded nothing else writes (the delivery worker's start-up purge has
  // run by then), so the next commit is the publish's.
  auto settled = [&](size_t posts) {
    for (int i = 0; i < 1000 && (sender.count() < posts || *n->store().CountDeliveries() > 0);
         ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return sender.count() == posts && *n->store().CountDeliveries() == 0;
  };
  Publish(*n, "warm-up");
  ASSERT_TRUE(settled(1));
  // The next commit waits (a bounded time) for the subscriber to have `posts` POSTs.
  std::optional<bool> sent_before_commit;
  auto wait_at_commit_for = [&](size_t posts, milliseconds bound) {
    sent_before_commit.reset();
    n->store().SetBeforeCommitForTesting([&, posts, bound] {
      if (!sent_before_commit) sent_before_commit = sender.WaitFor(posts, bound);
    });
  };

  // A prepared publish: its POST is made while its commit waits. Also for a publisher at rest
  // (delivery_first), which yields to the delivery thread its offer wakes.
  for (const bool delivery_first : {false, true}) {
    const size_t posts = delivery_first ? 3 : 2;
    wait_at_commit_for(posts, seconds(10));
    PublishRequest result{topic_, "the output is durable", std::nullopt, {}, ""};
    result.dedup_id = "out-" + std::to_string(posts);
    auto prepared = n->Prepare(result);
    ASSERT_TRUE(prepared.ok()) << prepared.error().message;
    prepared->delivery_first = delivery_first;
    ASSERT_TRUE(n->Publish(std::move(prepared).value()).ok());
    n->store().SetBeforeCommitForTesting(nullptr);
    ASSERT_TRUE(sent_before_commit.has_value());
    EXPECT_TRUE(*sent_before_commit) << "delivery_first " << delivery_first;
    ASSERT_TRUE(settled(posts));
  }

  wait_at_commit_for(4, milliseconds(300));
  Publish(*n, "a plain publish");
  n->store().SetBeforeCommitForTesting(nullptr);
  ASSERT_TRUE(sent_before_commit.has_value());
  EXPECT_FALSE(*sent_before_commit);
  EXPECT_TRUE(sender.WaitFor(4));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
}

TEST_F(DeliveryOfferTest, OfferedButUnsentDeliveriesAreDeliveredAfterACrash) {
  auto sender = std::make_shared<HoldingSender>();
  {
    auto a = Make(sender->fn(sender), SystemClock::Instance());
    Setup(*a);
    a->Start();
    PublishBehindAHeldOne(*a, *sender, 3);  // m0 in flight, m1 and m2 only offered
    a->Stop(std::chrono::steady_clock::now() + milliseconds(50));  // "crash": m0 abandoned
  }
  FakeSender fake;
  FakeClock clock{std::chrono::system_clock::now()};
  auto b = Make(fake.fn(), clock);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b->delivery().RunOnce(), 1);
  EXPECT_EQ(b->delivery().RunOnce(), 0);
  std::vector<std::string> messages;
  for (const auto& r : fake.requests()) {
    messages.push_back(testing::Str(boost::json::parse(r.body).at("Message")));
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(*b->store().CountDeliveries(), 0);
  sender->Hold(false);  // the abandoned attempt ends without touching the closed store
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->bodies.size() == 1; }));
}

TEST_F(DeliveryOfferTest, AnOfferMadeBeforeASubscriptionChangedIsReadBack) {
  auto sender = std::make_shared<HoldingSender>();
  auto n = Make(sender->fn(sender), SystemClock::Instance());
  std::string sub = Setup(*n);
  n->Start();
  PublishBehindAHeldOne(*n, *sender, 2);  // m1 offered with the envelope's subscription
  ASSERT_TRUE(n->SetSubscriptionAttribute({}, sub, "RawMessageDelivery", "true").ok());
  sender->Hold(false);
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->bodies.size() == 2; }));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  // m0 was built before the change; m1 is sent as the subscription is now: raw.
  EXPECT_EQ(sender->Messages(), (std::vector<std::string>{"m0", "raw:m1"}));
}

TEST_F(DeliveryOfferTest, OffersOfAnUnsubscribedEndpointAreNotSent) {
  auto sender = std::make_shared<HoldingSender>();
  auto n = Make(sender->fn(sender), SystemClock::Instance());
  std::string sub = Setup(*n);
  n->Start();
  PublishBehindAHeldOne(*n, *sender, 3);
  ASSERT_TRUE(n->Unsubscribe({}, sub).ok());  // drops m1 and m2, queues the confirmation
  sender->Hold(false);
  ASSERT_TRUE(sender->WaitUntil([&] { return sender->bodies.size() == 2; }));
  EXPECT_FALSE(sender->WaitUntil([&] { return sender->bodies.size() > 2; }, milliseconds(300)));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  auto messages = sender->Messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], "m0");
  EXPECT_NE(messages[1].find("You have chosen to deactivate"), std::string::npos) << messages[1];
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

TEST_F(DeliveryOfferTest, RetriesKeepThePolicyWhileLaterOffersAreSent) {
  FakeSender sender;
  sender.Script({500});  // the first attempt fails: SNS's default retries 20 s later
  FakeClock clock{std::chrono::system_clock::time_point(seconds(1'800'000'000))};
  auto n = Make(sender.fn(), clock);
  Setup(*n);
  n->Start();
  Publish(*n, "m0");
  ASSERT_TRUE(sender.WaitFor(1));
  Publish(*n, "m1");
  ASSERT_TRUE(sender.WaitFor(2));  // not held up by m0's pending retry
  clock.Advance(seconds(19));
  EXPECT_FALSE(sender.WaitFor(3, milliseconds(1500)));  // the scheduler's second is over: early
  clock.Advance(seconds(1));
  ASSERT_TRUE(sender.WaitFor(3, seconds(5)));  // no Wake(): the scheduler's own timer
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  auto requests = sender.requests();
  ASSERT_EQ(requests.size(), 3u);
  auto message = [&](size_t i) {
    return testing::Str(boost::json::parse(requests[i].body).at("Message"));
  };
  EXPECT_EQ(message(0), "m0");
  EXPECT_EQ(message(1), "m1");
  EXPECT_EQ(message(2), "m0");
  EXPECT_EQ(requests[2].body, requests[0].body);  // the same envelope
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

}  // namespace
}  // namespace inferd::notify
