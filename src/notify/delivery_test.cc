#include "notify/delivery.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <set>
#include <thread>

#include "notify/envelope.h"
#include "notify/notifier.h"
#include "notify/signer.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeSender;
using testing::TempDir;

// A sender that holds requests to endpoints containing "slow" until opened.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int in_flight_slow = 0;
  int max_in_flight_slow = 0;
  std::vector<std::string> slow_bodies, fast_bodies;

  SendFn fn(std::shared_ptr<Gate> self) {
    return [self](const http::ClientRequest& r) -> Result<http::ClientResponse> {
      std::unique_lock lock(self->mu);
      if (r.url.find("slow") != std::string::npos) {
        ++self->in_flight_slow;
        self->max_in_flight_slow = std::max(self->max_in_flight_slow, self->in_flight_slow);
        self->cv.notify_all();
        self->cv.wait(lock, [&] { return self->open; });
        --self->in_flight_slow;
        self->slow_bodies.push_back(r.body);
      } else {
        self->fast_bodies.push_back(r.body);
      }
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
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

// `body`, a delivered notification's envelope, carries a SignatureVersion 1 signature of
// `message` that verifies with the notifier's certificate.
void ExpectSignedNotification(const Notifier& n, const std::string& body,
                              const std::string& message) {
  auto envelope = boost::json::parse(body).as_object();
  OutboxMessage m;
  m.message_id = envelope.at("MessageId").as_string();
  m.topic_arn = envelope.at("TopicArn").as_string();
  m.timestamp = envelope.at("Timestamp").as_string();
  m.message = message;
  EXPECT_TRUE(Signer::Verify(n.signer().cert_pem(), StringToSign(m, m.message, ""),
                             envelope.at("Signature").as_string(), 1)
                  .ok());
}

class DeliveryTest : public ::testing::Test {
 protected:
  std::unique_ptr<Notifier> Make(SendFn send, const Clock& clock, int threads = 4,
                                 int max_inflight_per_subscription = 1) {
    return testing::OpenDeliveryNotifier(dir_.path(), std::move(send), clock, threads,
                                         max_inflight_per_subscription);
  }
  std::string Topic(Notifier& n) {
    auto arn = n.CreateTopic({"us-east-1", true}, "t", {}, {});
    EXPECT_TRUE(arn.ok());
    return *arn;
  }
  std::string Subscribe(Notifier& n, const std::string& topic, const std::string& endpoint,
                        const std::string& policy = "") {
    SubscribeRequest req{topic, "http", endpoint, {}, false};
    if (!policy.empty()) req.attributes["DeliveryPolicy"] = policy;
    auto arn = n.Subscribe({"us-east-1", true}, req);
    EXPECT_TRUE(arn.ok()) << arn.error().message;
    return *arn;
  }
  std::string Publish(Notifier& n, const std::string& topic, const std::string& message) {
    auto id = n.Publish({topic, message, std::nullopt, {}, ""});
    EXPECT_TRUE(id.ok()) << id.error().message;
    return *id;
  }

  // A topic (in *topic) with one signed subscription and its first notification published, not
  // delivered yet: once that delivery is made, the presigner signs the topic's next ones ahead.
  std::unique_ptr<Notifier> MakeWithSignedTopic(FakeSender& sender, std::string* topic) {
    auto n = Make(sender.fn(), clock_);
    *topic = Topic(*n);
    Subscribe(*n, *topic, "http://127.0.0.1:1/a");
    Publish(*n, *topic, "first");
    return n;
  }

  TempDir dir_;
  FakeClock clock_{std::chrono::system_clock::time_point(seconds(1'800'000'000))};
};

TEST_F(DeliveryTest, RetriesFollowThePolicyThenGiveUp) {
  FakeSender sender;
  sender.Script({500, 500, 500, 500});
  auto n = Make(sender.fn(), clock_);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/hook");  // SNS's default: 3 retries, 20 s apart
  Publish(*n, topic, "hello");

  EXPECT_EQ(n->delivery().RunOnce(), 1);
  for (int retry = 1; retry <= 3; ++retry) {
    EXPECT_EQ(n->delivery().RunOnce(), 0);
    clock_.Advance(milliseconds(19'999));
    EXPECT_EQ(n->delivery().RunOnce(), 0) << "retry " << retry << " too early";
    clock_.Advance(milliseconds(1));
    EXPECT_EQ(n->delivery().RunOnce(), 1) << "retry " << retry;
  }
  EXPECT_EQ(sender.count(), 4u);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);  // given up
  clock_.Advance(seconds(3600));
  EXPECT_EQ(n->delivery().RunOnce(), 0);
}

// The Presigner: a topic's second notification is signed while it commits, and its delivery uses
// that signature; a topic delivered only raw is not signed ahead.
TEST_F(DeliveryTest, TheNextNotificationIsSignedBeforeItsDelivery) {
  FakeSender sender;
  std::string topic;
  auto n = MakeWithSignedTopic(sender, &topic);
  EXPECT_EQ(n->signer().rsa_operations(), 0);
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  EXPECT_EQ(n->signer().rsa_operations(), 1);
  Publish(*n, topic, "second");
  // Nothing delivers until RunOnce: only the presign thread can make this signature.
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (n->signer().rsa_operations() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(n->signer().rsa_operations(), 2);
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  EXPECT_EQ(n->signer().rsa_operations(), 2);  // the delivery found it made
  ASSERT_EQ(sender.count(), 2u);
  ExpectSignedNotification(*n, sender.requests()[1].body, "second");

  std::string raw_topic = *n->CreateTopic({"us-east-1", true}, "raw", {}, {});
  auto sub =
      n->Subscribe({"us-east-1", true}, {raw_topic, "http", "http://127.0.0.1:1/raw", {}, false});
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(n->SetSubscriptionAttribute({}, *sub, "RawMessageDelivery", "true").ok());
  Publish(*n, raw_topic, "raw one");
  Publish(*n, raw_topic, "raw two");
  EXPECT_EQ(n->delivery().RunOnce() + n->delivery().RunOnce(), 2);
  EXPECT_EQ(sender.count(), 4u);
  n->Stop(std::chrono::steady_clock::now());  // joins the presign thread
  EXPECT_EQ(n->signer().rsa_operations(), 2);
}

// While deliveries lag behind publishes, at most Presigner::kMaxAhead signatures are made ahead
// of them; the rest are made by their deliveries, so every notification costs one RSA operation
// however far behind they are (signatures made ahead of deliveries over 4,096 behind would be
// forgotten before use: signer_test covers that accounting).
TEST_F(DeliveryTest, SigningAheadStopsWhileDeliveriesLag) {
  FakeSender sender;
  std::string topic;
  auto n = MakeWithSignedTopic(sender, &topic);
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  constexpr int kLagging = Presigner::kMaxAhead + 40;
  for (int i = 0; i < kLagging; ++i) Publish(*n, topic, "lagging " + std::to_string(i));
  n->Stop(std::chrono::steady_clock::now());  // joins the presign thread: what it queued is made
  EXPECT_EQ(n->signer().rsa_operations(), 1 + Presigner::kMaxAhead);
  EXPECT_EQ(n->signer().ahead_unused(), Presigner::kMaxAhead);
  int delivered = 0;
  while (delivered < kLagging) {
    const int made = n->delivery().RunOnce();
    ASSERT_GT(made, 0) << "after " << delivered;
    delivered += made;
  }
  EXPECT_EQ(n->signer().rsa_operations(), 1 + kLagging);
  EXPECT_EQ(n->signer().ahead_unused(), 0);
  EXPECT_EQ(n->signer().ahead_wasted(), 0);
  ASSERT_EQ(sender.count(), static_cast<size_t>(1 + kLagging));
  ExpectSignedNotification(*n, sender.requests().back().body,
                           "lagging " + std::to_string(kLagging - 1));
}

// Who signs a publish ahead: a presign thread while one is free and fewer than kMaxAhead are
// ahead; otherwise a publisher that may sign for itself does, up to kMaxAheadOnCaller ahead.
TEST(PresignerTest, WhoSigns) {
  using SignOn = Presigner::SignOn;
  using Signs = Presigner::Signs;
  constexpr int kAhead = Presigner::kMaxAhead;
  constexpr int kOnCaller = Presigner::kMaxAheadOnCaller;
  constexpr int kBusy = Presigner::kThreads;  // queued or being made: no presign thread free
  struct Case {
    SignOn sign_on;
    int queued;
    int ahead_unused;
    Signs expected;
  };
  const Case cases[] = {
      {SignOn::kThread, 0, 0, Signs::kThread},
      {SignOn::kThread, 5, 0, Signs::kThread},  // the thread's queue grows up to kMaxAhead
      {SignOn::kThread, 5, kAhead - 6, Signs::kThread},
      {SignOn::kThread, 5, kAhead - 5, Signs::kNobody},
      {SignOn::kThread, 0, kAhead, Signs::kNobody},
      {SignOn::kThreadOrCaller, 0, 0, Signs::kThread},  // at rest: signed while it commits
      {SignOn::kThreadOrCaller, kBusy - 1, 0, Signs::kThread},
      {SignOn::kThreadOrCaller, 0, kAhead - 1, Signs::kThread},
      {SignOn::kThreadOrCaller, kBusy, 0, Signs::kCaller},   // the threads are busy: under load
      {SignOn::kThreadOrCaller, 0, kAhead, Signs::kCaller},  // deliveries lag
      {SignOn::kThreadOrCaller, kBusy, kOnCaller - 1, Signs::kCaller},
      {SignOn::kThreadOrCaller, kBusy, kOnCaller, Signs::kNobody},  // they would be forgotten
      {SignOn::kThreadOrCaller, 0, kOnCaller, Signs::kNobody},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Presigner::WhoSigns(c.sign_on, c.queued, c.ahead_unused), c.expected)
        << "sign_on " << static_cast<int>(c.sign_on) << " queued " << c.queued << " ahead_unused "
        << c.ahead_unused;
  }
}

// A publisher that may sign for itself has the signature made on its thread as its publish
// begins once kMaxAhead are ahead of lagging deliveries, and its delivery uses it; one that may
// not leaves it to its delivery. (Deliveries go lowest id first: key-1, key-2, key-3.)
TEST_F(DeliveryTest, APublisherSignsForItselfWhileDeliveriesLag) {
  FakeSender sender;
  std::string topic;
  auto n = MakeWithSignedTopic(sender, &topic);
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  for (int i = 0; i < Presigner::kMaxAhead; ++i) {
    Publish(*n, topic, "lagging " + std::to_string(i));
  }
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (n->signer().ahead_unused() < Presigner::kMaxAhead &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(n->signer().ahead_unused(), Presigner::kMaxAhead);
  const int64_t before = n->signer().rsa_operations();

  auto mine = n->Prepare({topic, "signed by its publisher", std::nullopt, {}, "", "key-1"},
                         Presigner::SignOn::kThreadOrCaller);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  EXPECT_TRUE(mine->to_sign.has_value());
  auto theirs = n->Prepare({topic, "signed by its delivery", std::nullopt, {}, "", "key-2"},
                           Presigner::SignOn::kThread);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  EXPECT_FALSE(theirs->to_sign.has_value());
  EXPECT_EQ(n->signer().rsa_operations(), before);
  ASSERT_TRUE(n->Publish(std::move(mine).value()).ok());
  EXPECT_EQ(n->signer().rsa_operations(), before + 1);  // made on this thread, as it published
  EXPECT_EQ(n->signer().ahead_unused(), Presigner::kMaxAhead + 1);
  ASSERT_TRUE(n->Publish(std::move(theirs).value()).ok());
  // A publish not prepared (the pipeline's failures) likewise.
  ASSERT_TRUE(n->Publish({topic, "published at once", std::nullopt, {}, "", "key-3"}, {},
                         Presigner::SignOn::kThreadOrCaller)
                  .ok());
  EXPECT_EQ(n->signer().rsa_operations(), before + 2);
  n->Stop(std::chrono::steady_clock::now());  // joins the presign threads: they queued nothing
  EXPECT_EQ(n->signer().rsa_operations(), before + 2);

  int delivered = 0;
  while (delivered < Presigner::kMaxAhead + 3) {
    const int made = n->delivery().RunOnce();
    ASSERT_GT(made, 0) << "after " << delivered;
    delivered += made;
  }
  EXPECT_EQ(n->signer().rsa_operations(), before + 3);  // only key-2 signed by its delivery
  EXPECT_EQ(n->signer().ahead_unused(), 0);
  EXPECT_EQ(n->signer().ahead_wasted(), 0);
  ASSERT_EQ(sender.count(), static_cast<size_t>(4 + Presigner::kMaxAhead));
  ExpectSignedNotification(*n, sender.requests()[sender.count() - 3].body,
                           "signed by its publisher");
  ExpectSignedNotification(*n, sender.requests()[sender.count() - 2].body,
                           "signed by its delivery");
  ExpectSignedNotification(*n, sender.requests().back().body, "published at once");
}

TEST_F(DeliveryTest, OneSignatureServesEverySubscriptionAndRetry) {
  FakeSender sender;
  sender.Script({500});  // the first delivery fails once and is retried
  auto n = Make(sender.fn(), clock_);
  std::string topic = Topic(*n);
  for (const char* hook :
       {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "http://127.0.0.1:1/c"}) {
    Subscribe(*n, topic, hook);
  }
  const int64_t before = n->signer().rsa_operations();
  Publish(*n, topic, "hello");
  EXPECT_EQ(n->delivery().RunOnce(), 3);
  clock_.Advance(seconds(20));
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  ASSERT_EQ(sender.count(), 4u);
  EXPECT_EQ(n->signer().rsa_operations() - before, 1);
  std::set<std::string> signatures;
  for (const auto& r : sender.requests()) {
    auto body = boost::json::parse(r.body).as_object();
    signatures.insert(std::string(body.at("Signature").as_string()));
    ExpectSignedNotification(*n, r.body, "hello");
  }
  EXPECT_EQ(signatures.size(), 1u);
}

TEST_F(DeliveryTest, CustomPolicyAndEventualSuccessSendTheSameMessage) {
  FakeSender sender;
  sender.Script({503, 0 /* connection refused */, 200});
  auto n = Make(sender.fn(), clock_);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/hook",
            R"({"healthyRetryPolicy":{"numRetries":5,"numNoDelayRetries":1,"minDelayTarget":3,)"
            R"("maxDelayTarget":3}})");
  std::string id = Publish(*n, topic, "hello");
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  EXPECT_EQ(n->delivery().RunOnce(), 1);  // the no-delay retry
  EXPECT_EQ(n->delivery().RunOnce(), 0);
  clock_.Advance(seconds(3));
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
  auto requests = sender.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.headers.Get("x-amz-sns-message-id").value_or(""), id);
    EXPECT_EQ(r.body, requests[0].body);  // the same envelope, signature included
  }
}

TEST_F(DeliveryTest, ClientErrorsAreNotRetried) {
  FakeSender sender;
  sender.Script({404});
  auto n = Make(sender.fn(), clock_);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/hook");
  Publish(*n, topic, "hello");
  EXPECT_EQ(n->delivery().RunOnce(), 1);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

TEST_F(DeliveryTest, OnlyOneDeliveryPerSubscriptionAtATimeInOrder) {
  FakeSender sender;
  auto n = Make(sender.fn(), clock_);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/a");
  Subscribe(*n, topic, "http://127.0.0.1:1/b");
  Publish(*n, topic, "one");
  Publish(*n, topic, "two");
  EXPECT_EQ(n->delivery().RunOnce(), 2);  // one per subscription
  EXPECT_EQ(n->delivery().RunOnce(), 2);
  EXPECT_EQ(n->delivery().RunOnce(), 0);
  auto requests = sender.requests();
  ASSERT_EQ(requests.size(), 4u);
  auto message = [&](size_t i) {
    return std::string(boost::json::parse(requests[i].body).at("Message").as_string());
  };
  EXPECT_EQ(message(0), "one");
  EXPECT_EQ(message(2), "two");
}

TEST_F(DeliveryTest, InFlightDeliveriesAreRetriedAfterACrash) {
  auto gate = std::make_shared<Gate>();
  std::string id;
  {
    auto a = Make(gate->fn(gate), SystemClock::Instance());
    std::string topic = Topic(*a);
    Subscribe(*a, topic, "http://127.0.0.1:1/slow");
    a->Start();
    id = Publish(*a, topic, "survives");
    ASSERT_TRUE(gate->WaitUntil([&] { return gate->in_flight_slow == 1; }));
    // "Crash": the attempt never completes as far as the store knows.
    auto start = std::chrono::steady_clock::now();
    a->Stop(std::chrono::steady_clock::now() + milliseconds(50));
    EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));  // not held up
  }
  FakeSender sender;
  auto b = Make(sender.fn(), clock_);
  EXPECT_EQ(b->delivery().RunOnce(), 1);
  ASSERT_EQ(sender.count(), 1u);
  EXPECT_EQ(sender.requests()[0].headers.Get("x-amz-sns-message-id").value_or(""), id);
  EXPECT_EQ(*b->store().CountDeliveries(), 0);
  gate->Open();  // the abandoned attempt ends; it must not touch the (closed) store
  ASSERT_TRUE(gate->WaitUntil([&] { return gate->slow_bodies.size() == 1; }));
}

TEST_F(DeliveryTest, SlowSubscriberDoesNotDelayOthers) {
  auto gate = std::make_shared<Gate>();
  auto n = Make(gate->fn(gate), SystemClock::Instance());
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/slow");
  Subscribe(*n, topic, "http://127.0.0.1:1/fast");
  n->Start();
  for (int i = 0; i < 3; ++i) Publish(*n, topic, "m" + std::to_string(i));
  // All of the fast one's while the slow one's first attempt hangs (on a busy machine that
  // attempt may start after the fast ones are done: wait for both).
  EXPECT_TRUE(
      gate->WaitUntil([&] { return gate->fast_bodies.size() == 3 && gate->in_flight_slow == 1; }));
  {
    std::lock_guard lock(gate->mu);
    EXPECT_EQ(gate->max_in_flight_slow, 1);  // never the same subscription twice at once
    EXPECT_TRUE(gate->slow_bodies.empty());
  }
  gate->Open();
  EXPECT_TRUE(gate->WaitUntil([&] { return gate->slow_bodies.size() == 3; }));
  n->Stop(std::chrono::steady_clock::now() + seconds(5));
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

TEST_F(DeliveryTest, AnOutcomeRemovesOnlyItsOwnDelivery) {
  // The subscriber confirms while the SubscriptionConfirmation's POST is still open (that removes
  // the confirmation's row) and subscribes to a second topic at once. Recording the first
  // attempt's outcome afterwards must not take the second confirmation with it.
  Notifier* notifier = nullptr;
  std::string second_topic;
  std::vector<std::string> topics;
  SendFn send = [&](const http::ClientRequest& r) -> Result<http::ClientResponse> {
    boost::json::value body = boost::json::parse(r.body);
    topics.push_back(testing::Str(body.at("TopicArn")));
    if (topics.size() == 1) {
      EXPECT_TRUE(
          notifier->ConfirmSubscription({}, topics[0], testing::Str(body.at("Token")), false).ok());
      EXPECT_TRUE(
          notifier->Subscribe({}, {second_topic, "http", "http://127.0.0.1:1/hook", {}, false})
              .ok());
    }
    http::ClientResponse resp;
    resp.status = 200;
    return resp;
  };
  NotifyOptions options;
  options.data_dir = dir_.path();
  options.public_url = "http://127.0.0.1:8600";
  auto n = Notifier::Open(options, clock_, send);
  ASSERT_TRUE(n.ok()) << n.error().message;
  notifier = n->get();
  std::string first_topic = *(*n)->CreateTopic({}, "a", {}, {});
  second_topic = *(*n)->CreateTopic({}, "b", {}, {});
  ASSERT_TRUE(
      (*n)->Subscribe({}, {first_topic, "http", "http://127.0.0.1:1/hook", {}, false}).ok());

  EXPECT_EQ((*n)->delivery().RunOnce(), 1);
  EXPECT_EQ((*n)->delivery().RunOnce(), 1);
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[1], second_topic);
}

TEST_F(DeliveryTest, WorkersDoNotWaitForTheirOutcomesToCommit) {
  FakeSender sender;
  auto n = Make(sender.fn(), SystemClock::Instance(), 2, 20);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/hook");
  for (int i = 0; i < 20; ++i) Publish(*n, topic, "m" + std::to_string(i));
  {
    auto writer_busy = n->store().HoldWriterForTesting();  // no commit can finish meanwhile
    n->Start();
    // Two workers send all 20: none waits for its outcome's commit.
    EXPECT_TRUE(sender.WaitFor(20)) << sender.count() << " sent";
    EXPECT_EQ(*n->store().CountDeliveries(), 20);
  }
  n->Stop(std::chrono::steady_clock::now() + seconds(10));  // commits the handed-over outcomes
  EXPECT_EQ(sender.count(), 20u);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
}

TEST_F(DeliveryTest, ManyPublishersAndWorkersDeliverEachMessageOnce) {
  // Publishes and delivery outcomes share commits, the scheduler reads on its own connection:
  // none of that may lose a message or send one twice.
  FakeSender sender;
  auto n = Make(sender.fn(), SystemClock::Instance(), 8, 8);
  std::string topic = Topic(*n);
  Subscribe(*n, topic, "http://127.0.0.1:1/hook");
  n->Start();
  constexpr int kMessages = 300;
  std::atomic<int> next{0};
  std::vector<std::thread> publishers;
  std::set<std::string> published;
  std::mutex published_mu;
  for (int t = 0; t < 16; ++t) {
    publishers.emplace_back([&] {
      for (int i; (i = next++) < kMessages;) {
        PublishRequest r{topic, "m" + std::to_string(i), std::nullopt, {}, ""};
        r.dedup_id = "key" + std::to_string(i);
        auto id = n->Publish(r);
        ASSERT_TRUE(id.ok()) << id.error().message;
        std::lock_guard lock(published_mu);
        published.insert(*id);
      }
    });
  }
  for (auto& t : publishers) t.join();
  ASSERT_TRUE(sender.WaitFor(kMessages, seconds(60)));
  n->Stop(std::chrono::steady_clock::now() + seconds(10));
  std::set<std::string> delivered;
  for (const auto& r : sender.requests()) {
    delivered.insert(std::string(r.headers.Get("x-amz-sns-message-id").value_or("")));
  }
  EXPECT_EQ(sender.count(), static_cast<size_t>(kMessages)) << "a message was sent twice";
  EXPECT_EQ(delivered, published);
  EXPECT_EQ(*n->store().CountDeliveries(), 0);
  EXPECT_GT(n->delivery().sent_from_memory(), 0u);  // offered deliveries were sent as handed over
}

}  // namespace
}  // namespace inferd::notify
