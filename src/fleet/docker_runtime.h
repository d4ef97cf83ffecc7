// DockerRuntime: runs any OCI image as a model server through the Docker Engine API on a unix
// socket (Docker, or Podman's compatible service `podman system service`).
//
// Per instance: POST /containers/create with the image, Cmd ["serve"], Env = the container's
// Environment + SAGEMAKER_BIND_TO_PORT=8080, port 8080/tcp published on 127.0.0.1 (the engine
// picks the host port), the extracted model directory bind-mounted read-only at /opt/ml/model,
// Init (signals reach the server; stop does not wait out the grace period), memory and CPU limits
// from the instance type (CPUs capped at the host's count; GPUs requested as DeviceRequests), and
// labels naming inferd's data dir (`io.inferd.owner`), the endpoint, the variant and the instance;
// then /start, and /json for the host port. The container's output is copied into
// <work_dir>/log (GET /logs with timestamps, incrementally: every `log_interval` while it runs,
// and when it exits or stops). Exit code and OOM kill from GET /json (State). Stop: POST /stop
// ?t=<grace> (sent at BeginStop, awaited at FinishStop), then DELETE ?force=1.
//
// Images must be available to the engine: a missing one is pulled (POST /images/create) once, in
// PrepareImage; a failure names the image. RemoveLeftovers() deletes containers labelled with
// this data dir (what a crashed inferd left running).
//
// The engine must run on this machine (it mounts a path of inferd's data dir). Called only from
// the reconciler's thread.
#pragma once

#include <chrono>
#include <string>

#include "fleet/docker_client.h"
#include "fleet/instance.h"

namespace inferd::fleet {

struct DockerRuntimeOptions {
  std::string socket_path;  // from docker_host
  std::string owner;        // the absolute data dir: `io.inferd.owner` label value
  std::chrono::milliseconds call_timeout{30000};
  std::chrono::milliseconds pull_timeout{std::chrono::minutes(30)};
  std::chrono::milliseconds poll_interval{1000};  // GET /json at most this often per instance
  std::chrono::milliseconds log_interval{2000};   // GET /logs at most this often while running
  int host_cpus = 0;                              // 0: std::thread::hardware_concurrency()
};

// The labels every container of this runtime carries.
inline constexpr const char* kOwnerLabel = "io.inferd.owner";
inline constexpr const char* kEndpointLabel = "io.inferd.endpoint";
inline constexpr const char* kVariantLabel = "io.inferd.variant";
inline constexpr const char* kInstanceLabel = "io.inferd.instance";

class DockerRuntime final : public InstanceRuntime {
 public:
  explicit DockerRuntime(DockerRuntimeOptions options);

  Result<std::string> PrepareImage(const InstanceSpec& spec) override;
  Result<std::unique_ptr<Instance>> Start(const InstanceSpec& spec) override;
  void RemoveLeftovers() override;

  // The POST /containers/create body for `spec` (JSON text). Exposed for tests.
  std::string CreateBody(const InstanceSpec& spec) const;

 private:
  DockerRuntimeOptions options_;
  DockerClient client_;
};

// Container log lines as GET /containers/{id}/logs?timestamps=1 returns them (multiplexed
// frames, or a raw stream when the container has a TTY), without the timestamps, keeping only
// what is new: lines stamped before `since` (unix seconds) are dropped, and of those stamped
// exactly `since`, the first `seen_at_since` (already copied). Updates both for the next call.
std::string NewLogLines(std::string_view body, int64_t& since, int64_t& seen_at_since);

}  // namespace inferd::fleet
