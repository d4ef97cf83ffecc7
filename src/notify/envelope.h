// What an SNS HTTP/S delivery looks like on the wire: the JSON envelope, the string it is signed
// over, the links it carries, and the POST request with SNS's headers.
//
// Envelope keys, in SNS's order:
//   Notification:              Type, MessageId, TopicArn, [Subject], Message, Timestamp,
//                              SignatureVersion, Signature, SigningCertURL, UnsubscribeURL,
//                              [MessageAttributes {Name: {Type, Value}}]
//   SubscriptionConfirmation / UnsubscribeConfirmation:
//                              Type, MessageId, Token, TopicArn, Message, SubscribeURL,
//                              Timestamp, SignatureVersion, Signature, SigningCertURL
// String to sign (AWS's documented form): "Key\nValue\n" for each of, in this order,
//   Notification:  Message, MessageId, [Subject], Timestamp, TopicArn, Type
//   confirmations: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type
// Headers: Content-Type (the delivery policy's, default text/plain; charset=UTF-8),
// x-amz-sns-message-type, -message-id, -topic-arn, -subscription-arn (not on
// SubscriptionConfirmation), User-Agent: Amazon Simple Notification Service Agent; with raw
// delivery the body is the bare message and x-amz-sns-rawdelivery: true is added.
//
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "http/client.h"
#include "notify/delivery_policy.h"
#include "notify/signer.h"
#include "notify/types.h"

namespace inferd::notify {

// Links, relative to `public_url` (e.g. "http://127.0.0.1:8600", no trailing slash).
std::string SubscribeUrl(std::string_view public_url, std::string_view topic_arn,
                         std::string_view token);
std::string UnsubscribeUrl(std::string_view public_url, std::string_view subscription_arn);
std::string SigningCertUrl(std::string_view public_url, std::string_view cert_id);
// The request path of the signing certificate ("/SimpleNotificationService-<id>.pem").
std::string SigningCertPath(std::string_view cert_id);

// Splits "scheme://user:pass@host/..." into the URL without credentials and the value of a Basic
// Authorization header ("" when the URL has none): SNS supports credentials in HTTP/S endpoints.
std::pair<std::string, std::string> SplitCredentials(const std::string& url);

// The Message a subscriber of `protocol` receives: with MessageStructure=json, the protocol's
// entry of the JSON object or its "default".
std::string MessageFor(const OutboxMessage& message, std::string_view protocol);

// AWS's string to sign. `message_text` is MessageFor(...); `subscribe_url` for confirmations.
std::string StringToSign(const OutboxMessage& message, std::string_view message_text,
                         std::string_view subscribe_url);

// Appends `s` as a JSON string, byte for byte as boost::json::serialize writes it: `"` and `\`
// escaped, control characters as \b \t \n \f \r or \u00xx, everything else (UTF-8 included) as is.
void AppendJsonString(std::string& out, std::string_view s);

// The topic's SignatureVersion attribute (1 unless set to 2).
int SignatureVersionOf(const AttributeMap& topic_attributes);

// Whether the POST delivering `message` to `sub` is signed (raw notifications are not).
bool DeliverySigned(const OutboxMessage& message, const Subscription& sub);

// The Signature a notification's POST carries, `message_text` being MessageFor(message, the
// subscription's protocol) (the string to sign names no subscription), from `signer` (which
// remembers it).
Result<std::string> SignNotification(const OutboxMessage& message, std::string_view message_text,
                                     const AttributeMap& topic_attributes, const Signer& signer);
// The same signature made before its delivery asks for it (Signer::SignAhead; the Presigner).
Status SignNotificationAhead(const OutboxMessage& message, std::string_view message_text,
                             const AttributeMap& topic_attributes, const Signer& signer);

// The POST delivering `delivery` to its subscription (which must be present). Signs the envelope.
Result<http::ClientRequest> BuildDeliveryRequest(const Delivery& delivery, const Signer& signer,
                                                 std::string_view public_url,
                                                 const EffectivePolicy& policy,
                                                 std::chrono::milliseconds timeout);

}  // namespace inferd::notify
