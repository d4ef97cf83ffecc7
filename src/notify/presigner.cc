#include "notify/presigner.h"

#include "notify/envelope.h"

namespace inferd::notify {

Presigner::Presigner(const Signer& signer) : signer_(signer) {}

Presigner::Signs Presigner::WhoSigns(SignOn sign_on, int queued, int ahead_unused) {
  if (queued + ahead_unused < kMaxAhead && (queued < kThreads || sign_on == SignOn::kThread)) {
    return Signs::kThread;
  }
  if (sign_on == SignOn::kThreadOrCaller && ahead_unused < kMaxAheadOnCaller) {
    return Signs::kCaller;
  }
  return Signs::kNobody;
}

std::optional<Presigner::ToSign> Presigner::Before(const OutboxMessage& message, const Topic& topic,
                                                   SignOn sign_on) {
  std::string protocol;
  Signs signs = Signs::kNobody;
  {
    std::lock_guard lock(mu_);
    auto it = signed_protocol_.find(topic.arn);
    if (it == signed_protocol_.end()) return std::nullopt;
    // Only here, under mu_, does queued_ grow, so queued_ + ahead_unused never passes kMaxAhead
    // by the threads' signatures. A queued signature leaves queued_ once made, and then counts
    // in ahead_unused until a delivery uses it.
    signs = WhoSigns(sign_on, queued_.load(std::memory_order_relaxed), signer_.ahead_unused());
    if (signs == Signs::kNobody) return std::nullopt;
    if (signs == Signs::kThread) queued_.fetch_add(1, std::memory_order_relaxed);
    protocol = it->second;
  }
  ToSign to_sign{std::move(protocol)};
  if (signs == Signs::kCaller) return to_sign;
  threads_.Post([this, message, attributes = topic.attributes, to_sign = std::move(to_sign)] {
    Sign(message, attributes, to_sign);
    queued_.fetch_sub(1, std::memory_order_relaxed);
  });
  return std::nullopt;
}

void Presigner::Sign(const OutboxMessage& message, const AttributeMap& topic_attributes,
                     const ToSign& to_sign) const {
  // A failure is the delivery's to report: it signs again.
  (void)SignNotificationAhead(message, MessageFor(message, to_sign.protocol), topic_attributes,
                              signer_);
}

void Presigner::After(const std::string& topic_arn, const OutboxMessage& message,
                      const std::vector<FannedOut>& written) {
  const Subscription* signed_sub = nullptr;
  for (const FannedOut& f : written) {
    if (DeliverySigned(message, f.subscription)) {
      signed_sub = &f.subscription;
      break;
    }
  }
  std::lock_guard lock(mu_);
  if (signed_sub) {
    signed_protocol_[topic_arn] = signed_sub->protocol;
  } else {
    signed_protocol_.erase(topic_arn);
  }
}

void Presigner::Stop() { threads_.Stop(); }

}  // namespace inferd::notify
