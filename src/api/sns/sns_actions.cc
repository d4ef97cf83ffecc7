// The SNS actions: parameters → notify::Notifier → XML in the shapes of botocore's SNS model.
#include <functional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "api/sns/sns_api.h"
#include "api/sns/sns_params.h"

namespace inferd::api::sns {

namespace {

using notify::Caller;
using notify::Notifier;

Error InvalidParameter(const std::string& what) {
  return Error(Errc::kValidation, "Invalid parameter: " + what, "InvalidParameter");
}

// What an action answers: the inner XML of its Result element.
using Action = std::function<Result<std::string>(Notifier&, const Params&, const Caller&)>;

enum class Shape { kResult, kNoResult };

struct ActionSpec {
  Action run;
  Shape shape = Shape::kResult;
};

#define TRY_ASSIGN(var, expr)                                     \
  auto var##_result = (expr);                                     \
  if (!var##_result.ok()) return std::move(var##_result).error(); \
  auto var = std::move(var##_result).value()

std::string SubscriptionMember(const notify::Subscription& s) {
  std::string arn =
      s.status == notify::SubscriptionStatus::kPending ? "PendingConfirmation" : s.arn;
  return "<member>" + Element("SubscriptionArn", arn) + Element("Owner", s.owner) +
         Element("Protocol", s.protocol) + Element("Endpoint", s.endpoint) +
         Element("TopicArn", s.topic_arn) + "</member>";
}

std::string SubscriptionPage(const notify::Page<notify::Subscription>& page) {
  std::string out = "<Subscriptions>";
  for (const auto& s : page.items) out += SubscriptionMember(s);
  out += "</Subscriptions>";
  if (!page.next_token.empty()) out += Element("NextToken", page.next_token);
  return out;
}

// Message, Subject, MessageStructure, MessageAttributes under `prefix` ("" or "…member.N.").
Result<notify::PublishRequest> ReadMessage(const Params& p, const std::string& prefix) {
  notify::PublishRequest r;
  auto message = p.Get(prefix + "Message");
  if (!message) return InvalidParameter("Message Reason: no value for required parameter");
  r.message = *message;
  r.subject = p.Get(prefix + "Subject");
  r.message_structure = p.GetOr(prefix + "MessageStructure");
  if (p.Get(prefix + "MessageGroupId") || p.Get(prefix + "MessageDeduplicationId")) {
    return InvalidParameter(
        "The request includes MessageGroupId or MessageDeduplicationId parameter that is not "
        "valid for this topic type (inferd topics are standard, not FIFO)");
  }
  TRY_ASSIGN(attributes, p.MessageAttributes(prefix + "MessageAttributes"));
  r.message_attributes = std::move(attributes);
  return r;
}

const std::unordered_map<std::string_view, ActionSpec>& Actions() {
  static const std::unordered_map<std::string_view, ActionSpec> kActions{
      {"CreateTopic", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(name, p.Required("Name"));
         TRY_ASSIGN(attributes, p.EntryMap("Attributes"));
         TRY_ASSIGN(tags, p.Tags("Tags"));
         if (p.Get("DataProtectionPolicy")) {
           return InvalidParameter("DataProtectionPolicy Reason: not supported by inferd");
         }
         TRY_ASSIGN(arn, n.CreateTopic(c, name, attributes, tags));
         return Element("TopicArn", arn);
       }}},
      {"DeleteTopic",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
          TRY_ASSIGN(arn, p.Required("TopicArn"));
          INFERD_RETURN_IF_ERROR(n.DeleteTopic(c, arn));
          return std::string();
        },
        Shape::kNoResult}},
      {"ListTopics", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(page, n.ListTopics(c, p.GetOr("NextToken")));
         std::string out = "<Topics>";
         for (const auto& arn : page.items)
           out += "<member>" + Element("TopicArn", arn) + "</member>";
         out += "</Topics>";
         if (!page.next_token.empty()) out += Element("NextToken", page.next_token);
         return out;
       }}},
      {"GetTopicAttributes",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(arn, p.Required("TopicArn"));
         TRY_ASSIGN(attributes, n.GetTopicAttributes(c, arn));
         return MapElement("Attributes", attributes);
       }}},
      {"SetTopicAttributes",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
          TRY_ASSIGN(arn, p.Required("TopicArn"));
          TRY_ASSIGN(name, p.Required("AttributeName"));
          INFERD_RETURN_IF_ERROR(n.SetTopicAttribute(c, arn, name, p.GetOr("AttributeValue")));
          return std::string();
        },
        Shape::kNoResult}},
      {"Subscribe", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         notify::SubscribeRequest r;
         TRY_ASSIGN(topic, p.Required("TopicArn"));
         TRY_ASSIGN(protocol, p.Required("Protocol"));
         TRY_ASSIGN(attributes, p.EntryMap("Attributes"));
         r.topic_arn = topic;
         r.protocol = protocol;
         r.endpoint = p.GetOr("Endpoint");
         r.attributes = std::move(attributes);
         r.return_subscription_arn = p.IsTrue("ReturnSubscriptionArn");
         TRY_ASSIGN(arn, n.Subscribe(c, r));
         return Element("SubscriptionArn", arn);
       }}},
      {"ConfirmSubscription",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(topic, p.Required("TopicArn"));
         TRY_ASSIGN(token, p.Required("Token"));
         TRY_ASSIGN(arn,
                    n.ConfirmSubscription(c, topic, token, p.IsTrue("AuthenticateOnUnsubscribe")));
         return Element("SubscriptionArn", arn);
       }}},
      {"Unsubscribe",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
          TRY_ASSIGN(arn, p.Required("SubscriptionArn"));
          INFERD_RETURN_IF_ERROR(n.Unsubscribe(c, arn));
          return std::string();
        },
        Shape::kNoResult}},
      {"ListSubscriptions",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(page, n.ListSubscriptions(c, "", p.GetOr("NextToken")));
         return SubscriptionPage(page);
       }}},
      {"ListSubscriptionsByTopic",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(topic, p.Required("TopicArn"));
         TRY_ASSIGN(page, n.ListSubscriptions(c, topic, p.GetOr("NextToken")));
         return SubscriptionPage(page);
       }}},
      {"GetSubscriptionAttributes",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(arn, p.Required("SubscriptionArn"));
         TRY_ASSIGN(attributes, n.GetSubscriptionAttributes(c, arn));
         return MapElement("Attributes", attributes);
       }}},
      {"SetSubscriptionAttributes",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
          TRY_ASSIGN(arn, p.Required("SubscriptionArn"));
          TRY_ASSIGN(name, p.Required("AttributeName"));
          INFERD_RETURN_IF_ERROR(
              n.SetSubscriptionAttribute(c, arn, name, p.GetOr("AttributeValue")));
          return std::string();
        },
        Shape::kNoResult}},
      {"Publish", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         if (p.Get("PhoneNumber")) {
           return InvalidParameter("PhoneNumber Reason: inferd does not send SMS");
         }
         TRY_ASSIGN(request, ReadMessage(p, ""));
         request.topic_arn = p.GetOr("TopicArn", p.GetOr("TargetArn"));
         TRY_ASSIGN(id, n.Publish(request, c));
         return Element("MessageId", id);
       }}},
      {"PublishBatch", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(topic, p.Required("TopicArn"));
         std::vector<notify::PublishBatchEntry> entries;
         std::vector<notify::PublishBatchResult::Failure> unreadable;
         for (int i : p.MemberIndexes("PublishBatchRequestEntries")) {
           std::string prefix = "PublishBatchRequestEntries.member." + std::to_string(i) + ".";
           notify::PublishBatchEntry e;
           e.id = p.GetOr(prefix + "Id");
           auto message = ReadMessage(p, prefix);
           if (!message.ok()) {
             const Error& err = message.error();
             unreadable.push_back({e.id, err.aws_code.empty() ? "InvalidParameter" : err.aws_code,
                                   err.message, true});
             continue;
           }
           e.request = std::move(message).value();
           entries.push_back(std::move(e));
         }
         notify::PublishBatchResult result;
         if (!entries.empty() || unreadable.empty()) {
           TRY_ASSIGN(published, n.PublishBatch(c, topic, entries));
           result = std::move(published);
         }
         for (auto& f : unreadable) result.failed.push_back(std::move(f));
         std::string out = "<Successful>";
         for (const auto& s : result.successful) {
           out +=
               "<member>" + Element("Id", s.id) + Element("MessageId", s.message_id) + "</member>";
         }
         out += "</Successful><Failed>";
         for (const auto& f : result.failed) {
           out += "<member>" + Element("Id", f.id) + Element("Code", f.code) +
                  Element("Message", f.message) +
                  Element("SenderFault", f.sender_fault ? "true" : "false") + "</member>";
         }
         return out + "</Failed>";
       }}},
      {"TagResource", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(arn, p.Required("ResourceArn"));
         TRY_ASSIGN(tags, p.Tags("Tags"));
         INFERD_RETURN_IF_ERROR(n.TagResource(c, arn, tags));
         return std::string();
       }}},
      {"UntagResource", {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(arn, p.Required("ResourceArn"));
         INFERD_RETURN_IF_ERROR(n.UntagResource(c, arn, p.StringList("TagKeys")));
         return std::string();
       }}},
      {"ListTagsForResource",
       {[](Notifier& n, const Params& p, const Caller& c) -> Result<std::string> {
         TRY_ASSIGN(arn, p.Required("ResourceArn"));
         TRY_ASSIGN(tags, n.ListTagsForResource(c, arn));
         std::string out = "<Tags>";
         for (const auto& [k, v] : tags) {
           out += "<member>" + Element("Key", k) + Element("Value", v) + "</member>";
         }
         return out + "</Tags>";
       }}},
  };
  return kActions;
}

// SNS actions inferd knows of but does not implement (SMS, mobile push, permissions, data
// protection): answered 501 NotImplemented rather than InvalidAction.
bool KnownButUnsupported(std::string_view action) {
  static const std::set<std::string_view> kOthers{"AddPermission",
                                                  "CheckIfPhoneNumberIsOptedOut",
                                                  "CreatePlatformApplication",
                                                  "CreatePlatformEndpoint",
                                                  "CreateSMSSandboxPhoneNumber",
                                                  "DeleteEndpoint",
                                                  "DeletePlatformApplication",
                                                  "DeleteSMSSandboxPhoneNumber",
                                                  "GetDataProtectionPolicy",
                                                  "GetEndpointAttributes",
                                                  "GetPlatformApplicationAttributes",
                                                  "GetSMSAttributes",
                                                  "GetSMSSandboxAccountStatus",
                                                  "ListEndpointsByPlatformApplication",
                                                  "ListOriginationNumbers",
                                                  "ListPhoneNumbersOptedOut",
                                                  "ListPlatformApplications",
                                                  "ListSMSSandboxPhoneNumbers",
                                                  "OptInPhoneNumber",
                                                  "PutDataProtectionPolicy",
                                                  "RemovePermission",
                                                  "SetEndpointAttributes",
                                                  "SetPlatformApplicationAttributes",
                                                  "SetSMSAttributes",
                                                  "VerifySMSSandboxPhoneNumber"};
  return kOthers.count(action) > 0;
}

}  // namespace

Result<std::string> RunAction(Notifier& notifier, const std::string& action, const Params& params,
                              const Caller& caller, const std::string& request_id) {
  auto it = Actions().find(action);
  if (it == Actions().end()) {
    if (KnownButUnsupported(action)) {
      return Error(Errc::kNotImplemented,
                   "inferd does not implement the SNS action " + action +
                       " (it supports topics, HTTP/HTTPS subscriptions and publishing).");
    }
    return Error(Errc::kUnknownOperation,
                 "The action " + action +
                     " is not valid for this "
                     "endpoint.",
                 "InvalidAction");
  }
  // Unsigned links may only confirm or unsubscribe (SnsApi::RequiresAuth lets nothing else in).
  auto result = it->second.run(notifier, params, caller);
  if (!result.ok()) return std::move(result).error();
  return ResponseXml(action, *result, it->second.shape == Shape::kResult, request_id);
}

}  // namespace inferd::api::sns
