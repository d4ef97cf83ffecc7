// S3Store::Get. http::Client hands a response's status and headers over only when the whole
// exchange is done, so a get is two ranged GETs: a small buffered "probe" (the first MiB of the
// requested range) that yields the status, the object's headers and its total size (from
// Content-Range), and, when the range is longer, a streamed GET of the rest pinned to the probe's
// ETag with If-Match. The rest runs on a feeder thread whose body sink writes into a bounded
// BodyPipe; the reader drains it. Because the rest's status is only known at its end, the feeder
// holds back its first 64 KiB: an error document (a few hundred bytes) is then never handed to
// the reader as object bytes, and any other failure fails the pipe before its end.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "store/s3_store.h"
#include "store/s3_store_internal.h"

namespace inferd::store {
namespace {

constexpr uint64_t kProbeBytes = 1 << 20;
constexpr size_t kHoldBytes = 64 * 1024;
constexpr size_t kPipeBytes = 1 << 20;
constexpr int kOpenAttempts = 3;

// The Range header of the probe for the requested range (see the file comment).
std::string ProbeRange(const std::optional<RangeSpec>& range) {
  if (!range) return fmt::format("bytes=0-{}", kProbeBytes - 1);
  if (range->first) {
    uint64_t last = *range->first + kProbeBytes - 1;
    if (range->last) last = std::min(last, *range->last);
    return fmt::format("bytes={}-{}", *range->first, last);
  }
  if (*range->last <= kProbeBytes) return fmt::format("bytes=-{}", *range->last);
  return fmt::format("bytes=0-{}", kProbeBytes - 1);  // learns the size; the rest streams
}

bool Malformed(const RangeSpec& r) {
  if (r.first) return r.last && *r.last < *r.first;
  return !r.last || *r.last == 0;
}

// "bytes 0-99/1234" → {0, 99, 1234}.
bool ParseContentRange(std::string_view text, uint64_t& first, uint64_t& last, uint64_t& total) {
  unsigned long long a, b, t;
  if (std::sscanf(std::string(text).c_str(), "bytes %llu-%llu/%llu", &a, &b, &t) != 3) {
    return false;
  }
  if (a > b || b >= t) return false;
  first = a;
  last = b;
  total = t;
  return true;
}

}  // namespace

class S3Store::Reader final : public ObjectReader {
 public:
  Reader(ObjectInfo info, uint64_t first, uint64_t length, std::string head)
      : info_(std::move(info)), first_(first), length_(length), head_(std::move(head)) {}

  // Stops the feeder: it notices at its next piece (or when the transfer times out).
  ~Reader() override {
    if (pipe_) pipe_->Abandon();
    if (feeder_.joinable()) feeder_.join();
  }

  const ObjectInfo& info() const override { return info_; }
  uint64_t first() const override { return first_; }
  uint64_t length() const override { return length_; }

  Result<size_t> Read(char* buf, size_t n) override {
    if (head_pos_ < head_.size()) {
      const size_t k = std::min(n, head_.size() - head_pos_);
      std::copy_n(head_.data() + head_pos_, k, buf);
      head_pos_ += k;
      if (head_pos_ == head_.size()) std::string().swap(head_);  // free it early
      return k;
    }
    if (!pipe_) return size_t{0};
    return pipe_->Read(buf, n);
  }

  // Streams bytes [next, last] of the object (as of `etag`) after the head.
  void StartFeeder(S3Store* store, uint64_t next, uint64_t last, std::string etag) {
    pipe_ = std::make_shared<http::BodyPipe>(kPipeBytes);
    Call call("GET", info_.bucket, info_.key);
    call.transfer = true;
    call.headers.Set("Range", fmt::format("bytes={}-{}", next, last));
    if (!etag.empty()) call.headers.Set("If-Match", std::move(etag));
    feeder_ = std::thread([store, pipe = pipe_, call = std::move(call), next, last]() mutable {
      Feed(*store, std::move(call), *pipe, next, last);
    });
  }

 private:
  static void Feed(S3Store& store, Call call, http::BodyPipe& pipe, uint64_t next, uint64_t last) {
    const uint64_t expected = last - next + 1;
    std::string held;  // the first kHoldBytes, until the answer is known to be the object's bytes
    bool released = false;
    uint64_t received = 0;
    auto sink = [&](std::string_view data) -> Status {
      received += data.size();
      if (!released) {
        held.append(data);
        if (held.size() <= kHoldBytes) return OkStatus();  // maybe an error document
        released = true;
      }
      if (received > expected) {
        return Error(Errc::kUnavailable,
                     fmt::format("{} failed: the S3 service at {} sent more than the {} bytes "
                                 "asked for.",
                                 call.What(), store.options_.endpoint, expected));
      }
      if (held.empty()) return pipe.Write(data);
      Status s = pipe.Write(held);
      std::string().swap(held);
      return s;
    };
    auto response = store.Send(call, sink);
    if (!response.ok()) return pipe.Fail(std::move(response).error());
    uint64_t a = 0, b = 0, total = 0;
    auto range = response->headers.Get("Content-Range");
    if (response->status != 206) {
      if (response->status == 412) {
        return pipe.Fail(
            Error(Errc::kUnavailable, fmt::format("{} failed: the object was replaced while it was "
                                                  "being read; read it again.",
                                                  call.What())));
      }
      if (!released) response->body = std::move(held);
      return pipe.Fail(store.ResponseError(call, *response));
    }
    if (!range || !ParseContentRange(*range, a, b, total) || a != next || b != last ||
        received != expected) {
      return pipe.Fail(
          Error(Errc::kUnavailable,
                fmt::format("{} failed: the S3 service at {} sent {} bytes ({}) "
                            "instead of bytes {}-{}.",
                            call.What(), store.options_.endpoint, received,
                            range ? std::string(*range) : "no Content-Range", next, last)));
    }
    if (!released && !pipe.Write(held).ok()) return;  // the reader gave up
    pipe.Close();
  }

  const ObjectInfo info_;
  const uint64_t first_;
  const uint64_t length_;
  std::string head_;  // bytes from the probe, returned first
  size_t head_pos_ = 0;
  std::shared_ptr<http::BodyPipe> pipe_;  // the rest, when there is more than the probe held
  std::thread feeder_;
};

Result<std::unique_ptr<ObjectReader>> S3Store::Get(const std::string& bucket,
                                                   const std::string& key,
                                                   std::optional<RangeSpec> range) {
  if (range && Malformed(*range)) {
    // Not sent: services ignore a malformed Range. NoSuchKey still comes first.
    auto info = Head(bucket, key);
    if (!info.ok()) return std::move(info).error();
    return s3_internal::InvalidRange(info->size);
  }
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    Call probe("GET", bucket, key);
    probe.headers.Set("Range", ProbeRange(range));
    auto response = Send(probe);
    if (!response.ok()) {
      if (response.error().code == Errc::kPayloadTooLarge) {
        return Error(Errc::kUnavailable,
                     fmt::format("{} failed: the S3 service at {} ignored the Range header and "
                                 "sent a large object whole.",
                                 probe.What(), options_.endpoint));
      }
      return std::move(response).error();
    }
    if (response->status == 416 && !range) {
      // bytes=0-… of an empty object. The 416 has no object headers: take them from a HEAD.
      auto info = Head(bucket, key);
      if (!info.ok()) return std::move(info).error();
      if (info->size != 0) continue;  // replaced meanwhile
      return std::unique_ptr<ObjectReader>(new Reader(std::move(*info), 0, 0, ""));
    }
    if (response->status != 200 && response->status != 206) {
      return ResponseError(probe, *response);
    }
    // The span of the object the probe's body holds, and the object's size.
    uint64_t a = 0, b = 0, total = response->body.size();
    if (response->status == 206) {
      auto content_range = response->headers.Get("Content-Range");
      if (!content_range || !ParseContentRange(*content_range, a, b, total) ||
          b - a + 1 != response->body.size()) {
        return Error(Errc::kUnavailable,
                     fmt::format("{} failed: the S3 service at {} answered 206 with a body that "
                                 "does not match its Content-Range.",
                                 probe.What(), options_.endpoint));
      }
    } else if (total > 0) {
      b = total - 1;  // the service ignored Range: the whole (small) object
    }
    ObjectInfo info = s3_internal::InfoFromHeaders(bucket, key, response->headers, total);

    // Resolve the range as FilesystemStore does.
    uint64_t first = 0, length = total;
    if (range) {
      if (total == 0) return s3_internal::InvalidRange(total);
      if (range->first) {
        first = *range->first;
        if (first >= total) return s3_internal::InvalidRange(total);
        const uint64_t last = range->last ? std::min(*range->last, total - 1) : total - 1;
        length = last - first + 1;
      } else {
        length = std::min(*range->last, total);
        first = total - length;
      }
    }
    std::string head;
    uint64_t next = first;
    if (length > 0 && !response->body.empty() && first >= a && first <= b) {
      const uint64_t end = std::min(b, first + length - 1);
      head = std::move(response->body);
      head.erase(0, first - a);
      head.resize(end - first + 1);
      next = end + 1;
    }
    auto reader = std::make_unique<Reader>(std::move(info), first, length, std::move(head));
    if (length > 0 && next <= first + length - 1) {
      reader->StartFeeder(this, next, first + length - 1,
                          std::string(response->headers.Get("ETag").value_or("")));
    }
    return std::unique_ptr<ObjectReader>(std::move(reader));
  }
  return Error(Errc::kUnavailable,
               fmt::format("GET \"{}/{}\" failed: the object kept changing while it was opened.",
                           bucket, key));
}

}  // namespace inferd::store
