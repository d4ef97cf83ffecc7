// Instance: one model server following SageMaker's hosting container contract (spec §7.1),
// run by an InstanceRuntime: started with the argument `serve`, listening on
// SAGEMAKER_BIND_TO_PORT, answering GET /ping and POST /invocations, reachable by inferd at
// 127.0.0.1:port(). Its output goes to <work_dir>/log (`inferd logs ENDPOINT`).
//
// Two runtimes (the seam): ProcessRuntime (process_runtime.h: a child process, SM_MODEL_DIR) and
// DockerRuntime (docker_runtime.h: a container through the Docker Engine API, the model at
// /opt/ml/model). The runtime for an image comes from FleetOptions::image_runtimes.
//
// State machine (Transition() is the one place the state changes):
//   Starting ──ping ok──► Healthy ──ping failed──► Unhealthy ──ping ok──► Healthy
//   Starting / Healthy / Unhealthy ──server exited──► Exited
//   Starting / Healthy / Unhealthy ──BeginStop()──► Stopping ──server gone──► Stopped
//   Exited ──FinishStop()──► Stopped
// Not thread-safe: instances are owned by the reconciler's thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "fleet/resources.h"

namespace inferd::fleet {

enum class InstanceState { kStarting, kHealthy, kUnhealthy, kExited, kStopping, kStopped };
std::string_view ToString(InstanceState state);

struct InstanceSpec {
  std::string image;                               // as the ContainerDefinition names it
  std::filesystem::path command;                   // process runtime: the model server executable
  std::filesystem::path model_dir;                 // the extracted artifact (absolute)
  std::filesystem::path work_dir;                  // created; holds `log`
  std::map<std::string, std::string> environment;  // the container's Environment
  std::string instance_type;                       // e.g. ml.m5.xlarge
  InstanceResources resources;                     // of instance_type
  std::string endpoint;                            // for labels and logs
  std::string variant;
};

class Instance {
 public:
  virtual ~Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  InstanceState state() const { return state_; }
  // The port on 127.0.0.1 where inferd reaches the model server.
  uint16_t port() const { return port_; }
  const std::filesystem::path& work_dir() const { return spec_.work_dir; }
  // Exit code (or 128+signal) once Exited/Stopped.
  std::optional<int> exit_code() const { return exit_code_; }
  // Why it exited beyond the code, e.g. "killed for exceeding its 4096 MiB memory limit"; "".
  const std::string& exit_detail() const { return exit_detail_; }
  // The host process id of the model server (diagnostics, tests); 0 when unknown.
  virtual pid_t pid() const = 0;
  // "pid 1234" or "container 3f2a…": how logs name it.
  virtual std::string id() const = 0;

  // Notices an exit (→ Exited). Returns true while the server is running.
  virtual bool Poll() = 0;
  // GET /ping with a timeout; Starting/Unhealthy → Healthy on success, Healthy → Unhealthy on
  // failure. Returns whether /ping passed.
  bool Ping(std::chrono::milliseconds timeout);
  // Asks the server to stop (SIGTERM) without waiting (→ Stopping); it gets `grace` before it is
  // killed. FinishStop() waits for it (→ Stopped) and releases what the runtime holds.
  virtual void BeginStop(std::chrono::milliseconds grace) = 0;
  virtual void FinishStop() = 0;
  void Stop(std::chrono::milliseconds grace) {
    BeginStop(grace);
    FinishStop();
  }
  // The last `n` lines of the log, for failure reasons.
  std::string LogTail(int n) const;

 protected:
  explicit Instance(InstanceSpec spec) : spec_(std::move(spec)) {}
  void Transition(InstanceState to);
  // The server is gone with `code`: → Stopped when stopping, else → Exited.
  void Gone(int code, std::string detail = "");
  // A failed /ping: the runtime should look at the server at the next Poll().
  virtual void PingFailed() {}

  InstanceSpec spec_;
  uint16_t port_ = 0;

 private:
  InstanceState state_ = InstanceState::kStarting;
  std::optional<int> exit_code_;
  std::string exit_detail_;
};

// Starts instances of one kind. Called only from the reconciler's thread.
class InstanceRuntime {
 public:
  virtual ~InstanceRuntime() = default;
  // Makes the image ready to run (the docker runtime pulls a missing one) and returns what
  // DescribeEndpoint shows as its ResolvedImage. Errors carry a user-facing FailureReason.
  virtual Result<std::string> PrepareImage(const InstanceSpec& spec) = 0;
  // Starts one instance (creating spec.work_dir). Errors carry a user-facing reason; a server
  // that cannot run shows up as an exit instead when the runtime only learns it later.
  virtual Result<std::unique_ptr<Instance>> Start(const InstanceSpec& spec) = 0;
  // Removes what an earlier inferd on the same data dir left behind (a crash leaves containers
  // running). Called once, before the first reconcile pass; failures are logged.
  virtual void RemoveLeftovers() {}
};

// GET http://127.0.0.1:<port>/ping; true on a 200 within `timeout`.
bool PingOnce(uint16_t port, std::chrono::milliseconds timeout);

// Appends `text` to <work_dir>/log (creating work_dir); best effort.
void AppendLog(const std::filesystem::path& work_dir, const std::string& text);

}  // namespace inferd::fleet
