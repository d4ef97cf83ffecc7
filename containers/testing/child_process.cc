#include "testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace inferd::containers::testing {
namespace {

namespace fs = std::filesystem;

// Processes give no other signal than what they print and their exit: poll both this often.
constexpr std::chrono::milliseconds kPoll(5);

std::string RandomSuffix() {
  std::random_device rd;
  std::ostringstream s;
  s << std::hex << rd() << rd();
  return s.str();
}

}  // namespace

ChildProcess::ChildProcess(const std::string& binary, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env) {
  log_ = fs::temp_directory_path() / ("inferd-containers-" + RandomSuffix() + ".log");
  // Everything is prepared before fork(): the child only calls async-signal-safe functions.
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v.empty()) {
      merged.erase(k);
    } else {
      merged[k] = v;
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings{binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // the test's sockets and files stay the test's
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "exec failed\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(fd);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ec;
  fs::remove(log_, ec);
}

std::string ChildProcess::Output() const {
  std::ifstream in(log_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<uint16_t> ChildProcess::WaitForPort(std::chrono::milliseconds timeout) {
  static const std::regex kListening(R"(listening on [^\s]*:(\d+))");
  std::optional<uint16_t> port;
  auto listening_or_exited = [&] {
    std::smatch m;
    std::string out = Output();
    if (std::regex_search(out, m, kListening)) {
      port = static_cast<uint16_t>(std::stoi(m[1]));
      return true;
    }
    return WaitForExit(std::chrono::milliseconds(0)).has_value();
  };
  test_support::WaitFor(listening_or_exited, timeout, kPoll);
  return port;
}

std::optional<int> ChildProcess::WaitForExit(std::chrono::milliseconds timeout) {
  auto exited = [&] {
    if (exit_status_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }
    return false;
  };
  test_support::WaitFor(exited, timeout, kPoll);
  return exit_status_;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, sig);
}

}  // namespace inferd::containers::testing
