// Internal to src/api/s3: the per-request Call, the operations (one function each, run on the
// BlockingPool by S3Api::Handle) and helpers the operation files share.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/s3/http_util.h"
#include "api/s3/s3_api.h"
#include "api/s3/upload.h"
#include "http/message.h"
#include "http/sigv4.h"
#include "store/filesystem_store.h"

namespace inferd::api::s3::internal {

using Params = std::vector<std::pair<std::string, std::string>>;

// One request being served: its decoded bucket, key and query, and its Responder. Owned by the
// pool task that runs the operation.
class Call {
 public:
  Call(http::Request request, http::sigv4::Identity identity, http::Responder respond, S3Path path,
       Params params);

  const http::Request& request() const { return request_; }
  const http::sigv4::Identity& identity() const { return identity_; }
  const std::string& bucket() const { return path_.bucket; }
  const std::string& key() const { return path_.key; }
  std::optional<std::string_view> Param(std::string_view name) const;
  bool HasParam(std::string_view name) const { return Param(name).has_value(); }
  const std::string& operation() const { return operation_; }
  void set_operation(std::string op) { operation_ = "S3." + op; }

  // Answers, once (later calls are ignored). Adds x-amz-request-id / x-amz-id-2 and, when the
  // request body is streamed and not read to the end, abandons it (the server then closes the
  // connection rather than reading a body nobody wants).
  void Reply(http::Response response);
  // Replies with `error` in S3's XML format (status and code from the error table).
  void Fail(const Error& error);
  bool replied() const { return replied_; }

 private:
  http::Request request_;
  http::sigv4::Identity identity_;
  http::Responder respond_;
  S3Path path_;
  Params params_;
  std::string operation_ = "S3";
  bool replied_ = false;
};

struct Context {
  store::FilesystemStore& store;
  const S3ApiOptions& options;
};

using Operation = void (*)(const Context&, Call&);

// ---- operations (buckets.cc) ----
void ListBuckets(const Context& ctx, Call& call);
void CreateBucket(const Context& ctx, Call& call);
void HeadBucket(const Context& ctx, Call& call);
void DeleteBucket(const Context& ctx, Call& call);
void GetBucketLocation(const Context& ctx, Call& call);
void GetBucketVersioning(const Context& ctx, Call& call);
// ---- listing.cc ----
void ListObjectsV2(const Context& ctx, Call& call);
void ListObjectsV1(const Context& ctx, Call& call);
// ---- objects.cc ----
void PutObject(const Context& ctx, Call& call);
void GetObject(const Context& ctx, Call& call);
void HeadObject(const Context& ctx, Call& call);
void DeleteObject(const Context& ctx, Call& call);
// ---- copy_delete.cc ----
void CopyObject(const Context& ctx, Call& call);
void DeleteObjects(const Context& ctx, Call& call);
// ---- multipart.cc ----
void CreateMultipartUpload(const Context& ctx, Call& call);
void UploadPart(const Context& ctx, Call& call);
void UploadPartCopy(const Context& ctx, Call& call);
void CompleteMultipartUpload(const Context& ctx, Call& call);
void AbortMultipartUpload(const Context& ctx, Call& call);
void ListParts(const Context& ctx, Call& call);
void ListMultipartUploads(const Context& ctx, Call& call);

// ---- shared helpers (s3_api.cc) ----

// 200 with an XML body.
http::Response XmlResponse(std::string body);
// An empty response with `status`.
http::Response EmptyResponse(int status);

// What PutObject / CreateMultipartUpload / CopyObject (REPLACE) store from the request headers:
// Content-Type, Content-Encoding (minus aws-chunked), Content-Disposition, Content-Language,
// Cache-Control, Expires and x-amz-meta-* (names lower-cased). kValidation "MetadataTooLarge"
// above S3's 2 KB of user metadata.
Result<store::ObjectAttributes> AttributesFromHeaders(const http::Headers& headers);

// The request body of an upload, checked as it streams (see upload.h): the pipe when the server
// streams it, else the buffered string.
struct UploadInput {
  UploadSpec spec;
  std::unique_ptr<http::StringSource> buffered;
  std::unique_ptr<UploadBody> body;
};
Result<std::unique_ptr<UploadInput>> OpenUpload(const Context& ctx, const Call& call);

// Integer query parameter in [min, max]; `fallback` when absent. kValidation "InvalidArgument".
Result<int64_t> IntParam(const Call& call, std::string_view name, int64_t fallback, int64_t min,
                         int64_t max);

// S3's URL encoding of keys and prefixes in listings with encoding-type=url.
std::string UrlEncodeKey(std::string_view key);

// Evaluates the copy-source conditions and reads the source object of a copy (CopyObject,
// UploadPartCopy). kPreconditionFailed when a condition fails.
Result<std::unique_ptr<store::ObjectReader>> OpenCopySource(const Context& ctx, const Call& call,
                                                            std::optional<store::RangeSpec> range);

}  // namespace inferd::api::s3::internal
