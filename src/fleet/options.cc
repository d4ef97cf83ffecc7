#include "fleet/options.h"

#include <fnmatch.h>
#include <unistd.h>

namespace inferd::fleet {

std::vector<ImageRuntime> DefaultImageRuntimes() {
  return {
      {"*.dkr.ecr.*.amazonaws.com/sagemaker-xgboost:*", "inferd-xgboost"},
      {"*/xgboost:1", "inferd-xgboost"},
      {"*/xgboost:latest", "inferd-xgboost"},
      {"inferd-echo", "inferd-echo"},
      {"*inferd-echo*", "inferd-echo"},
  };
}

std::filesystem::path SelfBinDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

Status FleetOptions::Validate() const {
  auto bad = [](std::string m) { return Error(Errc::kValidation, std::move(m)); };
  if (data_dir.empty()) return bad("fleet: data_dir must be set");
  for (const auto& row : image_runtimes) {
    if (row.pattern.empty() || row.command.empty()) {
      return bad("fleet: every image_runtimes row needs a pattern and a command");
    }
  }
  if (stop_grace.count() < 0) return bad("fleet: stop_grace must not be negative");
  if (ping_timeout.count() <= 0 || startup_poll_interval.count() <= 0 ||
      health_check_interval.count() <= 0 || reconcile_interval.count() <= 0) {
    return bad("fleet: ping timeout and intervals must be positive");
  }
  if (unhealthy_threshold < 1) return bad("fleet: unhealthy_threshold must be at least 1");
  if (default_startup_timeout.count() <= 0) {
    return bad("fleet: default_startup_timeout must be positive");
  }
  if (restart_backoff_initial.count() <= 0 || restart_backoff_max < restart_backoff_initial) {
    return bad("fleet: restart backoff must be positive and max >= initial");
  }
  if (max_artifact_bytes == 0 || max_artifact_ratio <= 1) {
    return bad("fleet: artifact limits must be positive (ratio > 1)");
  }
  return OkStatus();
}

Result<std::filesystem::path> ResolveImage(const FleetOptions& options, const std::string& image) {
  for (const auto& row : options.image_runtimes) {
    if (fnmatch(row.pattern.c_str(), image.c_str(), 0) == 0) {
      std::filesystem::path command(row.command);
      if (command.is_relative()) command = options.bin_dir / command;
      return command;
    }
  }
  return Error(Errc::kValidation,
               "no runtime for image " + image + " (configure one in image_runtimes)");
}

}  // namespace inferd::fleet
