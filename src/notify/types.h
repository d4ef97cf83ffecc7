// Plain values of the notification service: topics, subscriptions, messages and deliveries as the
// store keeps them. No behaviour here; notify::Notifier holds SNS's rules.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inferd::notify {

// Attribute name → value, as SNS's Get*Attributes returns them (only those that were set).
using AttributeMap = std::map<std::string, std::string>;
using TagMap = std::map<std::string, std::string>;

struct Topic {
  std::string arn;  // arn:aws:sns:<region>:<account>:<name>
  std::string region;
  std::string name;
  AttributeMap attributes;
  TagMap tags;
  double created = 0;  // epoch seconds
};

// A subscription's life: pending → confirmed (handshake or auto-confirm) → deleted (Unsubscribe).
// A deleted subscription keeps its row (and a token that restores it, as SNS's
// UnsubscribeConfirmation offers) until purged; pending ones expire with their token.
enum class SubscriptionStatus { kPending, kConfirmed, kDeleted };

std::string_view StatusName(SubscriptionStatus status);
std::optional<SubscriptionStatus> ParseStatus(std::string_view name);

struct Subscription {
  std::string arn;  // <topic arn>:<uuid>
  std::string topic_arn;
  std::string protocol;  // http | https
  std::string endpoint;  // the URL deliveries are POSTed to
  std::string owner;     // account id
  SubscriptionStatus status = SubscriptionStatus::kPending;
  std::string token;           // confirmation token ("" when none is outstanding)
  double token_expires = 0;    // epoch seconds
  bool authenticated = false;  // ConfirmationWasAuthenticated (AuthenticateOnUnsubscribe)
  AttributeMap attributes;     // RawMessageDelivery, DeliveryPolicy (only those set)
  double changed = 0;          // epoch seconds of the last status change
};

// A message attribute as SNS carries it: DataType String, String.Array, Number or Binary (with an
// optional ".custom" suffix); `value` is the StringValue, or the base64 text of a BinaryValue.
struct MessageAttribute {
  std::string data_type;
  std::string value;
};
using MessageAttributes = std::map<std::string, MessageAttribute>;

enum class MessageType { kNotification, kSubscriptionConfirmation, kUnsubscribeConfirmation };

std::string_view TypeName(MessageType type);
std::optional<MessageType> ParseType(std::string_view name);

// One message in the outbox: what every delivery of it shares. The envelope (URLs, signature) is
// made when it is sent, so links point at the server's current address.
struct OutboxMessage {
  int64_t id = 0;  // row id, set by the store
  std::string message_id;
  MessageType type = MessageType::kNotification;
  std::string topic_arn;
  std::optional<std::string> subject;
  std::string message;  // with json_structure: the JSON object of per-protocol messages
  bool json_structure = false;
  MessageAttributes attributes;
  std::string token;      // confirmations only
  std::string timestamp;  // ISO-8601 ms Z, signed as is
};

// One pending delivery (a message to one subscription) with what sending it needs.
struct Delivery {
  int64_t id = 0;
  std::string subscription_arn;
  int attempts = 0;  // attempts made so far
  double next_attempt = 0;
  OutboxMessage message;
  std::optional<Subscription> subscription;  // nullopt once the row is gone
  AttributeMap topic_attributes;             // empty once the topic is gone
};

}  // namespace inferd::notify
