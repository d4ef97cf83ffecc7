// ObjectStore: the core's interface to objects (model artifacts, invocation inputs, results).
// Two implementations: FilesystemStore (embedded, under the data dir; also serves inferd's S3 API)
// and S3Store (any remote S3-compatible service). StoreRouter picks one per bucket.
//
// Every method blocks (disk or network I/O): call from the blocking pool, never an I/O thread.
// Bodies stream through http::ByteSource; no implementation holds a whole object in memory
// (beyond a bounded buffer: FilesystemStore keeps objects up to inline_max_bytes in its index).
// Errors: Errc::kNotFound with aws_code "NoSuchBucket" / "NoSuchKey"; kRangeNotSatisfiable;
// kUnavailable for a remote service that cannot be reached; kInternal for local I/O failures.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "http/body_pipe.h"
#include "http/message.h"

namespace inferd::store {

// What is stored with an object besides its bytes: Content-Type and the other representation
// headers S3 keeps (Content-Encoding, Content-Disposition, Content-Language, Cache-Control,
// Expires), user metadata (x-amz-meta-*), and checksums (x-amz-checksum-*). Names as HTTP header
// names.
struct ObjectAttributes {
  std::string content_type;  // "" = binary/octet-stream
  std::vector<http::Header> headers;
};

struct ObjectInfo {
  std::string bucket;
  std::string key;
  uint64_t size = 0;
  std::string etag;          // without quotes: hex MD5, or "<hex>-<parts>" for multipart objects
  double last_modified = 0;  // epoch seconds
  ObjectAttributes attributes;
};

// A byte range as requested (HTTP Range: bytes=first-last, first-, -suffix).
struct RangeSpec {
  std::optional<uint64_t> first;  // absent: suffix range
  std::optional<uint64_t> last;   // inclusive; absent: to the end
};

// An open object: its info, the (resolved, inclusive) range being read, and the bytes.
class ObjectReader : public http::ByteSource {
 public:
  virtual const ObjectInfo& info() const = 0;
  virtual uint64_t first() const = 0;   // first byte of the range being read
  virtual uint64_t length() const = 0;  // bytes this reader will return in total
};

struct PutOptions {
  // Runs after the last byte was written and before the object becomes visible; an error aborts
  // the put (nothing visible, nothing replaced). The S3 API verifies checksums here.
  std::function<Status()> before_commit;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;
  std::string start_after;  // list keys (or common prefixes) strictly after this
  int max_keys = 1000;
};

struct ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_start_after;  // when truncated: pass as start_after for the next page
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Atomic: readers see the old object or the whole new one, never a part.
  virtual Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                                 const ObjectAttributes& attributes, http::ByteSource& body,
                                 const PutOptions& options = {}) = 0;
  virtual Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> Get(const std::string& bucket,
                                                    const std::string& key,
                                                    std::optional<RangeSpec> range = {}) = 0;
  // Deleting a missing key succeeds (S3 semantics); a missing bucket is NoSuchBucket.
  virtual Status Delete(const std::string& bucket, const std::string& key) = 0;
  // Keys in ascending byte order, as S3 lists them.
  virtual Result<ListResult> List(const std::string& bucket, const ListOptions& options) = 0;
};

// Splits "s3://bucket/key" (or "https://host/bucket/key" path-style) into bucket and key.
struct S3Location {
  std::string bucket;
  std::string key;
};
Result<S3Location> ParseS3Uri(const std::string& uri);

}  // namespace inferd::store
