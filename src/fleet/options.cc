#include "fleet/options.h"

#include <fnmatch.h>
#include <unistd.h>

#include <boost/json.hpp>

namespace inferd::fleet {

namespace json = boost::json;

std::vector<ImageRuntime> DefaultImageRuntimes() {
  return {
      {"*.dkr.ecr.*.amazonaws.com/sagemaker-xgboost:*", "inferd-xgboost"},
      {"*/xgboost:1", "inferd-xgboost"},
      {"*/xgboost:latest", "inferd-xgboost"},
      {"inferd-echo", "inferd-echo"},
      {"*inferd-echo*", "inferd-echo"},
  };
}

Result<std::vector<ImageRuntime>> ImageRuntimesFromJson(const json::value& v) {
  auto bad = [](std::string m) { return Error(Errc::kValidation, std::move(m)); };
  if (!v.is_array()) return bad("image_runtimes must be an array");
  std::vector<ImageRuntime> rows;
  for (const auto& item : v.get_array()) {
    const auto* o = item.if_object();
    auto str = [&](const char* key) -> std::optional<std::string> {
      const json::value* m = o ? o->if_contains(key) : nullptr;
      if (!m) return std::string();
      if (!m->is_string()) return std::nullopt;
      return std::string(m->get_string());
    };
    auto pattern = str("pattern"), command = str("command"), runtime = str("runtime");
    if (!o || !pattern || !command || !runtime || pattern->empty()) {
      return bad(
          "each image_runtimes entry needs a non-empty pattern string and either a command "
          "string or \"runtime\": \"docker\"");
    }
    for (const auto& [key, value] : *o) {
      if (key != "pattern" && key != "command" && key != "runtime") {
        return bad("image_runtimes entry for " + *pattern + " has an unknown member \"" +
                   std::string(key) + "\" (pattern, command, runtime)");
      }
    }
    ImageRuntime row{*pattern, *command, RuntimeKind::kProcess};
    if (*runtime == "docker") {
      if (!command->empty()) {
        return bad("image_runtimes entry for " + *pattern +
                   ": the docker runtime runs the image itself and takes no command");
      }
      row.runtime = RuntimeKind::kDocker;
    } else if (runtime->empty() || *runtime == "process") {
      if (command->empty()) {
        return bad("image_runtimes entry for " + *pattern +
                   " needs a command (or \"runtime\": \"docker\")");
      }
    } else {
      return bad("image_runtimes entry for " + *pattern +
                 ": runtime must be \"process\" or "
                 "\"docker\", got \"" +
                 *runtime + "\"");
    }
    rows.push_back(std::move(row));
  }
  return rows;
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
    if (row.pattern.empty() || (row.runtime == RuntimeKind::kProcess && row.command.empty())) {
      return bad("fleet: every image_runtimes row needs a pattern and a command");
    }
  }
  if (stop_grace.count() < 0 || drain_delay.count() < 0) {
    return bad("fleet: stop_grace and drain_delay must not be negative");
  }
  if (ping_timeout.count() <= 0 || startup_poll_interval.count() <= 0 ||
      health_check_interval.count() <= 0 || reconcile_interval.count() <= 0) {
    return bad("fleet: ping timeout and intervals must be positive");
  }
  if (unhealthy_threshold < 1) return bad("fleet: unhealthy_threshold must be at least 1");
  if (default_startup_timeout.count() <= 0 || default_download_timeout.count() <= 0) {
    return bad("fleet: default startup and download timeouts must be positive");
  }
  if (restart_backoff_initial.count() <= 0 || restart_backoff_max < restart_backoff_initial) {
    return bad("fleet: restart backoff must be positive and max >= initial");
  }
  if (max_artifact_bytes == 0 || max_artifact_ratio <= 1) {
    return bad("fleet: artifact limits must be positive (ratio > 1)");
  }
  return OkStatus();
}

Result<ResolvedRuntime> ResolveImage(const FleetOptions& options, const std::string& image) {
  for (const auto& row : options.image_runtimes) {
    if (fnmatch(row.pattern.c_str(), image.c_str(), 0) == 0) {
      if (row.runtime == RuntimeKind::kDocker) return ResolvedRuntime{RuntimeKind::kDocker, {}};
      std::filesystem::path command(row.command);
      if (command.is_relative()) command = options.bin_dir / command;
      return ResolvedRuntime{RuntimeKind::kProcess, command};
    }
  }
  return Error(Errc::kValidation,
               "no runtime for image " + image + " (configure one in image_runtimes)");
}

}  // namespace inferd::fleet
