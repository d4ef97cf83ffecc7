#include "dispatch/pipeline.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <thread>

#include "dispatch/notification.h"
#include "dispatch/reasons.h"
#include "http/body_pipe.h"

namespace inferd::dispatch {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Remembers the first error of the source it wraps (the input object failing mid-read).
class TrackingSource final : public http::ByteSource {
 public:
  explicit TrackingSource(http::ByteSource& inner) : inner_(inner) {}
  Result<size_t> Read(char* buf, size_t n) override {
    Result<size_t> r = inner_.Read(buf, n);
    if (!r.ok() && !error_) error_ = r.error();
    return r;
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  http::ByteSource& inner_;
  std::optional<Error> error_;
};

std::optional<uint64_t> ContentLength(const http::Headers& headers) {
  auto v = headers.Get("Content-Length");
  if (!v) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return n;
}

// Where an answer's body goes, decided when its head arrives (on_head), filled by the sink.
struct Response {
  Response(Pipeline& p, const DispatchOptions& o, const queue::Invocation& i, StartGate* g,
           const OnAnswer& a)
      : pipeline(p), options(o), inv(i), put_gate(g), on_answer(a) {}
  ~Response() {
    if (uploader.joinable()) {
      pipe->Fail(Error(Errc::kInternal, "abandoned"));
      uploader.join();
    }
  }

  Status OnHead(const http::ClientResponse& head) {
    status = head.status;
    content_type = std::string(head.headers.Get("Content-Type").value_or(""));
    content_length = ContentLength(head.headers);
    if (content_length && *content_length > options.max_response_bytes) {
      oversize = true;
      return Error(Errc::kPayloadTooLarge, "oversize");
    }
    success = status >= 200 && status < 300;
    location = success ? inv.output_location : inv.failure_location;
    if (!success) reason = reasons::ModelError(status);
    if (location.empty()) return OkStatus();  // no object: keep a copy for the notification
    if (content_length && *content_length <= options.memory_response_bytes) {
      memory.reserve(*content_length);
      return OkStatus();
    }
    // Large or chunked: stream it into the store while it arrives.
    streaming = true;
    pipe = std::make_shared<http::BodyPipe>();
    uploader = std::thread([this] {
      Status st =
          pipeline.PutResult(location, inv.output_id, content_type, reason, *pipe, put_gate);
      if (!st.ok()) {
        put_status = st;
        pipe->Abandon();  // the sink's next Write fails: the call stops
      } else {
        put_status = OkStatus();
      }
    });
    return OkStatus();
  }

  Status OnBody(std::string_view piece) {
    total += piece.size();
    if (total > options.max_response_bytes) {
      oversize = true;
      return Error(Errc::kPayloadTooLarge, "oversize");
    }
    if (copy.size() <= kMaxEmbeddedResponse) {
      copy.append(piece.substr(0, kMaxEmbeddedResponse + 1 - copy.size()));
    }
    if (streaming) {
      Status st = pipe->Write(piece);
      if (!st.ok()) {
        sink_failed = true;
        return st;
      }
    } else if (!location.empty()) {
      memory.append(piece);
    }
    return OkStatus();
  }

  // After the call: completes or aborts the object put. The put's status (OK when none).
  Status Finish(bool call_ok) {
    if (streaming) {
      if (call_ok) {
        pipe->Close();
      } else {
        pipe->Fail(Error(Errc::kUnavailable, "the model call failed"));
      }
      uploader.join();
      committed = call_ok && put_status && put_status->ok();
      return put_status.value_or(OkStatus());
    }
    if (call_ok && !location.empty()) {
      if (success && on_answer) {
        on_answer(content_type, copy.size() <= kMaxEmbeddedResponse ? &copy : nullptr);
      }
      http::StringSource source(memory);
      Status put =
          pipeline.PutResult(location, inv.output_id, content_type, reason, source, put_gate);
      committed = put.ok();
      return put;
    }
    return OkStatus();
  }

  Pipeline& pipeline;
  const DispatchOptions& options;
  const queue::Invocation& inv;
  StartGate* put_gate;  // what the puts wait for (nullptr: nothing)
  const OnAnswer& on_answer;

  int status = 0;
  std::string content_type;
  std::optional<uint64_t> content_length;
  bool success = false;
  std::string location;  // the object being written ("" = none)
  std::string reason;    // non-2xx
  bool oversize = false;
  uint64_t total = 0;
  std::string copy;    // the first kMaxEmbeddedResponse + 1 bytes
  std::string memory;  // the whole answer (small answers with a location)
  bool streaming = false;
  bool sink_failed = false;
  bool committed = false;  // the object at `location` was stored
  std::shared_ptr<http::BodyPipe> pipe;
  std::thread uploader;
  std::optional<Status> put_status;  // set by the uploader before it ends
};

}  // namespace

http::ClientRequest ModelRequest(const InstanceRef& instance, const std::string& content_type,
                                 const std::string& accept, const std::string& custom_attributes,
                                 const std::string& inference_id) {
  http::ClientRequest req;
  req.method = "POST";
  req.url = fmt::format(
      "http://{}:{}/invocations",
      instance.host.find(':') == std::string::npos ? instance.host : "[" + instance.host + "]",
      instance.port);
  if (!content_type.empty()) req.headers.Add("Content-Type", content_type);
  if (!accept.empty()) req.headers.Add("Accept", accept);
  if (!custom_attributes.empty()) {
    req.headers.Add("X-Amzn-SageMaker-Custom-Attributes", custom_attributes);
  }
  if (!inference_id.empty()) req.headers.Add("X-Amzn-SageMaker-Inference-Id", inference_id);
  return req;
}

std::optional<std::string> HeaderOf(const store::ObjectInfo& info, std::string_view name) {
  for (const http::Header& h : info.attributes.headers) {
    if (http::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

void StartGate::Set(Status status, int64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (status_) return;
    status_ = std::move(status);
    seq_ = seq;
  }
  cv_.notify_all();
}

Status StartGate::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return status_.has_value(); });
  return *status_;
}

Pipeline::Pipeline(const DispatchOptions& options, store::ObjectStore& objects,
                   http::Client& client, const std::atomic<bool>& cancel)
    : options_(options), objects_(objects), client_(client), cancel_(cancel) {}

Status Pipeline::PutResult(const std::string& location, const std::string& output_id,
                           const std::string& content_type, const std::string& failure_reason,
                           http::ByteSource& body, StartGate* gate) {
  auto loc = store::ParseS3Uri(location);
  if (!loc.ok()) return std::move(loc).error();
  store::ObjectAttributes attributes;
  attributes.content_type = content_type;
  attributes.headers.push_back({kOutputIdHeader, output_id});
  if (!failure_reason.empty()) {
    attributes.headers.push_back({kFailureReasonHeader, reasons::ForHeader(failure_reason)});
  }
  store::PutOptions put;
  if (gate) put.before_commit = [gate] { return gate->Wait(); };
  auto info = objects_.Put(loc->bucket, loc->key, attributes, body, put);
  if (!info.ok()) return std::move(info).error();
  return OkStatus();
}

Result<store::ObjectInfo> Pipeline::HeadOwned(const std::string& location,
                                              const std::string& output_id) {
  if (location.empty()) return Error(Errc::kNotFound, "no location");
  auto loc = store::ParseS3Uri(location);
  if (!loc.ok()) return std::move(loc).error();
  auto info = objects_.Head(loc->bucket, loc->key);
  if (!info.ok()) return std::move(info).error();
  if (HeaderOf(*info, kOutputIdHeader) != output_id) {
    return Error(Errc::kNotFound, location + " was not written for this invocation");
  }
  return info;
}

Status Pipeline::RemoveResult(const std::string& location, const std::string& output_id) {
  auto owned = HeadOwned(location, output_id);
  if (!owned.ok()) {
    if (owned.error().code == Errc::kNotFound) return OkStatus();
    return std::move(owned).error();
  }
  return objects_.Delete(owned->bucket, owned->key);
}

Status Pipeline::WriteFailureObject(const queue::Invocation& inv, const std::string& reason,
                                    StartGate* gate) {
  if (inv.failure_location.empty()) return OkStatus();
  http::StringSource source(reason);
  return PutResult(inv.failure_location, inv.output_id, kReasonContentType, reason, source, gate);
}

AttemptOutcome Pipeline::Attempt(const queue::Invocation& inv, const InstanceRef& instance,
                                 StartGate& gate, ResultCommit commit, const OnAnswer& on_answer) {
  AttemptOutcome out;
  auto fail = [&](AttemptOutcome::Kind kind, std::string reason, std::string detail) {
    out.kind = kind;
    out.reason = std::move(reason);
    out.detail = std::move(detail);
    return out;
  };

  http::ClientRequest req =
      ModelRequest(instance, inv.content_type, inv.accept, inv.custom_attributes, inv.inference_id);
  req.timeout = std::chrono::milliseconds(int64_t{inv.invocation_timeout_seconds} * 1000);
  req.cancel = &cancel_;

  // ---- input ----
  std::unique_ptr<store::ObjectReader> reader;
  std::optional<TrackingSource> tracking;
  if (!inv.input_location.empty()) {
    auto loc = store::ParseS3Uri(inv.input_location);
    if (!loc.ok()) {
      return fail(AttemptOutcome::kInputUnreadable,
                  reasons::InputUnreadable(inv.input_location, loc.error().message),
                  loc.error().message);
    }
    auto opened = objects_.Get(loc->bucket, loc->key);
    if (!opened.ok()) {
      const Error& e = opened.error();
      std::string detail = e.aws_code.empty() ? e.message : e.aws_code + ": " + e.message;
      return fail(AttemptOutcome::kInputUnreadable,
                  reasons::InputUnreadable(inv.input_location, detail), detail);
    }
    reader = std::move(opened).value();
    tracking.emplace(*reader);
    req.body_source = &*tracking;
    req.headers.Add("Content-Length", std::to_string(reader->length()));
  } else {
    req.body = inv.inline_body;
  }

  // ---- request ----
  Response response(*this, options_, inv, commit == ResultCommit::kAfterStart ? &gate : nullptr,
                    on_answer);
  req.on_head = [&](const http::ClientResponse& head) { return response.OnHead(head); };
  const auto started = SteadyClock::now();
  Result<http::ClientResponse> res =
      client_.Do(req, [&](std::string_view piece) { return response.OnBody(piece); });
  out.model_latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started).count();
  Status put = response.Finish(res.ok());
  out.status = response.status;
  out.content_type = response.content_type;
  if (response.copy.size() <= kMaxEmbeddedResponse) out.body = response.copy;
  if (response.committed) out.committed = response.location;

  // ---- outcome ----
  Status started_status = gate.Wait();
  if (!started_status.ok()) {
    return fail(AttemptOutcome::kNotStarted, "", started_status.error().message);
  }
  if (!res.ok()) {
    const Error& e = res.error();
    out.body.reset();
    if (cancel_.load()) return fail(AttemptOutcome::kAbandoned, "", e.message);
    if (response.oversize) {
      return fail(AttemptOutcome::kOversize,
                  reasons::Oversize(options_.max_response_bytes, response.content_length),
                  e.message);
    }
    if (response.sink_failed) {
      // The store gave up on the object while the answer streamed into it.
      std::string detail = put.ok() ? e.message : put.error().message;
      out.upload_failed = true;
      if (!response.success) {
        spdlog::warn("dispatch: invocation {}: could not write the failure object {}: {}",
                     inv.inference_id, response.location, detail);
        return fail(AttemptOutcome::kModelError, response.reason, detail);
      }
      return fail(AttemptOutcome::kUploadFailed, reasons::UploadFailed(response.location, detail),
                  detail);
    }
    if (tracking && tracking->error()) {
      const std::string& detail = tracking->error()->message;
      return fail(AttemptOutcome::kInputUnreadable,
                  reasons::InputUnreadable(inv.input_location, detail), detail);
    }
    if (http::IsRequestTimeout(e)) {
      return fail(AttemptOutcome::kTimeout, reasons::Timeout(inv.invocation_timeout_seconds),
                  e.message);
    }
    return fail(AttemptOutcome::kConnection, "", e.message);
  }
  if (response.success) {
    if (!put.ok()) {
      out.upload_failed = true;
      return fail(AttemptOutcome::kUploadFailed,
                  reasons::UploadFailed(response.location, put.error().message),
                  put.error().message);
    }
    out.kind = AttemptOutcome::kCompleted;
    return out;
  }
  out.kind = AttemptOutcome::kModelError;
  out.reason = response.reason;
  if (!response.location.empty()) {
    if (put.ok()) {
      out.failure_object_written = true;
    } else {
      out.upload_failed = true;
      out.detail = put.error().message;
      spdlog::warn("dispatch: invocation {}: could not write the failure object {}: {}",
                   inv.inference_id, response.location, put.error().message);
    }
  }
  return out;
}

}  // namespace inferd::dispatch
