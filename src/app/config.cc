#include "app/config.h"

#include <arpa/inet.h>

#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <vector>

#include "fleet/docker_client.h"
#include "fleet/resources.h"
#include "store/store_router.h"

namespace inferd::app {

namespace json = boost::json;

namespace {

struct ConfigKey {
  const char* name;
  const char* type;
  std::function<std::string(const Config&)> default_text;
  const char* help;
  std::function<Status(Config&, const json::value&)> set;
};

template <typename T>
std::function<Status(Config&, const json::value&)> IntSetter(T Config::*member, const char* name,
                                                             int64_t min, int64_t max) {
  return [member, name, min, max](Config& c, const json::value& v) -> Status {
    if (!v.is_int64() && !v.is_uint64()) {
      return Error(Errc::kValidation, std::string(name) + " must be an integer");
    }
    int64_t n = v.to_number<int64_t>();
    if (n < min || n > max) {
      return Error(Errc::kValidation, std::string(name) + " must be between " +
                                          std::to_string(min) + " and " + std::to_string(max));
    }
    c.*member = static_cast<T>(n);
    return OkStatus();
  };
}

template <typename T>
std::function<std::string(const Config&)> IntDefault(T Config::*member) {
  return [member](const Config& c) { return std::to_string(c.*member); };
}

const std::vector<ConfigKey>& Keys() {
  static const std::vector<ConfigKey> kKeys{
      {"account_id", "string", [](const Config& c) { return "\"" + c.account_id + "\""; },
       "The 12-digit AWS account id in the ARNs inferd mints.",
       [](Config& c, const json::value& v) -> Status {
         if (!v.is_string() ||
             !std::regex_match(std::string(v.get_string()), std::regex("[0-9]{12}"))) {
           return Error(Errc::kValidation, "account_id must be a string of 12 digits");
         }
         c.account_id = std::string(v.get_string());
         return OkStatus();
       }},
      {"credentials", "array", [](const Config&) { return std::string("[]"); },
       "Access keys clients sign with: `[{\"access_key_id\": \"…\", \"secret_access_key\": "
       "\"…\"}]`. Empty: any well-formed SigV4 signature is accepted, and only on a loopback "
       "listen address.",
       [](Config& c, const json::value& v) -> Status {
         if (!v.is_array()) return Error(Errc::kValidation, "credentials must be an array");
         for (const auto& item : v.get_array()) {
           const auto* o = item.if_object();
           const json::value* id = o ? o->if_contains("access_key_id") : nullptr;
           const json::value* secret = o ? o->if_contains("secret_access_key") : nullptr;
           if (!id || !secret || !id->is_string() || !secret->is_string() ||
               id->get_string().empty() || secret->get_string().empty()) {
             return Error(Errc::kValidation,
                          "each credentials entry needs non-empty access_key_id and "
                          "secret_access_key strings");
           }
           c.credentials[std::string(id->get_string())] = std::string(secret->get_string());
         }
         return OkStatus();
       }},
      {"io_threads", "integer", IntDefault(&Config::io_threads), "Threads running network I/O.",
       IntSetter(&Config::io_threads, "io_threads", 1, 64)},
      {"blocking_threads", "integer", IntDefault(&Config::blocking_threads),
       "Threads for blocking work (database, files).",
       IntSetter(&Config::blocking_threads, "blocking_threads", 1, 256)},
      {"s3_transfer_threads", "integer", IntDefault(&Config::s3_transfer_threads),
       "Threads serving S3 object transfers (each upload or download in flight holds one).",
       IntSetter(&Config::s3_transfer_threads, "s3_transfer_threads", 1, 1024)},
      {"object_stores", "object", [](const Config&) { return std::string("{}"); },
       "Where buckets live: `{\"default\": \"embedded\" | S3, \"buckets\": {\"name\": "
       "\"embedded\" | S3}}` with S3 = `{\"endpoint\": \"https://…\", \"region\": …, "
       "\"access_key_id\": …, \"secret_access_key\": …, \"path_style\": true}`. Model "
       "artifacts, inputs and results in a remote bucket are read and written there.",
       [](Config& c, const json::value& v) -> Status {
         auto parsed = store::RemoteStoresFromJson(v);
         if (!parsed.ok()) return std::move(parsed).error();
         c.object_stores_json = json::serialize(v);
         return OkStatus();
       }},
      {"max_header_bytes", "integer", IntDefault(&Config::max_header_bytes),
       "Largest request header block accepted.",
       IntSetter(&Config::max_header_bytes, "max_header_bytes", 1024, 1 << 20)},
      {"max_body_bytes", "integer", IntDefault(&Config::max_body_bytes),
       "Largest buffered request body (control plane, SNS).",
       IntSetter(&Config::max_body_bytes, "max_body_bytes", 1024, int64_t{1} << 32)},
      {"idle_timeout_seconds", "integer", IntDefault(&Config::idle_timeout_seconds),
       "A keep-alive connection with no request for this long is closed.",
       IntSetter(&Config::idle_timeout_seconds, "idle_timeout_seconds", 1, 3600)},
      {"request_timeout_seconds", "integer", IntDefault(&Config::request_timeout_seconds),
       "Longest time to read one request and write its response.",
       IntSetter(&Config::request_timeout_seconds, "request_timeout_seconds", 1, 86400)},
      {"shutdown_grace_seconds", "integer", IntDefault(&Config::shutdown_grace_seconds),
       "On SIGTERM/SIGINT, how long in-flight requests get to finish.",
       IntSetter(&Config::shutdown_grace_seconds, "shutdown_grace_seconds", 0, 3600)},
      {"max_clock_skew_seconds", "integer", IntDefault(&Config::max_clock_skew_seconds),
       "Signed requests whose time differs more from the server's are refused "
       "(RequestTimeTooSkewed).",
       IntSetter(&Config::max_clock_skew_seconds, "max_clock_skew_seconds", 1, 86400)},
      {"sns_auto_confirm", "boolean",
       [](const Config& c) { return std::string(c.sns_auto_confirm ? "true" : "false"); },
       "Confirm HTTP/HTTPS subscriptions at once, without sending a SubscriptionConfirmation "
       "(for local development). Off: subscribers confirm by visiting the SubscribeURL, as with "
       "SNS.",
       [](Config& c, const json::value& v) -> Status {
         if (!v.is_bool()) {
           return Error(Errc::kValidation, "sns_auto_confirm must be true or false");
         }
         c.sns_auto_confirm = v.get_bool();
         return OkStatus();
       }},
      {"sns_public_url", "string", [](const Config& c) { return "\"" + c.sns_public_url + "\""; },
       "Base URL subscribers reach inferd at, used in SubscribeURL, UnsubscribeURL and "
       "SigningCertURL. Empty: http://HOST:PORT of the listen address (127.0.0.1 when listening "
       "on all interfaces).",
       [](Config& c, const json::value& v) -> Status {
         static const std::regex kUrl("https?://[^/?#\\s]+/?");
         if (!v.is_string() ||
             (!v.get_string().empty() && !std::regex_match(std::string(v.get_string()), kUrl))) {
           return Error(Errc::kValidation,
                        "sns_public_url must be an http(s) URL without a path, e.g. "
                        "\"http://inferd.example:8600\"");
         }
         c.sns_public_url = std::string(v.get_string());
         return OkStatus();
       }},
      {"sns_delivery_threads", "integer", IntDefault(&Config::sns_delivery_threads),
       "Threads delivering SNS messages to HTTP/HTTPS subscribers.",
       IntSetter(&Config::sns_delivery_threads, "sns_delivery_threads", 1, 64)},
      {"sns_delivery_timeout_seconds", "integer", IntDefault(&Config::sns_delivery_timeout_seconds),
       "How long one SNS delivery attempt may take before it counts as failed (SNS: 15).",
       IntSetter(&Config::sns_delivery_timeout_seconds, "sns_delivery_timeout_seconds", 1, 300)},
      {"sns_max_inflight_per_subscription", "integer",
       IntDefault(&Config::sns_max_inflight_per_subscription),
       "SNS delivery attempts in flight at once to one subscription: bounds how many delivery "
       "threads a slow subscriber can hold.",
       IntSetter(&Config::sns_max_inflight_per_subscription, "sns_max_inflight_per_subscription", 1,
                 64)},
      {"model_hosting", "boolean",
       [](const Config& c) { return std::string(c.model_hosting ? "true" : "false"); },
       "Start model servers for endpoints (CreateEndpoint → InService). false: endpoints stay "
       "Creating and nothing is started (control plane only).",
       [](Config& c, const json::value& v) -> Status {
         if (!v.is_bool()) return Error(Errc::kValidation, "model_hosting must be true or false");
         c.model_hosting = v.get_bool();
         return OkStatus();
       }},
      {"image_runtimes", "array", [](const Config&) { return std::string("[]"); },
       "Which runtime runs a model's container image: `[{\"pattern\": \"registry/img:*\", "
       "\"command\": \"/path/to/server\"}]` runs a local process (a relative command is in "
       "inferd's bin directory), `{\"pattern\": \"registry/img:*\", \"runtime\": \"docker\"}` "
       "runs the image itself through the container engine at docker_host. Glob patterns, first "
       "match wins, checked before the built-in rows: SageMaker XGBoost images → "
       "inferd-xgboost, inferd-echo → inferd-echo.",
       [](Config& c, const json::value& v) -> Status {
         auto rows = fleet::ImageRuntimesFromJson(v);
         if (!rows.ok()) return std::move(rows).error();
         c.image_runtimes = std::move(*rows);
         return OkStatus();
       }},
      {"docker_host", "string", [](const Config& c) { return "\"" + c.docker_host + "\""; },
       "The Docker Engine API socket (Docker, or `podman system service`) for images mapped to "
       "the docker runtime: `unix:///path/to.sock`. Empty: $DOCKER_HOST when it names a unix "
       "socket, else unix:///var/run/docker.sock. The engine must run on this machine (it mounts "
       "model directories from the data dir).",
       [](Config& c, const json::value& v) -> Status {
         if (!v.is_string()) return Error(Errc::kValidation, "docker_host must be a string");
         if (!v.get_string().empty()) {
           auto path = fleet::DockerSocketPath(v.get_string());
           if (!path.ok()) return std::move(path).error();
         }
         c.docker_host = std::string(v.get_string());
         return OkStatus();
       }},
      {"instance_types", "object", [](const Config&) { return std::string("{}"); },
       "Resources of instance types, beyond or instead of the built-in table of ml.* types: "
       "`{\"ml.m5.large\": {\"vcpu\": 2, \"memory_mib\": 8192, \"gpus\": 0}}` (members left "
       "out keep the built-in values). The docker runtime enforces them as container limits; "
       "the process runtime writes them into the instance log. Types in neither get 2 vCPUs "
       "(large), 4 (xlarge) or 4·N (Nxlarge) and 4 GiB per vCPU.",
       [](Config& c, const json::value& v) -> Status {
         auto types = fleet::InstanceTypesFromJson(v);
         if (!types.ok()) return std::move(types).error();
         c.instance_types = std::move(*types);
         return OkStatus();
       }},
      {"instance_stop_grace_seconds", "integer", IntDefault(&Config::instance_stop_grace_seconds),
       "How long a model server gets to exit after SIGTERM before it is killed.",
       IntSetter(&Config::instance_stop_grace_seconds, "instance_stop_grace_seconds", 0, 3600)},
      {"container_startup_timeout_seconds", "integer",
       IntDefault(&Config::container_startup_timeout_seconds),
       "How long a new model server has to pass /ping. 0: the variant's "
       "ContainerStartupHealthCheckTimeoutInSeconds, else 240 (SageMaker's default).",
       IntSetter(&Config::container_startup_timeout_seconds, "container_startup_timeout_seconds", 0,
                 3600)},
      {"health_check_interval_seconds", "integer",
       IntDefault(&Config::health_check_interval_seconds),
       "How often a running model server is pinged; 3 failures in a row replace it.",
       IntSetter(&Config::health_check_interval_seconds, "health_check_interval_seconds", 1, 3600)},
      {"dispatch_threads", "integer", IntDefault(&Config::dispatch_threads),
       "Asynchronous invocations in flight at once over all endpoints (threads running "
       "download, model call and upload).",
       IntSetter(&Config::dispatch_threads, "dispatch_threads", 1, 4096)},
      {"default_max_concurrent_invocations_per_instance", "integer",
       IntDefault(&Config::default_max_concurrent_invocations_per_instance),
       "Invocations in flight on one instance when the endpoint's AsyncInferenceConfig sets no "
       "ClientConfig.MaxConcurrentInvocationsPerInstance (and for InvokeEndpoint).",
       IntSetter(&Config::default_max_concurrent_invocations_per_instance,
                 "default_max_concurrent_invocations_per_instance", 1, 1000)},
      {"invocation_max_attempts", "integer", IntDefault(&Config::invocation_max_attempts),
       "An invocation whose instance dies or drops the connection mid-request runs again on "
       "another instance, at most this many attempts in all, then fails with the reason.",
       IntSetter(&Config::invocation_max_attempts, "invocation_max_attempts", 1, 100)},
      {"queue_commit_interval_us", "integer", IntDefault(&Config::queue_commit_interval_us),
       "Under sustained load the invocation queue commits at most once per this many "
       "microseconds on average (bursts of 4 pass at once), so that more accepts share each "
       "disk sync: fewer syncs, less CPU, shorter stalls on virtual machines. 0: each commit "
       "starts as soon as the previous one has synced.",
       IntSetter(&Config::queue_commit_interval_us, "queue_commit_interval_us", 0, 1'000'000)},
      {"invocation_retention_hours", "integer", IntDefault(&Config::invocation_retention_hours),
       "Finished invocations stay visible to `inferd invocations get` and /inferd/ this long.",
       IntSetter(&Config::invocation_retention_hours, "invocation_retention_hours", 1, 8760)},
      {"invoke_endpoint_timeout_seconds", "integer",
       IntDefault(&Config::invoke_endpoint_timeout_seconds),
       "How long a container may take to answer InvokeEndpoint (real-time endpoints; SageMaker: "
       "60).",
       IntSetter(&Config::invoke_endpoint_timeout_seconds, "invoke_endpoint_timeout_seconds", 1,
                 3600)},
      {"invoke_endpoint_threads", "integer", IntDefault(&Config::invoke_endpoint_threads),
       "Threads serving InvokeEndpoint (each call in flight holds one until the container "
       "answers).",
       IntSetter(&Config::invoke_endpoint_threads, "invoke_endpoint_threads", 1, 1024)},
  };
  return kKeys;
}

}  // namespace

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Status Config::Load() {
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Error(Errc::kValidation, "cannot read config file " + config_file);
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    json::value doc = json::parse(text.str(), ec);
    if (ec || !doc.is_object()) {
      return Error(Errc::kValidation, "config file " + config_file + " is not a JSON object" +
                                          (ec ? ": " + ec.message() : ""));
    }
    for (const auto& [key, value] : doc.get_object()) {
      const ConfigKey* spec = nullptr;
      for (const auto& k : Keys()) {
        if (key == k.name) spec = &k;
      }
      if (!spec) {
        return Error(Errc::kValidation, "config file " + config_file + ": unknown key \"" +
                                            std::string(key) + "\" (see inferd config-reference)");
      }
      if (auto st = spec->set(*this, value); !st.ok()) {
        return Error(Errc::kValidation, "config file " + config_file + ": " + st.error().message);
      }
    }
  }
  return Validate();
}

Status Config::Validate() {
  // HOST:PORT, with [v6]:PORT for IPv6.
  std::smatch m;
  static const std::regex kListen(R"(^(\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):([0-9]{1,5})$)");
  if (!std::regex_match(listen, m, kListen)) {
    return Error(Errc::kValidation,
                 "--listen must be HOST:PORT (e.g. 127.0.0.1:8600), got \"" + listen + "\"");
  }
  host = m[2].matched ? m[2].str() : m[3].str();
  int p = std::stoi(m[4].str());
  if (p > 65535) return Error(Errc::kValidation, "--listen port must be at most 65535");
  port = static_cast<uint16_t>(p);
  if (data_dir.empty()) return Error(Errc::kValidation, "--data-dir must not be empty");
  return OkStatus();
}

std::string ConfigReference() {
  Config defaults;
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& k : Keys()) {
    out += std::string("| `") + k.name + "` | " + k.type + " | `" + k.default_text(defaults) +
           "` | " + k.help + " |\n";
  }
  return out;
}

}  // namespace inferd::app
