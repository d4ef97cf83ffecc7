// FilesystemStore: object operations (put, head, get, delete, list). See filesystem_store.h.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/ids.h"
#include "db/group_commit.h"
#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/filesystem_store.h"
#include "store/store_internal.h"

namespace inferd::store {

namespace fs = std::filesystem;
using db::Stmt;

namespace {

// Columns read by ReadObject, in order. Get also reads `inline_data` after them (column 7).
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

// Returns the bytes [first, first + length) of an inline object: a copy, so the reader does not
// depend on the row (a later overwrite or delete) once Get returned.
class MemoryReader final : public ObjectReader {
 public:
  MemoryReader(std::string bytes, ObjectInfo info, uint64_t first)
      : bytes_(std::move(bytes)), info_(std::move(info)), first_(first) {}

  const ObjectInfo& info() const override { return info_; }
  uint64_t first() const override { return first_; }
  uint64_t length() const override { return bytes_.size(); }

  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, bytes_.size() - pos_);
    std::memcpy(buf, bytes_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string bytes_;
  ObjectInfo info_;
  uint64_t first_;
  size_t pos_ = 0;
};

// Reads `body` into `out` until its end or until `out` holds `limit` bytes. true: the body ended
// (everything is in `out`); false: there may be more. Reads at most `chunk` bytes at a time and
// grows `out` as bytes arrive, so a small body costs a small buffer.
Result<bool> ReadUpTo(http::ByteSource& body, size_t limit, size_t chunk, std::string& out) {
  out.clear();
  while (out.size() < limit) {
    size_t len = out.size();
    out.resize(len + std::min({chunk, limit - len, std::max<size_t>(len, 4096)}));
    auto n = body.Read(out.data() + len, out.size() - len);
    if (!n.ok()) return std::move(n).error();
    out.resize(len + *n);
    if (*n == 0) return true;
  }
  return false;
}

// The bytes a put already buffered, then the rest of its body.
class PrefixedSource final : public http::ByteSource {
 public:
  PrefixedSource(std::string_view prefix, http::ByteSource& rest) : prefix_(prefix), rest_(rest) {}
  Result<size_t> Read(char* buf, size_t n) override {
    return prefix_.empty() ? rest_.Read(buf, n) : prefix_.Read(buf, n);
  }

 private:
  http::StringSource prefix_;
  http::ByteSource& rest_;
};

Error InvalidRange(uint64_t size) {
  return Error(Errc::kRangeNotSatisfiable,
               "The requested range is not satisfiable: the object is " + std::to_string(size) +
                   " bytes long.",
               "InvalidRange");
}

}  // namespace

// ---- objects ----

Result<FilesystemStore::StagedFile> FilesystemStore::StageObjectFile(const std::string& bucket,
                                                                     http::ByteSource& body,
                                                                     bool with_md5,
                                                                     const PutOptions& options) {
  StagedFile staged;
  staged.id = NewUuid();
  fs::path dir = ObjectDir(bucket, staged.id);
  INFERD_RETURN_IF_ERROR(internal::EnsureDir(dir, data_dir_, options_.fsync));
  fs::path tmp = dir / (staged.id + internal::kTmpSuffix);
  auto written = internal::WriteNewFile(tmp, body, options_.buffer_bytes, with_md5, options_.fsync);
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
  if (auto st = SyncDir(dir); !st.ok()) {
    internal::RemoveQuietly(staged.path);
    return std::move(st).error();
  }
  return staged;
}

uint64_t FilesystemStore::RowBody::size() const { return file ? file->written.size : bytes.size(); }

Result<ObjectInfo> FilesystemStore::CommitObject(const std::string& bucket, const std::string& key,
                                                 const ObjectAttributes& attributes,
                                                 const RowBody& body, const std::string& etag,
                                                 const std::string& upload_id) {
  ObjectInfo info;
  info.bucket = bucket;
  info.key = key;
  info.size = body.size();
  info.etag = etag;
  info.attributes = attributes;
  const std::string headers = internal::HeadersToJson(attributes.headers);
  std::string old_file;
  // Runs on the group commit's leader thread with mu_ held, in the batch's transaction.
  auto work = [&]() -> Status {
    old_file.clear();
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(*db_, bucket));
    // DeleteBucket removes the bucket's folder under mu_: if it ran (and the bucket was created
    // again) since the file was staged, the file is gone and the put lost its bucket.
    if (body.file && ::access(body.file->path.c_str(), F_OK) != 0) return internal::NoSuchBucket();
    if (!upload_id.empty()) {
      auto upload = FindUploadLocked(*db_, bucket, key, upload_id);
      if (!upload.ok()) return std::move(upload).error();
    }
    Stmt old(*db_, "SELECT file FROM objects WHERE bucket=? AND key=?");
    old.Bind(bucket).BindBlob(key);
    int rc = old.Step();
    if (rc == Stmt::kRow) {
      old_file = old.Text(0);
    } else if (rc != Stmt::kDone) {
      return old.Fail("put");
    }
    info.last_modified = Now();
    Stmt ins(*db_,
             "INSERT OR REPLACE INTO objects (bucket, key, size, etag, last_modified, "
             "content_type, headers, file, inline_data) VALUES (?,?,?,?,?,?,?,?,?)");
    ins.Bind(bucket).BindBlob(key).Bind(static_cast<int64_t>(info.size)).Bind(etag);
    ins.Bind(info.last_modified).Bind(attributes.content_type).Bind(headers);
    if (body.file) {
      ins.Bind(body.file->id).BindNull();
    } else {
      ins.Bind("").BindBlob(body.bytes);
    }
    INFERD_RETURN_IF_ERROR(ins.Run("put"));
    if (!upload_id.empty()) {
      Stmt parts(*db_, "DELETE FROM parts WHERE upload_id=?");
      parts.Bind(upload_id);
      INFERD_RETURN_IF_ERROR(parts.Run("complete upload"));
      Stmt up(*db_, "DELETE FROM uploads WHERE upload_id=?");
      up.Bind(upload_id);
      INFERD_RETURN_IF_ERROR(up.Run("complete upload"));
    }
    return OkStatus();
  };
  if (Status st = commits_->Run(work); !st.ok()) {
    if (body.file) internal::RemoveQuietly(body.file->path);
    return std::move(st).error();
  }
  if (!old_file.empty() && (!body.file || old_file != body.file->id)) {
    internal::RemoveQuietly(ObjectPath(bucket, old_file));
  }
  if (!upload_id.empty()) {
    std::error_code ec;
    fs::remove_all(UploadDir(upload_id), ec);
  }
  return info;
}

Result<ObjectInfo> FilesystemStore::Put(const std::string& bucket, const std::string& key,
                                        const ObjectAttributes& attributes, http::ByteSource& body,
                                        const PutOptions& options) {
  INFERD_RETURN_IF_ERROR(internal::ValidateKey(key));
  // S3 reports a missing bucket before anything wrong with the body: the bucket is read first
  // when the body failed, and before a long body is staged. A short body's only check is its
  // commit's (one index read fewer for every small object, a result object among them).
  auto check_bucket = [&] {
    return ReadRows([&](db::Database& db) { return CheckBucketLocked(db, bucket); });
  };
  auto bucket_first = [&](Error body_error) -> Error {
    Status bucket_ok = check_bucket();
    return bucket_ok.ok() ? std::move(body_error) : std::move(bucket_ok).error();
  };
  // Buffer up to inline_max_bytes + 1 bytes: a body that ended by then lives in its row.
  std::string head;
  if (options_.inline_max_bytes > 0) {
    auto ended = ReadUpTo(body, options_.inline_max_bytes + 1, options_.buffer_bytes, head);
    if (!ended.ok()) return bucket_first(std::move(ended).error());
    if (*ended) {
      internal::Md5 md5;
      md5.Update(head.data(), head.size());
      std::string etag = internal::HexEncode(md5.Final());
      if (options.before_commit) {
        Status checked = options.before_commit();
        if (!checked.ok()) return bucket_first(std::move(checked).error());
      }
      return CommitObject(bucket, key, attributes, RowBody{nullptr, head}, etag,
                          /*upload_id=*/"");
    }
  }
  INFERD_RETURN_IF_ERROR(check_bucket());  // before a long body is staged
  PrefixedSource rest(head, body);
  auto staged = StageObjectFile(bucket, rest, /*with_md5=*/true, options);
  if (!staged.ok()) return std::move(staged).error();
  return CommitObject(bucket, key, attributes, RowBody{&*staged, {}},
                      internal::HexEncode(staged->written.md5), /*upload_id=*/"");
}

// An object's index row as Head and Get read it.
struct FilesystemStore::ObjectRow {
  ObjectInfo info;
  std::string file;                  // the data file's id; '' for an inline object
  std::optional<std::string> bytes;  // an inline object's bytes, when asked for
};

Result<FilesystemStore::ObjectRow> FilesystemStore::FindObjectLocked(db::Database& db,
                                                                     const std::string& bucket,
                                                                     const std::string& key,
                                                                     bool with_bytes) {
  // The object's row first: a row is proof of its bucket (a bucket is deleted only when empty),
  // so the bucket is looked up (its name checked) only to tell NoSuchBucket from NoSuchKey.
  Stmt s(db, std::string("SELECT ") + kObjectColumns + (with_bytes ? ", inline_data" : "") +
                 " FROM objects WHERE bucket=? AND key=?");
  s.Bind(bucket).BindBlob(key);
  int rc = s.Step();
  if (rc == Stmt::kDone) {
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(db, bucket));
    return internal::NoSuchKey();
  }
  if (rc != Stmt::kRow) return s.Fail("object lookup");
  ObjectRow row;
  row.info = ReadObject(s, bucket, &row.file);
  if (with_bytes && row.file.empty()) row.bytes = s.Blob(7);
  return row;
}

Result<ObjectInfo> FilesystemStore::Head(const std::string& bucket, const std::string& key) {
  return ReadRows([&](db::Database& db) -> Result<ObjectInfo> {
    auto row = FindObjectLocked(db, bucket, key, /*with_bytes=*/false);
    if (!row.ok()) return std::move(row).error();
    return std::move(row->info);
  });
}

Result<std::unique_ptr<ObjectReader>> FilesystemStore::Get(const std::string& bucket,
                                                           const std::string& key,
                                                           std::optional<RangeSpec> range) {
  auto cannot_open = [&](const Error& e) {
    return Error(Errc::kInternal, "object store: cannot open the data of \"" + bucket + "/" + key +
                                      "\": " + e.message);
  };
  // The row is read on the read connection, which does not hold off commits: an overwrite or
  // delete may commit and unlink the row's file before it is opened. ENOENT therefore means
  // "read the row again" (a new snapshot, holding that commit). The last attempt reads the row
  // and opens the file under mu_, where no commit can run in between: a replaced file is
  // unlinked only after its commit, so there ENOENT means the file is missing (kInternal).
  ObjectRow row;
  internal::UniqueFd fd;
  for (int attempt = 1;; ++attempt) {
    if (attempt <= kGetReadAttempts) {
      auto found = ReadRows(
          [&](db::Database& db) { return FindObjectLocked(db, bucket, key, /*with_bytes=*/true); });
      if (!found.ok()) return std::move(found).error();
      row = std::move(found).value();
      if (row.bytes) break;
      if (get_before_open_for_test_) get_before_open_for_test_();
      auto opened = internal::OpenForRead(ObjectPath(bucket, row.file));
      if (opened.ok()) {
        fd = std::move(opened).value();
        break;
      }
      if (opened.error().code != Errc::kNotFound) return cannot_open(opened.error());
      continue;  // replaced or deleted since the row was read
    }
    std::lock_guard lock(mu_);
    auto found = FindObjectLocked(*db_, bucket, key, /*with_bytes=*/true);
    if (!found.ok()) return std::move(found).error();
    row = std::move(found).value();
    if (!row.bytes) {
      auto opened = internal::OpenForRead(ObjectPath(bucket, row.file));
      if (!opened.ok()) return cannot_open(opened.error());
      fd = std::move(opened).value();
    }
    break;
  }
  ObjectInfo& info = row.info;
  std::optional<std::string>& bytes = row.bytes;
  if (bytes && bytes->size() != info.size) {
    return Error(Errc::kInternal, "object store: the index entry of \"" + bucket + "/" + key +
                                      "\" holds " + std::to_string(bytes->size()) + " bytes, not " +
                                      std::to_string(info.size));
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
  if (bytes) {
    if (first != 0 || length != size) *bytes = bytes->substr(first, length);
    return std::unique_ptr<ObjectReader>(
        std::make_unique<MemoryReader>(std::move(*bytes), std::move(info), first));
  }
  return std::unique_ptr<ObjectReader>(
      std::make_unique<FileReader>(std::move(fd), std::move(info), first, length));
}

Status FilesystemStore::Delete(const std::string& bucket, const std::string& key) {
  std::string file;  // '' for an inline object: nothing to unlink
  auto work = [&]() -> Status {
    file.clear();
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(*db_, bucket));
    Stmt s(*db_, "DELETE FROM objects WHERE bucket=? AND key=? RETURNING file");
    s.Bind(bucket).BindBlob(key);
    int rc = s.Step();
    if (rc == Stmt::kRow) {
      file = s.Text(0);
      rc = s.Step();
    }
    if (rc != Stmt::kDone) return s.Fail("delete");
    return OkStatus();
  };
  INFERD_RETURN_IF_ERROR(commits_->Run(work));
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

  // One read transaction: every page of the scan comes from the same snapshot.
  return ReadIndex([&](db::Database& db) -> Result<ListResult> {
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(db, bucket));
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
    Stmt s(db, sql);
    if (!s.ok()) return s.Fail("list");

    size_t count = 0;
    std::string last;
    bool done = false;
    while (!done) {
      s.Reset();
      s.Bind(bucket).BindBlob(lower);
      if (upper) s.BindBlob(*upper);
      s.Bind(static_cast<int64_t>(max_keys - count + 1));  // one more tells "truncated"
      bool seek = false;
      int rc;
      while ((rc = s.Step()) == Stmt::kRow) {
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
      if (rc != Stmt::kRow && rc != Stmt::kDone) return s.Fail("list");
      if (!seek) done = true;
    }
    if (out.truncated) out.next_start_after = last;
    return out;
  });
}

}  // namespace inferd::store
