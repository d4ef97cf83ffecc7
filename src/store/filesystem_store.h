// FilesystemStore: the embedded ObjectStore, under `<data-dir>/objects`. It also backs inferd's S3
// API, so beyond the ObjectStore interface it manages buckets and multipart uploads.
//
// Layout under `root`:
//   index.db                       SQLite (WAL, synchronous=FULL): buckets, objects (with the
//                                  bytes of small objects, see below), uploads, parts
//   data/<bucket>/<2 hex>/<id>     bytes of larger objects; <id> is random, so keys never touch
//                                  file paths
//   uploads/<upload id>/<id>       multipart part bytes
// A key is only ever a value in the index, never part of a path: any key (`../x`, `a//b`, 1024
// bytes) is safe. Bucket names are validated (S3 rules) before they become folder names, and
// upload ids are checked against the index before they are used in a path.
//
// Inline objects: a put reads up to `inline_max_bytes` + 1 bytes of its body into memory. A body
// that ended by then is stored in its index row (`inline_data`, `file` empty) and has no data
// file; a longer one continues as a file (the buffered prefix, then the rest of the stream).
// Multipart objects always get a file.
//
// Durability and atomicity: a file-backed put streams into `<id>.tmp` in the final folder, fsyncs
// it, renames it to `<id>`, fsyncs the folder, then points the index at it; an inline put only
// writes its row. Either way the row is written through a db::GroupCommit: concurrent puts (and
// deletes) share one transaction and so one sync of index.db, and a put returns once the
// transaction holding its row has committed. A replaced file is unlinked after that commit.
// Readers see the old object or the whole new one; a reader that opened the old object keeps
// reading it to the end (a file reader's descriptor holds the inode; an inline reader holds a
// copy of the bytes). A crash at any point leaves only unreferenced files, removed by Open().
// An index.db of a version without inline objects is upgraded by Open() (a column is added).
//
// Lifecycle: Open() creates or recovers the store; the destructor closes it (no background work).
// Thread-safety: every method may be called concurrently from any thread. index.db has two
// SQLite connections, each behind its own mutex, held only for index operations and never while
// bytes are read from or written to files:
//   - the write connection (mu_): every write, and every read that decides a write in the same
//     transaction. A group commit holds mu_ for its whole transaction, fsync included.
//   - the read connection (read_mu_): List, ListBuckets, ListParts, ListMultipartUploads, and
//     Head, Get, HeadBucket and the early checks of puts while a write holds mu_ (when none
//     does, these few-row lookups run on the write connection, whose page cache is current: see
//     ReadRows). WAL lets it read while a write transaction is open or syncing, so readers never
//     wait for a commit. Each call reads in one read transaction (one snapshot for all its
//     statements) that ends before the call returns: a put or delete that returned is seen by
//     every later call, from any thread.
// Get reads the row and then opens its data file without holding off commits, so an overwrite
// or delete may commit and unlink that file in between. The open then fails (ENOENT) and Get
// reads the row again in a new snapshot, which holds that commit: it returns the new object, or
// NoSuchKey/NoSuchBucket. After kGetReadAttempts such races in a row, Get reads the row and
// opens the file under mu_ on the write connection, where no commit can run in between (a
// replaced file is unlinked only after its commit), so a Get always ends. Bucket names are part
// of data file paths and file ids are random, so a Get never returns another bucket's bytes.
// Every method blocks on disk I/O: call from the blocking pool, never an I/O thread.
//
// Errors: Errc::kNotFound with aws_code "NoSuchBucket", "NoSuchKey" or "NoSuchUpload";
// kValidation for bad input (aws_code "InvalidBucketName", "KeyTooLongError", "InvalidArgument",
// "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"); kAlreadyExists
// "BucketAlreadyOwnedByYou"; kInvalidState "BucketNotEmpty"; kRangeNotSatisfiable "InvalidRange";
// kInternal for local I/O or index failures; whatever a body's ByteSource or `before_commit`
// returned, unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "store/object_store.h"

namespace inferd::db {
class Database;
class GroupCommit;
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
  // Bodies of at most this many bytes are stored in the index row instead of a data file (no file
  // or folder fsync, only the shared index commit); a put buffers up to this much plus one byte.
  // 0 = every object gets a file. At most 1 MiB.
  size_t inline_max_bytes = 64 * 1024;

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
  // Row reads on the read connection a Get tries before its last, locked attempt (see above).
  static constexpr int kGetReadAttempts = 3;

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
  // Returns once the row is committed (a transaction shared with concurrent puts and deletes).
  // The returned info has the stored attributes, the size, the hex-MD5 ETag and the commit time.
  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                         const ObjectAttributes& attributes, http::ByteSource& body,
                         const PutOptions& options = {}) override;
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) override;
  // Ranges as S3 resolves them: bytes=a-b clamps b to size-1; bytes=a- to the end; bytes=-n the
  // last n bytes (the whole object when n >= size). kRangeNotSatisfiable "InvalidRange" when a >=
  // size, n == 0, the object is empty, or the spec is malformed (b < a, or neither a nor n) —
  // the S3 API should drop a syntactically invalid Range header before calling, as S3 ignores
  // it. The reader owns an open descriptor (or, for an inline object, a copy of the range's
  // bytes): it may outlive later overwrites or deletes of the key and still returns the bytes it
  // opened. A reader is used by one thread at a time.
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
  // Index transactions committed by puts and deletes so far (db::GroupCommit::commits): with
  // concurrent puts, fewer than the puts. For tests and metrics.
  std::size_t index_commits() const;

 private:
  struct UploadRow;
  struct ObjectRow;
  friend class FilesystemStoreTestPeer;  // tests: hold the write connection, race a Get

  FilesystemStore(FilesystemStoreOptions options, std::unique_ptr<db::Database> db,
                  std::unique_ptr<db::Database> read_db);
  Status Recover();
  double Now() const;
  Status SyncDir(const std::filesystem::path& dir) const;  // FsyncDir unless options_.fsync off
  std::filesystem::path ObjectDir(const std::string& bucket, const std::string& id) const;
  std::filesystem::path ObjectPath(const std::string& bucket, const std::string& id) const;
  std::filesystem::path UploadDir(const std::string& upload_id) const;

  // Runs `read(db)` on the read connection: under read_mu_, inside one read transaction that
  // ends (committed) before this returns, so no snapshot outlives the call. `read` returns a
  // Result or Status; a failure to begin the transaction is returned as its error. Defined in
  // store_internal.h.
  template <typename Read>
  auto ReadIndex(Read&& read) -> decltype(read(std::declval<db::Database&>()));
  // ReadIndex for a lookup of a few rows (Head, Get, the early checks): on the write connection
  // when no write holds it, else on the read connection. SQLite drops a connection's page cache
  // whenever another connection committed, so a lookup on the read connection re-reads from the
  // files every page it touches (a dozen preads for one Get after a put); the write connection
  // made every change itself and its cache stays current. It never waits for a write (mu_ is
  // only tried), and listings keep to ReadIndex: a long read would hold off commits.
  template <typename Read>
  auto ReadRows(Read&& read) -> decltype(read(std::declval<db::Database&>()));

  // The *Locked helpers run on `db` = *db_ (caller holds mu_, or inside ReadRows) or *read_db_
  // (inside ReadIndex or ReadRows).
  // kNotFound "NoSuchBucket" when absent.
  Status CheckBucketLocked(db::Database& db, const std::string& bucket);
  // The upload, if it exists for this bucket and key; else kNotFound "NoSuchUpload" (or
  // "NoSuchBucket").
  Result<UploadRow> FindUploadLocked(db::Database& db, const std::string& bucket,
                                     const std::string& key, const std::string& upload_id);
  // The object's row, with an inline object's bytes when `with_bytes`; kNotFound "NoSuchBucket"
  // or "NoSuchKey".
  Result<ObjectRow> FindObjectLocked(db::Database& db, const std::string& bucket,
                                     const std::string& key, bool with_bytes);
  // Streams `body` into a new data file for `bucket`, runs before_commit, renames it into place.
  // Returns the new file's id and what was written; on failure nothing is left behind.
  struct StagedFile;
  Result<StagedFile> StageObjectFile(const std::string& bucket, http::ByteSource& body,
                                     bool with_md5, const PutOptions& options);
  // What a new index row holds: a staged file, or (file == nullptr) the bytes themselves.
  struct RowBody {
    const StagedFile* file = nullptr;
    std::string_view bytes;  // when inline
    uint64_t size() const;
  };
  // Points (bucket, key) at `body` through the group commit (removing `upload_id`'s rows too,
  // when given), then unlinks the file it replaced. On failure a staged file is removed.
  Result<ObjectInfo> CommitObject(const std::string& bucket, const std::string& key,
                                  const ObjectAttributes& attributes, const RowBody& body,
                                  const std::string& etag, const std::string& upload_id);

  FilesystemStoreOptions options_;
  std::filesystem::path data_dir_;
  std::filesystem::path uploads_dir_;
  std::mutex mu_;  // guards db_ (the write connection)
  std::unique_ptr<db::Database> db_;
  std::mutex read_mu_;  // guards read_db_ (the read connection: reads only, query_only)
  std::unique_ptr<db::Database> read_db_;
  std::unique_ptr<db::GroupCommit> commits_;  // on db_ and mu_; declared after them
  // Tests only (FilesystemStoreTestPeer): runs in Get between reading a file-backed row on the
  // read connection and opening its file, with no lock held. Set before concurrent use.
  std::function<void()> get_before_open_for_test_;
};

}  // namespace inferd::store
