#include "app/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace inferd::app {

namespace {

constexpr const char* kLockFile = "inferd.lock";

// The pid the holder wrote ("" if none could be read).
std::string HolderPid(int fd) {
  char buf[32];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string pid(buf, static_cast<size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

}  // namespace

Result<DataDirLock> DataDirLock::Acquire(const std::filesystem::path& data_dir) {
  const std::filesystem::path path = data_dir / kLockFile;
  UniqueFd owned(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  const int fd = owned.get();
  if (!owned.valid()) {
    return Error(Errc::kUnavailable, "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string message;
    if (err == EWOULDBLOCK) {
      const std::string pid = HolderPid(fd);
      message = "data dir " + data_dir.string() + " is in use by another inferd" +
                (pid.empty() ? "" : " (pid " + pid + ")") +
                ": stop it first, or give this one its own --data-dir";
    } else {
      message = "cannot lock " + path.string() + ": " + std::strerror(err);
    }
    return Error(err == EWOULDBLOCK ? Errc::kInvalidState : Errc::kUnavailable, message);
  }
  // Who holds it, for a refused server's message. Best effort: the lock is what counts.
  const std::string pid = std::to_string(::getpid()) + "\n";
  const bool noted = ::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) >= 0;
  (void)noted;
  return DataDirLock(std::move(owned));
}

}  // namespace inferd::app
