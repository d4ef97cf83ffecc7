// Test helpers for notify/ unit tests: a temporary directory and a recording fake SendFn.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "notify/delivery.h"
#include "notify/notifier.h"

namespace inferd::notify::testing {

// A JSON string value as std::string ("<not a string>" otherwise), for EXPECT_EQ.
inline std::string Str(const boost::json::value& v) {
  return v.is_string() ? std::string(v.get_string())
                       : "<not a string: " + boost::json::serialize(v) + ">";
}

// What an older inferd's dispatcher could leave in a data dir after a crash: `request` (with a
// dedup_id) published held under `tag` (notify/store.h), at `now`. Its MessageId.
inline Result<std::string> PublishHeld(Notifier& n, const PublishRequest& request, int64_t tag,
                                       double now) {
  auto prepared = n.Prepare(request);
  if (!prepared.ok()) return std::move(prepared).error();
  auto outcome = n.store().PublishOnce(prepared->message, prepared->dedup_id, now, 0,
                                       OnceOptions{.hold = tag});
  if (!outcome.ok()) return std::move(outcome).error();
  return outcome->message_id;
}

// NotifyStore::PublishOnce without held-message rules, as the MessageId it answers with;
// `deliveries` (optional) gets the number of deliveries it wrote.
inline Result<std::string> PublishOnceId(NotifyStore& store, const OutboxMessage& message,
                                         const std::string& dedup_id, double now,
                                         double forget_before, int* deliveries = nullptr) {
  auto outcome = store.PublishOnce(message, dedup_id, now, forget_before);
  if (!outcome.ok()) return std::move(outcome).error();
  if (deliveries) *deliveries = static_cast<int>(outcome->fanned_out.size());
  return std::move(outcome->message_id);
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("inferd-notify-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Records every request; answers with the next scripted status (200 once the script is used up),
// or a connection error for status 0. Thread-safe.
class FakeSender {
 public:
  SendFn fn() {
    return [this](const http::ClientRequest& r) -> Result<http::ClientResponse> {
      int status;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(r);
        status = script_.empty() ? 200 : script_.front();
        if (!script_.empty()) script_.pop_front();
      }
      cv_.notify_all();
      if (status == 0) return Error(Errc::kUnavailable, "connection refused");
      http::ClientResponse resp;
      resp.status = status;
      return resp;
    };
  }
  void Script(std::vector<int> statuses) {
    std::lock_guard lock(mu_);
    script_.assign(statuses.begin(), statuses.end());
  }
  std::vector<http::ClientRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> script_;
  std::vector<http::ClientRequest> requests_;
};

// A Notifier for delivery tests: data in `dir`, subscriptions confirmed automatically, `threads`
// delivery threads and at most `max_inflight_per_subscription` deliveries in flight per
// subscription (1: order is observable).
inline std::unique_ptr<Notifier> OpenDeliveryNotifier(const std::filesystem::path& dir, SendFn send,
                                                      const Clock& clock, int threads = 4,
                                                      int max_inflight_per_subscription = 1) {
  NotifyOptions options;
  options.data_dir = dir;
  options.public_url = "http://127.0.0.1:8600";
  options.auto_confirm = true;
  options.delivery.threads = threads;
  options.delivery.max_inflight_per_subscription = max_inflight_per_subscription;
  auto n = Notifier::Open(options, clock, std::move(send));
  EXPECT_TRUE(n.ok()) << n.error().message;
  return n.ok() ? std::move(n).value() : nullptr;
}

}  // namespace inferd::notify::testing
