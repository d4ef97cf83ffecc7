// Pieces shared by filesystem_store.cc and filesystem_multipart.cc (internal to src/store).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/result.h"
#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/filesystem_store.h"

namespace inferd::store {

// An in-progress multipart upload as the index holds it.
struct FilesystemStore::UploadRow {
  std::string bucket;
  std::string key;
  std::string upload_id;
  double initiated = 0;
  ObjectAttributes attributes;
};

// A data file written, fsynced and renamed into place, not yet referenced by the index.
struct FilesystemStore::StagedFile {
  std::string id;
  std::filesystem::path path;
  internal::WrittenFile written;
};

namespace internal {

// Suffix of files being written; Open() removes them.
inline constexpr const char* kTmpSuffix = ".tmp";

inline bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Error NoSuchBucket();
Error NoSuchKey();
Error NoSuchUpload();

// Keys are 1..1024 bytes.
Status ValidateKey(const std::string& key);

// Attribute headers ↔ the index's JSON column (an array of [name, value] pairs; values may hold
// any bytes).
std::string HeadersToJson(const std::vector<http::Header>& headers);
std::vector<http::Header> HeadersFromJson(std::string_view json);

}  // namespace internal

template <typename Read>
auto FilesystemStore::ReadIndex(Read&& read) -> decltype(read(std::declval<db::Database&>())) {
  std::lock_guard lock(read_mu_);
  db::ReadTransaction tx(*read_db_);
  if (!tx.status().ok()) return tx.status().error();
  return read(*read_db_);
}

template <typename Read>
auto FilesystemStore::ReadRows(Read&& read) -> decltype(read(std::declval<db::Database&>())) {
  std::unique_lock write(mu_, std::try_to_lock);
  if (!write.owns_lock()) return ReadIndex(std::forward<Read>(read));
  db::ReadTransaction tx(*db_);
  if (!tx.status().ok()) return tx.status().error();
  return read(*db_);
}

}  // namespace inferd::store
