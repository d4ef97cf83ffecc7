#include "fleet/instance.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <deque>
#include <fstream>

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

}  // namespace

void Instance::Transition(InstanceState to) {
  assert(Legal(state_, to));
  (void)Legal;
  state_ = to;
}

void Instance::Gone(int code, std::string detail) {
  exit_code_ = code;
  exit_detail_ = std::move(detail);
  Transition(state_ == InstanceState::kStopping ? InstanceState::kStopped : InstanceState::kExited);
}

bool Instance::Ping(std::chrono::milliseconds timeout) {
  if (!Poll() || state_ == InstanceState::kStopping) return false;
  bool ok = PingOnce(port_, timeout);
  if (ok && state_ != InstanceState::kHealthy) Transition(InstanceState::kHealthy);
  if (!ok && state_ == InstanceState::kHealthy) Transition(InstanceState::kUnhealthy);
  if (!ok) {
    PingFailed();
    Poll();
  }
  return ok;
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

void AppendLog(const fs::path& work_dir, const std::string& text) {
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  std::ofstream out(work_dir / "log", std::ios::app | std::ios::binary);
  out << text;
}

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

}  // namespace inferd::fleet
