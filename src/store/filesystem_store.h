// FilesystemStore: the embedded ObjectStore, under `<data-dir>/objects`. It also backs inferd's S3
// API, so beyond the ObjectStore interface it manages buckets and multipart uploads.
//
// Layout under `root`:
//   index.db                       SQLite (WAL, synchronous=FULL): buckets, objects, uploads, parts
//   data/<bucket>/<2 hex>/<id>     object bytes; <id> is random, so keys never touch file paths
//   uploads/<upload id>/<id>       multipart part bytes
// A key is only ever a value in the index, never part of a path: any key (`../x`, `a//b`, 1024
// bytes) is safe. Bucket names are validated (S3 rules) before they become folder names, and
// upload ids are checked against the index before they are used in a path.
//
// Durability and atomicity: a put streams into `<id>.tmp` in the final folder, fsyncs it, renames
// it to `<id>`, fsyncs the folder, then points the index at it in one transaction; the replaced
// file is unlinked after the commit. Readers see the old object or the whole new one; a reader
// that opened the old object keeps reading it to the end (its descriptor holds the inode). A
// crash at any point leaves only unreferenced files, removed by Open().
//
// Lifecycle: Open() creates or recovers the store; the destructor closes it (no background work).
// Thread-safety: every method may be called concurrently from any thread. One SQLite connection
// sits behind a mutex held only for index operations, never while bytes are read or written.
// Every method blocks on disk I/O: call from the blocking pool, never an I/O thread.
//
// Errors: Errc::kNotFound with aws_code "NoSuchBucket", "NoSuchKey" or "NoSuchUpload";
// kValidation for bad input (aws_code "InvalidBucketName", "KeyTooLongError", "InvalidArgument",
// "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"); kAlreadyExists
// "BucketAlreadyOwnedByYou"; kInvalidState "BucketNotEmpty"; kRangeNotSatisfiable "InvalidRange";
// kInternal for local I/O or index failures; whatever a body's ByteSource or `before_commit`
// returned, unchanged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "store/object_store.h"

namespace inferd::db {
class Database;
}  // namespace inferd::db

namespace inferd::store {

struct FilesystemStoreOptions {
  std::filesystem::path root;        // required; created if missing (`<data-dir>/objects`)
  const Clock* clock = nullptr;      // nullptr = SystemClock; must outlive the store
  size_t buffer_bytes = 256 * 1024;  // per streaming put or multipart assembly: 4 KiB .. 16 MiB
  // Minimum size of every part but the last (S3: 5 MiB). Only tests lower it.
  uint64_t min_part_size = 5 * 1024 * 1024;
  // false: never fsync (files, folders, index). Readers still never see partial objects and a
  // crashed process loses nothing, but an OS crash or power loss may. Tests and scratch data only.
  bool fsync = true;

  // kValidation naming the bad field.
  Status Validate() const;
};

struct BucketInfo {
  std::string name;
  double creation_time = 0;  // epoch seconds
};

struct PartInfo {
  int part_number = 0;
  std::string etag;  // hex MD5 of the part, without quotes
  uint64_t size = 0;
  double last_modified = 0;  // epoch seconds
};

// A part as named in CompleteMultipartUpload.
struct CompletedPart {
  int part_number = 0;
  std::string etag;  // with or without surrounding quotes
};

struct MultipartUploadInfo {
  std::string key;
  std::string upload_id;
  double initiated = 0;  // epoch seconds
};

class FilesystemStore final : public ObjectStore {
 public:
  static constexpr size_t kMaxKeyBytes = 1024;
  static constexpr int kMaxParts = 10000;
  static constexpr int kMaxListKeys = 1000;

  // Opens (creating if needed) the store at options.root, then removes what a crash may have left:
  // temporary files, data files no index row references, folders of deleted buckets and of
  // uploads that no longer exist. kValidation for bad options; kInternal when the root or the
  // index cannot be created or opened.
  static Result<std::unique_ptr<FilesystemStore>> Open(FilesystemStoreOptions options);
  ~FilesystemStore() override;
  FilesystemStore(const FilesystemStore&) = delete;
  FilesystemStore& operator=(const FilesystemStore&) = delete;

  // ---- ObjectStore ----
  // Keys: 1..1024 bytes, stored verbatim (kValidation "KeyTooLongError" above 1024 bytes).
  // The returned info has the stored attributes, the size, the hex-MD5 ETag and the commit time.
  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                         const ObjectAttributes& attributes, http::ByteSource& body,
                         const PutOptions& options = {}) override;
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) override;
  // Ranges as S3 resolves them: bytes=a-b clamps b to size-1; bytes=a- to the end; bytes=-n the
  // last n bytes (the whole object when n >= size). kRangeNotSatisfiable "InvalidRange" when a >=
  // size, n == 0, the object is empty, or the spec is malformed (b < a, or neither a nor n) —
  // the S3 API should drop a syntactically invalid Range header before calling, as S3 ignores
  // it. The reader owns an open descriptor: it may outlive later overwrites or deletes of the key
  // and still returns the bytes it opened. A reader is used by one thread at a time.
  Result<std::unique_ptr<ObjectReader>> Get(const std::string& bucket, const std::string& key,
                                            std::optional<RangeSpec> range = {}) override;
  Status Delete(const std::string& bucket, const std::string& key) override;
  // Objects in byte order of key. With a delimiter, keys containing it after the prefix roll up
  // into common prefixes (each counts once toward max_keys); a common prefix is skipped when
  // start_after begins with it (so next_start_after paginates past it). Every object's info is
  // complete (attributes included). max_keys 0..1000 (larger values are clamped to 1000;
  // negative: kValidation); 0 returns nothing, not truncated.
  Result<ListResult> List(const std::string& bucket, const ListOptions& options) override;

  // ---- buckets ----
  // kValidation "InvalidBucketName" (S3 naming rules); kAlreadyExists "BucketAlreadyOwnedByYou".
  Status CreateBucket(const std::string& name);
  // kNotFound "NoSuchBucket".
  Result<BucketInfo> HeadBucket(const std::string& name);
  // kInvalidState "BucketNotEmpty" while it holds objects or in-progress multipart uploads.
  Status DeleteBucket(const std::string& name);
  // Sorted by name.
  Result<std::vector<BucketInfo>> ListBuckets();
  // S3's bucket naming rules: 3..63 characters of a-z 0-9 . -, starting and ending with a letter
  // or digit, no "..", not shaped like an IPv4 address, no "xn--"/"sthree-" prefix and no
  // "-s3alias"/"--ol-s3" suffix.
  static Status ValidateBucketName(std::string_view name);

  // ---- multipart uploads ----
  // Returns a new random upload id. The attributes become the final object's.
  Result<std::string> CreateMultipartUpload(const std::string& bucket, const std::string& key,
                                            const ObjectAttributes& attributes);
  // Stores (or replaces) part `part_number` (1..10000, else kValidation "InvalidArgument").
  // `options.before_commit` works as for Put. kNotFound "NoSuchUpload" unless the upload exists
  // for this bucket and key (also when it is aborted or completed while the part streams).
  Result<PartInfo> UploadPart(const std::string& bucket, const std::string& key,
                              const std::string& upload_id, int part_number, http::ByteSource& body,
                              const PutOptions& options = {});
  // Assembles the listed parts, in order, into the object (streamed into one new file, then
  // committed like a put) and ends the upload. ETag: hex(md5(concatenated binary part MD5s)) +
  // "-" + number of parts. S3's rules: parts strictly ascending ("InvalidPartOrder"), each one
  // uploaded with that ETag ("InvalidPart"), all but the last at least options.min_part_size
  // ("EntityTooSmall"), at least one part ("MalformedXML") — all kValidation.
  Result<ObjectInfo> CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id,
                                             const std::vector<CompletedPart>& parts);
  // Removes the upload and its parts. kNotFound "NoSuchUpload".
  Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                              const std::string& upload_id);
  // The uploaded parts, by ascending part number. kNotFound "NoSuchUpload".
  Result<std::vector<PartInfo>> ListParts(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id);
  // In-progress uploads of a bucket, by key (byte order) then initiation time.
  Result<std::vector<MultipartUploadInfo>> ListMultipartUploads(const std::string& bucket);

  const std::filesystem::path& root() const { return options_.root; }

 private:
  struct UploadRow;

  FilesystemStore(FilesystemStoreOptions options, std::unique_ptr<db::Database> db);
  Status Recover();
  double Now() const;
  Status SyncDir(const std::filesystem::path& dir) const;  // FsyncDir unless options_.fsync off
  std::filesystem::path ObjectDir(const std::string& bucket, const std::string& id) const;
  std::filesystem::path ObjectPath(const std::string& bucket, const std::string& id) const;
  std::filesystem::path UploadDir(const std::string& upload_id) const;

  // Requires mu_. kNotFound "NoSuchBucket" when absent.
  Status CheckBucketLocked(const std::string& bucket);
  // Requires mu_. The upload, if it exists for this bucket and key; else kNotFound "NoSuchUpload".
  Result<UploadRow> FindUploadLocked(const std::string& bucket, const std::string& key,
                                     const std::string& upload_id);
  // Streams `body` into a new data file for `bucket`, runs before_commit, renames it into place.
  // Returns the new file's id and what was written; on failure nothing is left behind.
  struct StagedFile;
  Result<StagedFile> StageObjectFile(const std::string& bucket, http::ByteSource& body,
                                     bool with_md5, const PutOptions& options);
  // Points (bucket, key) at a staged file in one transaction (removing `upload_id`'s rows too,
  // when given), then unlinks the file it replaced. On failure the staged file is removed.
  Result<ObjectInfo> CommitObject(const std::string& bucket, const std::string& key,
                                  const ObjectAttributes& attributes, const StagedFile& staged,
                                  const std::string& etag, const std::string& upload_id);

  FilesystemStoreOptions options_;
  std::filesystem::path data_dir_;
  std::filesystem::path uploads_dir_;
  std::mutex mu_;  // guards db_
  std::unique_ptr<db::Database> db_;
};

}  // namespace inferd::store
