#include "inferd-echo/durable_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace inferd::echo {
namespace {

Error SystemError(const std::string& what, int err) {
  return Error(Errc::kInternal, what + ": " + std::strerror(err));
}

// pwrite until all of `data` is at `offset`.
Status WriteAt(int fd, std::string_view data, size_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SystemError("ECHO_DURABLE_FILE: write", n < 0 ? errno : EIO);
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<size_t>(n);
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<DurableLog>> DurableLog::Open(const std::string& path,
                                                     const Options& options) {
  const size_t ring_bytes = options.ring_bytes;
  if (ring_bytes == 0) return Error(Errc::kValidation, "DurableLog: ring_bytes is 0");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return SystemError("ECHO_DURABLE_FILE " + path, errno);
  const std::string zeros(std::min<size_t>(ring_bytes, 1 << 20), '\0');
  for (size_t at = 0; at < ring_bytes; at += zeros.size()) {
    INFERD_RETURN_IF_ERROR(
        WriteAt(fd.get(), std::string_view(zeros).substr(0, ring_bytes - at), at));
  }
  if (::fsync(fd.get()) != 0) return SystemError("ECHO_DURABLE_FILE " + path + ": fsync", errno);
  return std::unique_ptr<DurableLog>(new DurableLog(std::move(fd), options));
}

DurableLog::DurableLog(UniqueFd fd, const Options& options)
    : fd_(std::move(fd)), ring_bytes_(options.ring_bytes), pacer_(options.interval, options.burst) {
  thread_ = std::thread([this] { Run(); });
}

DurableLog::~DurableLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void DurableLog::Append(std::string_view bytes, std::function<void(Status)> done) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    wake = pending_done_.empty();
    pending_bytes_.append(bytes);
    pending_done_.push_back(std::move(done));
  }
  if (wake) cv_.notify_one();
}

uint64_t DurableLog::syncs() const { return syncs_.load(std::memory_order_relaxed); }

Status DurableLog::WriteRing(std::string_view data) {
  while (!data.empty()) {
    if (offset_ == ring_bytes_) offset_ = 0;
    const size_t n = std::min(data.size(), ring_bytes_ - offset_);
    if (Status st = WriteAt(fd_.get(), data.substr(0, n), offset_); !st.ok()) return st;
    offset_ += n;
    data.remove_prefix(n);
  }
  return Status();
}

void DurableLog::Run() {
  std::string bytes;
  std::vector<std::function<void(Status)>> done;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !pending_done_.empty(); });
    if (pending_done_.empty()) break;  // stopping, nothing left
    // Under sustained load, wait for more bodies to share the sync (as the queue's writer).
    auto now = db::CommitPacer::Clock::now();
    if (auto wait = pacer_.Wait(now); wait > wait.zero() && !stopping_) {
      cv_.wait_until(lock, now + wait, [&] { return stopping_; });
      now = db::CommitPacer::Clock::now();
    }
    pacer_.Started(now);
    bytes.swap(pending_bytes_);
    done.swap(pending_done_);
    lock.unlock();
    Status st = WriteRing(bytes);
    if (st.ok() && ::fdatasync(fd_.get()) != 0) {
      st = SystemError("ECHO_DURABLE_FILE: fdatasync", errno);
    }
    syncs_.fetch_add(1, std::memory_order_relaxed);  // counted before anyone hears of it
    for (auto& d : done) d(st);
    bytes.clear();
    done.clear();
    lock.lock();
  }
}

}  // namespace inferd::echo
