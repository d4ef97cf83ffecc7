// File helpers for FilesystemStore (internal to src/store): owned descriptors, durable writes of
// streamed bodies into new files, directory fsync, MD5/hex. Not part of the store's API.
//
// Every function blocks on disk I/O; none holds state, so all are thread-safe. Failures of the
// environment (disk full, permissions) come back as Errc::kInternal with the path and errno text.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "http/body_pipe.h"

namespace inferd::store::internal {

using ::inferd::UniqueFd;  // common/unique_fd.h

// kInternal error naming the operation, the path and errno's text.
Error IoError(std::string_view what, const std::filesystem::path& path, int err);

// Opens an existing file read-only. ENOENT → kNotFound (so callers can map it), else kInternal.
Result<UniqueFd> OpenForRead(const std::filesystem::path& path);

// Reads up to `n` bytes at `offset` (retrying EINTR and short reads until n or end of file).
Result<size_t> PreadFull(int fd, char* buf, size_t n, uint64_t offset);

// fsync of a directory, making renames and unlinks inside it durable.
Status FsyncDir(const std::filesystem::path& dir);

// Creates `dir` and any missing parents up to (not including) `stop_at`; with `sync`, fsyncs each
// parent whose entries changed, so a later rename into `dir` survives a crash.
Status EnsureDir(const std::filesystem::path& dir, const std::filesystem::path& stop_at, bool sync);

// Incremental MD5 (OpenSSL EVP).
class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Update(const void* data, size_t n);
  // The 16-byte binary digest. Call once.
  std::string Final();

 private:
  EVP_MD_CTX* ctx_;
};

using ::inferd::HexEncode;  // common/strings.h
// nullopt unless `hex` is an even number of hex digits.
std::optional<std::string> HexDecode(std::string_view hex);

struct WrittenFile {
  uint64_t size = 0;
  std::string md5;  // binary digest; empty unless requested
};

// Streams `body` to its end into a new file at `path` (created exclusively, mode 0644), computing
// the MD5 when `with_md5`, then (with `sync`) fsyncs the file, not its directory. `buffer_bytes`
// is the only memory used for the bytes. On any failure (the body's error, or an I/O error) the
// file is removed and the error returned.
Result<WrittenFile> WriteNewFile(const std::filesystem::path& path, http::ByteSource& body,
                                 size_t buffer_bytes, bool with_md5, bool sync);

// A ByteSource over several open files, read one after another from their start.
class ConcatSource final : public http::ByteSource {
 public:
  explicit ConcatSource(std::vector<UniqueFd> fds) : fds_(std::move(fds)) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::vector<UniqueFd> fds_;
  size_t index_ = 0;
  uint64_t offset_ = 0;
};

// Removes a file, ignoring errors (used for clean-up on paths that already failed).
void RemoveQuietly(const std::filesystem::path& path);

}  // namespace inferd::store::internal
