#include "dispatch/notification.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/base64.h"

namespace inferd::dispatch {
namespace {

namespace json = boost::json;

// 2022-01-25T22:46:00.455Z and .608Z, the documented example's times.
constexpr int64_t kReceived = 1643150760455;
constexpr int64_t kFinished = 1643150760608;

NotificationFacts Facts(bool success) {
  NotificationFacts f;
  f.region = "us-east-1";
  f.received_ms = kReceived;
  f.event_ms = kFinished;
  f.success = success;
  f.accept = "application/json";
  f.content_type = "text/csv";
  f.custom_attributes = "{}";
  f.endpoint_name = "my-endpoint";
  f.input_location = "s3://bucket/input.csv";
  f.response_content_type = "text/csv; charset=utf-8";
  f.output_location = "s3://bucket/out/2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8.out";
  f.inference_id = "11111111-2222-3333-4444-555555555555";
  if (!success) {
    f.failure_reason =
        "ClientError: Received server error (500) from model. See the SageMaker Endpoint logs "
        "in your account for more information.";
  }
  return f;
}

std::vector<std::string> Keys(const json::object& o) {
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  return keys;
}

TEST(NotificationTest, SuccessMessageFieldByField) {
  const std::string text = SuccessMessage(Facts(true));
  json::object m = json::parse(text).as_object();
  EXPECT_EQ(Keys(m),
            (std::vector<std::string>{"awsRegion", "eventTime", "receivedTime", "invocationStatus",
                                      "requestParameters", "responseParameters", "inferenceId",
                                      "eventVersion", "eventSource", "eventName"}));
  EXPECT_EQ(m["awsRegion"], "us-east-1");
  EXPECT_EQ(m["eventTime"], "2022-01-25T22:46:00.608Z");
  EXPECT_EQ(m["receivedTime"], "2022-01-25T22:46:00.455Z");
  EXPECT_EQ(m["invocationStatus"], "Completed");
  json::object req = m["requestParameters"].as_object();
  EXPECT_EQ(Keys(req), (std::vector<std::string>{"accept", "contentType", "customAttributes",
                                                 "endpointName", "inputLocation"}));
  EXPECT_EQ(req["accept"], "application/json");
  EXPECT_EQ(req["contentType"], "text/csv");
  EXPECT_EQ(req["customAttributes"], "{}");
  EXPECT_EQ(req["endpointName"], "my-endpoint");
  EXPECT_EQ(req["inputLocation"], "s3://bucket/input.csv");
  json::object resp = m["responseParameters"].as_object();
  EXPECT_EQ(Keys(resp), (std::vector<std::string>{"contentType", "outputLocation"}));
  EXPECT_EQ(resp["contentType"], "text/csv; charset=utf-8");
  EXPECT_EQ(resp["outputLocation"], "s3://bucket/out/2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8.out");
  EXPECT_EQ(m["inferenceId"], "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(m["eventVersion"], "1.0");
  EXPECT_EQ(m["eventSource"], "aws:sagemaker");
  EXPECT_EQ(m["eventName"], "InferenceResult");
  EXPECT_EQ(m.if_contains("failureReason"), nullptr);
  EXPECT_EQ(m.if_contains("responseBody"), nullptr);
}

TEST(NotificationTest, OnlySuppliedRequestParametersAppear) {
  NotificationFacts f = Facts(true);
  f.accept = f.content_type = f.custom_attributes = f.input_location = "";  // inline body
  f.response_content_type = "";
  json::object m = json::parse(SuccessMessage(f)).as_object();
  EXPECT_EQ(json::serialize(m["requestParameters"]), R"({"endpointName":"my-endpoint"})");
  EXPECT_EQ(Keys(m["responseParameters"].as_object()),
            (std::vector<std::string>{"outputLocation"}));
}

TEST(NotificationTest, ResponseBodyIsEmbeddedUpTo128KiB) {
  NotificationFacts f = Facts(true);
  f.response_body = std::string("1,2,3\n\0\xff", 8);
  json::object m = json::parse(SuccessMessage(f)).as_object();
  EXPECT_EQ(Keys(m)[6], "responseBody");  // after responseParameters, before inferenceId
  json::object body = m["responseBody"].as_object();
  EXPECT_EQ(Keys(body), (std::vector<std::string>{"content", "message", "encoding"}));
  EXPECT_EQ(*Base64Decode(std::string(body["content"].as_string())), *f.response_body);
  EXPECT_EQ(body["message"],
            "Check S3 path location(if configured) or Cloudwatch for additional details.");
  EXPECT_EQ(body["encoding"], "BASE64");

  f.response_body = std::string(128 * 1024, 'x');
  EXPECT_TRUE(json::parse(SuccessMessage(f)).as_object().contains("responseBody"));
  f.response_body = std::string(128 * 1024 + 1, 'x');
  EXPECT_FALSE(json::parse(SuccessMessage(f)).as_object().contains("responseBody"));
}

TEST(NotificationTest, ErrorMessageFieldByField) {
  json::object m = json::parse(ErrorMessage(Facts(false))).as_object();
  EXPECT_EQ(Keys(m),
            (std::vector<std::string>{"awsRegion", "eventTime", "receivedTime", "invocationStatus",
                                      "failureReason", "requestParameters", "inferenceId",
                                      "eventVersion", "eventSource", "eventName"}));
  EXPECT_EQ(m["invocationStatus"], "Failed");
  EXPECT_EQ(m["failureReason"],
            "ClientError: Received server error (500) from model. See the SageMaker Endpoint "
            "logs in your account for more information.");
  EXPECT_EQ(m["requestParameters"].as_object()["endpointName"], "my-endpoint");
  EXPECT_EQ(m["eventName"], "InferenceResult");
}

TEST(NotificationTest, ErrorMessageWithFailureObjectAndEmbeddedResponse) {
  NotificationFacts f = Facts(false);
  f.response_content_type = "application/json";
  f.failure_location = "s3://bucket/fail/2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8-error.out";
  f.response_body = R"({"error":"bad input"})";
  json::object m = json::parse(ErrorMessage(f)).as_object();
  EXPECT_EQ(Keys(m), (std::vector<std::string>{
                         "awsRegion", "eventTime", "receivedTime", "invocationStatus",
                         "failureReason", "requestParameters", "responseParameters", "responseBody",
                         "inferenceId", "eventVersion", "eventSource", "eventName"}));
  json::object resp = m["responseParameters"].as_object();
  EXPECT_EQ(Keys(resp), (std::vector<std::string>{"contentType", "failureLocation"}));
  EXPECT_EQ(resp["contentType"], "application/json");
  EXPECT_EQ(resp["failureLocation"],
            "s3://bucket/fail/2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8-error.out");
  EXPECT_EQ(*Base64Decode(std::string(m["responseBody"].as_object()["content"].as_string())),
            R"({"error":"bad input"})");
}

TEST(NotificationTest, TestNotificationIsExact) {
  EXPECT_EQ(
      TestNotificationMessage(),
      R"({"eventVersion":"1.0","eventSource":"aws:sagemaker","eventName":"TestNotification"})");
}

}  // namespace
}  // namespace inferd::dispatch
