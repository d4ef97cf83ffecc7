// Presigner: signs a notification on its own threads (kThreads) while the publish that writes it
// commits, so the delivery that follows finds the signature remembered (Signer) instead of making
// it: one RSA operation (0.26–0.84 ms on the hosts measured) leaves the path from publish to
// delivered.
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
// A publisher that may sign for itself (SignOn::kThreadOrCaller: the async pipeline's workers)
// does so, as its publish begins (before its commit), when no presign thread is free or kMaxAhead
// are ahead, up to kMaxAheadOnCaller. Under load the thread that made a result then pays for its
// notification's signature before it takes the next invocation, so results cannot run ahead of
// the signatures their notifications need. With every signature queued here they did: on a host
// signing 1,216/s, bench/run's closed loop wrote 1,546–1,686 results/s while 420–663/s were
// notified, 6–7 s after their results; with publishers signing for themselves, 1,067–1,101/s of
// each, notified 41–45 ms after (docs/performance-rounds.md, twenty-third round). Below that load
// a publisher rarely signs: a presign thread is free, and signs while the commit syncs.
//
// Thread-safe. Stop() makes the signatures already queued (at most kMaxAhead) and joins the
// threads; Before() after it does nothing.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
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
  // Two, so that at a moderate load one is nearly always free: a publisher signing for itself
  // signs after its output's sync, where a presign thread signs during it.
  static constexpr int kThreads = 2;
  static constexpr int kMaxAhead = 64;
  // Signatures made ahead and unused past which a publisher no longer signs for itself: a
  // quarter of what the Signer remembers, so they are not forgotten before their deliveries.
  static constexpr int kMaxAheadOnCaller = 1024;

  // Who may sign a publish ahead: only the presign threads, or also the publisher (Before).
  enum class SignOn { kThread, kThreadOrCaller };
  enum class Signs { kNobody, kThread, kCaller };
  // Who signs a publish ahead, given who may, the signatures queued on the presign threads (or
  // being made there) and those made ahead and not used yet.
  static Signs WhoSigns(SignOn sign_on, int queued, int ahead_unused);

  explicit Presigner(const Signer& signer);

  // A signature Before leaves to its caller: the protocol whose message text is signed.
  struct ToSign {
    std::string protocol;
  };

  // Before `message` (a notification to `topic`) is committed, when the topic's last publish had
  // a signed delivery: queues its signature on the presign threads, or leaves it to the caller
  // (returned: the caller makes it with Sign() before its commit), or neither (WhoSigns).
  std::optional<ToSign> Before(const OutboxMessage& message, const Topic& topic,
                               SignOn sign_on = SignOn::kThread);
  // Makes a signature Before queued or left to the caller, on the calling thread (the topic's
  // attributes pick the signature version).
  void Sign(const OutboxMessage& message, const AttributeMap& topic_attributes,
            const ToSign& to_sign) const;
  // After the commit: what `written` (its fan-out) says about the topic's next publish.
  void After(const std::string& topic_arn, const OutboxMessage& message,
             const std::vector<FannedOut>& written);
  void Stop();

 private:
  const Signer& signer_;
  std::mutex mu_;
  // Topic ARN → the protocol of a signed subscription its last publish delivered to.
  std::unordered_map<std::string, std::string> signed_protocol_;  // guarded by mu_
  std::atomic<int> queued_{0};                     // posted to threads_, not signed yet
  BlockingPool threads_{kThreads, "sns-presign"};  // last: stopped before the members it uses go
};

}  // namespace inferd::notify
