#include "model_server/model_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>
#include <thread>

#include "common/log.h"
#include "http/io_threads.h"

namespace inferd::containers {

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Result<std::optional<uint64_t>> GetEnvUint(const char* name, uint64_t min, uint64_t max) {
  auto text = GetEnv(name);
  if (!text) return std::optional<uint64_t>();
  std::string_view s = *text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
    return Error(Errc::kValidation, std::string(name) + "=\"" + *text +
                                        "\" is not valid: expected a whole number from " +
                                        std::to_string(min) + " to " + std::to_string(max) + ".");
  }
  return std::optional<uint64_t>(value);
}

bool GetEnvFlag(const char* name) {
  auto v = GetEnv(name);
  if (!v) return false;
  std::string lower = *v;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower != "0" && lower != "false" && lower != "no" && lower != "off";
}

Result<ModelServerEnv> ReadModelServerEnv(int default_workers) {
  ModelServerEnv env;
  if (auto host = GetEnv("SAGEMAKER_BIND_HOST")) env.host = *host;
  auto port = GetEnvUint("SAGEMAKER_BIND_TO_PORT", 0, 65535);
  if (!port.ok()) return port.error();
  if (*port) env.port = static_cast<uint16_t>(**port);
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  env.workers = default_workers > 0 ? default_workers : cpus;
  auto workers = GetEnvUint("SAGEMAKER_MODEL_SERVER_WORKERS", 1, 4096);
  if (!workers.ok()) return workers.error();
  if (*workers) env.workers = static_cast<int>(**workers);
  if (auto dir = GetEnv("SM_MODEL_DIR")) env.model_dir = *dir;
  return env;
}

Status InitModelServerLogging(std::string_view default_level) {
  auto level = GetEnv("INFERD_LOG_LEVEL");
  return InitLogging(level ? std::string_view(*level) : default_level);
}

sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int RunModelServer(const RunOptions& options, http::Handler& handler, const sigset_t& signals,
                   const std::function<void()>& before_stop,
                   const std::function<void()>& after_stop) {
  if (auto st = options.server.Validate(); !st.ok()) {
    std::cerr << options.name << ": " << st.error().message << "\n";
    return 1;
  }
  http::IoThreads io(options.io_threads);
  http::Server server(options.server, io, handler);
  if (auto st = server.Start(); !st.ok()) {
    std::cerr << options.name << ": " << st.error().message << "\n";
    if (after_stop) after_stop();
    return 1;
  }
  io.Start();
  std::printf("%s listening on %s:%u\n", options.name.c_str(), options.server.host.c_str(),
              server.port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{}: received {}, stopping", options.name, sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (before_stop) before_stop();
  server.Stop(options.shutdown_grace);
  if (after_stop) after_stop();
  io.Stop();
  spdlog::info("{}: stopped", options.name);
  return 0;
}

http::Response TextResponse(int status, std::string body, std::string content_type) {
  http::Response r;
  r.status = status;
  if (!body.empty()) r.headers.Set("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

bool WantsServe(int argc, char** argv, const char* name, const char* description, int* exit_code) {
  if (argc == 1 || (argc == 2 && std::strcmp(argv[1], "serve") == 0)) return true;
  bool help = argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  (help ? std::cout : std::cerr) << "usage: " << name << " serve\n\n" << description << "\n";
  *exit_code = help ? 0 : 2;
  return false;
}

}  // namespace inferd::containers
