// SNS delivery policies for HTTP/S: parsing and validating the `DeliveryPolicy` attribute of
// topics and subscriptions, resolving the policy a delivery runs under, and the retry schedule.
//
// Topic:        {"http": {"defaultHealthyRetryPolicy": {...}, "disableSubscriptionOverrides": b,
//                         "defaultThrottlePolicy": {...}, "defaultRequestPolicy":
//                         {"headerContentType": "..."}}}
// Subscription: {"healthyRetryPolicy": {...}, "throttlePolicy": {...},
//                "requestPolicy": {"headerContentType": "..."}}
// healthyRetryPolicy members (all optional; defaults are SNS's for HTTP/S: 3 retries 20 s apart):
// minDelayTarget, maxDelayTarget (s), numRetries, numNoDelayRetries, numMinDelayRetries,
// numMaxDelayRetries, backoffFunction (linear|arithmetic|geometric|exponential).
//
// A retry schedule has SNS's four phases: numNoDelayRetries immediate retries, numMinDelayRetries
// at minDelayTarget, the backoff phase (the remaining retries, from minDelayTarget up to
// maxDelayTarget along the backoff function), then numMaxDelayRetries at maxDelayTarget. SNS does
// not document the backoff curves; inferd's (d = delay, f = position 0..1 in the phase):
// linear d = min + (max-min)·f; arithmetic d = min + (max-min)·f²; geometric d = min·(max/min)^f;
// exponential d = min + (max-min)·(2^(10f)-1)/1023. No jitter, so schedules are testable.
//
// Pure values and functions; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "notify/types.h"

namespace inferd::notify {

enum class BackoffFunction { kLinear, kArithmetic, kGeometric, kExponential };

struct RetryPolicy {
  int min_delay_target = 20;  // seconds
  int max_delay_target = 20;  // seconds
  int num_retries = 3;
  int num_no_delay_retries = 0;
  int num_min_delay_retries = 0;
  int num_max_delay_retries = 0;
  BackoffFunction backoff_function = BackoffFunction::kLinear;

  // Delay before retry `retry` (1 = the attempt after the first failure); nullopt once the
  // retries are used up.
  std::optional<std::chrono::milliseconds> DelayBeforeRetry(int retry) const;
  // Sum of every retry's delay (SNS caps it at 3600 s).
  std::chrono::milliseconds TotalDelay() const;
  // kValidation with SNS-style text ("DeliveryPolicy: healthyRetryPolicy...").
  Status Validate() const;
};

// What a delivery to one subscription runs under.
struct EffectivePolicy {
  RetryPolicy retry;
  std::string content_type = "text/plain; charset=UTF-8";
};

inline constexpr int kMaxPolicyRetrySeconds = 3600;

// Validate the DeliveryPolicy attribute value of a topic / a subscription (kValidation).
Status ValidateTopicDeliveryPolicy(std::string_view text);
Status ValidateSubscriptionDeliveryPolicy(std::string_view text);

// The policy of deliveries to a subscription: SNS's defaults, overridden by the topic's
// defaults, overridden by the subscription's own (unless the topic disables overrides).
EffectivePolicy ResolvePolicy(const AttributeMap& topic_attributes,
                              const AttributeMap& subscription_attributes);

// EffectiveDeliveryPolicy as GetTopicAttributes / GetSubscriptionAttributes show it (JSON text).
std::string EffectiveTopicPolicyJson(const AttributeMap& topic_attributes);
std::string EffectiveSubscriptionPolicyJson(const AttributeMap& topic_attributes,
                                            const AttributeMap& subscription_attributes);

}  // namespace inferd::notify
