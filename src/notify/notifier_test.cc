#include "notify/notifier.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>

#include "http/uri.h"
#include "notify/envelope.h"
#include "notify/testing.h"

namespace inferd::notify {
namespace {

namespace json = boost::json;
using std::chrono::seconds;
using testing::FakeSender;
using testing::Str;
using testing::TempDir;

const Caller kCaller{"us-east-1", true};

class NotifierTest : public ::testing::Test {
 protected:
  void Open(bool auto_confirm = false) {
    NotifyOptions options;
    options.data_dir = dir_.path();
    options.public_url = "http://127.0.0.1:8600/";
    options.auto_confirm = auto_confirm;
    auto n = Notifier::Open(options, clock_, sender_.fn());
    ASSERT_TRUE(n.ok()) << n.error().message;
    n_ = std::move(n).value();
  }
  void SetUp() override { Open(); }
  std::string Topic(const std::string& name = "t") {
    return *n_->CreateTopic(kCaller, name, {}, {});
  }
  json::object LastBody() { return json::parse(sender_.requests().back().body).as_object(); }
  // Opens with auto_confirm and returns a topic with one confirmed HTTP subscriber.
  std::string SubscribedTopic() {
    Open(/*auto_confirm=*/true);
    std::string topic = Topic();
    EXPECT_TRUE(n_->Subscribe(kCaller, {topic, "http", "http://127.0.0.1:9/hook", {}, false}).ok());
    return topic;
  }
  static PublishRequest Keyed(const std::string& topic, const std::string& message,
                              const std::string& dedup_id) {
    PublishRequest req{topic, message, std::nullopt, {}, ""};
    req.dedup_id = dedup_id;
    return req;
  }
  std::string Param(const std::string& url, const std::string& name) {
    auto params = http::ParseQuery(url.substr(url.find('?') + 1));
    return std::string(http::FindParam(params, name).value_or(""));
  }

  TempDir dir_;
  FakeClock clock_{std::chrono::system_clock::time_point(seconds(1'800'000'000))};
  FakeSender sender_;
  std::unique_ptr<Notifier> n_;
};

TEST_F(NotifierTest, CreateTopicIsIdempotentByName) {
  auto a = n_->CreateTopic(kCaller, "orders", {{"DisplayName", "Orders"}}, {{"team", "x"}});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, "arn:aws:sns:us-east-1:000000000000:orders");
  EXPECT_EQ(*n_->CreateTopic(kCaller, "orders", {}, {}), *a);
  EXPECT_EQ(*n_->CreateTopic(kCaller, "orders", {{"DisplayName", "Orders"}}, {}), *a);
  auto differ = n_->CreateTopic(kCaller, "orders", {{"DisplayName", "Other"}}, {});
  ASSERT_FALSE(differ.ok());
  EXPECT_EQ(differ.error().aws_code, "InvalidParameter");
  EXPECT_FALSE(n_->CreateTopic(kCaller, "orders", {}, {{"team", "y"}}).ok());
  // Regional: the same name elsewhere is another topic.
  EXPECT_EQ(*n_->CreateTopic({"eu-west-1", true}, "orders", {}, {}),
            "arn:aws:sns:eu-west-1:000000000000:orders");

  for (const char* bad : {"", "has space", "x.fifo"}) {
    auto r = n_->CreateTopic(kCaller, bad, {}, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().aws_code, "InvalidParameter");
  }
  EXPECT_NE(n_->CreateTopic(kCaller, "f", {{"FifoTopic", "true"}}, {}).error().message.find("FIFO"),
            std::string::npos);
  EXPECT_FALSE(n_->CreateTopic(kCaller, "k", {{"KmsMasterKeyId", "alias/x"}}, {}).ok());
}

TEST_F(NotifierTest, TopicAttributesAndErrors) {
  std::string arn = Topic();
  auto attrs = n_->GetTopicAttributes(kCaller, arn);
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->at("TopicArn"), arn);
  EXPECT_EQ(attrs->at("Owner"), "000000000000");
  EXPECT_EQ(attrs->at("SubscriptionsConfirmed"), "0");
  EXPECT_NE(attrs->at("Policy").find("__default_policy_ID"), std::string::npos);
  EXPECT_NE(attrs->at("EffectiveDeliveryPolicy").find("defaultHealthyRetryPolicy"),
            std::string::npos);
  ASSERT_TRUE(n_->SetTopicAttribute(kCaller, arn, "DisplayName", "Shown").ok());
  ASSERT_TRUE(n_->SetTopicAttribute(kCaller, arn, "SignatureVersion", "2").ok());
  EXPECT_FALSE(n_->SetTopicAttribute(kCaller, arn, "SignatureVersion", "3").ok());
  EXPECT_FALSE(n_->SetTopicAttribute(kCaller, arn, "DeliveryPolicy", "{bad").ok());
  EXPECT_EQ(n_->GetTopicAttributes(kCaller, arn)->at("DisplayName"), "Shown");

  auto missing = n_->GetTopicAttributes(kCaller, arn + "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_EQ(missing.error().message, "Topic does not exist");
  EXPECT_EQ(n_->GetTopicAttributes(kCaller, "not-an-arn").error().aws_code, "InvalidParameter");
  EXPECT_EQ(n_->GetTopicAttributes({"eu-west-1", true}, arn).error().aws_code, "InvalidParameter");
  EXPECT_TRUE(n_->DeleteTopic(kCaller, arn).ok());
  EXPECT_TRUE(n_->DeleteTopic(kCaller, arn).ok());  // idempotent
}

TEST_F(NotifierTest, ListTopicsPaginates) {
  for (int i = 0; i < 205; ++i) Topic("t" + std::to_string(1000 + i));
  std::string token;
  size_t total = 0;
  int pages = 0;
  do {
    auto page = n_->ListTopics(kCaller, token);
    ASSERT_TRUE(page.ok()) << page.error().message;
    total += page->items.size();
    token = page->next_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(total, 205u);
  EXPECT_EQ(pages, 3);
  EXPECT_FALSE(n_->ListTopics(kCaller, "garbage!").ok());
}

TEST_F(NotifierTest, SubscriptionHandshakeThenSignedNotification) {
  std::string topic = Topic();
  SubscribeRequest req{topic, "http", "http://127.0.0.1:9/hook", {}, false};
  auto pending = n_->Subscribe(kCaller, req);
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(*pending, "pending confirmation");
  EXPECT_EQ(n_->GetTopicAttributes(kCaller, topic)->at("SubscriptionsPending"), "1");

  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  auto request = sender_.requests().back();
  EXPECT_EQ(request.headers.Get("x-amz-sns-message-type").value_or(""), "SubscriptionConfirmation");
  json::object body = LastBody();
  EXPECT_EQ(Str(body["Type"]), "SubscriptionConfirmation");
  std::string url(body["SubscribeURL"].as_string());
  EXPECT_EQ(url.rfind("http://127.0.0.1:8600/?Action=ConfirmSubscription&TopicArn=", 0), 0u);
  std::string token(body["Token"].as_string());
  EXPECT_EQ(Param(url, "Token"), token);
  EXPECT_EQ(Param(url, "TopicArn"), topic);

  // Nothing is delivered to a pending subscription.
  ASSERT_TRUE(n_->Publish({topic, "early", std::nullopt, {}, ""}).ok());
  EXPECT_EQ(*n_->store().CountDeliveries(), 0);

  EXPECT_EQ(n_->ConfirmSubscription(kCaller, topic, "wrong", false).error().aws_code,
            "InvalidParameter");
  auto arn = n_->ConfirmSubscription({}, topic, token, false);  // the unsigned link
  ASSERT_TRUE(arn.ok()) << arn.error().message;
  EXPECT_EQ(arn->rfind(topic + ":", 0), 0u);
  EXPECT_EQ(*n_->ConfirmSubscription({}, topic, token, false), *arn);  // visited twice
  EXPECT_EQ(*n_->Subscribe(kCaller, req), *arn);  // subscribing again: the same subscription

  MessageAttributes attributes{{"kind", {"String", "result"}}, {"n", {"Number", "42"}}};
  auto id = n_->Publish({topic, "hello", "Subj", attributes, ""});
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  body = LastBody();
  EXPECT_EQ(Str(body["Type"]), "Notification");
  EXPECT_EQ(Str(body["MessageId"]), *id);
  EXPECT_EQ(Str(body["Message"]), "hello");
  EXPECT_EQ(Str(body["Subject"]), "Subj");
  EXPECT_EQ(Str(body["MessageAttributes"].at("n").at("Type")), "Number");
  OutboxMessage signed_fields;
  signed_fields.type = MessageType::kNotification;
  signed_fields.message_id = *id;
  signed_fields.subject = "Subj";
  signed_fields.timestamp = std::string(body["Timestamp"].as_string());
  signed_fields.topic_arn = topic;
  EXPECT_TRUE(Signer::Verify(n_->signer().cert_pem(), StringToSign(signed_fields, "hello", ""),
                             body["Signature"].as_string(), 1)
                  .ok());
  EXPECT_EQ(sender_.requests().back().headers.Get("x-amz-sns-subscription-arn").value_or(""), *arn);
}

TEST_F(NotifierTest, UnsubscribeSendsConfirmationThatCanRestore) {
  Open(/*auto_confirm=*/true);
  std::string topic = Topic();
  auto arn = n_->Subscribe(kCaller, {topic, "https", "https://example.com/x", {}, false});
  ASSERT_TRUE(arn.ok());
  EXPECT_NE(*arn, "pending confirmation");  // auto-confirmed, no handshake
  EXPECT_EQ(n_->delivery().RunOnce(), 0);

  ASSERT_TRUE(n_->Unsubscribe({}, *arn).ok());
  EXPECT_TRUE(n_->Unsubscribe({}, *arn).ok());  // the link visited again
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  json::object body = LastBody();
  EXPECT_EQ(Str(body["Type"]), "UnsubscribeConfirmation");
  EXPECT_EQ(n_->GetSubscriptionAttributes(kCaller, *arn).error().code, Errc::kNotFound);
  EXPECT_EQ(n_->GetTopicAttributes(kCaller, topic)->at("SubscriptionsDeleted"), "1");
  ASSERT_TRUE(n_->Publish({topic, "nobody", std::nullopt, {}, ""}).ok());
  EXPECT_EQ(*n_->store().CountDeliveries(), 0);

  auto restored = n_->ConfirmSubscription({}, topic, std::string(body["Token"].as_string()), false);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, *arn);
  EXPECT_EQ(n_->GetSubscriptionAttributes(kCaller, *arn)->at("PendingConfirmation"), "false");
  EXPECT_EQ(n_->Unsubscribe(kCaller, topic + ":nope").error().code, Errc::kNotFound);
}

TEST_F(NotifierTest, AuthenticateOnUnsubscribe) {
  std::string topic = Topic();
  ASSERT_TRUE(n_->Subscribe(kCaller, {topic, "http", "http://h/x", {}, false}).ok());
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  std::string token(LastBody()["Token"].as_string());
  auto arn = n_->ConfirmSubscription(kCaller, topic, token, true);
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(n_->GetSubscriptionAttributes(kCaller, *arn)->at("ConfirmationWasAuthenticated"),
            "true");
  EXPECT_EQ(n_->Unsubscribe({}, *arn).error().aws_code, "AuthorizationError");
  EXPECT_TRUE(n_->Unsubscribe(kCaller, *arn).ok());
}

TEST_F(NotifierTest, SubscriptionAttributes) {
  Open(true);
  std::string topic = Topic();
  EXPECT_FALSE(n_->Subscribe(kCaller, {topic, "sqs", "arn:aws:sqs:us-east-1:0:q", {}, false}).ok());
  EXPECT_FALSE(n_->Subscribe(kCaller, {topic, "http", "https://mismatch/", {}, false}).ok());
  EXPECT_TRUE(
      n_->Subscribe(kCaller, {topic, "https", "https://user:pw@example.com/x", {}, false}).ok());
  EXPECT_FALSE(
      n_->Subscribe(kCaller, {topic, "http", "http://h/", {{"FilterPolicy", "{}"}}, false}).ok());
  auto arn =
      n_->Subscribe(kCaller, {topic, "http", "http://h/", {{"RawMessageDelivery", "true"}}, false});
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(*n_->Subscribe(kCaller, {topic, "http", "http://h/", {}, false}), *arn);
  EXPECT_EQ(
      n_->Subscribe(kCaller, {topic, "http", "http://h/", {{"RawMessageDelivery", "false"}}, false})
          .error()
          .aws_code,
      "InvalidParameter");
  auto attrs = n_->GetSubscriptionAttributes(kCaller, *arn);
  EXPECT_EQ(attrs->at("RawMessageDelivery"), "true");
  EXPECT_EQ(attrs->at("Protocol"), "http");
  EXPECT_EQ(attrs->at("Endpoint"), "http://h/");
  ASSERT_TRUE(n_->SetSubscriptionAttribute(kCaller, *arn, "DeliveryPolicy",
                                           R"({"healthyRetryPolicy":{"numRetries":7}})")
                  .ok());
  EXPECT_NE(n_->GetSubscriptionAttributes(kCaller, *arn)
                ->at("EffectiveDeliveryPolicy")
                .find("\"numRetries\":7"),
            std::string::npos);
  EXPECT_FALSE(n_->SetSubscriptionAttribute(kCaller, *arn, "RawMessageDelivery", "yes").ok());
  auto page = n_->ListSubscriptions(kCaller, topic, "");
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(n_->ListSubscriptions(kCaller, "", "")->items.size(), 2u);
}

TEST_F(NotifierTest, PublishValidation) {
  Open(true);
  std::string topic = Topic();
  auto err = [&](PublishRequest r) {
    r.topic_arn = r.topic_arn.empty() ? topic : r.topic_arn;
    auto id = n_->Publish(r, kCaller);
    return id.ok() ? std::string("ok") : id.error().aws_code + ": " + id.error().message;
  };
  EXPECT_EQ(err({"", "", std::nullopt, {}, ""}),
            "InvalidParameter: Invalid parameter: Empty message");
  EXPECT_EQ(err({"", std::string(256 * 1024 + 1, 'x'), std::nullopt, {}, ""}),
            "InvalidParameter: Invalid parameter: Message too long");
  EXPECT_EQ(err({"", std::string(256 * 1024, 'x'), std::nullopt, {}, ""}), "ok");
  EXPECT_EQ(err({"", "m", std::string("line\nbreak"), {}, ""}).rfind("InvalidParameter", 0), 0u);
  EXPECT_EQ(err({"", "m", std::nullopt, {{"AWS.x", {"String", "v"}}}, ""})
                .rfind("ParameterValueInvalid", 0),
            0u);
  EXPECT_EQ(err({"", "m", std::nullopt, {{"x", {"Number", "abc"}}}, ""})
                .rfind("ParameterValueInvalid", 0),
            0u);
  EXPECT_EQ(
      err({"", "m", std::nullopt, {{"x", {"Kind", "v"}}}, ""}).rfind("ParameterValueInvalid", 0),
      0u);
  EXPECT_EQ(err({"", "m", std::nullopt, {{"x", {"String.Array", "[\"a\",1]"}}}, ""}), "ok");
  EXPECT_EQ(err({"", R"({"http":"x"})", std::nullopt, {}, "json"}),
            "InvalidParameter: Invalid parameter: Message Structure - No default entry in JSON "
            "message body");
  EXPECT_EQ(err({topic + "x", "m", std::nullopt, {}, ""}), "NotFound: Topic does not exist");
}

TEST_F(NotifierTest, MessageStructurePicksTheProtocolEntry) {
  Open(true);
  std::string topic = Topic();
  ASSERT_TRUE(n_->Subscribe(kCaller, {topic, "http", "http://h/", {}, false}).ok());
  ASSERT_TRUE(
      n_->Publish({topic, R"({"default":"d","http":"for http"})", std::nullopt, {}, "json"}).ok());
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  EXPECT_EQ(Str(LastBody()["Message"]), "for http");
}

TEST_F(NotifierTest, PublishWithDedupIdIsDeliveredOnceAcrossRestarts) {
  std::string topic = SubscribedTopic();
  PublishRequest req = Keyed(topic, "result of invocation 1", "out-1");
  auto first = n_->Publish(req);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto again = n_->Publish(req);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(*n_->store().CountDeliveries(), 1);

  // The key is durable: a new Notifier on the same data dir (a restart) remembers it.
  n_.reset();
  Open(/*auto_confirm=*/true);
  req.message = "published again after a crash";
  EXPECT_EQ(*n_->Publish(req), *first);
  EXPECT_EQ(*n_->store().CountDeliveries(), 1);

  // Other keys, and publishes without one, are independent.
  req.dedup_id = "out-2";
  auto second = n_->Publish(req);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *first);
  PublishRequest plain{topic, "no key", std::nullopt, {}, ""};
  EXPECT_NE(*n_->Publish(plain), *n_->Publish(plain));
  EXPECT_EQ(*n_->store().CountDeliveries(), 4);
  int attempts = 0;
  for (int round = 0; round < 10 && attempts < 4; ++round) attempts += n_->delivery().RunOnce();
  EXPECT_EQ(attempts, 4);
  EXPECT_EQ(sender_.count(), 4u);

  // A key is remembered for dedup_retention, then forgotten: published again, it is written
  // and delivered again, under the same MessageId (it derives from the topic and the key).
  clock_.Advance(std::chrono::hours(24 * 7 + 1));
  req.dedup_id = "out-3";
  ASSERT_TRUE(n_->Publish(req).ok());  // forgets out-1 and out-2 on the way
  req.dedup_id = "out-1";
  auto later = n_->Publish(req);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, *first);
  EXPECT_EQ(*n_->store().CountDeliveries(), 2);  // out-3's, and out-1's again

  // Without subscribers nothing is stored, but the key still answers with the same MessageId.
  std::string lonely = Topic("lonely");
  PublishRequest nobody{lonely, "x", std::nullopt, {}, ""};
  nobody.dedup_id = "out-9";
  auto id = n_->Publish(nobody);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*n_->Publish(nobody), *id);
}

// A keyed message's MessageId derives from its topic and key: the same after its first commit
// was lost (a fresh data dir here), another for another topic or key; a random one without a
// key. (A key names one publish whatever its topic: PublishOnce.)
TEST_F(NotifierTest, KeyedMessageIdsDeriveFromTopicAndKey) {
  std::string topic = SubscribedTopic();
  auto first = n_->Publish(Keyed(topic, "m", "out-1"));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(std::regex_match(
      *first, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << *first;
  EXPECT_NE(*n_->Publish(Keyed(topic, "m", "out-2")), *first);

  TempDir elsewhere;
  NotifyOptions options;
  options.data_dir = elsewhere.path();
  auto fresh = Notifier::Open(options, clock_, sender_.fn());
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  ASSERT_EQ(*(*fresh)->CreateTopic(kCaller, "t", {}, {}), topic);
  EXPECT_EQ(*(*fresh)->Publish(Keyed(topic, "published again", "out-1")), *first);
  std::string other = *(*fresh)->CreateTopic(kCaller, "other", {}, {});
  EXPECT_NE(*(*fresh)->Publish(Keyed(other, "m", "out-3")),
            *n_->Publish(Keyed(topic, "m", "out-3")));
}

// Prepare builds the message at once; Publish(PreparedPublish) commits and delivers that
// message (its MessageId and Timestamp as prepared), by the key's rules.
TEST_F(NotifierTest, APreparedPublishDeliversTheMessageAsPrepared) {
  std::string topic = SubscribedTopic();
  EXPECT_FALSE(n_->Prepare(PublishRequest{topic, "no key", std::nullopt, {}, ""}).ok());
  auto prepared = n_->Prepare(Keyed(topic, "the output is durable", "out-1"));
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  const std::string timestamp = prepared->message.timestamp;
  clock_.Advance(std::chrono::seconds(5));
  auto id = n_->Publish(std::move(prepared).value());
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*n_->store().CountDeliveries(), 1);
  EXPECT_EQ(n_->delivery().RunOnce(), 1);
  EXPECT_EQ(Str(LastBody()["MessageId"]), *id);
  EXPECT_EQ(Str(LastBody()["Timestamp"]), timestamp);
  EXPECT_EQ(Str(LastBody()["Message"]), "the output is durable");

  // The key is known now: another prepared publish of it writes and sends nothing.
  auto again = n_->Prepare(Keyed(topic, "a second time", "out-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*n_->Publish(std::move(again).value()), *id);
  EXPECT_EQ(n_->delivery().RunOnce(), 0);
  EXPECT_EQ(sender_.count(), 1u);
}

// Messages an older inferd left held (notify/store.h): after the restart the publisher's
// recovery releases one as it was (what it announces is durable) or replaces it.
TEST_F(NotifierTest, AfterARestartAHeldPublishIsReleasedAsItWasOrReplaced) {
  std::string topic = SubscribedTopic();
  PublishRequest durable = Keyed(topic, "announces a durable output", "out-1");
  PublishRequest lost = Keyed(topic, "announces an output that never committed", "out-2");
  auto held1 = testing::PublishHeld(*n_, durable, 3, 1'800'000'000);
  auto held2 = testing::PublishHeld(*n_, lost, 3, 1'800'000'000);
  ASSERT_TRUE(held1.ok() && held2.ok());
  n_.reset();  // a crash before either release
  Open(/*auto_confirm=*/true);
  EXPECT_EQ(n_->delivery().RunOnce(), 0);

  // The recovery knows out-1's output is durable: the held message goes out as it was.
  PublishRequest recovered = Keyed(topic, "rebuilt by the recovery", "out-1");
  recovered.release_held = 3;
  EXPECT_EQ(*n_->Publish(recovered), *held1);
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  EXPECT_EQ(Str(LastBody()["MessageId"]), *held1);
  EXPECT_EQ(Str(LastBody()["Message"]), "announces a durable output");

  // out-2 ran again (or failed): its new notification replaces the held one (which was never
  // sent), under the key's MessageId.
  PublishRequest rerun = Keyed(topic, "the second attempt's output", "out-2");
  auto id = n_->Publish(rerun);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, *held2);
  ASSERT_EQ(n_->delivery().RunOnce(), 1);
  EXPECT_EQ(Str(LastBody()["MessageId"]), *id);
  EXPECT_EQ(Str(LastBody()["Message"]), "the second attempt's output");
  EXPECT_EQ(n_->delivery().RunOnce(), 0);
  EXPECT_EQ(sender_.count(), 2u);
  EXPECT_EQ(*n_->store().CountDeliveries(), 0);
}

TEST_F(NotifierTest, PublishBatch) {
  Open(true);
  std::string topic = Topic();
  ASSERT_TRUE(n_->Subscribe(kCaller, {topic, "http", "http://h/", {}, false}).ok());
  auto entry = [](std::string id, std::string message) {
    return PublishBatchEntry{std::move(id), {"", std::move(message), std::nullopt, {}, ""}};
  };
  auto result =
      n_->PublishBatch(kCaller, topic, {entry("a", "one"), entry("b", ""), entry("c", "three")});
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->successful.size(), 2u);
  ASSERT_EQ(result->failed.size(), 1u);
  EXPECT_EQ(result->failed[0].id, "b");
  EXPECT_EQ(result->failed[0].code, "InvalidParameter");
  EXPECT_EQ(*n_->store().CountDeliveries(), 2);

  EXPECT_EQ(n_->PublishBatch(kCaller, topic, {}).error().aws_code, "EmptyBatchRequest");
  EXPECT_EQ(n_->PublishBatch(kCaller, topic, {entry("a", "x"), entry("a", "y")}).error().aws_code,
            "BatchEntryIdsNotDistinct");
  EXPECT_EQ(n_->PublishBatch(kCaller, topic, {entry("bad id", "x")}).error().aws_code,
            "InvalidBatchEntryId");
  std::vector<PublishBatchEntry> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back(entry("e" + std::to_string(i), "x"));
  EXPECT_EQ(n_->PublishBatch(kCaller, topic, eleven).error().aws_code,
            "TooManyEntriesInBatchRequest");
  EXPECT_EQ(
      n_->PublishBatch(kCaller, topic,
                       {entry("a", std::string(200000, 'x')), entry("b", std::string(200000, 'x'))})
          .error()
          .aws_code,
      "BatchRequestTooLong");
}

// Publishes reuse the topic they read while no topic or subscription has changed; a change is
// seen by the next publish.
TEST_F(NotifierTest, PublishesSeeTopicChangesAtOnce) {
  std::string topic = SubscribedTopic();
  auto deliver = [&](const std::string& message) -> std::string {
    auto id = n_->Publish({topic, message, std::nullopt, {}, ""}, kCaller);
    EXPECT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(n_->delivery().RunOnce(), 1);
    return std::string(LastBody()["SignatureVersion"].as_string());
  };
  EXPECT_EQ(deliver("one"), "1");
  EXPECT_EQ(deliver("two"), "1");  // the topic as read for "one"
  ASSERT_TRUE(n_->SetTopicAttribute(kCaller, topic, "SignatureVersion", "2").ok());
  EXPECT_EQ(deliver("three"), "2");
  // A caller of another region is refused, as on a topic read from the store.
  EXPECT_EQ(
      n_->Publish({topic, "x", std::nullopt, {}, ""}, Caller{"eu-west-1", true}).error().aws_code,
      "InvalidParameter");
  ASSERT_TRUE(n_->DeleteTopic(kCaller, topic).ok());
  EXPECT_EQ(n_->Publish({topic, "gone", std::nullopt, {}, ""}, kCaller).error().aws_code,
            "NotFound");
  // The same name again: a new topic with no subscriber (and SignatureVersion 1 again).
  EXPECT_EQ(Topic(), topic);
  ASSERT_TRUE(n_->Publish({topic, "new", std::nullopt, {}, ""}, kCaller).ok());
  EXPECT_EQ(n_->delivery().RunOnce(), 0);
}

TEST_F(NotifierTest, Tags) {
  std::string topic = Topic();
  ASSERT_TRUE(n_->TagResource(kCaller, topic, {{"a", "1"}, {"b", "2"}}).ok());
  ASSERT_TRUE(n_->UntagResource(kCaller, topic, {"a"}).ok());
  EXPECT_EQ(*n_->ListTagsForResource(kCaller, topic), (TagMap{{"b", "2"}}));
  EXPECT_EQ(n_->ListTagsForResource(kCaller, topic + "x").error().aws_code, "ResourceNotFound");
}

// ARNs of topics and subscriptions: what SNS writes, and the shapes it refuses.
TEST(ParseSnsArnTest, TopicAndSubscriptionArnsAndMalformedOnes) {
  auto topic = ParseSnsArn("arn:aws:sns:us-east-1:000000000000:orders_v2-x");
  ASSERT_TRUE(topic.has_value());
  EXPECT_EQ(topic->region, "us-east-1");
  EXPECT_EQ(topic->account, "000000000000");
  EXPECT_EQ(topic->topic, "orders_v2-x");
  EXPECT_EQ(topic->subscription, "");
  auto sub = ParseSnsArn("arn:aws-cn:sns:cn-north-1:123456789012:t:0b1c-2D3e");
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ(sub->topic, "t");
  EXPECT_EQ(sub->subscription, "0b1c-2D3e");
  EXPECT_TRUE(ParseSnsArn("arn:aws:sns:r:000000000000:" + std::string(256, 'n')).has_value());

  for (const std::string& bad : std::vector<std::string>{
           "", "arn:aws:sns:us-east-1:000000000000", "arn:aws:sqs:us-east-1:000000000000:q",
           "arn:gcp:sns:us-east-1:000000000000:t", "arn:aws_x:sns:us-east-1:000000000000:t",
           "arn:aws:sns::000000000000:t", "arn:aws:sns:US-EAST-1:000000000000:t",
           "arn:aws:sns:us-east-1:00000000000:t", "arn:aws:sns:us-east-1:00000000000a:t",
           "arn:aws:sns:us-east-1:000000000000:", "arn:aws:sns:us-east-1:000000000000:a.b",
           "arn:aws:sns:us-east-1:000000000000:t:", "arn:aws:sns:us-east-1:000000000000:t:a_b",
           "arn:aws:sns:us-east-1:000000000000:t:s:extra", "xarn:aws:sns:r:000000000000:t",
           "arn:aws:sns:r:000000000000:" + std::string(257, 'n')}) {
    EXPECT_FALSE(ParseSnsArn(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace inferd::notify
