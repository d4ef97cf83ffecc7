// FleetOptions: how the fleet reconciler runs model instances (data dir, image → runtime table,
// instance types, health-check timing, stop grace period). Plain values with documented
// defaults; app/ fills them from the configuration.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "fleet/resources.h"

namespace boost::json {
class value;
}

namespace inferd::fleet {

enum class RuntimeKind { kProcess, kDocker };

// One row of the image table: images matching `pattern` (fnmatch-style glob: `*`, `?`, `[..]`)
// run with `runtime`: kProcess runs `command` (an absolute path, or relative to the bin dir);
// kDocker runs the image itself through the container engine (`command` unused).
struct ImageRuntime {
  std::string pattern;
  std::string command;
  RuntimeKind runtime = RuntimeKind::kProcess;
};

// The default table: SageMaker XGBoost images → inferd-xgboost, inferd-echo → inferd-echo.
std::vector<ImageRuntime> DefaultImageRuntimes();

// The `image_runtimes` configuration value: [{"pattern": "…", "command": "…"} (process) or
// {"pattern": "…", "runtime": "docker"}] ("runtime": "process" with a command also accepted).
// kValidation naming the bad row.
Result<std::vector<ImageRuntime>> ImageRuntimesFromJson(const boost::json::value& v);

// The directory of the running executable (/proc/self/exe), "" if unknown.
std::filesystem::path SelfBinDir();

struct FleetOptions {
  std::filesystem::path data_dir;  // required: models/ and instances/ live under it
  // false: no model is started; Creating endpoints stay Creating (control-plane-only mode),
  // deletions still complete.
  bool host_models = true;
  std::filesystem::path bin_dir;  // relative commands resolve here; default SelfBinDir()
  std::vector<ImageRuntime> image_runtimes = DefaultImageRuntimes();  // first match wins
  // The container engine's unix socket for the docker runtime ("" = no docker runtime: images
  // mapped to it fail with a reason saying so).
  std::string docker_socket;
  // Per-type resources beyond (or replacing) the built-in table.
  std::map<std::string, InstanceResources> instance_types;
  std::chrono::milliseconds stop_grace{30000};            // SIGTERM → SIGKILL
  std::chrono::milliseconds ping_timeout{2000};           // one GET /ping
  std::chrono::milliseconds startup_poll_interval{1000};  // /ping while starting
  std::chrono::milliseconds health_check_interval{5000};  // /ping once healthy
  int unhealthy_threshold = 3;  // consecutive failed pings before an instance is replaced
  // Startup health-check timeout when the variant sets no
  // ContainerStartupHealthCheckTimeoutInSeconds; `startup_timeout_override` (tests) beats both.
  std::chrono::seconds default_startup_timeout{240};
  std::optional<std::chrono::milliseconds> startup_timeout_override;
  // Artifact download limit when the variant sets no ModelDataDownloadTimeoutInSeconds
  // (SageMaker's default: 3600 s).
  std::chrono::seconds default_download_timeout{3600};
  // An instance leaving the fleet (old fleet after UpdateEndpoint, scale-down) stays up this
  // long after it stopped being listed by HealthyInstances(), so requests routed just before
  // reach a live server; then it is stopped.
  std::chrono::milliseconds drain_delay{2000};
  std::chrono::milliseconds reconcile_interval{200};
  std::chrono::milliseconds restart_backoff_initial{1000};  // replacing a failed instance
  std::chrono::milliseconds restart_backoff_max{60000};
  // Archive limits (spec: 10 GiB extracted, ratio 1000).
  uint64_t max_artifact_bytes = 10ull << 30;
  double max_artifact_ratio = 1000;
  // Called (on the reconciler's thread) whenever the set of healthy instances changed.
  std::function<void()> on_healthy_changed;

  // kValidation naming the bad option.
  Status Validate() const;
};

// How `image` runs: the first matching row's runtime and (process) command resolved against
// bin_dir, or kValidation "no runtime for image X (configure one in image_runtimes)".
struct ResolvedRuntime {
  RuntimeKind runtime = RuntimeKind::kProcess;
  std::filesystem::path command;  // kProcess only
};
Result<ResolvedRuntime> ResolveImage(const FleetOptions& options, const std::string& image);

}  // namespace inferd::fleet
