// Test helpers for S3Store: S3-compatible servers run as child processes (moto_server, and
// inferd itself when INFERD_BIN names its binary), each started once per test program on a free
// loopback port and stopped (its process group killed) when the program ends.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"

extern char** environ;

namespace inferd::store::testing {

// A loopback port that was free a moment ago.
inline uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A child process in its own process group; stopped (SIGTERM, then SIGKILL) on destruction.
class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH). stdout goes to a pipe (read_stdout) or to `log`.
  static std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                             const std::filesystem::path& log, bool pipe_stdout) {
    int out[2] = {-1, -1};
    if (pipe_stdout && ::pipe2(out, O_CLOEXEC) != 0) return nullptr;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (pipe_stdout) {
      posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (pipe_stdout) ::close(out[1]);
    if (rc != 0) {
      if (pipe_stdout) ::close(out[0]);
      return nullptr;
    }
    auto child = std::unique_ptr<ChildProcess>(new ChildProcess(pid));
    child->stdout_fd_ = out[0];
    return child;
  }

  ~ChildProcess() {
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        ::kill(-pid_, SIGKILL);  // any grandchildren
        if (stdout_fd_ >= 0) ::close(stdout_fd_);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  // The next stdout line matching `pattern` (its first group), waiting up to `timeout`.
  std::optional<std::string> WaitForLine(const std::regex& pattern,
                                         std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string pending;
    char buf[4096];
    for (;;) {
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        std::smatch m;
        if (std::regex_search(line, m, pattern)) return m.size() > 1 ? m[1].str() : line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      pending.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int stdout_fd_ = -1;
};

// An S3-compatible server for the tests: its endpoint and the credentials it accepts.
struct S3Server {
  std::string endpoint;  // http://127.0.0.1:PORT
  std::string access_key_id = "AKIDTEST";
  std::string secret_access_key = "test-secret";
  bool checks_signatures = false;
  std::string skip_reason;  // non-empty: unavailable here
  std::filesystem::path dir;
  std::unique_ptr<ChildProcess> process;
};

// Polls GET / until the server answers at all.
inline bool WaitUntilAnswering(const std::string& endpoint, std::chrono::seconds timeout) {
  http::ClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.timeout = std::chrono::milliseconds(2000);
  http::Client client(options);
  http::ClientRequest request;
  request.url = endpoint + "/";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client.Do(request);
    if (r.ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

inline std::filesystem::path ServerDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("inferd-s3store-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void StartMoto(S3Server& s) {
  s.dir = ServerDir("moto");
  const uint16_t port = FreePort();
  s.process = ChildProcess::Start({"moto_server", "-H", "127.0.0.1", "-p", std::to_string(port)},
                                  s.dir / "moto.log", false);
  if (!s.process) {
    s.skip_reason = "moto_server is not installed";
    return;
  }
  s.endpoint = "http://127.0.0.1:" + std::to_string(port);
  if (!WaitUntilAnswering(s.endpoint, std::chrono::seconds(60))) {
    s.skip_reason =
        "moto_server did not answer within 60 s (log: " + (s.dir / "moto.log").string() + ")";
  }
}

// inferd serve with credentials configured (so it checks signatures), if INFERD_BIN is set.
inline void StartInferd(S3Server& s) {
  const char* bin = std::getenv("INFERD_BIN");
  if (bin == nullptr || *bin == '\0') {
    s.skip_reason = "INFERD_BIN is not set";
    return;
  }
  s.dir = ServerDir("inferd");
  s.checks_signatures = true;
  std::ofstream(s.dir / "config.json")
      << R"({"credentials": [{"access_key_id": ")" << s.access_key_id
      << R"(", "secret_access_key": ")" << s.secret_access_key << R"("}]})";
  s.process =
      ChildProcess::Start({bin, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                           (s.dir / "data").string(), "--config", (s.dir / "config.json").string()},
                          s.dir / "inferd.log", true);
  if (!s.process) {
    s.skip_reason = std::string("cannot start ") + bin;
    return;
  }
  auto url = s.process->WaitForLine(std::regex("inferd listening on (http://[^ ]+)"),
                                    std::chrono::seconds(30));
  if (!url) {
    s.skip_reason = "inferd did not start (log: " + (s.dir / "inferd.log").string() + ")";
    return;
  }
  s.endpoint = *url;
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
}

}  // namespace inferd::store::testing
