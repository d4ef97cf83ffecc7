#include "store/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace inferd::store::internal {

namespace fs = std::filesystem;

Error IoError(std::string_view what, const fs::path& path, int err) {
  return Error(Errc::kInternal, std::string("object store: cannot ") + std::string(what) + " " +
                                    path.string() + ": " + std::strerror(err));
}

Result<UniqueFd> OpenForRead(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Error(Errc::kNotFound, "missing file " + path.string());
    return IoError("open", path, err);
  }
  return UniqueFd(fd);
}

Result<size_t> PreadFull(int fd, char* buf, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error(Errc::kInternal,
                   std::string("object store: read failed: ") + std::strerror(errno));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

Status FsyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory", dir, errno);
  UniqueFd owned(fd);
  if (::fsync(fd) != 0) return IoError("fsync directory", dir, errno);
  return OkStatus();
}

Status EnsureDir(const fs::path& dir, const fs::path& stop_at, bool sync) {
  if (dir == stop_at || dir.empty()) return OkStatus();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return OkStatus();
    return Error(Errc::kInternal, "object store: " + dir.string() + " is not a directory");
  }
  INFERD_RETURN_IF_ERROR(EnsureDir(dir.parent_path(), stop_at, sync));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return IoError("create", dir, errno);
  return sync ? FsyncDir(dir.parent_path()) : OkStatus();
}

Md5::Md5() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr); }
Md5::~Md5() { EVP_MD_CTX_free(ctx_); }
void Md5::Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
std::string Md5::Final() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

Result<WrittenFile> WriteNewFile(const fs::path& path, http::ByteSource& body, size_t buffer_bytes,
                                 bool with_md5, bool sync) {
  int raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (raw < 0) return IoError("create", path, errno);
  UniqueFd fd(raw);
  auto fail = [&](Error error) -> Error {
    fd.Reset();
    RemoveQuietly(path);
    return error;
  };
  std::unique_ptr<char[]> buf(new char[buffer_bytes]);
  std::optional<Md5> md5;
  if (with_md5) md5.emplace();
  WrittenFile out;
  for (;;) {
    auto n = body.Read(buf.get(), buffer_bytes);
    if (!n.ok()) return fail(std::move(n).error());
    if (*n == 0) break;
    if (md5) md5->Update(buf.get(), *n);
    size_t done = 0;
    while (done < *n) {
      ssize_t w = ::write(fd.get(), buf.get() + done, *n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail(IoError("write", path, errno));
      }
      done += static_cast<size_t>(w);
    }
    out.size += *n;
  }
  if (sync && ::fsync(fd.get()) != 0) return fail(IoError("fsync", path, errno));
  if (::close(fd.Release()) != 0) return fail(IoError("close", path, errno));
  if (md5) out.md5 = md5->Final();
  return out;
}

Result<size_t> ConcatSource::Read(char* buf, size_t n) {
  while (index_ < fds_.size()) {
    auto r = PreadFull(fds_[index_].get(), buf, n, offset_);
    if (!r.ok()) return r;
    if (*r > 0) {
      offset_ += *r;
      return r;
    }
    fds_[index_].Reset();  // done with this file
    ++index_;
    offset_ = 0;
  }
  return size_t{0};
}

void RemoveQuietly(const fs::path& path) { ::unlink(path.c_str()); }

}  // namespace inferd::store::internal
