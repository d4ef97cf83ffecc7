// inferd-echo: a small hosting-contract server for tests and benchmarks (see README.md).
#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "common/blocking_pool.h"
#include "inferd-echo/echo_handler.h"
#include "model_server/model_server.h"

namespace {

using namespace inferd;
using containers::GetEnvUint;

constexpr char kName[] = "inferd-echo";

int Fail(const std::string& message) {
  std::cerr << kName << ": " << message << "\n";
  return 1;
}

Result<echo::EchoOptions> ReadEchoOptions() {
  echo::EchoOptions o;
  auto delay = GetEnvUint("ECHO_DELAY_MS", 0, 24ULL * 3600 * 1000);
  if (!delay.ok()) return delay.error();
  if (*delay) o.delay = std::chrono::milliseconds(**delay);
  auto status = GetEnvUint("ECHO_STATUS", 200, 599);
  if (!status.ok()) return status.error();
  if (*status) o.status = static_cast<int>(**status);
  auto crash = GetEnvUint("ECHO_CRASH_AFTER", 0, UINT64_MAX);
  if (!crash.ok()) return crash.error();
  if (*crash) o.crash_after = **crash;
  auto startup = GetEnvUint("ECHO_STARTUP_DELAY_MS", 0, 24ULL * 3600 * 1000);
  if (!startup.ok()) return startup.error();
  if (*startup) o.startup_delay = std::chrono::milliseconds(**startup);
  o.fail_ping = containers::GetEnvFlag("ECHO_FAIL_PING");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  int exit_code = 0;
  if (!containers::WantsServe(
          argc, argv, kName,
          "Echoes POST /invocations bodies; headers and ECHO_* variables make it slow, fail,\n"
          "crash, start slowly or report its environment. See containers/inferd-echo/README.md.",
          &exit_code)) {
    return exit_code;
  }
  sigset_t signals = containers::BlockTerminationSignals();
  if (auto st = containers::InitModelServerLogging("warn"); !st.ok()) {
    return Fail(st.error().message);
  }
  // Echo's workers mostly sleep (X-Echo-Delay-Ms), so it defaults to more than the CPU count.
  auto env = containers::ReadModelServerEnv(/*default_workers=*/32);
  if (!env.ok()) return Fail(env.error().message);
  auto options = ReadEchoOptions();
  if (!options.ok()) return Fail(options.error().message);
  options->model_dir = env->model_dir;
  auto max_body = GetEnvUint("ECHO_MAX_BODY", 1, 1ULL << 30);
  if (!max_body.ok()) return Fail(max_body.error().message);

  // ECHO_DURABLE_FILE: every answer waits until its body is durable (a 16 MiB ring; syncs
  // spaced by ECHO_DURABLE_INTERVAL_US, default 1000 as inferd's queue).
  std::unique_ptr<echo::DurableLog> durable;
  if (auto path = containers::GetEnv("ECHO_DURABLE_FILE")) {
    echo::DurableLog::Options log_options;
    auto interval = GetEnvUint("ECHO_DURABLE_INTERVAL_US", 0, 1'000'000);
    if (!interval.ok()) return Fail(interval.error().message);
    if (*interval) log_options.interval = std::chrono::microseconds(**interval);
    auto opened = echo::DurableLog::Open(*path, log_options);
    if (!opened.ok()) return Fail(opened.error().message);
    durable = std::move(opened).value();
  }

  BlockingPool pool(env->workers);
  echo::EchoHandler handler(*options, pool, started, durable.get());
  containers::RunOptions run;
  run.name = kName;
  run.server.host = env->host;
  run.server.port = env->port;
  run.server.max_body_bytes = *max_body ? static_cast<size_t>(**max_body) : 64u << 20;
  return containers::RunModelServer(
      run, handler, signals, [&handler] { handler.Stop(); }, [&pool] { pool.Stop(); });
}
