// S3Store: the ObjectStore for any remote S3-compatible service (AWS S3, MinIO, Ceph RGW, moto,
// inferd's own S3 API), over http::Client with SigV4 (service "s3"), path-style
// (`endpoint/bucket/key`) or virtual-hosted (`bucket.host/key`) addressing.
//
// Streaming and memory: a put reads its source into one part buffer (`part_size`, 8 MiB by
// default). A source that ends within it becomes one signed PUT; a longer one becomes a multipart
// upload whose parts are read and sent one at a time, so memory stays at one part whatever the
// object's size; a failed multipart put is aborted (best effort) so no parts linger. A get reads
// the first MiB (or the requested range, if smaller) in one ranged GET that also carries the
// object's headers and status; the rest streams from a second ranged GET, pinned to the first's
// ETag (If-Match), on a feeder thread into a bounded http::BodyPipe that the reader drains.
//
// Semantics match FilesystemStore where S3 allows: puts are atomic (S3 PUT and
// CompleteMultipartUpload are); `before_commit` runs after the source's last byte was read and
// before the object is committed (before the single PUT is sent, or before
// CompleteMultipartUpload); ranges resolve as in FilesystemStore::Get; deleting a missing key
// succeeds. Differences: listings carry size, ETag and time but no attributes (S3 lists none); a
// reader whose object is replaced between its two GETs fails (kUnavailable: read it again)
// instead of returning the old bytes; x-amz-checksum-* attributes are sent with single PUTs (the
// service verifies them) but not with multipart uploads (S3 checks whole-object checksums of those
// only in newer API versions; `before_commit` still sees every byte).
//
// Errors: Errc::kNotFound with aws_code "NoSuchBucket" / "NoSuchKey" (a HEAD's bare 404 is
// disambiguated with a bucket HEAD); kAccessDenied for AccessDenied, SignatureDoesNotMatch,
// InvalidAccessKeyId and the like (aws_code kept); kRangeNotSatisfiable "InvalidRange";
// kValidation for requests the service rejects as invalid (InvalidBucketName, KeyTooLongError,
// EntityTooLarge, ...); kThrottled for SlowDown; kUnavailable for transport failures (what
// happened and where) and 5xx answers; kInternal for anything else the service rejects (its code
// and message kept); a source's or `before_commit`'s error unchanged.
//
// Thread-safety: every method may be called concurrently from any thread (the pooled client is
// thread-safe; the store has no other mutable state). Every method blocks on the network: call
// from the blocking pool, never an I/O thread. A reader is used by one thread at a time and must
// be destroyed before its store; destroying one mid-stream abandons its pipe, so the feeder stops
// at its next piece (the destructor joins it) and that connection is dropped.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "http/client.h"
#include "http/sigv4.h"
#include "store/object_store.h"

namespace inferd::store {

struct S3StoreOptions {
  // scheme://host[:port] with no path, e.g. https://s3.us-east-1.amazonaws.com or
  // http://127.0.0.1:9000.
  std::string endpoint;
  std::string region = "us-east-1";  // the SigV4 scope (and LocationConstraint of CreateBucket)
  // Both empty: anonymous, unsigned requests (public buckets). Otherwise both required.
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials: sent as X-Amz-Security-Token
  // true: http://host/bucket/key. false: http://bucket.host/key (needs a DNS host name endpoint,
  // and bucket names that are valid host labels).
  bool path_style = true;
  // Per request without object bytes (HEAD, DELETE, LIST, the first MiB of a GET, multipart
  // bookkeeping): the whole exchange, connect included.
  std::chrono::milliseconds timeout{30000};
  // Per request carrying object bytes (a PUT or part of up to part_size, the streamed rest of a
  // GET, which a slow reader may hold back).
  std::chrono::milliseconds transfer_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds connect_timeout{5000};
  bool verify_tls = true;
  // Bytes buffered per put, and the size of every multipart part but the last: 5 MiB .. 5 GiB.
  uint64_t part_size = 8 * 1024 * 1024;
  const Clock* clock = nullptr;  // signing time; nullptr = SystemClock; must outlive the store

  // kValidation naming the bad field.
  Status Validate() const;
};

// Parses a store's JSON configuration:
//   {"endpoint": "http://127.0.0.1:9000", "region": "us-east-1", "access_key_id": "...",
//    "secret_access_key": "...", "session_token": "...", "path_style": true,
//    "verify_tls": true, "timeout_ms": 30000, "transfer_timeout_ms": 3600000,
//    "part_size_bytes": 8388608}
// Only "endpoint" is required. Unknown fields and wrong types are kValidation errors naming them
// (`where` prefixes the messages, e.g. "object_stores.buckets.models").
Result<S3StoreOptions> S3StoreOptionsFromJson(const boost::json::object& config,
                                              const std::string& where = "object store");

class S3Store final : public ObjectStore {
 public:
  // kValidation for bad options. Makes no request (the service may be down at start-up).
  static Result<std::unique_ptr<S3Store>> Create(S3StoreOptions options);
  ~S3Store() override;
  S3Store(const S3Store&) = delete;
  S3Store& operator=(const S3Store&) = delete;

  // ---- ObjectStore ----
  // The returned info has the size, the service's ETag and the attributes sent; last_modified is
  // the service's Date header (S3 answers a PUT without Last-Modified).
  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                         const ObjectAttributes& attributes, http::ByteSource& body,
                         const PutOptions& options = {}) override;
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Get(const std::string& bucket, const std::string& key,
                                            std::optional<RangeSpec> range = {}) override;
  Status Delete(const std::string& bucket, const std::string& key) override;
  // ListObjectsV2 (encoding-type=url, so any key survives the XML). Objects carry key, size,
  // ETag and last_modified only. max_keys 0..1000 (clamped; negative: kValidation).
  Result<ListResult> List(const std::string& bucket, const ListOptions& options) override;

  // ---- buckets (tests and tooling) ----
  // kAlreadyExists "BucketAlreadyOwnedByYou" / "BucketAlreadyExists".
  Status CreateBucket(const std::string& bucket);
  // kInvalidState "BucketNotEmpty"; kNotFound "NoSuchBucket".
  Status DeleteBucket(const std::string& bucket);
  // kNotFound "NoSuchBucket".
  Status HeadBucket(const std::string& bucket);

  // ---- the wire (exposed for tests of addressing and signing) ----
  using Query = std::vector<std::pair<std::string, std::string>>;  // decoded names and values
  // The request as it would be sent: absolute URL (bucket and key percent-encoded as S3 expects),
  // Host, the given headers and, with credentials, X-Amz-Date, x-amz-content-sha256 and
  // Authorization. `payload_hash` "" = SHA-256 of `body`.
  http::ClientRequest Prepare(std::string method, const std::string& bucket, const std::string& key,
                              const Query& query, http::Headers headers, std::string body,
                              std::string_view payload_hash = {}) const;

  const S3StoreOptions& options() const { return options_; }

 private:
  class Reader;
  struct Call;

  explicit S3Store(S3StoreOptions options);

  // Prepares (signs) and sends `call`. The error is the transport's (kUnavailable, with context);
  // an HTTP error status is returned as a response.
  Result<http::ClientResponse> Send(Call& call,
                                    const std::function<Status(std::string_view)>& sink = {});
  // The Error for a non-2xx answer (S3 XML error body when present, else from the status).
  Error ResponseError(const Call& call, const http::ClientResponse& response) const;
  // A HEAD's 404 carries no body: NoSuchBucket when the bucket is missing, else NoSuchKey.
  Error NotFoundAfterHead(const std::string& bucket, const std::string& key);

  Result<ObjectInfo> PutSingle(const std::string& bucket, const std::string& key,
                               const ObjectAttributes& attributes, std::string& data,
                               const PutOptions& options);
  Result<ObjectInfo> PutMultipart(const std::string& bucket, const std::string& key,
                                  const ObjectAttributes& attributes, http::ByteSource& body,
                                  std::string& buffer, const PutOptions& options);
  void AbortUpload(const std::string& bucket, const std::string& key, const std::string& upload_id);

  const S3StoreOptions options_;
  http::Url endpoint_;  // parsed options_.endpoint
  http::Client client_;
  // Signs as options_'s access key (its signing key derived once a day, not per request).
  http::sigv4::RequestSigner signer_;
};

// S3StoreOptionsFromJson, then S3Store::Create.
Result<std::unique_ptr<S3Store>> S3StoreFromJson(const boost::json::object& config,
                                                 const std::string& where = "object store");

}  // namespace inferd::store
