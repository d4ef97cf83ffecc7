// FleetOptions: how the fleet reconciler runs model instances (data dir, image → command table,
// health-check timing, stop grace period). Plain values with documented defaults; app/ fills
// them from the configuration.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace inferd::fleet {

// One row of the `process` runtime's image table: images matching `pattern` (fnmatch-style glob:
// `*`, `?`, `[..]`) run `command` (an absolute path, or relative to the bin dir).
struct ImageRuntime {
  std::string pattern;
  std::string command;
};

// The default table: SageMaker XGBoost images → inferd-xgboost, inferd-echo → inferd-echo.
std::vector<ImageRuntime> DefaultImageRuntimes();

// The directory of the running executable (/proc/self/exe), "" if unknown.
std::filesystem::path SelfBinDir();

struct FleetOptions {
  std::filesystem::path data_dir;  // required: models/ and instances/ live under it
  // false: no model is started; Creating endpoints stay Creating (control-plane-only mode),
  // deletions still complete.
  bool host_models = true;
  std::filesystem::path bin_dir;  // relative commands resolve here; default SelfBinDir()
  std::vector<ImageRuntime> image_runtimes = DefaultImageRuntimes();  // first match wins
  std::chrono::milliseconds stop_grace{30000};                        // SIGTERM → SIGKILL
  std::chrono::milliseconds ping_timeout{2000};                       // one GET /ping
  std::chrono::milliseconds startup_poll_interval{1000};              // /ping while starting
  std::chrono::milliseconds health_check_interval{5000};              // /ping once healthy
  int unhealthy_threshold = 3;  // consecutive failed pings before an instance is replaced
  // Startup health-check timeout when the variant sets no
  // ContainerStartupHealthCheckTimeoutInSeconds; `startup_timeout_override` (tests) beats both.
  std::chrono::seconds default_startup_timeout{240};
  std::optional<std::chrono::milliseconds> startup_timeout_override;
  std::chrono::milliseconds reconcile_interval{200};
  std::chrono::milliseconds restart_backoff_initial{1000};  // replacing a failed instance
  std::chrono::milliseconds restart_backoff_max{60000};
  // Archive limits (spec: 10 GiB extracted, ratio 1000).
  uint64_t max_artifact_bytes = 10ull << 30;
  double max_artifact_ratio = 1000;

  // kValidation naming the bad option.
  Status Validate() const;
};

// The command for `image`: the first matching row's command (resolved against bin_dir), or
// kValidation "no runtime for image X (configure one in image_runtimes)".
Result<std::filesystem::path> ResolveImage(const FleetOptions& options, const std::string& image);

}  // namespace inferd::fleet
