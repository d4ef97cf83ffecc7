// Test-only helpers every component's tests share: a temporary directory removed at the end,
// the path of a built binary (overridable from the environment), and polling for a condition.
// Header-only; link `inferd_test_support` (an INTERFACE library) to declare the use.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>

namespace inferd::test_support {

// A fresh directory (mode 0700) under the system temp dir, removed with its contents by the
// destructor.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "inferd-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The path of a binary: the environment variable `env_var` if set and not empty, else
// `built_path` (the build's own, usually a compile definition naming $<TARGET_FILE:...>).
inline std::string BinaryPath(const char* env_var, const char* built_path) {
  const char* v = std::getenv(env_var);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(built_path);
}

// Calls `cond` every `poll` until it returns true or `limit` passes; returns its last answer
// (it is asked once more at the deadline, so a zero limit asks exactly once).
template <typename F>
bool WaitFor(F&& cond, std::chrono::milliseconds limit = std::chrono::seconds(20),
             std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(poll);
  }
  return cond();
}

}  // namespace inferd::test_support
