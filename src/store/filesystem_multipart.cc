// FilesystemStore: multipart uploads. See filesystem_store.h.
//
// Index rows: uploads(upload_id, bucket, key, initiated, attributes) and parts(upload_id,
// part_number, size, etag, last_modified, file). Part bytes live in uploads/<upload id>/<file>,
// written like object files (temp name, fsync, rename, fsync folder, then the row).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <system_error>

#include "common/ids.h"
#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/filesystem_store.h"
#include "store/store_internal.h"

namespace inferd::store {

namespace fs = std::filesystem;
using db::Stmt;
using db::Transaction;

namespace {

// Upload ids are our UUIDs; anything else cannot name an upload (and never reaches a path).
bool PlausibleUploadId(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
  });
}

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string out(etag);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct PartRow {
  PartInfo info;
  std::string file;
};

}  // namespace

Result<FilesystemStore::UploadRow> FilesystemStore::FindUploadLocked(db::Database& db,
                                                                     const std::string& bucket,
                                                                     const std::string& key,
                                                                     const std::string& upload_id) {
  INFERD_RETURN_IF_ERROR(CheckBucketLocked(db, bucket));
  if (!PlausibleUploadId(upload_id)) return internal::NoSuchUpload();
  Stmt s(db,
         "SELECT initiated, content_type, headers FROM uploads "
         "WHERE upload_id=? AND bucket=? AND key=?");
  s.Bind(upload_id).Bind(bucket).BindBlob(key);
  int rc = s.Step();
  if (rc == Stmt::kDone) return internal::NoSuchUpload();
  if (rc != Stmt::kRow) return s.Fail("upload lookup");
  UploadRow row;
  row.bucket = bucket;
  row.key = key;
  row.upload_id = upload_id;
  row.initiated = s.Real(0);
  row.attributes.content_type = s.Text(1);
  row.attributes.headers = internal::HeadersFromJson(s.Text(2));
  return row;
}

Result<std::string> FilesystemStore::CreateMultipartUpload(const std::string& bucket,
                                                           const std::string& key,
                                                           const ObjectAttributes& attributes) {
  INFERD_RETURN_IF_ERROR(internal::ValidateKey(key));
  // Fail early (without waiting for a commit); the insert below checks again under mu_.
  INFERD_RETURN_IF_ERROR(ReadRows([&](db::Database& db) { return CheckBucketLocked(db, bucket); }));
  std::string upload_id = NewUuid();
  fs::path dir = UploadDir(upload_id);
  INFERD_RETURN_IF_ERROR(internal::EnsureDir(dir, uploads_dir_, options_.fsync));
  std::lock_guard lock(mu_);
  Status st = CheckBucketLocked(*db_, bucket);
  if (st.ok()) {
    Stmt s(*db_,
           "INSERT INTO uploads (upload_id, bucket, key, initiated, content_type, headers) "
           "VALUES (?,?,?,?,?,?)");
    s.Bind(upload_id).Bind(bucket).BindBlob(key).Bind(Now());
    s.Bind(attributes.content_type).Bind(internal::HeadersToJson(attributes.headers));
    st = s.Run("create multipart upload");
  }
  if (!st.ok()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return std::move(st).error();
  }
  return upload_id;
}

Result<PartInfo> FilesystemStore::UploadPart(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id, int part_number,
                                             http::ByteSource& body, const PutOptions& options) {
  if (part_number < 1 || part_number > kMaxParts) {
    return Error(Errc::kValidation,
                 "Part number must be an integer between 1 and 10000, inclusive.",
                 "InvalidArgument");
  }
  // Checks without waiting for a commit (ReadRows); the part's row is written under mu_
  // after checking again.
  auto upload_found = [&] {
    return ReadRows([&](db::Database& db) -> Status {
      auto upload = FindUploadLocked(db, bucket, key, upload_id);
      if (!upload.ok()) return std::move(upload).error();
      return OkStatus();
    });
  };
  INFERD_RETURN_IF_ERROR(upload_found());
  // The upload's folder exists from CreateMultipartUpload until the upload ends; it is never
  // re-created here, so a part racing with an abort fails instead of leaving files behind.
  fs::path dir = UploadDir(upload_id);
  std::string id = NewUuid();
  fs::path tmp = dir / (id + internal::kTmpSuffix);
  fs::path final_path = dir / id;
  auto upload_gone = [&] { return !upload_found().ok(); };
  auto written =
      internal::WriteNewFile(tmp, body, options_.buffer_bytes, /*with_md5=*/true, options_.fsync);
  if (!written.ok()) {
    if (written.error().code == Errc::kInternal && upload_gone()) return internal::NoSuchUpload();
    return std::move(written).error();
  }
  if (options.before_commit) {
    if (auto st = options.before_commit(); !st.ok()) {
      internal::RemoveQuietly(tmp);
      return std::move(st).error();
    }
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    internal::RemoveQuietly(tmp);
    if (upload_gone()) return internal::NoSuchUpload();
    return internal::IoError("rename into", final_path, err);
  }
  if (auto st = SyncDir(dir); !st.ok()) {
    internal::RemoveQuietly(final_path);
    return std::move(st).error();
  }

  PartInfo part;
  part.part_number = part_number;
  part.etag = internal::HexEncode(written->md5);
  part.size = written->size;
  std::string old_file;
  {
    std::lock_guard lock(mu_);
    Status st = [&]() -> Status {
      Transaction tx(*db_);
      INFERD_RETURN_IF_ERROR(tx.status());
      auto upload = FindUploadLocked(*db_, bucket, key, upload_id);
      if (!upload.ok()) return std::move(upload).error();
      Stmt old(*db_, "SELECT file FROM parts WHERE upload_id=? AND part_number=?");
      old.Bind(upload_id).Bind(part_number);
      int rc = old.Step();
      if (rc == Stmt::kRow) {
        old_file = old.Text(0);
      } else if (rc != Stmt::kDone) {
        return old.Fail("upload part");
      }
      part.last_modified = Now();
      Stmt ins(*db_,
               "INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, last_modified, "
               "file) VALUES (?,?,?,?,?,?)");
      ins.Bind(upload_id).Bind(part_number).Bind(static_cast<int64_t>(part.size));
      ins.Bind(part.etag).Bind(part.last_modified).Bind(id);
      INFERD_RETURN_IF_ERROR(ins.Run("upload part"));
      return tx.Commit();
    }();
    if (!st.ok()) {
      internal::RemoveQuietly(final_path);
      return std::move(st).error();
    }
  }
  if (!old_file.empty()) internal::RemoveQuietly(dir / old_file);
  return part;
}

Result<ObjectInfo> FilesystemStore::CompleteMultipartUpload(
    const std::string& bucket, const std::string& key, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  UploadRow upload;
  std::vector<internal::UniqueFd> fds;
  std::string etag_input;  // the binary MD5s of the parts, in order
  {
    // On the write connection: the part files are opened under mu_ below.
    std::lock_guard lock(mu_);
    auto found = FindUploadLocked(*db_, bucket, key, upload_id);
    if (!found.ok()) return std::move(found).error();
    upload = std::move(found).value();
    if (parts.empty()) {
      return Error(Errc::kValidation,
                   "The XML you provided was not well-formed or did not validate against our "
                   "published schema: list at least one part.",
                   "MalformedXML");
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].part_number <= parts[i - 1].part_number) {
        return Error(Errc::kValidation,
                     "The list of parts was not in ascending order. Parts must be ordered by "
                     "part number.",
                     "InvalidPartOrder");
      }
    }
    std::map<int, PartRow> stored;
    Stmt s(*db_,
           "SELECT part_number, size, etag, last_modified, file FROM parts WHERE upload_id=?");
    s.Bind(upload_id);
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) {
      PartRow row;
      row.info.part_number = static_cast<int>(s.Int(0));
      row.info.size = static_cast<uint64_t>(s.Int(1));
      row.info.etag = s.Text(2);
      row.info.last_modified = s.Real(3);
      row.file = s.Text(4);
      stored.emplace(row.info.part_number, std::move(row));
    }
    if (rc != Stmt::kDone) return s.Fail("complete multipart upload");
    std::vector<const PartRow*> chosen;
    for (const auto& p : parts) {
      auto it = stored.find(p.part_number);
      if (it == stored.end() || Unquote(p.etag) != it->second.info.etag) {
        return Error(Errc::kValidation,
                     "One or more of the specified parts could not be found. The part may not "
                     "have been uploaded, or the specified entity tag may not match the part's "
                     "entity tag. (part " +
                         std::to_string(p.part_number) + ")",
                     "InvalidPart");
      }
      chosen.push_back(&it->second);
    }
    for (size_t i = 0; i + 1 < chosen.size(); ++i) {
      if (chosen[i]->info.size < options_.min_part_size) {
        return Error(Errc::kValidation,
                     "Your proposed upload is smaller than the minimum allowed object size: "
                     "part " +
                         std::to_string(chosen[i]->info.part_number) + " is " +
                         std::to_string(chosen[i]->info.size) +
                         " bytes; every part but the last must be at least " +
                         std::to_string(options_.min_part_size) + " bytes.",
                     "EntityTooSmall");
      }
    }
    // Opened under mu_ so a concurrent re-upload of a part cannot unlink it first: the old file
    // is unlinked only after the part's new row is committed, which needs mu_.
    for (const PartRow* row : chosen) {
      auto fd = internal::OpenForRead(UploadDir(upload_id) / row->file);
      if (!fd.ok()) {
        return Error(Errc::kInternal, "object store: cannot open part " +
                                          std::to_string(row->info.part_number) + " of upload " +
                                          upload_id + ": " + fd.error().message);
      }
      fds.push_back(std::move(fd).value());
      etag_input += internal::HexDecode(row->info.etag).value_or(std::string());
    }
  }
  internal::Md5 md5;
  md5.Update(etag_input.data(), etag_input.size());
  std::string etag = internal::HexEncode(md5.Final()) + "-" + std::to_string(parts.size());

  internal::ConcatSource source(std::move(fds));
  auto staged = StageObjectFile(bucket, source, /*with_md5=*/false, {});
  if (!staged.ok()) return std::move(staged).error();
  return CommitObject(bucket, key, upload.attributes, RowBody{&*staged, {}}, etag, upload_id);
}

Status FilesystemStore::AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id) {
  {
    std::lock_guard lock(mu_);
    Transaction tx(*db_);
    INFERD_RETURN_IF_ERROR(tx.status());
    auto upload = FindUploadLocked(*db_, bucket, key, upload_id);
    if (!upload.ok()) return std::move(upload).error();
    for (const char* sql :
         {"DELETE FROM parts WHERE upload_id=?", "DELETE FROM uploads WHERE upload_id=?"}) {
      Stmt s(*db_, sql);
      s.Bind(upload_id);
      INFERD_RETURN_IF_ERROR(s.Run("abort multipart upload"));
    }
    INFERD_RETURN_IF_ERROR(tx.Commit());
  }
  std::error_code ec;
  fs::remove_all(UploadDir(upload_id), ec);
  return OkStatus();
}

Result<std::vector<PartInfo>> FilesystemStore::ListParts(const std::string& bucket,
                                                         const std::string& key,
                                                         const std::string& upload_id) {
  return ReadIndex([&](db::Database& db) -> Result<std::vector<PartInfo>> {
    auto upload = FindUploadLocked(db, bucket, key, upload_id);
    if (!upload.ok()) return std::move(upload).error();
    Stmt s(db,
           "SELECT part_number, size, etag, last_modified FROM parts WHERE upload_id=? "
           "ORDER BY part_number");
    s.Bind(upload_id);
    std::vector<PartInfo> out;
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) {
      PartInfo p;
      p.part_number = static_cast<int>(s.Int(0));
      p.size = static_cast<uint64_t>(s.Int(1));
      p.etag = s.Text(2);
      p.last_modified = s.Real(3);
      out.push_back(std::move(p));
    }
    if (rc != Stmt::kDone) return s.Fail("list parts");
    return out;
  });
}

Result<std::vector<MultipartUploadInfo>> FilesystemStore::ListMultipartUploads(
    const std::string& bucket) {
  return ReadIndex([&](db::Database& db) -> Result<std::vector<MultipartUploadInfo>> {
    INFERD_RETURN_IF_ERROR(CheckBucketLocked(db, bucket));
    Stmt s(db,
           "SELECT key, upload_id, initiated FROM uploads WHERE bucket=? "
           "ORDER BY key, initiated, upload_id");
    s.Bind(bucket);
    std::vector<MultipartUploadInfo> out;
    int rc;
    while ((rc = s.Step()) == Stmt::kRow) out.push_back({s.Blob(0), s.Text(1), s.Real(2)});
    if (rc != Stmt::kDone) return s.Fail("list multipart uploads");
    return out;
  });
}

}  // namespace inferd::store
