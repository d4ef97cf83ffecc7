#include "store/filesystem_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <system_error>
#include <unordered_set>

#include "common/ids.h"
#include "store/file_io.h"
#include "store/sqlite_util.h"
#include "store/store_internal.h"

namespace inferd::store {

namespace fs = std::filesystem;
using internal::Stmt;
using internal::Transaction;

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

constexpr const char* kTmpSuffix = ".tmp";

// Columns read by ReadObject, in order.
constexpr const char* kObjectColumns =
    "key, size, etag, last_modified, content_type, headers, file";

ObjectInfo ReadObject(Stmt& s, const std::string& bucket, std::string* file = nullptr) {
  ObjectInfo info;
  info.bucket = bucket;
  info.key = s.Blob(0);
  info.size = static_cast<uint64_t>(s.Int(1));
  info.etag = s.Text(2);
  info.last_modified = s.Real(3);
  info.attributes.content_type = s.Text(4);
  info.attributes.headers = internal::HeadersFromJson(s.Text(5));
  if (file) *file = s.Text(6);
  return info;
}

// The smallest byte string greater than every string starting with `prefix`; nullopt when there
// is none (empty prefix, or only 0xFF bytes).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

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

// Reads an object's bytes [first, first + length) through a descriptor opened while the index
// pointed at the file, so later overwrites and deletes do not affect it.
class FileReader final : public ObjectReader {
 public:
  FileReader(internal::UniqueFd fd, ObjectInfo info, uint64_t first, uint64_t length)
      : fd_(std::move(fd)), info_(std::move(info)), first_(first), length_(length), pos_(first) {}

  const ObjectInfo& info() const override { return info_; }
  uint64_t first() const override { return first_; }
  uint64_t length() const override { return length_; }

  Result<size_t> Read(char* buf, size_t n) override {
    uint64_t remaining = first_ + length_ - pos_;
    if (remaining == 0 || n == 0) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining));
    auto r = internal::PreadFull(fd_.get(), buf, want, pos_);
    if (!r.ok()) return r;
    if (*r == 0) {
      return Error(Errc::kInternal, "object store: the file of \"" + info_.bucket + "/" +
                                        info_.key + "\" is shorter than its index entry");
    }
    pos_ += *r;
    return r;
  }

 private:
  internal::UniqueFd fd_;
  ObjectInfo info_;
  uint64_t first_;
  uint64_t length_;
  uint64_t pos_;
};

Error InvalidRange(uint64_t size) {
  return Error(Errc::kRangeNotSatisfiable,
               "The requested range is not satisfiable: the object is " + std::to_string(size) +
                   " bytes long.",
               "InvalidRange");
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
  return OkStatus();
}

Result<std::unique_ptr<FilesystemStore>> FilesystemStore::Open(FilesystemStoreOptions options) {
  INFERD_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  fs::create_directories(options.root, ec);
  if (ec) return internal::IoError("create", options.root, ec.value());
  for (const char* sub : {"data", "uploads"}) {
    INFERD_RETURN_IF_ERROR(internal::EnsureDirDurable(options.root / sub, options.root));
  }
  fs::path db_path = options.root / "index.db";
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error(Errc::kInternal, "cannot open object index " + db_path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<FilesystemStore> store(new FilesystemStore(std::move(options), db));
  INFERD_RETURN_IF_ERROR(
      internal::Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  INFERD_RETURN_IF_ERROR(internal::Exec(db, kSchema));
  INFERD_RETURN_IF_ERROR(store->Recover());
  return store;
}

FilesystemStore::FilesystemStore(FilesystemStoreOptions options, sqlite3* db)
    : options_(std::move(options)),
      data_dir_(options_.root / "data"),
      uploads_dir_(options_.root / "uploads"),
      db_(db) {
  if (!options_.clock) options_.clock = &SystemClock::Instance();
}

FilesystemStore::~FilesystemStore() { sqlite3_close(db_); }

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
  {
    Stmt s(db_, "SELECT name FROM buckets");
    while (s.Step() == SQLITE_ROW) buckets.insert(s.Text(0));
    INFERD_RETURN_IF_ERROR(s.Run("recover"));
  }
  {
    Stmt s(db_, "SELECT bucket, file FROM objects");
    while (s.Step() == SQLITE_ROW) object_files.insert(s.Text(0) + "/" + s.Text(1));
    INFERD_RETURN_IF_ERROR(s.Run("recover"));
  }
  {
    Stmt s(db_, "SELECT upload_id FROM uploads");
    while (s.Step() == SQLITE_ROW) uploads.insert(s.Text(0));
    INFERD_RETURN_IF_ERROR(s.Run("recover"));
  }
  {
    Stmt s(db_, "SELECT upload_id, file FROM parts");
    while (s.Step() == SQLITE_ROW) part_files.insert(s.Text(0) + "/" + s.Text(1));
    INFERD_RETURN_IF_ERROR(s.Run("recover"));
  }

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
        if (EndsWith(name, kTmpSuffix) || !object_files.count(bucket + "/" + name)) {
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
      if (EndsWith(name, kTmpSuffix) || !part_files.count(upload_id + "/" + name)) {
        remove_all(f.path());
      }
    }
  }
  return OkStatus();
}

Status FilesystemStore::CheckBucketLocked(const std::string& bucket) {
  // A name that could not have been created is never looked up, and never becomes a path.
  if (!ValidateBucketName(bucket).ok()) return internal::NoSuchBucket();
  Stmt s(db_, "SELECT 1 FROM buckets WHERE name=?");
  s.BindText(bucket);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return OkStatus();
  if (rc == SQLITE_DONE) return internal::NoSuchBucket();
  return s.Fail("bucket lookup");
}

// ---- objects ----

Result<FilesystemStore::StagedFile> FilesystemStore::StageObjectFile(const std::string& bucket,
                                                                     http::ByteSource& body,
                                                                     bool with_md5,
                                                                     const PutOptions& options) {
  StagedFile staged;
  staged.id = NewUuid();
  fs::path dir = ObjectDir(bucket, staged.id);
  INFERD_RETURN_IF_ERROR(internal::EnsureDirDurable(dir, data_dir_));
  fs::path tmp = dir / (staged.id + kTmpSuffix);
  auto written = internal::WriteNewFile(tmp, body, options_.buffer_bytes, with_md5);
  if (!written.ok()) return std::move(written).error();
  staged.written = std::move(written).value();
  if (options.before_commit) {
    if (auto st = options.before_commit(); !st.ok()) {
      internal::RemoveQuietly(tmp);
      return std::move(st).error();
    }
  }
  staged.path = dir / staged.id;
  if (::rename(tmp.c_str(), staged.path.c_str()) != 0) {
    int err = errno;
    internal::RemoveQuietly(tmp);
    return internal::IoError("rename into", staged.path, err);
  }
  if (auto st = internal::FsyncDir(dir); !st.ok()) {
    internal::RemoveQuietly(staged.path);
    return std::move(st).error();
  }
  return staged;
}

Result<ObjectInfo> FilesystemStore::CommitObject(const std::string& bucket, const std::string& key,
                                                 const ObjectAttributes& attributes,
                                                 const StagedFile& staged, const std::string& etag,
                                                 const std::string& upload_id) {
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.size = staged.written.size;
  info.etag = etag;
  info.attributes = attributes;
  std::string old_file;
  auto fail = [&](Error error) -> Error {
    internal::RemoveQuietly(staged.path);
    return error;
  };
  {
    std::lock_guard lock(mu_);
    Transaction tx(db_);
    if (!tx.status().ok()) return fail(tx.status().error());
    if (auto st = CheckBucketLocked(bucket); !st.ok()) return fail(std::move(st).error());
    // DeleteBucket removes the bucket's folder under mu_: if it ran (and the bucket was created
    // again) since the file was staged, the file is gone and the put lost its bucket.
    if (::access(staged.path.c_str(), F_OK) != 0) return fail(internal::NoSuchBucket());
    if (!upload_id.empty()) {
      auto upload = FindUploadLocked(bucket, key, upload_id);
      if (!upload.ok()) return fail(std::move(upload).error());
    }
    Stmt old(db_, "SELECT file FROM objects WHERE bucket=? AND key=?");
    old.BindText(bucket).BindBlob(key);
    int rc = old.Step();
    if (rc == SQLITE_ROW) {
      old_file = old.Text(0);
    } else if (rc != SQLITE_DONE) {
      return fail(old.Fail("put"));
    }
    info.last_modified = Now();
    Stmt ins(db_,
             "INSERT OR REPLACE INTO objects (bucket, key, size, etag, last_modified, "
             "content_type, headers, file) VALUES (?,?,?,?,?,?,?,?)");
    ins.BindText(bucket).BindBlob(key).BindInt(static_cast<int64_t>(info.size)).BindText(etag);
    ins.BindReal(info.last_modified).BindText(attributes.content_type);
    ins.BindText(internal::HeadersToJson(attributes.headers)).BindText(staged.id);
    if (auto st = ins.Run("put"); !st.ok()) return fail(std::move(st).error());
    if (!upload_id.empty()) {
      Stmt parts(db_, "DELETE FROM parts WHERE upload_id=?");
      parts.BindText(upload_id);
      if (auto st = parts.Run("complete upload"); !st.ok()) return fail(std::move(st).error());
      Stmt up(db_, "DELETE FROM uploads WHERE upload_id=?");
      up.BindText(upload_id);
      if (auto st = up.Run("complete upload"); !st.ok()) return fail(std::move(st).error());
    }
    if (auto st = tx.Commit(); !st.ok()) return fail(std::move(st).error());
  }
  if (!old_file.empty() && old_file != staged.id) {
    internal::RemoveQuietly(ObjectPath(bucket, old_file));
  }
  if (!upload_id.empty()) {
    std::error_code ec;
    fs::remove_all(UploadDir(upload_id), ec);
  }
  return info;
}

Result<ObjectInfo> FilesystemStore::Put(const std::string& bucket, const std::string& key,
                                        const ObjectAttributes& attributes,
                                        http::ByteSource& body, const PutOptions& options) {
  INFERD_RETURN_IF_ERROR(internal::ValidateKey(key));
  {
    std::lock_guard lock(mu_);
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(bucket));  // fail before reading the body
  }
  auto staged = StageObjectFile(bucket, body, /*with_md5=*/true, options);
  if (!staged.ok()) return std::move(staged).error();
  return CommitObject(bucket, key, attributes, *staged, internal::HexEncode(staged->written.md5),
                      /*upload_id=*/"");
}

Result<ObjectInfo> FilesystemStore::Head(const std::string& bucket, const std::string& key) {
  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(CheckBucketLocked(bucket));
  Stmt s(db_, std::string("SELECT ") + kObjectColumns + " FROM objects WHERE bucket=? AND key=?");
  s.BindText(bucket).BindBlob(key);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return ReadObject(s, bucket);
  if (rc == SQLITE_DONE) return internal::NoSuchKey();
  return s.Fail("head");
}

Result<std::unique_ptr<ObjectReader>> FilesystemStore::Get(const std::string& bucket,
                                                           const std::string& key,
                                                           std::optional<RangeSpec> range) {
  ObjectInfo info;
  internal::UniqueFd fd;
  {
    // The file is opened under mu_: a concurrent overwrite unlinks the old file only after its
    // commit, which needs mu_, so the file named by the row read here still exists.
    std::lock_guard lock(mu_);
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(bucket));
    Stmt s(db_,
           std::string("SELECT ") + kObjectColumns + " FROM objects WHERE bucket=? AND key=?");
    s.BindText(bucket).BindBlob(key);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return internal::NoSuchKey();
    if (rc != SQLITE_ROW) return s.Fail("get");
    std::string file;
    info = ReadObject(s, bucket, &file);
    auto opened = internal::OpenForRead(ObjectPath(bucket, file));
    if (!opened.ok()) {
      return Error(Errc::kInternal, "object store: cannot open the data of \"" + bucket + "/" +
                                        key + "\": " + opened.error().message);
    }
    fd = std::move(opened).value();
  }
  uint64_t size = info.size;
  uint64_t first = 0, length = size;
  if (range) {
    if (size == 0) return InvalidRange(size);
    if (range->first) {
      first = *range->first;
      if (range->last && *range->last < first) return InvalidRange(size);
      if (first >= size) return InvalidRange(size);
      uint64_t last = range->last ? std::min(*range->last, size - 1) : size - 1;
      length = last - first + 1;
    } else {
      if (!range->last || *range->last == 0) return InvalidRange(size);
      length = std::min(*range->last, size);
      first = size - length;
    }
  }
  return std::unique_ptr<ObjectReader>(
      std::make_unique<FileReader>(std::move(fd), std::move(info), first, length));
}

Status FilesystemStore::Delete(const std::string& bucket, const std::string& key) {
  std::string file;
  {
    std::lock_guard lock(mu_);
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(bucket));
    Stmt s(db_, "DELETE FROM objects WHERE bucket=? AND key=? RETURNING file");
    s.BindText(bucket).BindBlob(key);
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      file = s.Text(0);
      rc = s.Step();
    }
    if (rc != SQLITE_DONE) return s.Fail("delete");
  }
  if (!file.empty()) internal::RemoveQuietly(ObjectPath(bucket, file));
  return OkStatus();
}

// Walks the key range [max(prefix, start_after+), successor(prefix)) in index order. With a
// delimiter, a key that rolls up into a common prefix makes the scan seek past every key under
// that prefix, so a folder of a million objects costs one row, not a million.
Result<ListResult> FilesystemStore::List(const std::string& bucket, const ListOptions& options) {
  if (options.max_keys < 0) {
    return Error(Errc::kValidation, "max-keys must be between 0 and 1000.", "InvalidArgument");
  }
  const size_t max_keys = static_cast<size_t>(std::min(options.max_keys, kMaxListKeys));
  const std::string& prefix = options.prefix;
  const std::string& delim = options.delimiter;
  const std::string& start_after = options.start_after;

  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(CheckBucketLocked(bucket));
  ListResult out;
  if (max_keys == 0) return out;

  std::string lower = prefix;
  if (!start_after.empty()) {
    std::string after = start_after + '\0';  // the smallest key greater than start_after
    if (after > lower) lower = std::move(after);
  }
  const std::optional<std::string> upper = PrefixSuccessor(prefix);
  std::string sql = std::string("SELECT ") + kObjectColumns +
                    " FROM objects WHERE bucket=? AND key>=?" + (upper ? " AND key<?" : "") +
                    " ORDER BY key LIMIT ?";
  Stmt s(db_, sql);
  if (!s.ok()) return s.Fail("list");

  size_t count = 0;
  std::string last;
  bool done = false;
  while (!done) {
    s.Reset();
    s.BindText(bucket).BindBlob(lower);
    if (upper) s.BindBlob(*upper);
    s.BindInt(static_cast<int64_t>(max_keys - count + 1));  // one more tells "truncated"
    bool seek = false;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      std::string key = s.Blob(0);
      if (!delim.empty()) {
        size_t pos = key.find(delim, prefix.size());
        if (pos != std::string::npos) {
          std::string common = key.substr(0, pos + delim.size());
          bool skip = start_after.compare(0, common.size(), common) == 0;
          if (!skip) {
            if (count == max_keys) {
              out.truncated = true;
              done = true;
              break;
            }
            out.common_prefixes.push_back(common);
            ++count;
            last = common;
          }
          auto next = PrefixSuccessor(common);
          if (!next || (upper && *next >= *upper)) {
            done = true;
          } else {
            lower = std::move(*next);
            seek = true;
          }
          break;
        }
      }
      if (count == max_keys) {
        out.truncated = true;
        done = true;
        break;
      }
      out.objects.push_back(ReadObject(s, bucket));
      ++count;
      last = std::move(key);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return s.Fail("list");
    if (!seek) done = true;
  }
  if (out.truncated) out.next_start_after = last;
  return out;
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
  if (name.starts_with("xn--") || name.starts_with("sthree-") || EndsWith(name, "-s3alias") ||
      EndsWith(name, "--ol-s3")) {
    return invalid(
        "bucket names must not start with \"xn--\" or \"sthree-\" nor end with \"-s3alias\" or "
        "\"--ol-s3\".");
  }
  return OkStatus();
}

Status FilesystemStore::CreateBucket(const std::string& name) {
  INFERD_RETURN_IF_ERROR(ValidateBucketName(name));
  std::lock_guard lock(mu_);
  Stmt s(db_, "INSERT INTO buckets (name, creation_time) VALUES (?, ?)");
  s.BindText(name).BindReal(Now());
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return Error(Errc::kAlreadyExists,
                 "Your previous request to create the named bucket succeeded and you already own "
                 "it.",
                 "BucketAlreadyOwnedByYou");
  }
  if (rc != SQLITE_DONE) return s.Fail("create bucket");
  return OkStatus();
}

Result<BucketInfo> FilesystemStore::HeadBucket(const std::string& name) {
  std::lock_guard lock(mu_);
  if (!ValidateBucketName(name).ok()) return internal::NoSuchBucket();
  Stmt s(db_, "SELECT name, creation_time FROM buckets WHERE name=?");
  s.BindText(name);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return BucketInfo{s.Text(0), s.Real(1)};
  if (rc == SQLITE_DONE) return internal::NoSuchBucket();
  return s.Fail("head bucket");
}

Status FilesystemStore::DeleteBucket(const std::string& name) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  INFERD_RETURN_IF_ERROR(CheckBucketLocked(name));
  for (const char* sql : {"SELECT 1 FROM objects WHERE bucket=? LIMIT 1",
                          "SELECT 1 FROM uploads WHERE bucket=? LIMIT 1"}) {
    Stmt s(db_, sql);
    s.BindText(name);
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      return Error(Errc::kInvalidState, "The bucket you tried to delete is not empty",
                   "BucketNotEmpty");
    }
    if (rc != SQLITE_DONE) return s.Fail("delete bucket");
  }
  Stmt del(db_, "DELETE FROM buckets WHERE name=?");
  del.BindText(name);
  INFERD_RETURN_IF_ERROR(del.Run("delete bucket"));
  INFERD_RETURN_IF_ERROR(tx.Commit());
  // Still under mu_ (see CommitObject): the folder holds at most in-flight temporary files, so
  // this is quick, and a put racing with the delete finds its staged file gone.
  std::error_code ec;
  fs::remove_all(data_dir_ / name, ec);
  return OkStatus();
}

Result<std::vector<BucketInfo>> FilesystemStore::ListBuckets() {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT name, creation_time FROM buckets ORDER BY name");
  std::vector<BucketInfo> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Real(1)});
  if (rc != SQLITE_DONE) return s.Fail("list buckets");
  return out;
}

}  // namespace inferd::store
