// Presigner: signs a notification on its own thread while the publish that writes it commits, so
// the delivery that follows finds the signature remembered (Signer) instead of making it: one RSA
// operation (≈ 0.26 ms here) leaves the path from publish to delivered.
//
// A topic is signed ahead once its previous publish fanned out to a signed delivery (an http/https
// subscription without RawMessageDelivery); the protocol of that subscription picks the message
// text (MessageStructure=json). A guess that turns out wrong costs one signature nobody uses; a
// topic whose deliveries are all raw is never signed ahead after its first publish.
//
// At most kMaxAhead signatures are ahead of their deliveries (queued here, or made and not used
// yet: Signer::ahead_unused); past that, deliveries sign for themselves. At rest a signature is
// used within milliseconds, so this bounds nothing. When deliveries fall behind publishes (a slow
// subscriber, or more notifications than the machine can sign), it keeps the presign from doubling
// the signing work: the Signer remembers only the newest 4,096 signatures, so ones made for
// deliveries thousands behind would be forgotten before those deliveries came and made them again
// (measured: 1.30 RSA operations per notification in bench/run's closed loop on a host signing
// 1,350/s; docs/performance-rounds.md, twenty-second round). Once the kMaxAhead are used, the next
// publish is signed ahead again; one forgotten unused (a wrong guess, or deliveries over 4,096
// behind) frees its place too.
//
// Thread-safe. Stop() makes the signatures already queued (at most kMaxAhead) and joins the
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
  static constexpr int kMaxAhead = 64;

  explicit Presigner(const Signer& signer);

  // Before `message` (a notification to `topic`) is committed: queues its signature when the
  // topic's last publish had a signed delivery and fewer than kMaxAhead signatures are ahead.
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
  std::atomic<int> queued_{0};             // posted to thread_, not signed yet
  BlockingPool thread_{1, "sns-presign"};  // last: stopped before the members it uses go
};

}  // namespace inferd::notify
