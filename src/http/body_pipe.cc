// Every state change happens under mu_ and ends with SettleLocked(), which restores the invariant
// "no push is left pending while the buffer is empty, and no pop is left pending while there is
// something to hand it": so a Close() never overtakes a pending push, and the callbacks it
// collects run after the lock is released (a callback may call straight back into the pipe).
#include "http/body_pipe.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace inferd::http {

Result<size_t> StringSource::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size());
  std::memcpy(buf, data_.data(), k);
  data_.remove_prefix(k);
  return k;
}
namespace {

Error Abandoned() {
  return Error(Errc::kUnavailable, "The reader of the body stream stopped reading.");
}

Error Finished() {
  return Error(Errc::kInvalidState, "The body stream was already closed or failed.");
}

}  // namespace

struct BodyPipe::Wakeups {
  std::function<void(Status)> push_done;
  Status push_status;
  std::function<void(Status, std::string)> pop_done;
  Status pop_status;
  std::string pop_chunk;

  void Run() {
    if (push_done) push_done(std::move(push_status));
    if (pop_done) pop_done(std::move(pop_status), std::move(pop_chunk));
  }
};

BodyPipe::BodyPipe(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

size_t BodyPipe::buffered() const {
  std::lock_guard lock(mu_);
  return buffered_;
}

std::string BodyPipe::TakeFrontLocked() {
  std::string chunk = std::move(chunks_.front());
  chunks_.pop_front();
  if (front_offset_ > 0) chunk.erase(0, front_offset_);
  front_offset_ = 0;
  buffered_ -= chunk.size();
  return chunk;
}

void BodyPipe::SettleLocked(Wakeups& w) {
  bool changed = false;
  for (;;) {
    if (push_done_ && (chunks_.empty() || buffered_ + pending_push_.size() <= capacity_)) {
      buffered_ += pending_push_.size();
      chunks_.push_back(std::move(pending_push_));
      pending_push_.clear();
      w.push_done = std::move(push_done_);
      push_done_ = nullptr;
      changed = true;
    }
    if (!pop_done_) break;
    if (!chunks_.empty()) {
      w.pop_chunk = TakeFrontLocked();
      w.pop_done = std::move(pop_done_);
      pop_done_ = nullptr;
      changed = true;
      continue;  // the space just freed may admit the pending push
    }
    if (failed_ || closed_) {
      if (failed_) w.pop_status = error_;
      w.pop_done = std::move(pop_done_);
      pop_done_ = nullptr;
    }
    break;
  }
  if (changed) cv_.notify_all();
}

Status BodyPipe::Write(std::string_view data) {
  std::unique_lock lock(mu_);
  assert(!push_done_ && "Write() while an AsyncPush() is pending");
  while (!data.empty()) {
    cv_.wait(lock, [&] { return abandoned_ || failed_ || closed_ || buffered_ < capacity_; });
    if (abandoned_) return Abandoned();
    if (failed_ || closed_) return Finished();
    const size_t n = std::min(data.size(), capacity_ - buffered_);
    chunks_.emplace_back(data.substr(0, n));
    buffered_ += n;
    data.remove_prefix(n);
    cv_.notify_all();  // data for a blocked Read()
    Wakeups w;
    SettleLocked(w);
    if (w.pop_done) {
      lock.unlock();
      w.Run();
      lock.lock();
    }
  }
  if (abandoned_) return Abandoned();
  return OkStatus();
}

void BodyPipe::AsyncPush(std::string data, std::function<void(Status)> done) {
  Wakeups w;
  {
    std::lock_guard lock(mu_);
    assert(!push_done_ && "AsyncPush() while another push is pending");
    if (abandoned_ || failed_ || closed_ || data.empty()) {
      w.push_done = std::move(done);
      if (abandoned_) {
        w.push_status = Abandoned();
      } else if (failed_ || closed_) {
        w.push_status = Finished();
      }
    } else {
      pending_push_ = std::move(data);
      push_done_ = std::move(done);
      SettleLocked(w);
    }
  }
  w.Run();
}

void BodyPipe::Close() {
  Wakeups w;
  {
    std::lock_guard lock(mu_);
    if (closed_ || failed_ || abandoned_) return;
    closed_ = true;
    SettleLocked(w);
    cv_.notify_all();
  }
  w.Run();
}

void BodyPipe::Fail(Error error) {
  Wakeups w;
  {
    std::lock_guard lock(mu_);
    if (closed_ || failed_ || abandoned_) return;
    failed_ = true;
    error_ = std::move(error);
    chunks_.clear();
    buffered_ = 0;
    front_offset_ = 0;
    if (push_done_) {
      pending_push_.clear();
      w.push_done = std::move(push_done_);
      push_done_ = nullptr;
      w.push_status = error_;
    }
    SettleLocked(w);
    cv_.notify_all();
  }
  w.Run();
}

Result<size_t> BodyPipe::Read(char* buf, size_t n) {
  if (n == 0) return size_t{0};
  Wakeups w;
  size_t copied = 0;
  {
    std::unique_lock lock(mu_);
    assert(!pop_done_ && "Read() while an AsyncPop() is pending");
    cv_.wait(lock, [&] { return !chunks_.empty() || failed_ || closed_ || abandoned_; });
    if (abandoned_) return Abandoned();
    if (failed_) return error_;
    while (copied < n && !chunks_.empty()) {
      const std::string& front = chunks_.front();
      const size_t take = std::min(n - copied, front.size() - front_offset_);
      std::memcpy(buf + copied, front.data() + front_offset_, take);
      copied += take;
      front_offset_ += take;
      buffered_ -= take;
      if (front_offset_ == front.size()) {
        chunks_.pop_front();
        front_offset_ = 0;
      }
    }
    SettleLocked(w);
    cv_.notify_all();  // room for a blocked Write()
  }
  w.Run();
  return copied;
}

void BodyPipe::AsyncPop(std::function<void(Status, std::string)> done) {
  Wakeups w;
  {
    std::lock_guard lock(mu_);
    assert(!pop_done_ && "AsyncPop() while another pop is pending");
    if (abandoned_) {
      w.pop_done = std::move(done);
      w.pop_status = Abandoned();
    } else {
      pop_done_ = std::move(done);
      SettleLocked(w);
    }
  }
  w.Run();
}

void BodyPipe::Abandon() {
  Wakeups w;
  {
    std::lock_guard lock(mu_);
    if (abandoned_) return;
    abandoned_ = true;
    chunks_.clear();
    buffered_ = 0;
    front_offset_ = 0;
    if (push_done_) {
      pending_push_.clear();
      w.push_done = std::move(push_done_);
      push_done_ = nullptr;
      w.push_status = Abandoned();
    }
    if (pop_done_) {
      w.pop_done = std::move(pop_done_);
      pop_done_ = nullptr;
      w.pop_status = Abandoned();
    }
    cv_.notify_all();
  }
  w.Run();
}

}  // namespace inferd::http
