#include "fleet/instance.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>
#include <vector>

extern char** environ;

namespace inferd::fleet {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string_view ToString(InstanceState state) {
  switch (state) {
    case InstanceState::kStarting:
      return "Starting";
    case InstanceState::kHealthy:
      return "Healthy";
    case InstanceState::kUnhealthy:
      return "Unhealthy";
    case InstanceState::kExited:
      return "Exited";
    case InstanceState::kStopping:
      return "Stopping";
    case InstanceState::kStopped:
      return "Stopped";
  }
  return "?";
}

namespace {

bool Legal(InstanceState from, InstanceState to) {
  using S = InstanceState;
  switch (to) {
    case S::kHealthy:
      return from == S::kStarting || from == S::kUnhealthy;
    case S::kUnhealthy:
      return from == S::kHealthy;
    case S::kExited:
    case S::kStopping:
      return from == S::kStarting || from == S::kHealthy || from == S::kUnhealthy;
    case S::kStopped:
      return from == S::kStopping || from == S::kExited;
    case S::kStarting:
      return false;
  }
  return false;
}

Result<uint16_t> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(Errc::kInternal, std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Error(Errc::kInternal, std::string("cannot find a free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

bool PingOnce(uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto left_ms = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(0, ms.count()));
  };
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms()) != 1) return false;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return false;
  }
  std::string req = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && errno != EAGAIN) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms()) != 1) return false;
  }
  std::string resp;
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left_ms()) != 1) return false;
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    resp.append(buf, n);
  }
  return resp.rfind("HTTP/1.1 200", 0) == 0 || resp.rfind("HTTP/1.0 200", 0) == 0;
}

Result<std::unique_ptr<Instance>> Instance::Start(const InstanceSpec& spec) {
  std::unique_ptr<Instance> inst(new Instance(spec));
  std::error_code ec;
  fs::create_directories(spec.work_dir, ec);
  if (ec) {
    return Error(Errc::kInternal, "cannot create " + spec.work_dir.string() + ": " + ec.message());
  }
  auto port = FreeLoopbackPort();
  if (!port.ok()) return std::move(port).error();
  inst->port_ = *port;

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : spec.environment) env[k] = v;
  env["SAGEMAKER_BIND_TO_PORT"] = std::to_string(*port);
  env["SAGEMAKER_BIND_HOST"] = "127.0.0.1";
  env["SM_MODEL_DIR"] = spec.model_dir.string();
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = spec.command.string();
  std::string serve = "serve";
  char* argv[] = {command.data(), serve.data(), nullptr};
  std::string log_path = (spec.work_dir / "log").string();
  std::string work_dir = spec.work_dir.string();
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Error(Errc::kInternal, "cannot open " + log_path + ": " + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Error(Errc::kInternal, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::chdir(work_dir.c_str()) != 0) ::_exit(127);
    ::execve(command.c_str(), argv, envp.data());
    static const char msg[] = "inferd: cannot execute the model server command\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also done in the child; whichever runs first wins
  ::close(log_fd);
  inst->pid_ = pid;
  return inst;
}

Instance::~Instance() {
  if (pid_ > 0 && state_ != InstanceState::kStopped && state_ != InstanceState::kExited) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void Instance::Transition(InstanceState to) {
  assert(Legal(state_, to));
  (void)Legal;
  state_ = to;
}

void Instance::Reaped(int wait_status) {
  exit_code_ = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  // Whatever else the group left behind goes too.
  ::kill(-pid_, SIGKILL);
  Transition(state_ == InstanceState::kStopping ? InstanceState::kStopped : InstanceState::kExited);
}

bool Instance::Poll() {
  if (state_ == InstanceState::kExited || state_ == InstanceState::kStopped) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reaped(status);
    return false;
  }
  return true;
}

bool Instance::Ping(std::chrono::milliseconds timeout) {
  if (!Poll() || state_ == InstanceState::kStopping) return false;
  bool ok = PingOnce(port_, timeout);
  if (ok && state_ != InstanceState::kHealthy) Transition(InstanceState::kHealthy);
  if (!ok && state_ == InstanceState::kHealthy) Transition(InstanceState::kUnhealthy);
  if (!ok) Poll();
  return ok;
}

void Instance::BeginStop() {
  if (!Poll()) return;
  if (state_ == InstanceState::kStopping) return;
  Transition(InstanceState::kStopping);
  stop_started_ = Clock::now();
  ::kill(-pid_, SIGTERM);
}

void Instance::FinishStop(std::chrono::milliseconds grace) {
  if (state_ == InstanceState::kExited) Transition(InstanceState::kStopped);
  if (state_ != InstanceState::kStopping) return;
  auto deadline = stop_started_ + grace;
  while (Poll() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (state_ == InstanceState::kStopping) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) Reaped(status);
  }
}

void Instance::Stop(std::chrono::milliseconds grace) {
  BeginStop();
  FinishStop(grace);
}

std::string Instance::LogTail(int n) const {
  std::ifstream in(spec_.work_dir / "log");
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

}  // namespace inferd::fleet
