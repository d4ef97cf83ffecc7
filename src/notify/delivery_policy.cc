#include "notify/delivery_policy.h"

#include <boost/json.hpp>
#include <cmath>
#include <regex>

namespace inferd::notify {

namespace json = boost::json;

namespace {

constexpr std::string_view kBackoffNames[] = {"linear", "arithmetic", "geometric", "exponential"};

Error Invalid(std::string what) {
  return Error(Errc::kValidation, "Invalid parameter: DeliveryPolicy: " + std::move(what));
}

Result<json::object> ParseObject(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return Invalid("the value is not a JSON object");
  return std::move(v.as_object());
}

// Applies the members present in `o` (a healthyRetryPolicy) to `policy`.
Status ApplyRetry(const json::object& o, std::string_view where, RetryPolicy& policy) {
  struct IntMember {
    std::string_view name;
    int RetryPolicy::*field;
  };
  static constexpr IntMember kInts[] = {
      {"minDelayTarget", &RetryPolicy::min_delay_target},
      {"maxDelayTarget", &RetryPolicy::max_delay_target},
      {"numRetries", &RetryPolicy::num_retries},
      {"numNoDelayRetries", &RetryPolicy::num_no_delay_retries},
      {"numMinDelayRetries", &RetryPolicy::num_min_delay_retries},
      {"numMaxDelayRetries", &RetryPolicy::num_max_delay_retries},
  };
  for (const auto& [key, value] : o) {
    bool known = false;
    for (const auto& m : kInts) {
      if (key != m.name) continue;
      known = true;
      if (!value.is_int64() && !value.is_uint64()) {
        return Invalid(std::string(where) + "." + std::string(key) + " must be an integer");
      }
      int64_t n = value.to_number<int64_t>();
      if (n < 0 || n > 1000000) {
        return Invalid(std::string(where) + "." + std::string(key) + " is out of range");
      }
      policy.*m.field = static_cast<int>(n);
    }
    if (key == "backoffFunction") {
      known = true;
      bool found = false;
      if (value.is_string()) {
        for (size_t i = 0; i < std::size(kBackoffNames); ++i) {
          if (value.get_string() == kBackoffNames[i]) {
            policy.backoff_function = static_cast<BackoffFunction>(i);
            found = true;
          }
        }
      }
      if (!found) {
        return Invalid(std::string(where) +
                       ".backoffFunction must be one of linear, arithmetic, geometric, "
                       "exponential");
      }
    }
    if (!known) return Invalid("unknown member " + std::string(where) + "." + std::string(key));
  }
  return OkStatus();
}

Status CheckContentType(const json::value* request_policy, std::string_view where,
                        std::string* out) {
  if (!request_policy) return OkStatus();
  const auto* o = request_policy->if_object();
  if (!o) return Invalid(std::string(where) + " must be an object");
  if (const auto* ct = o->if_contains("headerContentType")) {
    static const std::regex kMediaType(R"([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?)");
    if (!ct->is_string() || !std::regex_match(std::string(ct->get_string()), kMediaType)) {
      return Invalid(std::string(where) +
                     ".headerContentType must be a media type such as "
                     "text/plain, application/json or application/xml");
    }
    if (out) *out = std::string(ct->get_string());
  }
  return OkStatus();
}

Status CheckThrottle(const json::value* throttle, std::string_view where) {
  if (!throttle) return OkStatus();
  const auto* o = throttle->if_object();
  const json::value* rate = o ? o->if_contains("maxReceivesPerSecond") : nullptr;
  if (!o || (rate && !(rate->is_int64() || rate->is_uint64()))) {
    return Invalid(std::string(where) + ".maxReceivesPerSecond must be an integer");
  }
  if (rate && rate->to_number<int64_t>() < 1) {
    return Invalid(std::string(where) + ".maxReceivesPerSecond must be at least 1");
  }
  return OkStatus();
}

struct TopicHttp {
  const json::object* retry = nullptr;
  bool disable_overrides = false;
  std::string content_type;
};

TopicHttp ReadTopic(const json::object& root) {
  TopicHttp out;
  const json::value* http = root.if_contains("http");
  const json::object* h = http ? http->if_object() : nullptr;
  if (!h) return out;
  if (const auto* r = h->if_contains("defaultHealthyRetryPolicy")) out.retry = r->if_object();
  if (const auto* d = h->if_contains("disableSubscriptionOverrides")) {
    out.disable_overrides = d->is_bool() && d->get_bool();
  }
  (void)CheckContentType(h->if_contains("defaultRequestPolicy"), "", &out.content_type);
  return out;
}

json::object RetryToJson(const RetryPolicy& p) {
  return {{"minDelayTarget", p.min_delay_target},
          {"maxDelayTarget", p.max_delay_target},
          {"numRetries", p.num_retries},
          {"numMaxDelayRetries", p.num_max_delay_retries},
          {"numNoDelayRetries", p.num_no_delay_retries},
          {"numMinDelayRetries", p.num_min_delay_retries},
          {"backoffFunction", kBackoffNames[static_cast<int>(p.backoff_function)]}};
}

std::optional<json::object> ParsedAttribute(const AttributeMap& attributes) {
  auto it = attributes.find("DeliveryPolicy");
  if (it == attributes.end()) return std::nullopt;
  auto o = ParseObject(it->second);
  if (!o.ok()) return std::nullopt;
  return std::move(o).value();
}

}  // namespace

std::optional<std::chrono::milliseconds> RetryPolicy::DelayBeforeRetry(int retry) const {
  using std::chrono::milliseconds;
  if (retry < 1 || retry > num_retries) return std::nullopt;
  const double min_ms = min_delay_target * 1000.0, max_ms = max_delay_target * 1000.0;
  if (retry <= num_no_delay_retries) return milliseconds(0);
  if (retry <= num_no_delay_retries + num_min_delay_retries) {
    return milliseconds(static_cast<int64_t>(min_ms));
  }
  const int backoff_retries =
      num_retries - num_no_delay_retries - num_min_delay_retries - num_max_delay_retries;
  const int i = retry - num_no_delay_retries - num_min_delay_retries;  // 1-based in the phase
  if (i > backoff_retries) return milliseconds(static_cast<int64_t>(max_ms));
  const double f = backoff_retries <= 1 ? 0.0 : double(i - 1) / double(backoff_retries - 1);
  double d = min_ms;
  switch (backoff_function) {
    case BackoffFunction::kLinear:
      d = min_ms + (max_ms - min_ms) * f;
      break;
    case BackoffFunction::kArithmetic:
      d = min_ms + (max_ms - min_ms) * f * f;
      break;
    case BackoffFunction::kGeometric:
      d = min_ms > 0 ? min_ms * std::pow(max_ms / min_ms, f) : max_ms * f;
      break;
    case BackoffFunction::kExponential:
      d = min_ms + (max_ms - min_ms) * (std::pow(2.0, 10.0 * f) - 1.0) / 1023.0;
      break;
  }
  return milliseconds(static_cast<int64_t>(std::llround(d)));
}

std::chrono::milliseconds RetryPolicy::TotalDelay() const {
  std::chrono::milliseconds total{0};
  for (int r = 1; r <= num_retries; ++r) total += DelayBeforeRetry(r).value_or(total.zero());
  return total;
}

Status RetryPolicy::Validate() const {
  if (num_retries > 100) return Invalid("healthyRetryPolicy.numRetries must be 0 to 100");
  if (min_delay_target < 1) return Invalid("healthyRetryPolicy.minDelayTarget must be at least 1");
  if (max_delay_target < min_delay_target || max_delay_target > kMaxPolicyRetrySeconds) {
    return Invalid("healthyRetryPolicy.maxDelayTarget must be between minDelayTarget and 3600");
  }
  if (num_no_delay_retries + num_min_delay_retries + num_max_delay_retries > num_retries) {
    return Invalid(
        "healthyRetryPolicy: numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must "
        "not exceed numRetries");
  }
  if (TotalDelay() > std::chrono::seconds(kMaxPolicyRetrySeconds)) {
    return Invalid("healthyRetryPolicy: the total retry time (" +
                   std::to_string(TotalDelay().count() / 1000) +
                   " s) must not exceed 3600 seconds");
  }
  return OkStatus();
}

Status ValidateTopicDeliveryPolicy(std::string_view text) {
  auto root = ParseObject(text);
  if (!root.ok()) return std::move(root).error();
  for (const auto& [key, value] : *root) {
    if (key != "http" && key != "https") {
      return Invalid("inferd delivers to http and https endpoints only; unknown member " +
                     std::string(key));
    }
    const auto* h = value.if_object();
    if (!h) return Invalid(std::string(key) + " must be an object");
    for (const auto& [member, v] : *h) {
      if (member == "defaultHealthyRetryPolicy") {
        const auto* r = v.if_object();
        if (!r) return Invalid("defaultHealthyRetryPolicy must be an object");
        RetryPolicy policy;
        INFERD_RETURN_IF_ERROR(ApplyRetry(*r, "defaultHealthyRetryPolicy", policy));
        INFERD_RETURN_IF_ERROR(policy.Validate());
      } else if (member == "disableSubscriptionOverrides") {
        if (!v.is_bool()) return Invalid("disableSubscriptionOverrides must be a boolean");
      } else if (member == "defaultThrottlePolicy") {
        INFERD_RETURN_IF_ERROR(CheckThrottle(&v, "defaultThrottlePolicy"));
      } else if (member == "defaultRequestPolicy") {
        INFERD_RETURN_IF_ERROR(CheckContentType(&v, "defaultRequestPolicy", nullptr));
      } else if (member == "defaultSicklyRetryPolicy") {
        // Accepted by SNS; inferd has no notion of a sick endpoint.
      } else {
        return Invalid("unknown member " + std::string(key) + "." + std::string(member));
      }
    }
  }
  return OkStatus();
}

Status ValidateSubscriptionDeliveryPolicy(std::string_view text) {
  auto root = ParseObject(text);
  if (!root.ok()) return std::move(root).error();
  for (const auto& [key, v] : *root) {
    if (key == "healthyRetryPolicy") {
      const auto* r = v.if_object();
      if (!r) return Invalid("healthyRetryPolicy must be an object");
      RetryPolicy policy;
      INFERD_RETURN_IF_ERROR(ApplyRetry(*r, "healthyRetryPolicy", policy));
      INFERD_RETURN_IF_ERROR(policy.Validate());
    } else if (key == "throttlePolicy") {
      INFERD_RETURN_IF_ERROR(CheckThrottle(&v, "throttlePolicy"));
    } else if (key == "requestPolicy") {
      INFERD_RETURN_IF_ERROR(CheckContentType(&v, "requestPolicy", nullptr));
    } else if (key == "sicklyRetryPolicy") {
      // Accepted by SNS; inferd has no notion of a sick endpoint.
    } else {
      return Invalid("unknown member " + std::string(key));
    }
  }
  return OkStatus();
}

EffectivePolicy ResolvePolicy(const AttributeMap& topic_attributes,
                              const AttributeMap& subscription_attributes) {
  EffectivePolicy out;
  bool overrides = true;
  if (auto topic = ParsedAttribute(topic_attributes)) {
    TopicHttp http = ReadTopic(*topic);
    if (http.retry) (void)ApplyRetry(*http.retry, "", out.retry);
    if (!http.content_type.empty()) out.content_type = http.content_type;
    overrides = !http.disable_overrides;
  }
  if (!overrides) return out;
  if (auto sub = ParsedAttribute(subscription_attributes)) {
    if (const auto* r = sub->if_contains("healthyRetryPolicy"); r && r->is_object()) {
      RetryPolicy merged = out.retry;
      (void)ApplyRetry(r->get_object(), "", merged);
      if (!merged.Validate().ok()) {
        // Valid on its own (checked when set) but not over the topic's: use it over the defaults.
        merged = RetryPolicy{};
        (void)ApplyRetry(r->get_object(), "", merged);
      }
      out.retry = merged;
    }
    std::string content_type;
    (void)CheckContentType(sub->if_contains("requestPolicy"), "", &content_type);
    if (!content_type.empty()) out.content_type = content_type;
  }
  return out;
}

std::string EffectiveTopicPolicyJson(const AttributeMap& topic_attributes) {
  EffectivePolicy p = ResolvePolicy(topic_attributes, {});
  bool disable = false;
  if (auto topic = ParsedAttribute(topic_attributes)) disable = ReadTopic(*topic).disable_overrides;
  json::object http{{"defaultHealthyRetryPolicy", RetryToJson(p.retry)},
                    {"disableSubscriptionOverrides", disable},
                    {"defaultRequestPolicy", json::object{{"headerContentType", p.content_type}}}};
  return json::serialize(json::object{{"http", std::move(http)}});
}

std::string EffectiveSubscriptionPolicyJson(const AttributeMap& topic_attributes,
                                            const AttributeMap& subscription_attributes) {
  EffectivePolicy p = ResolvePolicy(topic_attributes, subscription_attributes);
  return json::serialize(
      json::object{{"healthyRetryPolicy", RetryToJson(p.retry)},
                   {"requestPolicy", json::object{{"headerContentType", p.content_type}}}});
}

}  // namespace inferd::notify
