// Notifier: lifecycle, ARNs, topics and tags. Subscriptions are in notifier_subscriptions.cc,
// publishing in notifier_publish.cc.
#include "notify/notifier.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <regex>

#include "common/base64.h"
#include "notify/delivery_policy.h"

namespace inferd::notify {

namespace json = boost::json;

namespace {

Error InvalidParameter(const std::string& what) {
  return Error(Errc::kValidation, "Invalid parameter: " + what, "InvalidParameter");
}

std::string DefaultPolicy(const std::string& arn, const std::string& account) {
  json::array actions;
  for (const char* a : {"SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                        "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                        "SNS:ListSubscriptionsByTopic", "SNS:Publish"}) {
    actions.emplace_back(a);
  }
  json::object statement{
      {"Sid", "__default_statement_ID"},
      {"Effect", "Allow"},
      {"Principal", json::object{{"AWS", "*"}}},
      {"Action", std::move(actions)},
      {"Resource", arn},
      {"Condition", json::object{{"StringEquals", json::object{{"AWS:SourceOwner", account}}}}}};
  return json::serialize(json::object{{"Version", "2008-10-17"},
                                      {"Id", "__default_policy_ID"},
                                      {"Statement", json::array{std::move(statement)}}});
}

// Checks a topic attribute as CreateTopic / SetTopicAttributes accept it. Sets `store` false for
// attributes that are accepted but not kept (FifoTopic=false).
Status CheckTopicAttribute(const std::string& name, const std::string& value, bool& store) {
  store = true;
  if (name == "DisplayName") {
    if (value.size() > 100) {
      return InvalidParameter("DisplayName Reason: must be at most 100 characters");
    }
  } else if (name == "Policy") {
    boost::system::error_code ec;
    json::value v = json::parse(value, ec);
    if (ec || !v.is_object()) return InvalidParameter("Policy Reason: must be a JSON object");
  } else if (name == "DeliveryPolicy") {
    return ValidateTopicDeliveryPolicy(value);
  } else if (name == "SignatureVersion") {
    if (value != "1" && value != "2") {
      return InvalidParameter("SignatureVersion Reason: must be 1 (SHA1) or 2 (SHA256)");
    }
  } else if (name == "TracingConfig") {
    if (value != "PassThrough" && value != "Active") {
      return InvalidParameter("TracingConfig Reason: must be PassThrough or Active");
    }
  } else if (name == "FifoTopic" || name == "ContentBasedDeduplication") {
    if (value == "true") {
      return InvalidParameter(name +
                              " Reason: inferd does not support FIFO topics; create a standard "
                              "topic (no FifoTopic attribute, no .fifo suffix)");
    }
    if (value != "false") return InvalidParameter(name + " Reason: must be true or false");
    store = false;
  } else {
    return InvalidParameter(
        "AttributeName Reason: " + name +
        " is not supported by inferd (supported: DisplayName, Policy, DeliveryPolicy, "
        "SignatureVersion, TracingConfig)");
  }
  return OkStatus();
}

Status CheckTags(const TagMap& tags) {
  if (tags.size() > 50) return InvalidParameter("Tags Reason: at most 50 tags per resource");
  for (const auto& [k, v] : tags) {
    if (k.empty() || k.size() > 128) {
      return InvalidParameter("Tags Reason: tag keys must be 1 to 128 characters");
    }
    if (v.size() > 256) {
      return InvalidParameter("Tags Reason: tag values must be at most 256 characters");
    }
  }
  return OkStatus();
}

Result<std::string> DecodeToken(const std::string& token) {
  if (token.empty()) return std::string();
  auto raw = Base64Decode(token);
  if (!raw || raw->rfind("arn:", 0) != 0) return InvalidParameter("NextToken");
  return *raw;
}

// Every character of `s` is one `ok` accepts, and there is at least one.
template <typename Pred>
bool AllOf(std::string_view s, Pred ok) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return ok(c); });
}
bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerOrDigit(c) || (c >= 'A' && c <= 'Z'); }

}  // namespace

// By hand, not std::regex: every publish parses its topic's ARN.
//   arn:aws[a-z-]*:sns:<[a-z0-9-]+>:<12 digits>:<[A-Za-z0-9_-]{1,256}>[:<[A-Za-z0-9-]+>]
std::optional<ParsedArn> ParseSnsArn(const std::string& arn) {
  std::array<std::string_view, 7> f;  // the fields between colons
  size_t n = 0;
  for (std::string_view rest = arn;; ++n) {
    if (n == f.size()) return std::nullopt;
    const size_t colon = rest.find(':');
    f[n] = rest.substr(0, colon);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (++n < 6) return std::nullopt;
  const std::string_view partition = f[1];
  if (f[0] != "arn" || partition.substr(0, 3) != "aws" || f[2] != "sns") return std::nullopt;
  for (char c : partition.substr(3)) {
    if (!(c >= 'a' && c <= 'z') && c != '-') return std::nullopt;
  }
  if (!AllOf(f[3], [](char c) { return IsLowerOrDigit(c) || c == '-'; }) || f[4].size() != 12 ||
      !AllOf(f[4], [](char c) { return c >= '0' && c <= '9'; }) || !ValidTopicName(f[5]) ||
      (n == 7 && !AllOf(f[6], [](char c) { return IsAlnum(c) || c == '-'; }))) {
    return std::nullopt;
  }
  return ParsedArn{std::string(f[3]), std::string(f[4]), std::string(f[5]),
                   n == 7 ? std::string(f[6]) : std::string()};
}

bool ValidTopicName(std::string_view name) {
  return name.size() <= 256 &&
         AllOf(name, [](char c) { return IsAlnum(c) || c == '_' || c == '-'; });
}

Status NotifyOptions::Validate() const {
  if (data_dir.empty()) return Error(Errc::kValidation, "the notify data dir is not set");
  if (!std::regex_match(account_id, std::regex("[0-9]{12}"))) {
    return Error(Errc::kValidation, "the account id must be 12 digits");
  }
  return delivery.Validate();
}

Notifier::Notifier(NotifyOptions options, const Clock& clock, std::unique_ptr<NotifyStore> store,
                   std::unique_ptr<Signer> signer, SendFn send)
    : options_(std::move(options)),
      clock_(clock),
      store_(std::move(store)),
      signer_(std::move(signer)) {
  SetPublicUrl(options_.public_url);
  delivery_ = std::make_unique<DeliveryWorker>(*store_, *signer_, clock_, options_.delivery,
                                               std::move(send), [this] { return public_url(); });
  presigner_ = std::make_unique<Presigner>(*signer_);
}

Notifier::~Notifier() { Stop(std::chrono::steady_clock::now()); }

Result<std::unique_ptr<Notifier>> Notifier::Open(NotifyOptions options, const Clock& clock,
                                                 SendFn send) {
  INFERD_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Error(Errc::kInternal,
                 "cannot create " + options.data_dir.string() + ": " + ec.message());
  }
  auto store = NotifyStore::Open(options.data_dir / "notify.db");
  if (!store.ok()) return std::move(store).error();
  auto signer = Signer::Open(options.data_dir / "notify");
  if (!signer.ok()) return std::move(signer).error();
  return std::unique_ptr<Notifier>(new Notifier(std::move(options), clock, std::move(*store),
                                                std::move(*signer), std::move(send)));
}

void Notifier::SetPublicUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::lock_guard lock(url_mu_);
  public_url_ = std::move(url);
}

std::string Notifier::public_url() const {
  std::lock_guard lock(url_mu_);
  return public_url_;
}

void Notifier::Start() { delivery_->Start(); }

void Notifier::Stop(std::chrono::steady_clock::time_point deadline) {
  presigner_->Stop();
  delivery_->Stop(deadline);
}

double Notifier::Now() const { return ToEpochSeconds(clock_.Now()); }

Result<Topic> Notifier::FindTopic(const Caller& caller, const std::string& topic_arn) {
  auto parsed = ParseSnsArn(topic_arn);
  if (!parsed || !parsed->subscription.empty()) return InvalidParameter("TopicArn");
  if (!caller.region.empty() && parsed->region != caller.region) {
    return InvalidParameter("TopicArn Reason: the topic is in region " + parsed->region +
                            ", the request was signed for " + caller.region);
  }
  auto topic = store_->GetTopic(topic_arn);
  if (!topic.ok() && topic.error().code == Errc::kNotFound) {
    return Error(Errc::kNotFound, "Topic does not exist", "NotFound");
  }
  return topic;
}

Result<std::string> Notifier::CreateTopic(const Caller& caller, const std::string& name,
                                          const AttributeMap& attributes, const TagMap& tags) {
  if (name.size() > 5 && name.substr(name.size() - 5) == ".fifo") {
    return InvalidParameter(
        "Topic Name Reason: inferd does not support FIFO topics; use a name without the .fifo "
        "suffix");
  }
  if (!ValidTopicName(name)) {
    return InvalidParameter(
        "Topic Name Reason: must be 1 to 256 characters: letters, digits, hyphens, underscores");
  }
  AttributeMap kept;
  for (const auto& [k, v] : attributes) {
    bool store = true;
    INFERD_RETURN_IF_ERROR(CheckTopicAttribute(k, v, store));
    if (store) kept[k] = v;
  }
  INFERD_RETURN_IF_ERROR(CheckTags(tags));
  Topic topic;
  topic.region = caller.region.empty() ? "us-east-1" : caller.region;
  topic.arn = "arn:aws:sns:" + topic.region + ":" + options_.account_id + ":" + name;
  topic.name = name;
  topic.attributes = kept;
  topic.tags = tags;
  topic.created = Now();
  auto stored = store_->InsertTopicIfAbsent(topic);
  if (!stored.ok()) return std::move(stored).error();
  for (const auto& [k, v] : kept) {
    auto it = stored->attributes.find(k);
    if (it == stored->attributes.end() ? !(k == "DisplayName" && v.empty()) : it->second != v) {
      return InvalidParameter("Attributes Reason: Topic already exists with different attributes");
    }
  }
  if (!tags.empty() && stored->tags != tags) {
    return InvalidParameter("Tags Reason: Topic already exists with different tags");
  }
  return stored->arn;
}

Status Notifier::DeleteTopic(const Caller& caller, const std::string& topic_arn) {
  auto topic = FindTopic(caller, topic_arn);
  if (!topic.ok()) {
    // SNS's DeleteTopic is idempotent: deleting a topic that does not exist is no error.
    if (topic.error().code == Errc::kNotFound) return OkStatus();
    return std::move(topic).error();
  }
  auto deleted = store_->DeleteTopic(topic_arn);
  if (!deleted.ok()) return std::move(deleted).error();
  return OkStatus();
}

Result<Page<std::string>> Notifier::ListTopics(const Caller& caller,
                                               const std::string& next_token) {
  auto after = DecodeToken(next_token);
  if (!after.ok()) return std::move(after).error();
  auto arns = store_->ListTopics(caller.region, *after, kPageSize);
  if (!arns.ok()) return std::move(arns).error();
  Page<std::string> page;
  page.items = std::move(arns).value();
  if (static_cast<int>(page.items.size()) > kPageSize) {
    page.items.resize(kPageSize);
    page.next_token = Base64Encode(page.items.back());
  }
  return page;
}

Result<AttributeMap> Notifier::GetTopicAttributes(const Caller& caller,
                                                  const std::string& topic_arn) {
  auto topic = FindTopic(caller, topic_arn);
  if (!topic.ok()) return std::move(topic).error();
  auto counts = store_->CountSubscriptions(topic_arn);
  if (!counts.ok()) return std::move(counts).error();
  AttributeMap out = topic->attributes;
  out["TopicArn"] = topic->arn;
  out["Owner"] = options_.account_id;
  if (!out.count("DisplayName")) out["DisplayName"] = "";
  if (!out.count("Policy")) out["Policy"] = DefaultPolicy(topic->arn, options_.account_id);
  out["SubscriptionsConfirmed"] = std::to_string(counts->confirmed);
  out["SubscriptionsPending"] = std::to_string(counts->pending);
  out["SubscriptionsDeleted"] = std::to_string(counts->deleted);
  out["EffectiveDeliveryPolicy"] = EffectiveTopicPolicyJson(topic->attributes);
  return out;
}

Status Notifier::SetTopicAttribute(const Caller& caller, const std::string& topic_arn,
                                   const std::string& name, const std::string& value) {
  auto topic = FindTopic(caller, topic_arn);
  if (!topic.ok()) return std::move(topic).error();
  bool store = true;
  INFERD_RETURN_IF_ERROR(CheckTopicAttribute(name, value, store));
  if (!store) return OkStatus();
  AttributeMap attributes = topic->attributes;
  // An empty value removes a policy (SNS resets DeliveryPolicy/Policy to the defaults).
  if (value.empty() && name != "DisplayName") {
    attributes.erase(name);
  } else {
    attributes[name] = value;
  }
  return store_->SetTopicAttributes(topic_arn, attributes);
}

Status Notifier::TagResource(const Caller& caller, const std::string& arn, const TagMap& tags) {
  auto topic = FindTopic(caller, arn);
  if (!topic.ok()) {
    if (topic.error().code != Errc::kNotFound) return std::move(topic).error();
    return Error(Errc::kNotFound, "Resource does not exist", "ResourceNotFound");
  }
  TagMap merged = topic->tags;
  for (const auto& [k, v] : tags) merged[k] = v;
  INFERD_RETURN_IF_ERROR(CheckTags(merged));
  return store_->SetTopicTags(arn, merged);
}

Status Notifier::UntagResource(const Caller& caller, const std::string& arn,
                               const std::vector<std::string>& keys) {
  auto topic = FindTopic(caller, arn);
  if (!topic.ok()) {
    if (topic.error().code != Errc::kNotFound) return std::move(topic).error();
    return Error(Errc::kNotFound, "Resource does not exist", "ResourceNotFound");
  }
  TagMap tags = topic->tags;
  for (const auto& k : keys) tags.erase(k);
  return store_->SetTopicTags(arn, tags);
}

Result<TagMap> Notifier::ListTagsForResource(const Caller& caller, const std::string& arn) {
  auto topic = FindTopic(caller, arn);
  if (!topic.ok()) {
    if (topic.error().code != Errc::kNotFound) return std::move(topic).error();
    return Error(Errc::kNotFound, "Resource does not exist", "ResourceNotFound");
  }
  return topic->tags;
}

}  // namespace inferd::notify
