// Notifier: inferd's SNS — topics, HTTP/S subscriptions with SNS's confirmation handshake, and a
// durable outbox delivered by a DeliveryWorker. The SNS API front end (api/sns) maps each Query
// action onto one method here; the async inference pipeline calls Prepare() and Publish() directly.
//
// Rules kept here (SNS's): topic names and ARNs (arn:aws:sns:<region>:<account>:<name>, regional:
// a signed caller may only name ARNs of its own region), CreateTopic idempotent by name,
// DeleteTopic idempotent, attribute names and values, subscriptions pending until confirmed
// (unless `auto_confirm`), the SubscriptionConfirmation / UnsubscribeConfirmation messages,
// message and message-attribute validation, PublishBatch's entry rules. Errors are
// Error{Errc, message, aws_code} with SNS's codes and texts (NotFound "Topic does not exist",
// InvalidParameter "Invalid parameter: ...", ParameterValueInvalid, ...).
//
// Durability: Publish() returns once the message and its deliveries are committed (fsync'd); a
// message to a topic without confirmed subscriptions is accepted and dropped, as SNS does. While
// it commits, its signature is made on another thread (Presigner). A prepared publish's
// deliveries may leave before its commit is durable (Publish(PreparedPublish)).
//
// Lifecycle: Open() → [SetPublicUrl()] → Start() (delivery threads) → Stop(deadline). API methods
// work before Start() and after Stop() (they only touch the store). Every method blocks on disk
// I/O: call from the blocking pool, never an I/O thread. Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "notify/delivery.h"
#include "notify/presigner.h"
#include "notify/signer.h"
#include "notify/store.h"
#include "notify/types.h"

namespace inferd::notify {

struct NotifyOptions {
  std::filesystem::path data_dir;  // notify.db and notify/ (signing key) go here
  std::string account_id = "000000000000";
  // Base URL of the links in envelopes (SubscribeURL, UnsubscribeURL, SigningCertURL), e.g.
  // "http://127.0.0.1:8600"; may be set after the server has bound its port (SetPublicUrl).
  std::string public_url;
  // true: http(s) subscriptions are confirmed at once, no SubscriptionConfirmation is sent.
  bool auto_confirm = false;
  DeliveryOptions delivery;
  // How long a PublishRequest::dedup_id is remembered (see Publish).
  std::chrono::hours dedup_retention{24 * 7};
  Status Validate() const;
};

// Who is calling: `region` of the signature ("" for unsigned links and in-process callers: no
// region check), and whether the request was signed.
struct Caller {
  std::string region;
  bool authenticated = false;
};

struct PublishRequest {
  std::string topic_arn;
  std::string message;
  std::optional<std::string> subject;
  MessageAttributes message_attributes;
  std::string message_structure;  // "" or "json"
  // Idempotency key (Publish only; in-process callers, not the SNS API): a Publish whose
  // dedup_id was already published within NotifyOptions::dedup_retention writes nothing and
  // returns the earlier MessageId. The key is stored in the transaction that writes the message,
  // so a caller that crashed between publishing and recording it can simply publish again.
  std::string dedup_id = {};
  // With dedup_id: when the key's message is held under this tag (written by an older inferd,
  // whose dispatcher committed a result's notification held until the output was durable; see
  // notify/store.h), it is released as it is (its MessageId returned); held under another tag,
  // or with 0 here, it is replaced by this one. A caller sets it when it knows what the held
  // message announces is durable.
  int64_t release_held = 0;
};

// A notification Prepare built and queued for signing, for Publish(PreparedPublish) to commit.
struct PreparedPublish {
  Topic topic;                  // as Prepare read it
  uint64_t config_version = 0;  // the store's, read before the topic
  OutboxMessage message;
  std::string dedup_id;
  // Set by a publisher at rest (nothing else of its kind running): the delivery thread its
  // offer wakes runs before the publisher's commit goes on (DeliveryWorker::Offer).
  bool delivery_first = false;
  // The signature Prepare left to its caller (Presigner::Before): made by Publish before its
  // commit, on the publisher's thread.
  std::optional<Presigner::ToSign> to_sign;
};

struct PublishBatchEntry {
  std::string id;
  PublishRequest request;  // topic_arn is the batch's
};

struct PublishBatchResult {
  struct Success {
    std::string id;
    std::string message_id;
  };
  struct Failure {
    std::string id;
    std::string code;
    std::string message;
    bool sender_fault = true;
  };
  std::vector<Success> successful;
  std::vector<Failure> failed;
};

struct SubscribeRequest {
  std::string topic_arn;
  std::string protocol;
  std::string endpoint;
  AttributeMap attributes;
  bool return_subscription_arn = false;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_token;  // "" = last page
};

class Notifier {
 public:
  static constexpr int kPageSize = 100;
  static constexpr size_t kMaxMessageBytes = 256 * 1024;
  static constexpr const char* kPendingConfirmation = "pending confirmation";

  static Result<std::unique_ptr<Notifier>> Open(NotifyOptions options, const Clock& clock,
                                                SendFn send);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void SetPublicUrl(std::string url);
  std::string public_url() const;
  void Start();
  void Stop(std::chrono::steady_clock::time_point deadline);

  // ---- topics ----
  Result<std::string> CreateTopic(const Caller& caller, const std::string& name,
                                  const AttributeMap& attributes, const TagMap& tags);
  Status DeleteTopic(const Caller& caller, const std::string& topic_arn);
  Result<Page<std::string>> ListTopics(const Caller& caller, const std::string& next_token);
  Result<AttributeMap> GetTopicAttributes(const Caller& caller, const std::string& topic_arn);
  Status SetTopicAttribute(const Caller& caller, const std::string& topic_arn,
                           const std::string& name, const std::string& value);
  Status TagResource(const Caller& caller, const std::string& arn, const TagMap& tags);
  Status UntagResource(const Caller& caller, const std::string& arn,
                       const std::vector<std::string>& keys);
  Result<TagMap> ListTagsForResource(const Caller& caller, const std::string& arn);

  // ---- subscriptions ----
  // The subscription ARN, or kPendingConfirmation while unconfirmed (unless
  // return_subscription_arn).
  Result<std::string> Subscribe(const Caller& caller, const SubscribeRequest& request);
  Result<std::string> ConfirmSubscription(const Caller& caller, const std::string& topic_arn,
                                          const std::string& token,
                                          bool authenticate_on_unsubscribe);
  Status Unsubscribe(const Caller& caller, const std::string& subscription_arn);
  // Of one topic, or of every topic in the caller's region when `topic_arn` is empty.
  Result<Page<Subscription>> ListSubscriptions(const Caller& caller, const std::string& topic_arn,
                                               const std::string& next_token);
  Result<AttributeMap> GetSubscriptionAttributes(const Caller& caller,
                                                 const std::string& subscription_arn);
  Status SetSubscriptionAttribute(const Caller& caller, const std::string& subscription_arn,
                                  const std::string& name, const std::string& value);

  // ---- publishing ----
  // The MessageId. Durable when it returns. With a dedup_id the MessageId derives from the
  // topic and the key (so every publish of a key names the same message).
  // With kThreadOrCaller its signature may be made on the calling thread (Presigner).
  Result<std::string> Publish(const PublishRequest& request, const Caller& caller = {},
                              Presigner::SignOn sign_on = Presigner::SignOn::kThread);
  // For a publisher whose message announces something still being committed elsewhere
  // (dedup_id required): validates and builds the message now and has it signed meanwhile (with
  // kThreadOrCaller, when no presign thread is free, Publish signs it on the caller's thread
  // before its commit: Presigner); Publish(PreparedPublish) commits it once what it announces is
  // durable.
  Result<PreparedPublish> Prepare(const PublishRequest& request,
                                  Presigner::SignOn sign_on = Presigner::SignOn::kThread);
  // Commits a prepared message as Publish does (the same dedup rules; a message an older inferd
  // left held for the key is replaced: this is a new attempt's), but hands its deliveries
  // to the delivery worker inside its transaction, before their rows are inserted; returns
  // the MessageId once committed. A crash before that commit may have sent it and leaves no
  // trace of it: the publisher's recovery publishes the key again, and the same MessageId goes
  // out again (at least once, as SNS delivers). A failed commit is the publisher's to retry.
  Result<std::string> Publish(PreparedPublish prepared);
  Result<PublishBatchResult> PublishBatch(const Caller& caller, const std::string& topic_arn,
                                          const std::vector<PublishBatchEntry>& entries);

  const Signer& signer() const { return *signer_; }
  DeliveryWorker& delivery() { return *delivery_; }
  NotifyStore& store() { return *store_; }

 private:
  Notifier(NotifyOptions options, const Clock& clock, std::unique_ptr<NotifyStore> store,
           std::unique_ptr<Signer> signer, SendFn send);
  Result<Topic> FindTopic(const Caller& caller, const std::string& topic_arn);
  // FindTopic for a publish whose store config_version() was `version` before it: a topic read
  // at the same version is reused (no topic or subscription changed since), so a publish does
  // not read notify.db for it (7 syscalls through the read pool, on every invocation's path).
  Result<Topic> TopicToPublish(const Caller& caller, const std::string& topic_arn,
                               uint64_t version);
  Result<Subscription> FindSubscription(const Caller& caller, const std::string& arn);
  Result<OutboxMessage> MakeNotification(const PublishRequest& request);
  OutboxMessage MakeConfirmation(MessageType type, const Subscription& sub);
  // Hands the deliveries a publish wrote to the delivery worker (DeliveryWorker::Offer), with the
  // message, subscription and topic attributes it read.
  void OfferDeliveries(const std::vector<FannedOut>& written,
                       const std::vector<OutboxMessage>& messages, const Topic& topic,
                       uint64_t version, double now, bool delivery_first = false);
  // The message of a publish, built and queued for signing (Prepare's, for any caller).
  Result<PreparedPublish> PrepareOne(const PublishRequest& request, const Caller& caller,
                                     Presigner::SignOn sign_on = Presigner::SignOn::kThread);
  // Commits it (with a dedup_id, by `once`'s rules for a key held by an older inferd) and hands
  // its deliveries to the delivery worker: after the commit, or with `early` as soon as their
  // ids are known, before their rows are inserted (Publish(PreparedPublish)).
  Result<OnceOutcome> CommitOne(PreparedPublish prepared, const OnceOptions& once, bool early);
  double Now() const;

  NotifyOptions options_;
  const Clock& clock_;
  std::unique_ptr<NotifyStore> store_;
  std::unique_ptr<Signer> signer_;
  std::unique_ptr<DeliveryWorker> delivery_;
  std::unique_ptr<Presigner> presigner_;
  mutable std::mutex url_mu_;
  std::string public_url_;
  // TopicToPublish's: topic ARN → (config_version before the read, the topic read).
  std::mutex topics_mu_;
  std::unordered_map<std::string, std::pair<uint64_t, Topic>> topics_;  // guarded by topics_mu_
};

// ---- helpers shared by the front end and tests ----

struct ParsedArn {
  std::string region;
  std::string account;
  std::string topic;         // topic name
  std::string subscription;  // the id after the topic, for subscription ARNs
};
// Parses arn:aws:sns:<region>:<account>:<topic>[:<subscription id>]; nullopt when malformed.
std::optional<ParsedArn> ParseSnsArn(const std::string& arn);
bool ValidTopicName(std::string_view name);

}  // namespace inferd::notify
