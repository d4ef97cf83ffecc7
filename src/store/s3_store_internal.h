// Pieces of S3Store shared by s3_store.cc (requests, errors, puts, listing) and s3_store_get.cc
// (ranged, streamed gets). Not part of the store's interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "http/message.h"
#include "store/s3_store.h"

namespace inferd::store {

// One request to the service, before it is addressed and signed.
struct S3Store::Call {
  Call(std::string m, std::string b, std::string k = {}, Query q = {})
      : method(std::move(m)), bucket(std::move(b)), key(std::move(k)), query(std::move(q)) {}

  std::string method;
  std::string bucket;
  std::string key;  // "" = a bucket-level request
  Query query;
  http::Headers headers;
  std::string body;
  std::string payload_hash;  // "" = SHA-256 of body
  bool transfer = false;     // carries object bytes: options().transfer_timeout applies

  // `GET "bucket/key"`, for messages.
  std::string What() const;
};

namespace s3_internal {

// The object's info from a HEAD/GET answer's headers: ETag without quotes, Last-Modified,
// Content-Type and the representation, x-amz-meta-* and x-amz-checksum-* headers.
ObjectInfo InfoFromHeaders(const std::string& bucket, const std::string& key,
                           const http::Headers& headers, uint64_t size);

// `"abc"` → `abc` (ETags).
std::string StripQuotes(std::string_view etag);

// "Sun, 06 Nov 1994 08:49:37 GMT" → epoch seconds.
std::optional<int64_t> ParseHttpDate(std::string_view text);

// kRangeNotSatisfiable "InvalidRange", as FilesystemStore words it.
Error InvalidRange(uint64_t size);

}  // namespace s3_internal
}  // namespace inferd::store
