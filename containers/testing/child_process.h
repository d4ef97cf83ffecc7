// ChildProcess: runs a model server binary for an end-to-end test. Its stdout and stderr go to a
// log file the test can read (the server prints "... listening on HOST:PORT" there); the
// destructor kills it if it still runs. Test-only code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/testing/test_support.h"

namespace inferd::containers::testing {

class ChildProcess {
 public:
  // Starts `binary args...` with the test's environment plus `env` (an empty value unsets).
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The port from the "listening on HOST:PORT" line, once printed; nullopt if the process exits
  // first or `timeout` passes.
  std::optional<uint16_t> WaitForPort(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // The exit status (exit code, or 128 + signal), once the process has ended within `timeout`.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void Signal(int sig);
  // Everything the process has written so far.
  std::string Output() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::filesystem::path log_;
};

// The shared test helpers (common/testing/test_support.h), under the names these tests use.
using test_support::BinaryPath;
using test_support::TempDir;

}  // namespace inferd::containers::testing
