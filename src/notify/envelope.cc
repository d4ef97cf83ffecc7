#include "notify/envelope.h"

#include <boost/json.hpp>

#include "common/base64.h"
#include "http/uri.h"

namespace inferd::notify {

namespace json = boost::json;

namespace {

// Appends `"Key" : value` in SNS's pretty-printed style.
void Field(std::string& out, std::string_view key, std::string_view value) {
  out += out.size() > 1 ? ",\n  " : "\n  ";
  AppendJsonString(out, key);
  out += " : ";
  AppendJsonString(out, value);
}

bool IsTrue(const AttributeMap& m, const char* name) {
  auto it = m.find(name);
  return it != m.end() && it->second == "true";
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out += '"';
}

std::pair<std::string, std::string> SplitCredentials(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {url, ""};
  auto authority_start = scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority_start);
  if (authority_end == std::string::npos) authority_end = url.size();
  auto at = url.rfind('@', authority_end);
  if (at == std::string::npos || at < authority_start) return {url, ""};
  std::string userinfo = url.substr(authority_start, at - authority_start);
  std::string bare = url.substr(0, authority_start) + url.substr(at + 1);
  auto colon = userinfo.find(':');
  std::string user = http::PercentDecode(userinfo.substr(0, colon)).value_or("");
  std::string pass = colon == std::string::npos
                         ? ""
                         : http::PercentDecode(userinfo.substr(colon + 1)).value_or("");
  return {bare, "Basic " + Base64Encode(user + ":" + pass)};
}

std::string SubscribeUrl(std::string_view public_url, std::string_view topic_arn,
                         std::string_view token) {
  return std::string(public_url) +
         "/?Action=ConfirmSubscription&TopicArn=" + http::AwsUriEncode(topic_arn, false) +
         "&Token=" + std::string(token);
}

std::string UnsubscribeUrl(std::string_view public_url, std::string_view subscription_arn) {
  return std::string(public_url) +
         "/?Action=Unsubscribe&SubscriptionArn=" + http::AwsUriEncode(subscription_arn, false);
}

std::string SigningCertPath(std::string_view cert_id) {
  return "/SimpleNotificationService-" + std::string(cert_id) + ".pem";
}

std::string SigningCertUrl(std::string_view public_url, std::string_view cert_id) {
  return std::string(public_url) + SigningCertPath(cert_id);
}

std::string MessageFor(const OutboxMessage& message, std::string_view protocol) {
  if (!message.json_structure) return message.message;
  boost::system::error_code ec;
  json::value v = json::parse(message.message, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (!o) return message.message;
  if (const auto* p = o->if_contains(protocol); p && p->is_string()) {
    return std::string(p->get_string());
  }
  if (const auto* d = o->if_contains("default"); d && d->is_string()) {
    return std::string(d->get_string());
  }
  return message.message;
}

std::string StringToSign(const OutboxMessage& m, std::string_view message_text,
                         std::string_view subscribe_url) {
  std::string out;
  auto add = [&out](std::string_view key, std::string_view value) {
    out.append(key).append("\n").append(value).append("\n");
  };
  add("Message", message_text);
  add("MessageId", m.message_id);
  if (m.type == MessageType::kNotification) {
    if (m.subject) add("Subject", *m.subject);
    add("Timestamp", m.timestamp);
    add("TopicArn", m.topic_arn);
  } else {
    add("SubscribeURL", subscribe_url);
    add("Timestamp", m.timestamp);
    add("Token", m.token);
    add("TopicArn", m.topic_arn);
  }
  add("Type", TypeName(m.type));
  return out;
}

int SignatureVersionOf(const AttributeMap& topic_attributes) {
  auto it = topic_attributes.find("SignatureVersion");
  return it != topic_attributes.end() && it->second == "2" ? 2 : 1;
}

bool DeliverySigned(const OutboxMessage& message, const Subscription& sub) {
  return message.type != MessageType::kNotification ||
         !IsTrue(sub.attributes, "RawMessageDelivery");
}

Result<std::string> SignNotification(const OutboxMessage& message, std::string_view message_text,
                                     const AttributeMap& topic_attributes, const Signer& signer) {
  return signer.Sign(StringToSign(message, message_text, ""), SignatureVersionOf(topic_attributes));
}

Status SignNotificationAhead(const OutboxMessage& message, std::string_view message_text,
                             const AttributeMap& topic_attributes, const Signer& signer) {
  return signer.SignAhead(StringToSign(message, message_text, ""),
                          SignatureVersionOf(topic_attributes));
}

Result<http::ClientRequest> BuildDeliveryRequest(const Delivery& d, const Signer& signer,
                                                 std::string_view public_url,
                                                 const EffectivePolicy& policy,
                                                 std::chrono::milliseconds timeout) {
  const Subscription& sub = *d.subscription;
  const OutboxMessage& m = d.message;
  const bool notification = m.type == MessageType::kNotification;
  const std::string text = MessageFor(m, sub.protocol);

  http::ClientRequest req;
  req.method = "POST";
  req.timeout = timeout;
  auto [url, authorization] = SplitCredentials(sub.endpoint);
  req.url = std::move(url);
  if (!authorization.empty()) req.headers.Add("Authorization", authorization);
  req.headers.Add("Content-Type", policy.content_type);
  req.headers.Add("x-amz-sns-message-type", std::string(TypeName(m.type)));
  req.headers.Add("x-amz-sns-message-id", m.message_id);
  req.headers.Add("x-amz-sns-topic-arn", m.topic_arn);
  if (m.type != MessageType::kSubscriptionConfirmation) {
    req.headers.Add("x-amz-sns-subscription-arn", sub.arn);
  }
  req.headers.Add("User-Agent", "Amazon Simple Notification Service Agent");

  if (!DeliverySigned(m, sub)) {
    req.headers.Add("x-amz-sns-rawdelivery", "true");
    req.body = text;
    return req;
  }

  const int version = SignatureVersionOf(d.topic_attributes);
  const std::string subscribe_url =
      notification ? std::string() : SubscribeUrl(public_url, m.topic_arn, m.token);
  auto signature = notification ? SignNotification(m, text, d.topic_attributes, signer)
                                : signer.Sign(StringToSign(m, text, subscribe_url), version);
  if (!signature.ok()) return std::move(signature).error();

  std::string body;
  body.reserve(1024 + text.size() + signature->size() + m.topic_arn.size() * 2 + sub.arn.size() +
               public_url.size() * 2);
  body += "{";
  Field(body, "Type", TypeName(m.type));
  Field(body, "MessageId", m.message_id);
  if (!notification) Field(body, "Token", m.token);
  Field(body, "TopicArn", m.topic_arn);
  if (notification && m.subject) Field(body, "Subject", *m.subject);
  Field(body, "Message", text);
  if (!notification) Field(body, "SubscribeURL", subscribe_url);
  Field(body, "Timestamp", m.timestamp);
  Field(body, "SignatureVersion", std::to_string(version));
  Field(body, "Signature", *signature);
  Field(body, "SigningCertURL", SigningCertUrl(public_url, signer.cert_id()));
  if (notification) {
    Field(body, "UnsubscribeURL", UnsubscribeUrl(public_url, sub.arn));
    if (!m.attributes.empty()) {
      body += ",\n  \"MessageAttributes\" : {";
      bool first = true;
      for (const auto& [name, a] : m.attributes) {
        body += first ? "\n    " : ",\n    ";
        first = false;
        AppendJsonString(body, name);
        body += " : {\"Type\":";  // compact, as boost::json::serialize writes an object
        AppendJsonString(body, a.data_type);
        body += ",\"Value\":";
        AppendJsonString(body, a.value);
        body += '}';
      }
      body += "\n  }";
    }
  }
  body += "\n}";
  req.body = std::move(body);
  return req;
}

}  // namespace inferd::notify
