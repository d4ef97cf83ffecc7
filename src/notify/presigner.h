// Presigner: signs a notification on its own thread while the publish that writes it commits, so
// the delivery that follows finds the signature remembered (Signer) instead of making it: one RSA
// operation (≈ 0.26 ms here) leaves the path from publish to delivered.
//
// A topic is signed ahead once its previous publish fanned out to a signed delivery (an http/https
// subscription without RawMessageDelivery); the protocol of that subscription picks the message
// text (MessageStructure=json). A guess that turns out wrong costs one signature nobody uses; a
// topic whose deliveries are all raw is never signed ahead after its first publish. At most
// kMaxQueued messages wait: past that, deliveries sign for themselves as before.
//
// Thread-safe. Stop() makes the signatures already queued (at most kMaxQueued) and joins the
// thread; Before() after it does nothing.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/blocking_pool.h"
#include "notify/signer.h"
#include "notify/store.h"
#include "notify/types.h"

namespace inferd::notify {

class Presigner {
 public:
  static constexpr int kMaxQueued = 64;

  explicit Presigner(const Signer& signer);

  // Before `message` (a notification to `topic`) is committed: queues its signature when the
  // topic's last publish had a signed delivery.
  void Before(const OutboxMessage& message, const Topic& topic);
  // After the commit: what `written` (its fan-out) says about the topic's next publish.
  void After(const std::string& topic_arn, const OutboxMessage& message,
             const std::vector<FannedOut>& written);
  void Stop();

 private:
  const Signer& signer_;
  std::mutex mu_;
  // Topic ARN → the protocol of a signed subscription its last publish delivered to.
  std::unordered_map<std::string, std::string> signed_protocol_;  // guarded by mu_
  std::atomic<int> queued_{0};
  BlockingPool thread_{1, "sns-presign"};  // last: stopped before the members it uses go
};

}  // namespace inferd::notify
