// Instance: one model server started by the `process` runtime, following SageMaker's hosting
// container contract (spec §7.1): `<command> serve`, listening on 127.0.0.1:SAGEMAKER_BIND_TO_PORT,
// SM_MODEL_DIR = the extracted artifact, the container's Environment passed verbatim.
//
// The child runs in its own process group with PR_SET_PDEATHSIG=SIGKILL (it dies with the thread
// that started it: start instances from one long-lived thread), in <work_dir> with stdout and
// stderr appended to <work_dir>/log.
//
// State machine (Transition() is the one place the state changes):
//   Starting ──ping ok──► Healthy ──ping failed──► Unhealthy ──ping ok──► Healthy
//   Starting / Healthy / Unhealthy ──process exited──► Exited
//   Starting / Healthy / Unhealthy ──Stop()──► Stopping ──process gone──► Stopped
//   Exited ──Stop()──► Stopped
// Not thread-safe: owned by the reconciler's thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace inferd::fleet {

enum class InstanceState { kStarting, kHealthy, kUnhealthy, kExited, kStopping, kStopped };
std::string_view ToString(InstanceState state);

struct InstanceSpec {
  std::filesystem::path command;
  std::filesystem::path model_dir;  // SM_MODEL_DIR
  std::filesystem::path work_dir;   // created; holds `log`
  std::map<std::string, std::string> environment;
};

class Instance {
 public:
  // Starts the child on a free loopback port. kInternal when fork/exec setup fails (a missing
  // command shows up as an exit with code 127 and a message in the log).
  static Result<std::unique_ptr<Instance>> Start(const InstanceSpec& spec);
  ~Instance();  // kills the process group (SIGKILL) if still running
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  InstanceState state() const { return state_; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::filesystem::path& work_dir() const { return spec_.work_dir; }
  // Exit code (or 128+signal) once Exited/Stopped.
  std::optional<int> exit_code() const { return exit_code_; }

  // Reaps the child if it exited (→ Exited). Returns true if it is still running.
  bool Poll();
  // GET /ping with a timeout; moves Starting/Unhealthy → Healthy on success and Healthy →
  // Unhealthy on failure. Returns whether /ping passed.
  bool Ping(std::chrono::milliseconds timeout);
  // SIGTERM to the process group, SIGKILL after `grace`; blocks until the process is gone
  // (→ Stopped).
  void Stop(std::chrono::milliseconds grace);
  // Sends SIGTERM without waiting (→ Stopping); FinishStop() completes it.
  void BeginStop();
  void FinishStop(std::chrono::milliseconds grace);
  // The last `n` lines of the log, for failure reasons.
  std::string LogTail(int n) const;

 private:
  explicit Instance(InstanceSpec spec) : spec_(std::move(spec)) {}
  void Transition(InstanceState to);
  void Reaped(int wait_status);

  InstanceSpec spec_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  InstanceState state_ = InstanceState::kStarting;
  std::optional<int> exit_code_;
  std::chrono::steady_clock::time_point stop_started_;
};

// GET http://127.0.0.1:<port>/ping; true on a 200 within `timeout`.
bool PingOnce(uint16_t port, std::chrono::milliseconds timeout);

}  // namespace inferd::fleet
