#include "notify/presigner.h"

#include "notify/envelope.h"

namespace inferd::notify {

Presigner::Presigner(const Signer& signer) : signer_(signer) {}

void Presigner::Before(const OutboxMessage& message, const Topic& topic) {
  std::string protocol;
  {
    std::lock_guard lock(mu_);
    auto it = signed_protocol_.find(topic.arn);
    if (it == signed_protocol_.end()) return;
    // Only here, under mu_, does the sum grow, so it never passes kMaxAhead. A queued signature
    // leaves queued_ once made, and then counts in ahead_unused until a delivery uses it.
    if (queued_.load(std::memory_order_relaxed) + signer_.ahead_unused() >= kMaxAhead) return;
    queued_.fetch_add(1, std::memory_order_relaxed);
    protocol = it->second;
  }
  thread_.Post([this, message, protocol = std::move(protocol), attributes = topic.attributes] {
    // A failure is the delivery's to report: it signs again.
    (void)SignNotificationAhead(message, MessageFor(message, protocol), attributes, signer_);
    queued_.fetch_sub(1, std::memory_order_relaxed);
  });
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

void Presigner::Stop() { thread_.Stop(); }

}  // namespace inferd::notify
