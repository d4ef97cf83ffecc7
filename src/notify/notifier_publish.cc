// Notifier: Publish and PublishBatch.
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <cctype>
#include <regex>
#include <set>

#include "common/base64.h"
#include "common/ids.h"
#include "notify/notifier.h"

namespace inferd::notify {

namespace json = boost::json;

namespace {

Error InvalidParameter(const std::string& what) {
  return Error(Errc::kValidation, "Invalid parameter: " + what, "InvalidParameter");
}

Error InvalidValue(const std::string& what) {
  return Error(Errc::kValidation, what, "ParameterValueInvalid");
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

Status CheckAttribute(const std::string& name, const MessageAttribute& a) {
  static const std::regex kName("[A-Za-z0-9_.-]{1,256}");
  if (!std::regex_match(name, kName) || name.front() == '.' || name.back() == '.' ||
      name.find("..") != std::string::npos || IEquals(name.substr(0, 4), "aws.") ||
      IEquals(name.substr(0, 7), "amazon.")) {
    return InvalidValue("The message attribute name '" + name +
                        "' is invalid: use 1 to 256 letters, digits, '_', '-' and '.', not "
                        "starting with AWS. or Amazon., without '..' or a leading/trailing '.'.");
  }
  std::string base = a.data_type.substr(0, a.data_type.find('.'));
  if (a.data_type.rfind("String.Array", 0) == 0) base = "String.Array";
  if (base != "String" && base != "Number" && base != "Binary" && base != "String.Array") {
    return InvalidValue("The message attribute '" + name +
                        "' has an invalid message attribute "
                        "type, the set of supported type prefixes is Binary, Number, and String.");
  }
  if (a.value.empty()) {
    return InvalidValue("The message attribute '" + name +
                        "' must contain non-empty message "
                        "attribute value for message attribute type '" +
                        base + "'.");
  }
  if (base == "Number") {
    static const std::regex kNumber(R"([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)");
    if (!std::regex_match(a.value, kNumber)) {
      return InvalidValue("The message attribute '" + name +
                          "' has an invalid numeric value: " + a.value);
    }
  } else if (base == "Binary") {
    if (!Base64Decode(a.value)) {
      return InvalidValue("The message attribute '" + name + "' must have a base64 BinaryValue.");
    }
  } else if (base == "String.Array") {
    boost::system::error_code ec;
    json::value v = json::parse(a.value, ec);
    if (ec || !v.is_array()) {
      return InvalidValue("The message attribute '" + name +
                          "' with type 'String.Array' must be a JSON array.");
    }
  }
  return OkStatus();
}

// Validates what SNS validates of one message; returns its size for the batch limit.
Result<size_t> CheckMessage(const PublishRequest& r) {
  if (r.message.empty()) return InvalidParameter("Empty message");
  size_t size = r.message.size();
  for (const auto& [name, a] : r.message_attributes) {
    INFERD_RETURN_IF_ERROR(CheckAttribute(name, a));
    size += name.size() + a.data_type.size() + a.value.size();
  }
  if (size > Notifier::kMaxMessageBytes) return InvalidParameter("Message too long");
  if (r.subject) {
    unsigned char first = r.subject->empty() ? 0 : r.subject->front();
    bool ok = !r.subject->empty() && r.subject->size() < 100 &&
              (std::isalnum(first) || std::ispunct(first));
    for (unsigned char c : *r.subject) ok = ok && c >= 0x20 && c < 0x7F;
    if (!ok) {
      return InvalidParameter(
          "Subject Reason: must be ASCII text that begins with a letter, number or punctuation "
          "mark, has no line breaks or control characters, and is less than 100 characters");
    }
  }
  if (r.message_structure == "json") {
    boost::system::error_code ec;
    json::value v = json::parse(r.message, ec);
    if (ec || !v.is_object()) {
      return InvalidParameter("Message Structure - JSON message body failed to parse");
    }
    const auto* d = v.get_object().if_contains("default");
    if (!d || !d->is_string()) {
      return InvalidParameter("Message Structure - No default entry in JSON message body");
    }
  } else if (!r.message_structure.empty()) {
    return InvalidParameter("MessageStructure Reason: the only supported value is json");
  }
  return size;
}

// The MessageId of a keyed publish: SHA-256 of its topic and key as a version-8 UUID. A key is
// published once (PublishOnce), so this names one message; derived, not random, so that a
// publish of the key after a crash that lost the first one's commit (but perhaps not its POST:
// Publish(PreparedPublish)) names the same message.
std::string KeyedMessageId(const std::string& topic_arn, const std::string& key) {
  const std::string data = topic_arn + '\n' + key;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) {
    hi = (hi << 8) | md[i];
    lo = (lo << 8) | md[8 + i];
  }
  return UuidV8(hi, lo);
}

}  // namespace

Result<OutboxMessage> Notifier::MakeNotification(const PublishRequest& request) {
  auto checked = CheckMessage(request);
  if (!checked.ok()) return std::move(checked).error();
  OutboxMessage m;
  m.message_id =
      request.dedup_id.empty() ? NewUuid() : KeyedMessageId(request.topic_arn, request.dedup_id);
  m.type = MessageType::kNotification;
  m.topic_arn = request.topic_arn;
  m.subject = request.subject;
  m.message = request.message;
  m.json_structure = request.message_structure == "json";
  m.attributes = request.message_attributes;
  m.timestamp = FormatIso8601Millis(clock_.Now());
  return m;
}

void Notifier::OfferDeliveries(const std::vector<FannedOut>& written,
                               const std::vector<OutboxMessage>& messages, const Topic& topic,
                               uint64_t version, double now, bool delivery_first) {
  if (written.empty()) return;
  std::vector<std::shared_ptr<const Delivery>> deliveries;
  deliveries.reserve(written.size());
  for (const FannedOut& f : written) {
    auto d = std::make_shared<Delivery>();
    d->id = f.id;
    d->subscription_arn = f.subscription.arn;
    d->next_attempt = now;
    d->message = messages[f.message];
    d->subscription = f.subscription;
    d->topic_attributes = topic.attributes;
    deliveries.push_back(std::move(d));
  }
  delivery_->Offer(std::move(deliveries), version, delivery_first);
}

Result<Topic> Notifier::TopicToPublish(const Caller& caller, const std::string& topic_arn,
                                       uint64_t version) {
  constexpr size_t kMaxTopics = 4096;  // past it the copies are dropped (a topic is re-read)
  {
    std::lock_guard lock(topics_mu_);
    auto it = topics_.find(topic_arn);
    if (it != topics_.end() && it->second.first == version &&
        (caller.region.empty() || caller.region == it->second.second.region)) {
      return it->second.second;
    }
  }
  auto topic = FindTopic(caller, topic_arn);  // validates the ARN and the caller's region
  if (topic.ok()) {
    std::lock_guard lock(topics_mu_);
    if (topics_.size() >= kMaxTopics) topics_.clear();
    topics_[topic_arn] = {version, *topic};
  }
  return topic;
}

Result<PreparedPublish> Notifier::PrepareOne(const PublishRequest& request, const Caller& caller,
                                             Presigner::SignOn sign_on) {
  if (request.topic_arn.empty()) {
    return InvalidParameter("TopicArn or TargetArn Reason: no value for required parameter");
  }
  PreparedPublish p;
  // Before the topic is read: the offered deliveries are what a read at this version returns.
  p.config_version = store_->config_version();
  auto topic = TopicToPublish(caller, request.topic_arn, p.config_version);
  if (!topic.ok()) return std::move(topic).error();
  auto message = MakeNotification(request);
  if (!message.ok()) return std::move(message).error();
  p.topic = std::move(topic).value();
  p.message = std::move(message).value();
  p.dedup_id = request.dedup_id;
  p.to_sign = presigner_->Before(p.message, p.topic, sign_on);
  return p;
}

Result<OnceOutcome> Notifier::CommitOne(PreparedPublish p, const OnceOptions& once, bool early) {
  if (p.to_sign) presigner_->Sign(p.message, p.topic.attributes, *p.to_sign);
  const double now = Now();
  std::vector<OutboxMessage> messages{std::move(p.message)};
  OnceOutcome outcome;
  bool offered = false;  // by `offer`, on the commit's leader thread (this one waits meanwhile)
  if (p.dedup_id.empty()) {
    auto count = store_->Publish(messages, now, &outcome.fanned_out);
    if (!count.ok()) return std::move(count).error();
    outcome.message_id = messages[0].message_id;
  } else {
    const double forget_before =
        now - std::chrono::duration<double>(options_.dedup_retention).count();
    std::function<void(const OnceOutcome&)> offer;
    if (early) {
      offer = [&](const OnceOutcome& o) {
        OfferDeliveries(o.fanned_out, messages, p.topic, p.config_version, now, p.delivery_first);
        offered = true;
      };
    }
    auto once_outcome =
        store_->PublishOnce(messages[0], p.dedup_id, now, forget_before, once, offer);
    if (!once_outcome.ok()) return std::move(once_outcome).error();
    outcome = std::move(once_outcome).value();
    if (outcome.released) delivery_->Wake();  // its rows are due in the store now
    if (!outcome.written) return outcome;     // the key's earlier message: nothing written
  }
  presigner_->After(p.topic.arn, messages[0], outcome.fanned_out);
  if (!offered) OfferDeliveries(outcome.fanned_out, messages, p.topic, p.config_version, now);
  return outcome;
}

Result<std::string> Notifier::Publish(const PublishRequest& request, const Caller& caller,
                                      Presigner::SignOn sign_on) {
  auto prepared = PrepareOne(request, caller, sign_on);
  if (!prepared.ok()) return std::move(prepared).error();
  auto outcome = CommitOne(std::move(prepared).value(), OnceOptions{0, request.release_held},
                           /*early=*/false);
  if (!outcome.ok()) return std::move(outcome).error();
  return std::move(outcome->message_id);
}

Result<PreparedPublish> Notifier::Prepare(const PublishRequest& request,
                                          Presigner::SignOn sign_on) {
  if (request.dedup_id.empty()) {
    return Error(Errc::kInternal, "a prepared publish needs a dedup_id");
  }
  return PrepareOne(request, Caller{}, sign_on);
}

Result<std::string> Notifier::Publish(PreparedPublish prepared) {
  auto outcome = CommitOne(std::move(prepared), OnceOptions{}, /*early=*/true);
  if (!outcome.ok()) return std::move(outcome).error();
  return std::move(outcome->message_id);
}

Result<PublishBatchResult> Notifier::PublishBatch(const Caller& caller,
                                                  const std::string& topic_arn,
                                                  const std::vector<PublishBatchEntry>& entries) {
  if (entries.empty()) {
    return Error(Errc::kValidation, "The batch request doesn't contain any entries.",
                 "EmptyBatchRequest");
  }
  if (entries.size() > 10) {
    return Error(Errc::kValidation,
                 "The batch request contains more entries than permissible (10).",
                 "TooManyEntriesInBatchRequest");
  }
  static const std::regex kId("[A-Za-z0-9_-]{1,80}");
  std::set<std::string> ids;
  size_t total = 0;
  for (const auto& e : entries) {
    if (!std::regex_match(e.id, kId)) {
      return Error(Errc::kValidation,
                   "The Id of a batch entry in a batch request doesn't abide by the "
                   "specification: 1 to 80 letters, digits, hyphens and underscores.",
                   "InvalidBatchEntryId");
    }
    if (!ids.insert(e.id).second) {
      return Error(Errc::kValidation, "Two or more batch entries in the request have the same Id.",
                   "BatchEntryIdsNotDistinct");
    }
    total += e.request.message.size();
    for (const auto& [name, a] : e.request.message_attributes) {
      total += name.size() + a.data_type.size() + a.value.size();
    }
  }
  if (total > kMaxMessageBytes) {
    return Error(Errc::kValidation,
                 "The length of all the messages put together is more than the limit.",
                 "BatchRequestTooLong");
  }
  const uint64_t version = store_->config_version();  // see Publish
  auto topic = TopicToPublish(caller, topic_arn, version);
  if (!topic.ok()) return std::move(topic).error();

  PublishBatchResult result;
  std::vector<OutboxMessage> messages;
  for (const auto& e : entries) {
    PublishRequest r = e.request;
    r.topic_arn = topic_arn;
    auto m = MakeNotification(r);
    if (!m.ok()) {
      const Error& err = m.error();
      result.failed.push_back(
          {e.id, err.aws_code.empty() ? "InvalidParameter" : err.aws_code, err.message, true});
      continue;
    }
    result.successful.push_back({e.id, m->message_id});
    messages.push_back(std::move(m).value());
  }
  if (!messages.empty()) {
    const double now = Now();
    std::vector<FannedOut> written;
    auto count = store_->Publish(messages, now, &written);
    if (!count.ok()) return std::move(count).error();
    OfferDeliveries(written, messages, *topic, version, now);
  }
  return result;
}

}  // namespace inferd::notify
