// Object operations: PutObject (streamed in), GetObject (streamed out), HeadObject, DeleteObject.
#include <algorithm>
#include <exception>

#include "api/protocol.h"
#include "api/s3/checksums.h"
#include "api/s3/s3_internal.h"
#include "http/body_pipe.h"

namespace inferd::api::s3::internal {
namespace {

Error PreconditionFailed() {
  return Error(Errc::kPreconditionFailed,
               "At least one of the pre-conditions you specified did not hold",
               "PreconditionFailed");
}

// Conditional writes (If-None-Match: * and If-Match on PutObject), checked against what is stored
// now: before the body is read (to fail fast) and again just before the commit.
Status CheckPutConditions(const Context& ctx, const Call& call) {
  const http::Headers& h = call.request().headers;
  auto if_none_match = h.Get("if-none-match");
  auto if_match = h.Get("if-match");
  if (!if_none_match && !if_match) return OkStatus();
  auto existing = ctx.store.Head(call.bucket(), call.key());
  if (!existing.ok() && existing.error().aws_code != "NoSuchKey") return existing.error();
  if (if_none_match && existing.ok()) return PreconditionFailed();
  if (if_match) {
    if (!existing.ok()) return existing.error();
    if (!EtagListMatches(*if_match, existing->etag)) return PreconditionFailed();
  }
  return OkStatus();
}

// Copies `reader` into `pipe` in read_chunk_bytes pieces; Close() at the end, Fail() if the file
// cannot be read. A failed Write means the client went away: stop quietly.
void StreamToPipe(store::ObjectReader& reader, http::BodyPipe& pipe, size_t chunk_bytes) {
  std::string buf(chunk_bytes, '\0');
  uint64_t remaining = reader.length();
  while (remaining > 0) {
    auto n =
        reader.Read(buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining)));
    if (!n.ok()) return pipe.Fail(n.error());
    if (*n == 0) {
      return pipe.Fail(Error(Errc::kInternal, "The object's data ended before its length."));
    }
    if (!pipe.Write(std::string_view(buf.data(), *n)).ok()) return;
    remaining -= *n;
  }
  pipe.Close();
}

bool IsChecksumHeader(std::string_view name) { return ChecksumFromHeader(name).has_value(); }

// Headers describing the object (200/206/304 and HEAD alike).
void AddObjectHeaders(const store::ObjectInfo& info, http::Response& r) {
  r.headers.Add("ETag", QuotedEtag(info.etag));
  r.headers.Add("Last-Modified", FormatHttpDate(info.last_modified));
}

// GetObject and HeadObject.
void ServeObject(const Context& ctx, Call& call, bool head) {
  const http::Headers& h = call.request().headers;
  if (call.HasParam("partNumber")) {
    return call.Fail(Error(Errc::kNotImplemented,
                           "inferd does not implement reading an object by partNumber; use a "
                           "Range header instead.",
                           "NotImplemented"));
  }
  std::optional<store::RangeSpec> range;
  if (auto header = h.Get("range")) range = ParseRange(*header);
  const Conditions conditions = Conditions::FromHeaders(h);

  auto reader = ctx.store.Get(call.bucket(), call.key(), range);
  if (!reader.ok()) {
    if (reader.error().code != Errc::kRangeNotSatisfiable) return call.Fail(reader.error());
    // Preconditions come before the range (RFC 9110 §13.2.2).
    auto info = ctx.store.Head(call.bucket(), call.key());
    if (!info.ok()) return call.Fail(info.error());
    switch (Evaluate(conditions, *info)) {
      case ConditionOutcome::kPreconditionFailed:
        return call.Fail(PreconditionFailed());
      case ConditionOutcome::kNotModified: {
        http::Response r = EmptyResponse(304);
        AddObjectHeaders(*info, r);
        return call.Reply(std::move(r));
      }
      case ConditionOutcome::kProceed:
        break;
    }
    http::Response r = MakeErrorResponse(Protocol::kS3, reader.error(), call.request().request_id);
    r.headers.Add("Content-Range", "bytes */" + std::to_string(info->size));
    return call.Reply(std::move(r));
  }
  const store::ObjectInfo& info = (*reader)->info();
  switch (Evaluate(conditions, info)) {
    case ConditionOutcome::kPreconditionFailed:
      return call.Fail(PreconditionFailed());
    case ConditionOutcome::kNotModified: {
      http::Response r = EmptyResponse(304);
      AddObjectHeaders(info, r);
      return call.Reply(std::move(r));
    }
    case ConditionOutcome::kProceed:
      break;
  }

  const uint64_t length = (*reader)->length();
  http::Response r = EmptyResponse(range ? 206 : 200);
  r.headers.Add("Content-Type", info.attributes.content_type.empty()
                                    ? "binary/octet-stream"
                                    : info.attributes.content_type);
  r.headers.Add("Content-Length", std::to_string(length));
  AddObjectHeaders(info, r);
  r.headers.Add("Accept-Ranges", "bytes");
  if (range) {
    const uint64_t first = (*reader)->first();
    r.headers.Add("Content-Range", "bytes " + std::to_string(first) + "-" +
                                       std::to_string(first + length - 1) + "/" +
                                       std::to_string(info.size));
  }
  // Checksums describe the whole object: only sent when asked for and the whole object is.
  const bool checksums =
      !range && http::EqualsIgnoreCase(h.Get("x-amz-checksum-mode").value_or(""), "ENABLED");
  for (const http::Header& stored : info.attributes.headers) {
    if (IsChecksumHeader(stored.name)) {
      if (!checksums) continue;
      r.headers.Add("x-amz-checksum-type", "FULL_OBJECT");
    }
    r.headers.Add(stored.name, stored.value);
  }
  static constexpr std::pair<std::string_view, std::string_view> kOverrides[] = {
      {"response-content-type", "Content-Type"},
      {"response-content-language", "Content-Language"},
      {"response-expires", "Expires"},
      {"response-cache-control", "Cache-Control"},
      {"response-content-disposition", "Content-Disposition"},
      {"response-content-encoding", "Content-Encoding"},
  };
  for (const auto& [param, header] : kOverrides) {
    if (auto v = call.Param(param)) r.headers.Set(header, std::string(*v));
  }
  if (head || length == 0) return call.Reply(std::move(r));

  auto pipe = std::make_shared<http::BodyPipe>(ctx.options.pipe_bytes);
  r.body_stream = pipe;
  call.Reply(std::move(r));
  // Answered already: from here on a failure can only end the stream (the server then closes
  // the connection mid-body), never leave it open.
  try {
    StreamToPipe(**reader, *pipe, ctx.options.read_chunk_bytes);
  } catch (const std::exception& e) {
    pipe->Fail(Error(Errc::kInternal, std::string("Streaming the object failed: ") + e.what()));
  }
}

}  // namespace

void PutObject(const Context& ctx, Call& call) {
  const http::Headers& h = call.request().headers;
  if (auto v = h.Get("if-none-match"); v && *v != "*") {
    return call.Fail(Error(Errc::kNotImplemented,
                           "PutObject supports If-None-Match only with the value \"*\".",
                           "NotImplemented"));
  }
  auto attributes = AttributesFromHeaders(h);
  if (!attributes.ok()) return call.Fail(attributes.error());
  auto input = OpenUpload(ctx, call);
  if (!input.ok()) return call.Fail(input.error());
  if (auto st = CheckPutConditions(ctx, call); !st.ok()) return call.Fail(st.error());

  UploadBody& body = *(*input)->body;
  store::ObjectAttributes& attrs = *attributes;
  store::PutOptions options;
  // The store reads `attrs` when it commits, after this ran: the checksum computed while the body
  // streamed (possibly announced only in a trailer) is stored with the object.
  options.before_commit = [&]() -> Status {
    INFERD_RETURN_IF_ERROR(body.Verify());
    INFERD_RETURN_IF_ERROR(CheckPutConditions(ctx, call));
    if (auto checksum = body.checksum()) attrs.headers.push_back(*checksum);
    return OkStatus();
  };
  auto info = ctx.store.Put(call.bucket(), call.key(), attrs, body, options);
  if (!info.ok()) return call.Fail(info.error());
  http::Response r = EmptyResponse(200);
  r.headers.Add("ETag", QuotedEtag(info->etag));
  if (auto checksum = body.checksum()) {
    r.headers.Add(checksum->name, checksum->value);
    r.headers.Add("x-amz-checksum-type", "FULL_OBJECT");
  }
  call.Reply(std::move(r));
}

void GetObject(const Context& ctx, Call& call) { ServeObject(ctx, call, /*head=*/false); }

void HeadObject(const Context& ctx, Call& call) { ServeObject(ctx, call, /*head=*/true); }

void DeleteObject(const Context& ctx, Call& call) {
  if (auto st = ctx.store.Delete(call.bucket(), call.key()); !st.ok()) {
    return call.Fail(st.error());
  }
  call.Reply(EmptyResponse(204));
}

}  // namespace inferd::api::s3::internal
