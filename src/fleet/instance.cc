#include "fleet/instance.h"

#include <cassert>
#include <deque>
#include <fstream>

#include "http/client.h"

namespace inferd::fleet {

namespace fs = std::filesystem;

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
  // A fresh connection each time (Connection: close): a ping also checks that the server still
  // accepts connections.
  http::ClientOptions options;
  options.connect_timeout = timeout;
  options.timeout = timeout;
  options.max_response_body = 64 << 10;
  http::Client client(options);
  http::ClientRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/ping";
  request.headers.Add("Connection", "close");
  auto response = client.Do(request);
  return response.ok() && response->status == 200;
}

}  // namespace inferd::fleet
