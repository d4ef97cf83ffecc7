// DataDirLock: one inferd per data dir. `inferd serve` holds an exclusive flock on
// <data-dir>/inferd.lock while it runs; a second server on the same data dir is refused with the
// first one's pid instead of sharing its queue, objects and notifications (its databases are
// locked to the first process too: db::Sharing::kThisProcess). The kernel drops the lock when
// the process ends, however it ends, so a crash leaves nothing to clean up.
#pragma once

#include <filesystem>
#include <utility>

#include "common/result.h"
#include "common/unique_fd.h"

namespace inferd::app {

class DataDirLock {
 public:
  // Takes the lock, or fails at once (kInvalidState, naming the holder's pid when it wrote it).
  static Result<DataDirLock> Acquire(const std::filesystem::path& data_dir);

  DataDirLock(DataDirLock&&) noexcept = default;
  DataDirLock& operator=(DataDirLock&&) = delete;
  DataDirLock(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

}  // namespace inferd::app
