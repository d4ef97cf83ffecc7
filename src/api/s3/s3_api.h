// S3Api: inferd's S3-compatible front end (REST-XML, path-style URLs) over the embedded
// FilesystemStore: buckets, objects (streamed both ways), listing, copies, multipart uploads.
//
// Handle() runs on an I/O thread: it only decodes the path and query and picks the operation;
// everything else (store calls, reading request bodies, writing response bodies) runs on the
// BlockingPool. A streamed upload or download occupies one pool thread for its whole duration,
// so the pool bounds how many run at once (give S3 a pool of its own if control-plane latency
// must not suffer under transfers).
//
// Ownership: the store, the pool and the options' callbacks must outlive the S3Api and every
// request it has accepted (stop the server and the pool before destroying them).
// Thread-safety: Handle/StreamBody may be called concurrently; the object holds no mutable state.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/router.h"
#include "common/blocking_pool.h"
#include "common/clock.h"
#include "common/result.h"
#include "store/filesystem_store.h"

namespace inferd::api::s3 {

struct S3ApiOptions {
  // Region reported by GetBucketLocation / x-amz-bucket-region when the request's signature
  // names none (buckets have no region of their own: they are where the server is).
  std::string default_region = "us-east-1";
  // Largest object a PutObject, a part or a copy may create (S3: 5 GiB).
  uint64_t max_object_bytes = 5ull * 1024 * 1024 * 1024;
  // Owner reported by ListBuckets, ListObjects(V1, V2 with fetch-owner) and multipart listings.
  std::string owner_id = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";
  std::string owner_display_name = "inferd";
  // access key id → secret access key: the server's credentials. Used to verify what the router's
  // SigV4 Verifier does not: SigV2 presigned URLs (AWSAccessKeyId/Signature/Expires, boto3's and
  // AWS CLI v1's default) and the chunk signatures of signed streaming uploads
  // (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). Leave unset when the server has no credentials: like
  // the Verifier, S3Api then accepts any well-formed signature. Set, nullopt means "unknown key".
  std::function<std::optional<std::string>(std::string_view access_key_id)> secret_lookup;
  // Wall clock for SigV2 expiry; nullptr = SystemClock. Must outlive the S3Api.
  const Clock* clock = nullptr;
  // Bytes read from an object per pipe write when streaming a GET.
  size_t read_chunk_bytes = 256 * 1024;
  // Capacity of each response body pipe.
  size_t pipe_bytes = 1 << 20;

  // kValidation naming the bad field.
  Status Validate() const;
};

// The bucket name reserved for inferd's own API (/inferd/...): CreateBucket refuses it.
inline constexpr std::string_view kReservedBucket = "inferd";

class S3Api final : public ApiHandler {
 public:
  S3Api(store::FilesystemStore& store, BlockingPool& pool, S3ApiOptions options = {});

  void Handle(http::Request request, const http::sigv4::Identity& identity,
              http::Responder respond) override;
  // Requests authenticated by a SigV2 presigned URL bypass the router's SigV4 check; Handle()
  // verifies them (see sigv2.h).
  bool RequiresAuth(const http::Request& request) const override;
  // PutObject and UploadPart stream their bodies (PUT with a key, no x-amz-copy-source, no
  // subresource other than partNumber/uploadId); every other body is small and buffered.
  bool StreamBody(const http::Request& head) override;

 private:
  store::FilesystemStore& store_;
  BlockingPool& pool_;
  S3ApiOptions options_;
};

}  // namespace inferd::api::s3
