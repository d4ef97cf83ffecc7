#include "api/sns/sns_api.h"

#include <gtest/gtest.h>

#include "api/sns/sns_params.h"
#include "notify/testing.h"

namespace inferd::api::sns {
namespace {

TEST(SnsParamsTest, ReadsBotocoreQuerySerialisation) {
  std::string body =
      "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At"
      "&Message=a+b%2Bc&MessageAttributes.entry.1.Name=color"
      "&MessageAttributes.entry.1.Value.DataType=String"
      "&MessageAttributes.entry.1.Value.StringValue=blue"
      "&MessageAttributes.entry.2.Name=raw&MessageAttributes.entry.2.Value.DataType=Binary"
      "&MessageAttributes.entry.2.Value.BinaryValue=AAE%3D";
  for (int i = 1; i <= 11; ++i) {
    body += "&Attributes.entry." + std::to_string(i) + ".key=k" + std::to_string(i) +
            "&Attributes.entry." + std::to_string(i) + ".value=v" + std::to_string(i);
  }
  body += "&Tags.member.1.Key=team&Tags.member.1.Value=ml&TagKeys.member.1=x&TagKeys.member.2=y";
  http::Request req;
  req.method = "POST";
  req.path = "/";
  req.body = body;
  Params p = Params::FromRequest(req);
  EXPECT_EQ(p.GetOr("Message"), "a b+c");
  EXPECT_EQ(p.GetOr("TopicArn"), "arn:aws:sns:us-east-1:000000000000:t");
  auto attrs = p.MessageAttributes("MessageAttributes");
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->at("color").value, "blue");
  EXPECT_EQ(attrs->at("raw").data_type, "Binary");
  EXPECT_EQ(attrs->at("raw").value, "AAE=");
  auto map = p.EntryMap("Attributes");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->size(), 11u);
  EXPECT_EQ(map->at("k10"), "v10");
  EXPECT_EQ(p.Tags("Tags")->at("team"), "ml");
  EXPECT_EQ(p.StringList("TagKeys"), (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(p.Required("Nope").ok());
}

TEST(SnsParamsTest, ResponseShape) {
  EXPECT_EQ(ResponseXml("CreateTopic", Element("TopicArn", "a&b"), true, "rid"),
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
            "<CreateTopicResult><TopicArn>a&amp;b</TopicArn></CreateTopicResult>"
            "<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
            "</CreateTopicResponse>");
  EXPECT_EQ(ResponseXml("DeleteTopic", "", false, "r"),
            "<DeleteTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteTopicResponse>");
  EXPECT_EQ(MapElement("Attributes", {{"k", "<v>"}}),
            "<Attributes><entry><key>k</key><value>&lt;v&gt;</value></entry></Attributes>");
}

class SnsActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    notify::NotifyOptions options;
    options.data_dir = dir_.path();
    options.public_url = "http://127.0.0.1:1";
    auto n = notify::Notifier::Open(options, SystemClock::Instance(), sender_.fn());
    ASSERT_TRUE(n.ok()) << n.error().message;
    notifier_ = std::move(n).value();
  }
  Result<std::string> Run(const std::string& query) {
    Params p = Params::FromQuery(query);
    return RunAction(*notifier_, p.GetOr("Action"), p, {"us-east-1", true}, "rid");
  }

  notify::testing::TempDir dir_;
  notify::testing::FakeSender sender_;
  std::unique_ptr<notify::Notifier> notifier_;
};

TEST_F(SnsActionsTest, ActionsAnswerInSnsShapes) {
  auto created = Run("Action=CreateTopic&Name=t");
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_NE(created->find("<CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:000000000000:t"
                          "</TopicArn></CreateTopicResult>"),
            std::string::npos);
  auto listed = Run("Action=ListTopics");
  EXPECT_NE(listed->find("<Topics><member><TopicArn>arn:aws:sns:us-east-1:000000000000:t"),
            std::string::npos);
  auto sub =
      Run("Action=Subscribe&TopicArn=arn:aws:sns:us-east-1:000000000000:t&Protocol=http"
          "&Endpoint=http://h/");
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_NE(sub->find("<SubscriptionArn>pending confirmation</SubscriptionArn>"),
            std::string::npos);
  auto subs = Run("Action=ListSubscriptions");
  EXPECT_NE(subs->find("<SubscriptionArn>PendingConfirmation</SubscriptionArn>"),
            std::string::npos);
  auto tagged =
      Run("Action=TagResource&ResourceArn=arn:aws:sns:us-east-1:000000000000:t"
          "&Tags.member.1.Key=k&Tags.member.1.Value=v");
  ASSERT_TRUE(tagged.ok());
  EXPECT_NE(tagged->find("<TagResourceResult></TagResourceResult>"), std::string::npos);
  auto batch =
      Run("Action=PublishBatch&TopicArn=arn:aws:sns:us-east-1:000000000000:t"
          "&PublishBatchRequestEntries.member.1.Id=a"
          "&PublishBatchRequestEntries.member.1.Message=m"
          "&PublishBatchRequestEntries.member.2.Id=b");
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_NE(batch->find("<Successful><member><Id>a</Id><MessageId>"), std::string::npos);
  EXPECT_NE(batch->find("<Failed><member><Id>b</Id><Code>InvalidParameter</Code>"),
            std::string::npos);
}

TEST_F(SnsActionsTest, Errors) {
  auto unknown = Run("Action=Frobnicate");
  EXPECT_EQ(unknown.error().aws_code, "InvalidAction");
  EXPECT_EQ(Run("Action=CreatePlatformApplication").error().code, Errc::kNotImplemented);
  auto missing = Run("Action=GetTopicAttributes&TopicArn=arn:aws:sns:us-east-1:000000000000:x");
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_EQ(missing.error().message, "Topic does not exist");
  EXPECT_EQ(Run("Action=CreateTopic").error().aws_code, "InvalidParameter");
  EXPECT_EQ(Run("Action=Publish&TopicArn=arn:aws:sns:us-east-1:000000000000:x&Message=m"
                "&PhoneNumber=%2B1555")
                .error()
                .aws_code,
            "InvalidParameter");
}

TEST_F(SnsActionsTest, OnlyTheLinksAndTheCertificateAreUnsigned) {
  BlockingPool pool(1);
  SnsApi api(*notifier_, pool);
  auto request = [](std::string method, std::string path, std::string query) {
    http::Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.query = std::move(query);
    return r;
  };
  EXPECT_FALSE(
      api.RequiresAuth(request("GET", "/", "Action=ConfirmSubscription&TopicArn=a&Token=t")));
  EXPECT_FALSE(api.RequiresAuth(request("GET", "/", "Action=Unsubscribe&SubscriptionArn=a")));
  EXPECT_FALSE(api.RequiresAuth(request("GET", "/SimpleNotificationService-abc.pem", "")));
  EXPECT_TRUE(api.RequiresAuth(request("GET", "/", "Action=Unsubscribe&X-Amz-Signature=x")));
  EXPECT_TRUE(api.RequiresAuth(request("GET", "/", "Action=Publish&TopicArn=a&Message=m")));
  EXPECT_TRUE(api.RequiresAuth(request("POST", "/", "")));
}

}  // namespace
}  // namespace inferd::api::sns
