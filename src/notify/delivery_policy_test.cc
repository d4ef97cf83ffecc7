#include "notify/delivery_policy.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace inferd::notify {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<int64_t> Schedule(const RetryPolicy& p) {
  std::vector<int64_t> out;
  for (int r = 1; auto d = p.DelayBeforeRetry(r); ++r) out.push_back(d->count());
  return out;
}

TEST(DeliveryPolicyTest, DefaultIsThreeRetriesTwentySecondsApart) {
  EXPECT_EQ(Schedule(RetryPolicy{}), (std::vector<int64_t>{20000, 20000, 20000}));
  EXPECT_FALSE(RetryPolicy{}.DelayBeforeRetry(0));
  EXPECT_EQ(RetryPolicy{}.TotalDelay(), seconds(60));
}

TEST(DeliveryPolicyTest, FourPhases) {
  RetryPolicy p;
  p.num_retries = 7;
  p.num_no_delay_retries = 2;
  p.num_min_delay_retries = 1;
  p.num_max_delay_retries = 1;
  p.min_delay_target = 1;
  p.max_delay_target = 9;
  // 2 immediate, 1 at min, backoff 3 (1 → 5 → 9, linear), 1 at max.
  EXPECT_EQ(Schedule(p), (std::vector<int64_t>{0, 0, 1000, 1000, 5000, 9000, 9000}));
}

TEST(DeliveryPolicyTest, BackoffFunctionsRiseFromMinToMax) {
  for (auto fn : {BackoffFunction::kLinear, BackoffFunction::kArithmetic,
                  BackoffFunction::kGeometric, BackoffFunction::kExponential}) {
    RetryPolicy p;
    p.num_retries = 5;
    p.min_delay_target = 2;
    p.max_delay_target = 32;
    p.backoff_function = fn;
    auto s = Schedule(p);
    ASSERT_EQ(s.size(), 5u);
    EXPECT_EQ(s.front(), 2000);
    EXPECT_EQ(s.back(), 32000);
    for (size_t i = 1; i < s.size(); ++i) EXPECT_LE(s[i - 1], s[i]);
  }
  RetryPolicy g;
  g.num_retries = 5;
  g.min_delay_target = 2;
  g.max_delay_target = 32;
  g.backoff_function = BackoffFunction::kGeometric;
  EXPECT_EQ(Schedule(g), (std::vector<int64_t>{2000, 4000, 8000, 16000, 32000}));
}

TEST(DeliveryPolicyTest, ValidationFollowsSnsLimits) {
  EXPECT_TRUE(
      ValidateSubscriptionDeliveryPolicy(R"({"healthyRetryPolicy":{"numRetries":5}})").ok());
  EXPECT_TRUE(ValidateSubscriptionDeliveryPolicy(
                  R"({"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":1,"numRetries":3,)"
                  R"("backoffFunction":"exponential"},"requestPolicy":{"headerContentType":)"
                  R"("application/json"},"throttlePolicy":{"maxReceivesPerSecond":5}})")
                  .ok());
  for (const char* bad : {
           "not json",
           "[]",
           R"({"healthyRetryPolicy":{"numRetries":101}})",
           R"({"healthyRetryPolicy":{"minDelayTarget":30}})",  // above the default max of 20
           R"({"healthyRetryPolicy":{"minDelayTarget":0}})",
           R"({"healthyRetryPolicy":{"numRetries":2,"numNoDelayRetries":3}})",
           R"({"healthyRetryPolicy":{"numRetries":100,"minDelayTarget":60,"maxDelayTarget":60}})",
           R"({"healthyRetryPolicy":{"backoffFunction":"cubic"}})",
           R"({"healthyRetryPolicy":{"numRetries":"3"}})",
           R"({"healthyRetryPolicy":{"bogus":1}})",
           R"({"requestPolicy":{"headerContentType":"nonsense"}})",
           R"({"other":{}})",
       }) {
    Status st = ValidateSubscriptionDeliveryPolicy(bad);
    EXPECT_FALSE(st.ok()) << bad;
    if (!st.ok()) {
      EXPECT_EQ(st.error().message.rfind("Invalid parameter: DeliveryPolicy", 0), 0u);
    }
  }
  EXPECT_TRUE(
      ValidateTopicDeliveryPolicy(R"({"http":{"defaultHealthyRetryPolicy":{"numRetries":5},)"
                                  R"("disableSubscriptionOverrides":false}})")
          .ok());
  EXPECT_FALSE(ValidateTopicDeliveryPolicy(R"({"sqs":{}})").ok());
  EXPECT_FALSE(
      ValidateTopicDeliveryPolicy(R"({"http":{"defaultHealthyRetryPolicy":{"numRetries":1000}}})")
          .ok());
}

TEST(DeliveryPolicyTest, SubscriptionOverridesTopicUnlessDisabled) {
  AttributeMap topic{{"DeliveryPolicy",
                      R"({"http":{"defaultHealthyRetryPolicy":{"numRetries":5,"minDelayTarget":2,)"
                      R"("maxDelayTarget":2},"defaultRequestPolicy":{"headerContentType":)"
                      R"("application/json"}}})"}};
  AttributeMap sub{{"DeliveryPolicy", R"({"healthyRetryPolicy":{"numRetries":1}})"}};
  EffectivePolicy p = ResolvePolicy(topic, {});
  EXPECT_EQ(p.retry.num_retries, 5);
  EXPECT_EQ(p.retry.min_delay_target, 2);
  EXPECT_EQ(p.content_type, "application/json");
  p = ResolvePolicy(topic, sub);
  EXPECT_EQ(p.retry.num_retries, 1);
  EXPECT_EQ(p.retry.min_delay_target, 2);  // the topic's, not overridden

  topic["DeliveryPolicy"] = R"({"http":{"defaultHealthyRetryPolicy":{"numRetries":5},)"
                            R"("disableSubscriptionOverrides":true}})";
  EXPECT_EQ(ResolvePolicy(topic, sub).retry.num_retries, 5);
  EXPECT_EQ(ResolvePolicy({}, {}).content_type, "text/plain; charset=UTF-8");

  auto effective = boost::json::parse(EffectiveSubscriptionPolicyJson({}, sub));
  EXPECT_EQ(effective.at("healthyRetryPolicy").at("numRetries"), 1);
  EXPECT_EQ(effective.at("healthyRetryPolicy").at("minDelayTarget"), 20);
  auto topic_effective = boost::json::parse(EffectiveTopicPolicyJson({}));
  EXPECT_EQ(topic_effective.at("http").at("defaultHealthyRetryPolicy").at("numRetries"), 3);
}

}  // namespace
}  // namespace inferd::notify
