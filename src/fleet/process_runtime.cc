#include "fleet/process_runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

extern char** environ;

namespace inferd::fleet {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

namespace {

class ProcessInstance final : public Instance {
 public:
  explicit ProcessInstance(InstanceSpec spec) : Instance(std::move(spec)) {}
  ~ProcessInstance() override {
    if (pid_ > 0 && state() != InstanceState::kStopped && state() != InstanceState::kExited) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  Status Launch();
  pid_t pid() const override { return pid_ > 0 ? pid_ : 0; }
  std::string id() const override { return "pid " + std::to_string(pid_); }

  bool Poll() override {
    if (state() == InstanceState::kExited || state() == InstanceState::kStopped) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      Reaped(status);
      return false;
    }
    return true;
  }

  void BeginStop(std::chrono::milliseconds grace) override {
    if (!Poll() || state() == InstanceState::kStopping) return;
    Transition(InstanceState::kStopping);
    stop_deadline_ = Clock::now() + grace;
    ::kill(-pid_, SIGTERM);
  }

  void FinishStop() override {
    if (state() == InstanceState::kExited) Transition(InstanceState::kStopped);
    if (state() != InstanceState::kStopping) return;
    while (Poll() && Clock::now() < stop_deadline_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (state() == InstanceState::kStopping) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) Reaped(status);
    }
  }

 private:
  void Reaped(int wait_status) {
    // Whatever else the group left behind goes too.
    ::kill(-pid_, SIGKILL);
    Gone(WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status));
  }

  pid_t pid_ = -1;
  Clock::time_point stop_deadline_;
};

Status ProcessInstance::Launch() {
  std::error_code ec;
  fs::create_directories(spec_.work_dir, ec);
  if (ec) {
    return Error(Errc::kInternal, "cannot create " + spec_.work_dir.string() + ": " + ec.message());
  }
  auto port = FreeLoopbackPort();
  if (!port.ok()) return std::move(port).error();
  port_ = *port;
  AppendLog(spec_.work_dir, "inferd: process runtime: " + spec_.command.string() + " serve on " +
                                "127.0.0.1:" + std::to_string(port_) + "; instance type " +
                                Describe(spec_.instance_type, spec_.resources) +
                                " (reported, not enforced by the process runtime)\n");

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : spec_.environment) env[k] = v;
  env["SAGEMAKER_BIND_TO_PORT"] = std::to_string(port_);
  env["SAGEMAKER_BIND_HOST"] = "127.0.0.1";
  env["SM_MODEL_DIR"] = spec_.model_dir.string();
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = spec_.command.string();
  std::string serve = "serve";
  char* argv[] = {command.data(), serve.data(), nullptr};
  std::string log_path = (spec_.work_dir / "log").string();
  std::string work_dir = spec_.work_dir.string();
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Error(Errc::kInternal, "cannot open " + log_path + ": " + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  const int max_fd = static_cast<int>(std::min<long>(::sysconf(_SC_OPEN_MAX), 1 << 20));
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
    // Nothing else of inferd's reaches the model server: not its listening socket, client
    // connections or databases (Asio opens sockets without O_CLOEXEC). A child holding a client
    // connection would keep it open after inferd closed it, so the client never sees the close.
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::close(fd);
    }
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
  pid_ = pid;
  return OkStatus();
}

}  // namespace

Result<std::string> ProcessRuntime::PrepareImage(const InstanceSpec& spec) {
  return spec.command.string();
}

Result<std::unique_ptr<Instance>> ProcessRuntime::Start(const InstanceSpec& spec) {
  auto inst = std::make_unique<ProcessInstance>(spec);
  INFERD_RETURN_IF_ERROR(inst->Launch());
  return std::unique_ptr<Instance>(std::move(inst));
}

}  // namespace inferd::fleet
