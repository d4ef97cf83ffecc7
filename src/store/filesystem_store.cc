#include "store/filesystem_store.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <system_error>
#include <unordered_set>

#include "common/ids.h"
#include "db/group_commit.h"
#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/store_internal.h"

namespace inferd::store {

namespace fs = std::filesystem;
using db::Stmt;
using db::Transaction;

namespace internal {

Error NoSuchBucket() {
  return Error(Errc::kNotFound, "The specified bucket does not exist", "NoSuchBucket");
}
Error NoSuchKey() {
  return Error(Errc::kNotFound, "The specified key does not exist.", "NoSuchKey");
}
Error NoSuchUpload() {
  return Error(Errc::kNotFound,
               "The specified upload does not exist. The upload ID may be invalid, or the upload "
               "may have been aborted or completed.",
               "NoSuchUpload");
}

Status ValidateKey(const std::string& key) {
  if (key.empty()) {
    return Error(Errc::kValidation, "An object key must not be empty.", "InvalidArgument");
  }
  if (key.size() > FilesystemStore::kMaxKeyBytes) {
    return Error(Errc::kValidation,
                 "Your key is too long: " + std::to_string(key.size()) +
                     " bytes, the maximum is 1024 bytes of UTF-8.",
                 "KeyTooLongError");
  }
  return OkStatus();
}

std::string HeadersToJson(const std::vector<http::Header>& headers) {
  boost::json::array out;
  out.reserve(headers.size());
  for (const auto& h : headers) out.push_back(boost::json::array{h.name, h.value});
  return boost::json::serialize(out);
}

std::vector<http::Header> HeadersFromJson(std::string_view json) {
  std::vector<http::Header> out;
  boost::json::parse_options opts;
  opts.allow_invalid_utf8 = true;  // values are stored as given
  std::error_code ec;
  auto v = boost::json::parse(json, ec, {}, opts);
  if (ec || !v.is_array()) return out;  // written by us; unreachable unless the index is damaged
  for (const auto& item : v.as_array()) {
    const auto* pair = item.if_array();
    if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string()) continue;
    out.push_back({std::string((*pair)[0].as_string()), std::string((*pair)[1].as_string())});
  }
  return out;
}

}  // namespace internal

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS buckets (
  name TEXT PRIMARY KEY,
  creation_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified REAL NOT NULL,
  content_type TEXT NOT NULL,
  headers TEXT NOT NULL,
  file TEXT NOT NULL,
  inline_data BLOB,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  initiated REAL NOT NULL,
  content_type TEXT NOT NULL,
  headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified REAL NOT NULL,
  file TEXT NOT NULL,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
)sql";

bool IsIpv4Shaped(std::string_view name) {
  int groups = 0;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    std::string_view group = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (group.empty() || group.size() > 3 ||
        !std::all_of(group.begin(), group.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    ++groups;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return groups == 4;
}

}  // namespace

Status FilesystemStoreOptions::Validate() const {
  if (root.empty()) return Error(Errc::kValidation, "object store: root must be set");
  if (buffer_bytes < 4096 || buffer_bytes > 16 * 1024 * 1024) {
    return Error(Errc::kValidation, "object store: buffer_bytes must be between 4 KiB and 16 MiB");
  }
  if (min_part_size == 0) {
    return Error(Errc::kValidation, "object store: min_part_size must be positive");
  }
  if (inline_max_bytes > 1024 * 1024) {
    return Error(
        Errc::kValidation,
        "object store: inline_max_bytes must be at most 1 MiB (0 disables inline objects)");
  }
  return OkStatus();
}

Result<std::unique_ptr<FilesystemStore>> FilesystemStore::Open(FilesystemStoreOptions options) {
  INFERD_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  fs::create_directories(options.root, ec);
  if (ec) return internal::IoError("create", options.root, ec.value());
  for (const char* sub : {"data", "uploads"}) {
    INFERD_RETURN_IF_ERROR(internal::EnsureDir(options.root / sub, options.root, options.fsync));
  }
  // Object writes go through one GroupCommit, whose leaders finish the checkpoints
  // (db/checkpointer.h); multipart's own transactions only add to the WAL.
  db::CheckpointOptions checkpoints;
  checkpoints.writer_finishes = true;
  auto index = db::Database::Open(options.root / "index.db", "object index", kSchema, checkpoints);
  if (!index.ok()) return std::move(index).error();
  if (!options.fsync) INFERD_RETURN_IF_ERROR((*index)->Exec("PRAGMA synchronous=OFF;"));
  // `file` is '' for an inline object, whose bytes are `inline_data`; else `inline_data` is
  // NULL. Indexes written before inline objects existed lack the column.
  INFERD_RETURN_IF_ERROR((*index)->AddColumnIfMissing("objects", "inline_data", "BLOB"));
  // The read connection opens once the schema is final; query_only makes a write on it fail
  // instead of contending with the write connection.
  auto reads = db::Database::Open(options.root / "index.db", "object index", nullptr);
  if (!reads.ok()) return std::move(reads).error();
  INFERD_RETURN_IF_ERROR((*reads)->Exec("PRAGMA query_only=ON;"));
  std::unique_ptr<FilesystemStore> store(
      new FilesystemStore(std::move(options), std::move(index).value(), std::move(reads).value()));
  INFERD_RETURN_IF_ERROR(store->Recover());
  return store;
}

FilesystemStore::FilesystemStore(FilesystemStoreOptions options, std::unique_ptr<db::Database> db,
                                 std::unique_ptr<db::Database> read_db)
    : options_(std::move(options)),
      data_dir_(options_.root / "data"),
      uploads_dir_(options_.root / "uploads"),
      db_(std::move(db)),
      read_db_(std::move(read_db)),
      commits_(std::make_unique<db::GroupCommit>(*db_, mu_)) {
  if (!options_.clock) options_.clock = &SystemClock::Instance();
}

FilesystemStore::~FilesystemStore() = default;

std::size_t FilesystemStore::index_commits() const { return commits_->commits(); }

Status FilesystemStore::SyncDir(const fs::path& dir) const {
  return options_.fsync ? internal::FsyncDir(dir) : OkStatus();
}

double FilesystemStore::Now() const { return ToEpochSeconds(options_.clock->Now()); }

fs::path FilesystemStore::ObjectDir(const std::string& bucket, const std::string& id) const {
  return data_dir_ / bucket / id.substr(0, 2);
}

fs::path FilesystemStore::ObjectPath(const std::string& bucket, const std::string& id) const {
  return ObjectDir(bucket, id) / id;
}

fs::path FilesystemStore::UploadDir(const std::string& upload_id) const {
  return uploads_dir_ / upload_id;
}

// Runs before the store is shared, so no lock is needed. Everything the index does not reference
// is a leftover of an interrupted put, part upload, delete or abort.
Status FilesystemStore::Recover() {
  std::unordered_set<std::string> buckets, object_files, uploads, part_files;
  // Collects "<col 0>[/<col 1>]" of every row.
  auto collect = [&](const char* sql, int columns, std::unordered_set<std::string>& into) {
    Stmt s(*db_, sql);
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) {
      into.insert(columns == 1 ? s.Text(0) : s.Text(0) + "/" + s.Text(1));
    }
    return rc == Stmt::kDone ? OkStatus() : Status(s.Fail("recover"));
  };
  INFERD_RETURN_IF_ERROR(collect("SELECT name FROM buckets", 1, buckets));
  // Inline objects (file '') have no file to keep.
  INFERD_RETURN_IF_ERROR(
      collect("SELECT bucket, file FROM objects WHERE file != ''", 2, object_files));
  INFERD_RETURN_IF_ERROR(collect("SELECT upload_id FROM uploads", 1, uploads));
  INFERD_RETURN_IF_ERROR(collect("SELECT upload_id, file FROM parts", 2, part_files));

  // Iterating can throw (an unreadable folder); removal failures are ignored (retried next time).
  try {
    std::error_code ec;
    auto remove_all = [&](const fs::path& p) { fs::remove_all(p, ec); };
    // data/<bucket>/<shard>/<file>
    for (const auto& b : fs::directory_iterator(data_dir_, ec)) {
      std::string bucket = b.path().filename().string();
      if (!b.is_directory(ec) || b.is_symlink(ec) || !buckets.count(bucket)) {
        remove_all(b.path());
        continue;
      }
      for (const auto& shard : fs::directory_iterator(b.path(), ec)) {
        if (!shard.is_directory(ec) || shard.is_symlink(ec)) {
          remove_all(shard.path());
          continue;
        }
        for (const auto& f : fs::directory_iterator(shard.path(), ec)) {
          std::string name = f.path().filename().string();
          if (internal::EndsWith(name, internal::kTmpSuffix) ||
              !object_files.count(bucket + "/" + name)) {
            remove_all(f.path());
          }
        }
      }
    }
    // uploads/<upload id>/<file>
    for (const auto& u : fs::directory_iterator(uploads_dir_, ec)) {
      std::string upload_id = u.path().filename().string();
      if (!u.is_directory(ec) || u.is_symlink(ec) || !uploads.count(upload_id)) {
        remove_all(u.path());
        continue;
      }
      for (const auto& f : fs::directory_iterator(u.path(), ec)) {
        std::string name = f.path().filename().string();
        if (internal::EndsWith(name, internal::kTmpSuffix) ||
            !part_files.count(upload_id + "/" + name)) {
          remove_all(f.path());
        }
      }
    }
  } catch (const fs::filesystem_error& e) {
    return Error(Errc::kInternal, std::string("object store: cannot clean up: ") + e.what());
  }
  return OkStatus();
}

Status FilesystemStore::CheckBucketLocked(db::Database& db, const std::string& bucket) {
  // A name that could not have been created is never looked up, and never becomes a path.
  if (!ValidateBucketName(bucket).ok()) return internal::NoSuchBucket();
  Stmt s(db, "SELECT 1 FROM buckets WHERE name=?");
  s.Bind(bucket);
  int rc = s.Step();
  if (rc == Stmt::kRow) return OkStatus();
  if (rc == Stmt::kDone) return internal::NoSuchBucket();
  return s.Fail("bucket lookup");
}

// ---- buckets ----

Status FilesystemStore::ValidateBucketName(std::string_view name) {
  auto invalid = [](std::string why) {
    return Error(Errc::kValidation, "The specified bucket is not valid: " + why,
                 "InvalidBucketName");
  };
  if (name.size() < 3 || name.size() > 63) {
    return invalid("bucket names must be between 3 and 63 characters long.");
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '-') {
      return invalid(
          "bucket names can consist only of lowercase letters, numbers, dots (.), and hyphens "
          "(-).");
    }
  }
  if (!alnum(name.front()) || !alnum(name.back())) {
    return invalid("bucket names must begin and end with a letter or number.");
  }
  if (name.find("..") != std::string_view::npos) {
    return invalid("bucket names must not contain two adjacent periods.");
  }
  if (IsIpv4Shaped(name)) return invalid("bucket names must not be formatted as an IP address.");
  if (name.starts_with("xn--") || name.starts_with("sthree-") ||
      internal::EndsWith(name, "-s3alias") || internal::EndsWith(name, "--ol-s3")) {
    return invalid(
        "bucket names must not start with \"xn--\" or \"sthree-\" nor end with \"-s3alias\" or "
        "\"--ol-s3\".");
  }
  return OkStatus();
}

Status FilesystemStore::CreateBucket(const std::string& name) {
  INFERD_RETURN_IF_ERROR(ValidateBucketName(name));
  std::lock_guard lock(mu_);
  Stmt s(*db_, "INSERT INTO buckets (name, creation_time) VALUES (?, ?)");
  s.Bind(name).Bind(Now());
  int rc = s.Step();
  if (rc == Stmt::kConstraint) {
    return Error(Errc::kAlreadyExists,
                 "Your previous request to create the named bucket succeeded and you already own "
                 "it.",
                 "BucketAlreadyOwnedByYou");
  }
  if (rc != Stmt::kDone) return s.Fail("create bucket");
  return OkStatus();
}

Result<BucketInfo> FilesystemStore::HeadBucket(const std::string& name) {
  if (!ValidateBucketName(name).ok()) return internal::NoSuchBucket();
  return ReadRows([&](db::Database& db) -> Result<BucketInfo> {
    Stmt s(db, "SELECT name, creation_time FROM buckets WHERE name=?");
    s.Bind(name);
    int rc = s.Step();
    if (rc == Stmt::kRow) return BucketInfo{s.Text(0), s.Real(1)};
    if (rc == Stmt::kDone) return internal::NoSuchBucket();
    return s.Fail("head bucket");
  });
}

Status FilesystemStore::DeleteBucket(const std::string& name) {
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  INFERD_RETURN_IF_ERROR(CheckBucketLocked(*db_, name));
  for (const char* sql : {"SELECT 1 FROM objects WHERE bucket=? LIMIT 1",
                          "SELECT 1 FROM uploads WHERE bucket=? LIMIT 1"}) {
    Stmt s(*db_, sql);
    s.Bind(name);
    int rc = s.Step();
    if (rc == Stmt::kRow) {
      return Error(Errc::kInvalidState, "The bucket you tried to delete is not empty",
                   "BucketNotEmpty");
    }
    if (rc != Stmt::kDone) return s.Fail("delete bucket");
  }
  Stmt del(*db_, "DELETE FROM buckets WHERE name=?");
  del.Bind(name);
  INFERD_RETURN_IF_ERROR(del.Run("delete bucket"));
  INFERD_RETURN_IF_ERROR(tx.Commit());
  // Still under mu_ (see CommitObject): the folder holds at most in-flight temporary files, so
  // this is quick, and a file-backed put racing with the delete finds its staged file gone.
  std::error_code ec;
  fs::remove_all(data_dir_ / name, ec);
  return OkStatus();
}

Result<std::vector<BucketInfo>> FilesystemStore::ListBuckets() {
  return ReadIndex([&](db::Database& db) -> Result<std::vector<BucketInfo>> {
    Stmt s(db, "SELECT name, creation_time FROM buckets ORDER BY name");
    std::vector<BucketInfo> out;
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) out.push_back({s.Text(0), s.Real(1)});
    if (rc != Stmt::kDone) return s.Fail("list buckets");
    return out;
  });
}

}  // namespace inferd::store
