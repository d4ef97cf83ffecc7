// inferd's configuration: the serve flags and the JSON config file, each option declared once
// (name, default, help) in config.cc so `--help`, `inferd config-reference` and
// docs/configuration.md cannot drift apart. Only app/ reads flags, files and the environment;
// components receive plain Options structs built from this.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "fleet/options.h"

namespace inferd::app {

struct Config {
  // Flags of `inferd serve`.
  std::string listen = "127.0.0.1:8600";
  std::string data_dir = "./inferd-data";
  std::string config_file;
  std::string log_level = "info";

  // Config file.
  std::string account_id = "000000000000";
  std::map<std::string, std::string> credentials;  // access key id → secret access key
  int io_threads = 2;
  int blocking_threads = 4;
  int s3_transfer_threads = 16;
  // The "object_stores" value (JSON text; "" = everything in the embedded store). Checked by Load.
  std::string object_stores_json;
  int64_t max_header_bytes = 64 * 1024;
  int64_t max_body_bytes = 8 * 1024 * 1024;
  int idle_timeout_seconds = 60;
  int request_timeout_seconds = 300;
  int shutdown_grace_seconds = 10;
  int max_clock_skew_seconds = 900;
  bool sns_auto_confirm = false;
  std::string sns_public_url;  // "" = http://<listen host>:<bound port>
  int sns_delivery_threads = 4;
  int sns_delivery_timeout_seconds = 15;
  int sns_max_inflight_per_subscription = 1;
  bool model_hosting = true;
  std::vector<fleet::ImageRuntime> image_runtimes;  // before the built-in rows
  std::string docker_host;  // "" = $DOCKER_HOST, else unix:///var/run/docker.sock (serve.cc)
  std::map<std::string, fleet::InstanceResources> instance_types;
  int instance_stop_grace_seconds = 30;
  int container_startup_timeout_seconds = 0;  // 0 = the variant's, else 240
  int health_check_interval_seconds = 5;
  int dispatch_threads = 64;
  int default_max_concurrent_invocations_per_instance = 4;
  int invocation_max_attempts = 3;
  int invocation_retention_hours = 24;
  int queue_commit_interval_us = 1000;
  int invoke_endpoint_timeout_seconds = 60;
  int invoke_endpoint_threads = 16;

  // Host and port of `listen`.
  std::string host;
  uint16_t port = 0;

  // Reads `config_file` (if set) over the defaults, then checks every value.
  Status Load();
  Status Validate();
};

// Markdown reference of every config-file key: name, type, default, meaning.
std::string ConfigReference();

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopback(const std::string& host);

}  // namespace inferd::app
