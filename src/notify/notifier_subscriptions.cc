// Notifier: subscriptions and SNS's confirmation handshake.
#include <random>

#include "common/base64.h"
#include "common/ids.h"
#include "http/client.h"
#include "notify/delivery_policy.h"
#include "notify/envelope.h"
#include "notify/notifier.h"

namespace inferd::notify {

namespace {

constexpr double kTokenLifetimeSeconds = 3 * 24 * 3600;  // SNS: tokens are valid for 3 days

Error InvalidParameter(const std::string& what) {
  return Error(Errc::kValidation, "Invalid parameter: " + what, "InvalidParameter");
}

// 128 hex digits from the OS's randomness: the confirmation token is a capability.
std::string NewToken() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j) out.push_back(kHex[(v >> (4 * j)) & 0xF]);
  }
  return out;
}

Status CheckSubscriptionAttribute(const std::string& name, const std::string& value) {
  if (name == "RawMessageDelivery") {
    if (value != "true" && value != "false") {
      return InvalidParameter("RawMessageDelivery Reason: must be true or false");
    }
    return OkStatus();
  }
  if (name == "DeliveryPolicy") return ValidateSubscriptionDeliveryPolicy(value);
  if (name == "FilterPolicy" || name == "FilterPolicyScope" || name == "RedrivePolicy" ||
      name == "SubscriptionRoleArn" || name == "ReplayPolicy") {
    return InvalidParameter("Attributes Reason: inferd does not support " + name +
                            " (supported: RawMessageDelivery, DeliveryPolicy)");
  }
  return InvalidParameter("AttributeName Reason: unknown subscription attribute " + name);
}

bool SameAttributes(const AttributeMap& stored, const AttributeMap& requested) {
  for (const auto& [k, v] : requested) {
    auto it = stored.find(k);
    std::string have = it == stored.end() ? (k == "RawMessageDelivery" ? "false" : "") : it->second;
    if (have != v) return false;
  }
  return true;
}

}  // namespace

OutboxMessage Notifier::MakeConfirmation(MessageType type, const Subscription& sub) {
  OutboxMessage m;
  m.message_id = NewUuid();
  m.type = type;
  m.topic_arn = sub.topic_arn;
  m.token = sub.token;
  m.timestamp = FormatIso8601Millis(clock_.Now());
  if (type == MessageType::kSubscriptionConfirmation) {
    m.message = "You have chosen to subscribe to the topic " + sub.topic_arn +
                ".\nTo confirm the subscription, visit the SubscribeURL included in this "
                "message.";
  } else {
    m.message = "You have chosen to deactivate subscription " + sub.arn +
                ".\nTo cancel this operation and restore the subscription, visit the "
                "SubscribeURL included in this message.";
  }
  return m;
}

Result<Subscription> Notifier::FindSubscription(const Caller& caller, const std::string& arn) {
  auto parsed = ParseSnsArn(arn);
  if (!parsed || parsed->subscription.empty()) return InvalidParameter("SubscriptionArn");
  if (!caller.region.empty() && parsed->region != caller.region) {
    return InvalidParameter("SubscriptionArn Reason: the subscription is in region " +
                            parsed->region + ", the request was signed for " + caller.region);
  }
  auto sub = store_->GetSubscription(arn);
  if (!sub.ok() && sub.error().code == Errc::kNotFound) {
    return Error(Errc::kNotFound, "Subscription does not exist", "NotFound");
  }
  return sub;
}

Result<std::string> Notifier::Subscribe(const Caller& caller, const SubscribeRequest& req) {
  auto topic = FindTopic(caller, req.topic_arn);
  if (!topic.ok()) return std::move(topic).error();
  if (req.protocol != "http" && req.protocol != "https") {
    return InvalidParameter(
        "Protocol Reason: inferd delivers to http and https endpoints only, "
        "not \"" +
        req.protocol + "\"");
  }
  auto url = http::ParseUrl(SplitCredentials(req.endpoint).first);
  if (req.endpoint.rfind(req.protocol + "://", 0) != 0 || !url.ok()) {
    return InvalidParameter("Endpoint Reason: an " + req.protocol + " endpoint must be a URL " +
                            "beginning with " + req.protocol + "://");
  }
  for (const auto& [k, v] : req.attributes)
    INFERD_RETURN_IF_ERROR(CheckSubscriptionAttribute(k, v));

  auto existing = store_->FindSubscription(req.topic_arn, req.protocol, req.endpoint);
  if (!existing.ok()) return std::move(existing).error();
  const double now = Now();
  if (existing->has_value()) {
    Subscription sub = **existing;
    if (!SameAttributes(sub.attributes, req.attributes)) {
      return InvalidParameter(
          "Attributes Reason: Subscription already exists with different "
          "attributes");
    }
    if (sub.status == SubscriptionStatus::kConfirmed) return sub.arn;
    // Still pending: SNS sends the confirmation again (with a fresh token lifetime).
    sub.token_expires = now + kTokenLifetimeSeconds;
    OutboxMessage confirmation = MakeConfirmation(MessageType::kSubscriptionConfirmation, sub);
    INFERD_RETURN_IF_ERROR(store_->PutSubscription(sub, &confirmation, true, now));
    delivery_->Wake();
    return req.return_subscription_arn ? sub.arn : std::string(kPendingConfirmation);
  }

  Subscription sub;
  sub.arn = req.topic_arn + ":" + NewUuid();
  sub.topic_arn = req.topic_arn;
  sub.protocol = req.protocol;
  sub.endpoint = req.endpoint;
  sub.owner = options_.account_id;
  sub.attributes = req.attributes;
  sub.changed = now;
  if (options_.auto_confirm) {
    sub.status = SubscriptionStatus::kConfirmed;
    INFERD_RETURN_IF_ERROR(store_->PutSubscription(sub, nullptr, false, now));
    return sub.arn;
  }
  sub.status = SubscriptionStatus::kPending;
  sub.token = NewToken();
  sub.token_expires = now + kTokenLifetimeSeconds;
  OutboxMessage confirmation = MakeConfirmation(MessageType::kSubscriptionConfirmation, sub);
  INFERD_RETURN_IF_ERROR(store_->PutSubscription(sub, &confirmation, false, now));
  delivery_->Wake();
  return req.return_subscription_arn ? sub.arn : std::string(kPendingConfirmation);
}

Result<std::string> Notifier::ConfirmSubscription(const Caller& caller,
                                                  const std::string& topic_arn,
                                                  const std::string& token,
                                                  bool authenticate_on_unsubscribe) {
  auto topic = FindTopic(caller, topic_arn);
  if (!topic.ok()) return std::move(topic).error();
  auto found = store_->FindByToken(topic_arn, token);
  const double now = Now();
  if (!found.ok()) {
    if (found.error().code == Errc::kNotFound) return InvalidParameter("Token");
    return std::move(found).error();
  }
  Subscription sub = std::move(found).value();
  if (sub.status == SubscriptionStatus::kConfirmed) return sub.arn;  // the link visited again
  if (sub.token_expires < now) return InvalidParameter("Token Reason: the token has expired");
  sub.status = SubscriptionStatus::kConfirmed;
  sub.authenticated = authenticate_on_unsubscribe && caller.authenticated;
  sub.changed = now;
  // Drops the (re)tried confirmation messages still in the outbox.
  INFERD_RETURN_IF_ERROR(store_->PutSubscription(sub, nullptr, true, now));
  return sub.arn;
}

Status Notifier::Unsubscribe(const Caller& caller, const std::string& subscription_arn) {
  auto found = FindSubscription(caller, subscription_arn);
  if (!found.ok()) return std::move(found).error();
  Subscription sub = std::move(found).value();
  if (sub.status == SubscriptionStatus::kDeleted) return OkStatus();  // the link visited again
  if (sub.authenticated && !caller.authenticated) {
    return Error(Errc::kAccessDenied,
                 "This subscription was confirmed with AuthenticateOnUnsubscribe: unsubscribing "
                 "requires a signed Unsubscribe request.",
                 "AuthorizationError");
  }
  const double now = Now();
  const bool was_confirmed = sub.status == SubscriptionStatus::kConfirmed;
  sub.status = SubscriptionStatus::kDeleted;
  sub.changed = now;
  if (!was_confirmed) {
    sub.token.clear();
    return store_->PutSubscription(sub, nullptr, true, now);
  }
  // SNS tells the endpoint, with a link that restores the subscription.
  sub.token = NewToken();
  sub.token_expires = now + kTokenLifetimeSeconds;
  OutboxMessage goodbye = MakeConfirmation(MessageType::kUnsubscribeConfirmation, sub);
  INFERD_RETURN_IF_ERROR(store_->PutSubscription(sub, &goodbye, true, now));
  delivery_->Wake();
  return OkStatus();
}

Result<Page<Subscription>> Notifier::ListSubscriptions(const Caller& caller,
                                                       const std::string& topic_arn,
                                                       const std::string& next_token) {
  if (!topic_arn.empty()) {
    auto topic = FindTopic(caller, topic_arn);
    if (!topic.ok()) return std::move(topic).error();
  }
  std::string after;
  if (!next_token.empty()) {
    auto raw = Base64Decode(next_token);
    if (!raw || raw->rfind("arn:", 0) != 0) return InvalidParameter("NextToken");
    after = *raw;
  }
  auto subs = store_->ListSubscriptions(caller.region, topic_arn, after, kPageSize);
  if (!subs.ok()) return std::move(subs).error();
  Page<Subscription> page;
  page.items = std::move(subs).value();
  if (static_cast<int>(page.items.size()) > kPageSize) {
    page.items.resize(kPageSize);
    page.next_token = Base64Encode(page.items.back().arn);
  }
  return page;
}

Result<AttributeMap> Notifier::GetSubscriptionAttributes(const Caller& caller,
                                                         const std::string& subscription_arn) {
  auto found = FindSubscription(caller, subscription_arn);
  if (!found.ok()) return std::move(found).error();
  if (found->status == SubscriptionStatus::kDeleted) {
    return Error(Errc::kNotFound, "Subscription does not exist", "NotFound");
  }
  AttributeMap topic_attributes;
  if (auto topic = store_->GetTopic(found->topic_arn); topic.ok()) {
    topic_attributes = topic->attributes;
  }
  AttributeMap out = found->attributes;
  out["SubscriptionArn"] = found->arn;
  out["TopicArn"] = found->topic_arn;
  out["Owner"] = found->owner;
  out["Protocol"] = found->protocol;
  out["Endpoint"] = found->endpoint;
  out["ConfirmationWasAuthenticated"] = found->authenticated ? "true" : "false";
  out["PendingConfirmation"] = found->status == SubscriptionStatus::kPending ? "true" : "false";
  if (!out.count("RawMessageDelivery")) out["RawMessageDelivery"] = "false";
  out["EffectiveDeliveryPolicy"] =
      EffectiveSubscriptionPolicyJson(topic_attributes, found->attributes);
  return out;
}

Status Notifier::SetSubscriptionAttribute(const Caller& caller, const std::string& subscription_arn,
                                          const std::string& name, const std::string& value) {
  auto found = FindSubscription(caller, subscription_arn);
  if (!found.ok()) return std::move(found).error();
  Subscription sub = std::move(found).value();
  if (sub.status == SubscriptionStatus::kDeleted) {
    return Error(Errc::kNotFound, "Subscription does not exist", "NotFound");
  }
  if (!(name == "DeliveryPolicy" && value.empty())) {
    INFERD_RETURN_IF_ERROR(CheckSubscriptionAttribute(name, value));
  }
  if (value.empty()) {
    sub.attributes.erase(name);
  } else {
    sub.attributes[name] = value;
  }
  return store_->PutSubscription(sub, nullptr, false, Now());
}

}  // namespace inferd::notify
