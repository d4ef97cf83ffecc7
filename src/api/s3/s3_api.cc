// S3Api: request routing (path + method + query → operation) and the helpers the operation files
// share. The operations themselves live in buckets.cc, objects.cc, copy_delete.cc, listing.cc and
// multipart.cc.
#include "api/s3/s3_api.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <exception>

#include "api/protocol.h"
#include "api/s3/s3_internal.h"
#include "api/s3/sigv2.h"
#include "common/base64.h"
#include "http/body_pipe.h"
#include "http/uri.h"

namespace inferd::api::s3 {

using internal::Call;
using internal::Operation;

namespace {

constexpr uint64_t kMaxUserMetadataBytes = 2048;

// Subresources S3 has and inferd does not implement: asking for one is a 501, not a silent
// fallback to another operation.
constexpr std::array<std::string_view, 31> kUnsupportedSubresources{"accelerate",
                                                                    "acl",
                                                                    "analytics",
                                                                    "attributes",
                                                                    "cors",
                                                                    "encryption",
                                                                    "intelligent-tiering",
                                                                    "inventory",
                                                                    "legal-hold",
                                                                    "lifecycle",
                                                                    "logging",
                                                                    "metadataTable",
                                                                    "metrics",
                                                                    "notification",
                                                                    "object-lock",
                                                                    "ownershipControls",
                                                                    "policy",
                                                                    "policyStatus",
                                                                    "publicAccessBlock",
                                                                    "replication",
                                                                    "requestPayment",
                                                                    "restore",
                                                                    "retention",
                                                                    "select",
                                                                    "session",
                                                                    "tagging",
                                                                    "torrent",
                                                                    "versions",
                                                                    "website",
                                                                    "renameObject",
                                                                    "select-type"};

bool IsUnsupportedSubresource(std::string_view name) {
  return std::find(kUnsupportedSubresources.begin(), kUnsupportedSubresources.end(), name) !=
         kUnsupportedSubresources.end();
}

Error NotImplemented(std::string what) {
  return Error(Errc::kNotImplemented, "inferd does not implement " + what + " of the S3 API.",
               "NotImplemented");
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Route {
  Operation op = nullptr;
  std::string_view name;
  std::optional<Error> error;
};

Route Pick(Operation op, std::string_view name) { return Route{op, name, std::nullopt}; }
Route Reject(Error error, std::string_view name = "") { return Route{nullptr, name, error}; }

bool Has(const internal::Params& params, std::string_view name) {
  return http::FindParam(params, name).has_value();
}

// Method + path + query → operation, as S3's REST API defines them.
Route Resolve(const http::Request& req, const S3Path& path, const internal::Params& params) {
  for (const auto& [name, value] : params) {
    if (IsUnsupportedSubresource(name) || (name == "versioning" && req.method != "GET")) {
      return Reject(NotImplemented("the \"" + name + "\" subresource (" + req.method + ")"),
                    "Unsupported");
    }
  }
  if (auto version = http::FindParam(params, "versionId"); version && *version != "null") {
    return Reject(Error(Errc::kValidation,
                        "Invalid version id specified: inferd's buckets are not versioned.",
                        "InvalidArgument"));
  }
  const std::string& m = req.method;
  if (path.bucket.empty()) {
    if (m == "GET") return Pick(internal::ListBuckets, "ListBuckets");
    return Reject(NotImplemented(m + " on the service"));
  }
  if (path.key.empty()) {
    if (m == "GET") {
      if (Has(params, "location")) return Pick(internal::GetBucketLocation, "GetBucketLocation");
      if (Has(params, "versioning")) {
        return Pick(internal::GetBucketVersioning, "GetBucketVersioning");
      }
      if (Has(params, "uploads")) {
        return Pick(internal::ListMultipartUploads, "ListMultipartUploads");
      }
      if (http::FindParam(params, "list-type") == "2") {
        return Pick(internal::ListObjectsV2, "ListObjectsV2");
      }
      return Pick(internal::ListObjectsV1, "ListObjects");
    }
    if (m == "PUT") return Pick(internal::CreateBucket, "CreateBucket");
    if (m == "HEAD") return Pick(internal::HeadBucket, "HeadBucket");
    if (m == "DELETE") return Pick(internal::DeleteBucket, "DeleteBucket");
    if (m == "POST" && Has(params, "delete")) {
      return Pick(internal::DeleteObjects, "DeleteObjects");
    }
    return Reject(NotImplemented(m + " on a bucket" +
                                 (m == "POST" ? std::string(" (browser form uploads)") : "")));
  }
  const bool copy = req.headers.Has("x-amz-copy-source");
  const bool upload = Has(params, "uploadId");
  if (m == "PUT") {
    if (upload || Has(params, "partNumber")) {
      if (!upload || !Has(params, "partNumber")) {
        return Reject(Error(Errc::kValidation,
                            "UploadPart needs both the partNumber and uploadId parameters.",
                            "InvalidRequest"));
      }
      return copy ? Pick(internal::UploadPartCopy, "UploadPartCopy")
                  : Pick(internal::UploadPart, "UploadPart");
    }
    return copy ? Pick(internal::CopyObject, "CopyObject") : Pick(internal::PutObject, "PutObject");
  }
  if (m == "GET") {
    if (upload) return Pick(internal::ListParts, "ListParts");
    return Pick(internal::GetObject, "GetObject");
  }
  if (m == "HEAD") return Pick(internal::HeadObject, "HeadObject");
  if (m == "DELETE") {
    if (upload) return Pick(internal::AbortMultipartUpload, "AbortMultipartUpload");
    return Pick(internal::DeleteObject, "DeleteObject");
  }
  if (m == "POST") {
    if (Has(params, "uploads")) {
      return Pick(internal::CreateMultipartUpload, "CreateMultipartUpload");
    }
    if (upload) return Pick(internal::CompleteMultipartUpload, "CompleteMultipartUpload");
  }
  return Reject(NotImplemented(m + " on an object"));
}

}  // namespace

Status S3ApiOptions::Validate() const {
  if (max_object_bytes == 0) {
    return Error(Errc::kValidation, "s3: max_object_bytes must be positive");
  }
  if (read_chunk_bytes < 4096 || read_chunk_bytes > (16u << 20)) {
    return Error(Errc::kValidation, "s3: read_chunk_bytes must be between 4 KiB and 16 MiB");
  }
  if (pipe_bytes < read_chunk_bytes) {
    return Error(Errc::kValidation, "s3: pipe_bytes must be at least read_chunk_bytes");
  }
  if (owner_id.empty()) return Error(Errc::kValidation, "s3: owner_id must not be empty");
  return OkStatus();
}

S3Api::S3Api(store::FilesystemStore& store, BlockingPool& pool, S3ApiOptions options)
    : store_(store), pool_(pool), options_(std::move(options)) {}

bool S3Api::StreamBody(const http::Request& head) {
  if (head.method != "PUT" || head.headers.Has("x-amz-copy-source")) return false;
  auto path = ParsePath(head.path);
  if (!path.ok() || path->bucket.empty() || path->key.empty()) return false;
  for (const auto& [name, value] : http::ParseQuery(head.query)) {
    if (name != "partNumber" && name != "uploadId" && name != "x-id" &&
        !StartsWith(Lower(name), "x-amz-")) {
      return false;
    }
  }
  return true;
}

bool S3Api::RequiresAuth(const http::Request& request) const { return !HasSigV2QueryAuth(request); }

void S3Api::Handle(http::Request request, const http::sigv4::Identity& signer,
                   http::Responder respond) {
  http::sigv4::Identity identity = signer;
  if (HasSigV2QueryAuth(request)) {
    const Clock& clock = options_.clock ? *options_.clock : SystemClock::Instance();
    auto verified =
        VerifySigV2Query(request, options_.secret_lookup, clock.Now(), options_.default_region);
    if (!verified.ok()) {
      http::Response r = MakeErrorResponse(Protocol::kS3, verified.error(), request.request_id);
      r.operation = "S3.Auth";
      if (request.body_stream) request.body_stream->Abandon();
      return respond(std::move(r));
    }
    identity = std::move(*verified);
  }
  auto path = ParsePath(request.path);
  auto params = http::ParseQuery(request.query);
  Route route = path.ok() ? Resolve(request, *path, params) : Reject(path.error(), "InvalidURI");
  auto call = std::make_shared<Call>(std::move(request), identity, std::move(respond),
                                     path.ok() ? std::move(*path) : S3Path{}, std::move(params));
  call->set_operation(std::string(route.name.empty() ? "?" : route.name));
  if (!route.op) return call->Fail(*route.error);

  pool_.Post([this, call, op = route.op] {
    internal::Context ctx{store_, options_};
    try {
      op(ctx, *call);
    } catch (const std::exception& e) {
      call->Fail(Error(Errc::kInternal, std::string("Internal error: ") + e.what()));
    }
    if (!call->replied()) {
      call->Fail(Error(Errc::kInternal, "The operation finished without an answer."));
    }
  });
}

namespace internal {

// ---- Call ----

Call::Call(http::Request request, http::sigv4::Identity identity, http::Responder respond,
           S3Path path, Params params)
    : request_(std::move(request)),
      identity_(std::move(identity)),
      respond_(std::move(respond)),
      path_(std::move(path)),
      params_(std::move(params)) {}

std::optional<std::string_view> Call::Param(std::string_view name) const {
  return http::FindParam(params_, name);
}

void Call::Reply(http::Response response) {
  if (replied_) return;
  replied_ = true;
  // A body still streaming in is of no use any more; once fully read this is a no-op.
  if (request_.body_stream) request_.body_stream->Abandon();
  if (!response.headers.Has("x-amz-request-id")) {
    response.headers.Add("x-amz-request-id", request_.request_id);
  }
  response.headers.Add("x-amz-id-2", Base64Encode(request_.request_id));
  response.operation = operation_;
  auto respond = std::move(respond_);
  respond(std::move(response));
}

void Call::Fail(const Error& error) {
  http::Response r = MakeErrorResponse(Protocol::kS3, error, request_.request_id);
  Reply(std::move(r));
}

// ---- helpers ----

http::Response XmlResponse(std::string body) {
  http::Response r;
  r.headers.Add("Content-Type", "application/xml");
  r.body = std::move(body);
  return r;
}

http::Response EmptyResponse(int status) {
  http::Response r;
  r.status = status;
  return r;
}

Result<store::ObjectAttributes> AttributesFromHeaders(const http::Headers& headers) {
  store::ObjectAttributes attrs;
  uint64_t metadata_bytes = 0;
  for (const http::Header& h : headers.all()) {
    std::string name = Lower(h.name);
    if (name == "content-type") {
      attrs.content_type = h.value;
    } else if (name == "content-encoding") {
      // aws-chunked is the transfer framing, not the object's encoding.
      std::string kept;
      std::string_view v = h.value;
      while (true) {
        size_t comma = v.find(',');
        std::string_view token = v.substr(0, comma);
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
        if (!token.empty() && Lower(token) != "aws-chunked") {
          if (!kept.empty()) kept += ",";
          kept += std::string(token);
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
      if (!kept.empty()) attrs.headers.push_back({"Content-Encoding", kept});
    } else if (name == "content-disposition") {
      attrs.headers.push_back({"Content-Disposition", h.value});
    } else if (name == "content-language") {
      attrs.headers.push_back({"Content-Language", h.value});
    } else if (name == "cache-control") {
      attrs.headers.push_back({"Cache-Control", h.value});
    } else if (name == "expires") {
      attrs.headers.push_back({"Expires", h.value});
    } else if (StartsWith(name, "x-amz-meta-")) {
      metadata_bytes += name.size() - 11 + h.value.size();
      attrs.headers.push_back({name, h.value});
    }
  }
  if (metadata_bytes > kMaxUserMetadataBytes) {
    return Error(Errc::kValidation,
                 "Your metadata headers exceed the maximum allowed metadata size of 2048 bytes.",
                 "MetadataTooLarge");
  }
  return attrs;
}

Result<std::unique_ptr<UploadInput>> OpenUpload(const Context& ctx, const Call& call) {
  auto input = std::make_unique<UploadInput>();
  auto spec = UploadSpec::Parse(call.request().headers, ctx.options.max_object_bytes);
  if (!spec.ok()) return std::move(spec).error();
  input->spec = std::move(*spec);
  std::optional<ChunkSigner> signer;
  if (input->spec.signed_chunks && ctx.options.secret_lookup) {
    std::string access_key = ChunkSigner::AccessKeyId(call.request());
    if (auto secret = ctx.options.secret_lookup(access_key)) {
      auto made = ChunkSigner::FromRequest(call.request(), *secret);
      if (!made.ok()) return std::move(made).error();
      signer = std::move(*made);
    }
  }
  http::ByteSource* raw = call.request().body_stream.get();
  if (!raw) {
    input->buffered = std::make_unique<http::StringSource>(call.request().body);
    raw = input->buffered.get();
  }
  input->body = std::make_unique<UploadBody>(*raw, input->spec, std::move(signer),
                                             ctx.options.max_object_bytes);
  return input;
}

Result<int64_t> IntParam(const Call& call, std::string_view name, int64_t fallback, int64_t min,
                         int64_t max) {
  auto v = call.Param(name);
  if (!v) return fallback;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n < min) {
    return Error(Errc::kValidation,
                 "Provided " + std::string(name) + " not an integer or within integer range.",
                 "InvalidArgument");
  }
  return std::min(n, max);
}

std::string UrlEncodeKey(std::string_view key) { return http::AwsUriEncode(key, true); }

Result<std::unique_ptr<store::ObjectReader>> OpenCopySource(const Context& ctx, const Call& call,
                                                            std::optional<store::RangeSpec> range) {
  auto source = ParseCopySource(call.request().headers.Get("x-amz-copy-source").value_or(""));
  if (!source.ok()) return std::move(source).error();
  auto reader = ctx.store.Get(source->bucket, source->key, range);
  if (!reader.ok()) return std::move(reader).error();
  Conditions conditions = Conditions::FromHeaders(call.request().headers, /*copy_source=*/true);
  if (Evaluate(conditions, (*reader)->info()) != ConditionOutcome::kProceed) {
    return Error(Errc::kPreconditionFailed,
                 "At least one of the pre-conditions you specified did not hold",
                 "PreconditionFailed");
  }
  return reader;
}

}  // namespace internal
}  // namespace inferd::api::s3
