#include "fleet/docker_runtime.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cmath>
#include <ctime>
#include <thread>

namespace inferd::fleet {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kContainerPort = 8080;

// RFC 3339 ("2026-11-26T18:24:43.123456789Z", "…+01:00") → unix seconds; nullopt if malformed.
std::optional<int64_t> ParseTimestamp(std::string_view s) {
  std::tm tm{};
  int consumed = 0;
  std::string text(s);
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t t = timegm(&tm);
  std::string_view rest = s.substr(consumed);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      rest.remove_prefix(1);
    }
  }
  if (rest == "Z") return t;
  int hh = 0, mm = 0;
  char sign = 0;
  if (rest.size() == 6 &&
      std::sscanf(std::string(rest).c_str(), "%c%2d:%2d", &sign, &hh, &mm) == 3 &&
      (sign == '+' || sign == '-')) {
    int64_t offset = (hh * 60 + mm) * 60;
    return sign == '+' ? t - offset : t + offset;
  }
  return std::nullopt;
}

// The payload of a logs answer: multiplexed frames ([stream, 0, 0, 0, size32be] + bytes) are
// joined; anything else is taken as the raw stream.
std::string Demultiplex(std::string_view body) {
  std::string out;
  size_t i = 0;
  while (i + 8 <= body.size()) {
    auto stream = static_cast<unsigned char>(body[i]);
    if (stream > 2 || body[i + 1] != 0 || body[i + 2] != 0 || body[i + 3] != 0) {
      return std::string(body);  // not multiplexed (TTY)
    }
    uint32_t size = (uint32_t(static_cast<unsigned char>(body[i + 4])) << 24) |
                    (uint32_t(static_cast<unsigned char>(body[i + 5])) << 16) |
                    (uint32_t(static_cast<unsigned char>(body[i + 6])) << 8) |
                    uint32_t(static_cast<unsigned char>(body[i + 7]));
    i += 8;
    size_t n = std::min<size_t>(size, body.size() - i);
    out.append(body.substr(i, n));
    i += n;
  }
  if (i < body.size() && out.empty()) return std::string(body);
  return out;
}

const json::object* ObjectAt(const json::object& o, std::string_view key) {
  auto* m = o.if_contains(key);
  return m && m->is_object() ? &m->as_object() : nullptr;
}
const json::object* ObjectAt(const json::value& v, std::string_view key) {
  return v.is_object() ? ObjectAt(v.as_object(), key) : nullptr;
}

}  // namespace

std::string NewLogLines(std::string_view body, int64_t& since, int64_t& seen_at_since) {
  std::string text = Demultiplex(body);
  const int64_t base = since;
  int64_t skip = seen_at_since;  // lines stamped `base` that an earlier call copied
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    auto space = line.find(' ');
    std::optional<int64_t> ts =
        space == std::string_view::npos ? std::nullopt : ParseTimestamp(line.substr(0, space));
    if (ts) {
      line.remove_prefix(space + 1);
      if (*ts < base) continue;
      if (*ts == base && skip > 0) {
        --skip;
        continue;
      }
      if (*ts > since) {
        since = *ts;
        seen_at_since = 0;
      }
      if (*ts == since) ++seen_at_since;
    }
    out.append(line);
    out += '\n';
  }
  return out;
}

namespace {

class DockerInstance final : public Instance {
 public:
  DockerInstance(InstanceSpec spec, const DockerClient& client, const DockerRuntimeOptions& o)
      : Instance(std::move(spec)), client_(client), options_(o) {}
  ~DockerInstance() override { Remove(); }

  Status Launch(const std::string& create_body);
  pid_t pid() const override { return pid_; }
  std::string id() const override { return "container " + id_.substr(0, 12); }

  bool Poll() override {
    if (state() == InstanceState::kExited || state() == InstanceState::kStopped) return false;
    auto now = SteadyClock::now();
    if (!force_inspect_ && now < next_inspect_) return true;
    force_inspect_ = false;
    next_inspect_ = now + options_.poll_interval;
    if (!Inspect()) return false;
    if (now >= next_logs_) SyncLogs();
    return true;
  }

  void BeginStop(std::chrono::milliseconds grace) override {
    force_inspect_ = true;
    if (!Poll() || state() == InstanceState::kStopping) return;
    Transition(InstanceState::kStopping);
    grace_ = grace;
    auto seconds = (grace.count() + 999) / 1000;
    auto pending =
        client_.Begin("POST", "/containers/" + id_ + "/stop?t=" + std::to_string(seconds));
    if (pending.ok()) {
      stop_ = std::move(*pending);
      stop_sent_ = true;
    } else {
      spdlog::warn("fleet: cannot stop {}: {}", id(), pending.error().message);
    }
  }

  void FinishStop() override {
    if (state() == InstanceState::kExited) {
      Transition(InstanceState::kStopped);
    } else if (state() == InstanceState::kStopping) {
      if (stop_sent_) {
        auto r = stop_.Finish(grace_ + options_.call_timeout);
        if (!r.ok() || (r->status >= 300 && r->status != 304)) {
          spdlog::warn("fleet: stopping {}: {}", id(), r.ok() ? r->Message() : r.error().message);
        }
      }
      if (Inspect()) {
        // Still running: the stop failed (or the engine did not answer); kill it.
        (void)client_.Call("POST", "/containers/" + id_ + "/kill");
        for (int i = 0; i < 50 && state() == InstanceState::kStopping && Inspect(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (state() == InstanceState::kStopping) Gone(137, "killed");
      }
    }
    Remove();
  }

 private:
  // GET /json: false (→ Exited/Stopped) once the container is no longer running.
  bool Inspect() {
    auto r = client_.Call("GET", "/containers/" + id_ + "/json", "", options_.call_timeout);
    if (!r.ok()) {
      spdlog::warn("fleet: cannot inspect {}: {}", id(), r.error().message);
      return true;  // unknown: the health checks decide
    }
    if (r->status == 404) {
      Gone(-1, "the container was removed by someone else");
      return false;
    }
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    const json::object* st = ec ? nullptr : ObjectAt(v, "State");
    if (!st) return true;
    auto running = st->if_contains("Running");
    if (running && running->is_bool() && running->get_bool()) {
      if (auto p = st->if_contains("Pid"); p && p->is_number()) pid_ = p->to_number<int>();
      return true;
    }
    int code = -1;
    if (auto c = st->if_contains("ExitCode"); c && c->is_number()) code = c->to_number<int>();
    std::string detail;
    if (auto oom = st->if_contains("OOMKilled"); oom && oom->is_bool() && oom->get_bool()) {
      detail = "killed for exceeding its " + std::to_string(spec_.resources.memory_mib) +
               " MiB memory limit (" + spec_.instance_type + ")";
    } else if (auto e = st->if_contains("Error"); e && e->is_string() && !e->get_string().empty()) {
      detail = std::string(e->get_string());
    }
    SyncLogs();
    Gone(code, detail);
    return false;
  }

  void SyncLogs() {
    if (id_.empty()) return;
    next_logs_ = SteadyClock::now() + options_.log_interval;
    std::string target = "/containers/" + id_ + "/logs?stdout=1&stderr=1&timestamps=1";
    if (log_since_ > 0) target += "&since=" + std::to_string(log_since_);
    auto r = client_.Call("GET", target, "", options_.call_timeout);
    if (!r.ok() || r->status != 200) return;
    std::string text = NewLogLines(r->body, log_since_, log_seen_at_since_);
    if (!text.empty()) AppendLog(spec_.work_dir, text);
  }

  void Remove() {
    if (id_.empty() || removed_) return;
    removed_ = true;
    auto r =
        client_.Call("DELETE", "/containers/" + id_ + "?force=1&v=1", "", options_.call_timeout);
    if (!r.ok() || (r->status >= 300 && r->status != 404)) {
      spdlog::warn("fleet: cannot remove {}: {}", id(), r.ok() ? r->Message() : r.error().message);
    }
  }

  void PingFailed() override { force_inspect_ = true; }

  const DockerClient& client_;
  const DockerRuntimeOptions& options_;
  std::string id_;
  pid_t pid_ = 0;
  bool removed_ = false;
  bool force_inspect_ = false;
  SteadyClock::time_point next_inspect_;
  SteadyClock::time_point next_logs_;
  int64_t log_since_ = 0;
  int64_t log_seen_at_since_ = 0;
  DockerClient::Pending stop_;
  bool stop_sent_ = false;
  std::chrono::milliseconds grace_{0};
};

Status DockerInstance::Launch(const std::string& create_body) {
  auto fail = [&](const std::string& what, const std::string& why) {
    return Error(Errc::kValidation,
                 "the container engine could not " + what + " image " + spec_.image + ": " + why);
  };
  std::string name = "inferd-" + spec_.work_dir.filename().string();
  auto created = client_.Call("POST", "/containers/create?name=" + QueryEscape(name), create_body,
                              options_.call_timeout);
  if (!created.ok()) return std::move(created).error();
  if (created->status != 201 && created->status != 200) {
    return fail("create a container of", created->Message());
  }
  boost::system::error_code ec;
  json::value v = json::parse(created->body, ec);
  if (!ec && v.is_object()) {
    if (auto* id = v.as_object().if_contains("Id"); id && id->is_string()) {
      id_ = std::string(id->get_string());
    }
  }
  if (id_.empty()) return fail("create a container of", "no Id in " + created->body);
  auto started = client_.Call("POST", "/containers/" + id_ + "/start", "", options_.call_timeout);
  if (!started.ok()) return std::move(started).error();
  if (started->status != 204 && started->status != 304) {
    SyncLogs();
    return fail("start a container of", started->Message());
  }
  auto inspected = client_.Call("GET", "/containers/" + id_ + "/json", "", options_.call_timeout);
  if (!inspected.ok()) return std::move(inspected).error();
  json::value info = json::parse(inspected->body, ec);
  const json::object* net = ec ? nullptr : ObjectAt(info, "NetworkSettings");
  const json::object* ports = net ? ObjectAt(*net, "Ports") : nullptr;
  const json::value* bindings =
      ports ? ports->if_contains(std::to_string(kContainerPort) + "/tcp") : nullptr;
  if (bindings && bindings->is_array()) {
    for (const auto& b : bindings->as_array()) {
      const json::value* hp = b.is_object() ? b.as_object().if_contains("HostPort") : nullptr;
      if (hp && hp->is_string()) port_ = static_cast<uint16_t>(std::atoi(hp->as_string().c_str()));
    }
  }
  bool running = true;
  if (const json::object* st = ec ? nullptr : ObjectAt(info, "State")) {
    if (auto p = st->if_contains("Pid"); p && p->is_number()) pid_ = p->to_number<int>();
    if (auto r = st->if_contains("Running"); r && r->is_bool()) running = r->get_bool();
  }
  std::string header = "inferd: docker runtime: " + id() + " of image " + spec_.image;
  std::string limits = "; instance type " + Describe(spec_.instance_type, spec_.resources) +
                       " (enforced as limits)\n";
  if (!running) {
    // It already exited: the next Poll() reports the exit code and copies its output.
    AppendLog(spec_.work_dir, header + limits);
    force_inspect_ = true;
    return OkStatus();
  }
  if (port_ == 0) {
    SyncLogs();
    return fail("publish port 8080 of a container of", "no host port in NetworkSettings.Ports");
  }
  AppendLog(spec_.work_dir, header + " on 127.0.0.1:" + std::to_string(port_) + limits);
  next_inspect_ = SteadyClock::now() + options_.poll_interval;
  SyncLogs();
  return OkStatus();
}

}  // namespace

DockerRuntime::DockerRuntime(DockerRuntimeOptions options)
    : options_(std::move(options)), client_(options_.socket_path, options_.call_timeout) {
  if (options_.host_cpus <= 0) {
    options_.host_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
}

std::string DockerRuntime::CreateBody(const InstanceSpec& spec) const {
  json::array env;
  for (const auto& [k, v] : spec.environment) {
    if (k != "SAGEMAKER_BIND_TO_PORT") env.emplace_back(k + "=" + v);
  }
  env.emplace_back("SAGEMAKER_BIND_TO_PORT=" + std::to_string(kContainerPort));
  std::string port = std::to_string(kContainerPort) + "/tcp";
  int cpus = std::min(spec.resources.vcpus, options_.host_cpus);
  json::object host{
      {"Init", true},
      {"Memory", spec.resources.memory_mib * 1024 * 1024},
      {"NanoCpus", int64_t{cpus} * 1000000000},
      {"PortBindings",
       json::object{{port, json::array{json::object{{"HostIp", "127.0.0.1"}, {"HostPort", ""}}}}}},
      {"Mounts", json::array{json::object{{"Type", "bind"},
                                          {"Source", spec.model_dir.string()},
                                          {"Target", "/opt/ml/model"},
                                          {"ReadOnly", true}}}},
  };
  if (spec.resources.gpus > 0) {
    host["DeviceRequests"] =
        json::array{json::object{{"Driver", ""},
                                 {"Count", spec.resources.gpus},
                                 {"Capabilities", json::array{json::array{"gpu"}}}}};
  }
  json::object body{
      {"Image", spec.image},
      {"Cmd", json::array{"serve"}},
      {"Env", std::move(env)},
      {"ExposedPorts", json::object{{port, json::object{}}}},
      {"Labels", json::object{{kOwnerLabel, options_.owner},
                              {kEndpointLabel, spec.endpoint},
                              {kVariantLabel, spec.variant},
                              {kInstanceLabel, spec.work_dir.filename().string()}}},
      {"HostConfig", std::move(host)},
  };
  return json::serialize(body);
}

Result<std::string> DockerRuntime::PrepareImage(const InstanceSpec& spec) {
  const std::string& image = spec.image;
  auto unavailable = [&](const std::string& why) {
    return Error(Errc::kValidation, "image " + image + " is not available: " + why);
  };
  auto inspect = [&]() { return client_.Call("GET", "/images/" + image + "/json"); };
  auto r = inspect();
  if (!r.ok()) return unavailable(r.error().message);
  if (r->status == 404) {
    spdlog::info("fleet: pulling image {}", image);
    auto pulled = client_.Call("POST", "/images/create?fromImage=" + QueryEscape(image), "",
                               options_.pull_timeout);
    if (!pulled.ok()) return unavailable("pull failed: " + pulled.error().message);
    std::string pull_error = pulled->Message();
    // A pull answers 200 with a stream of JSON progress lines; an error is one of them.
    size_t pos = 0;
    while (pull_error.empty() && pos < pulled->body.size()) {
      size_t nl = pulled->body.find('\n', pos);
      std::string line = pulled->body.substr(pos, nl == std::string::npos ? nl : nl - pos);
      pos = nl == std::string::npos ? pulled->body.size() : nl + 1;
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (ec || !v.is_object()) continue;
      if (auto* e = v.as_object().if_contains("error"); e && e->is_string()) {
        pull_error = std::string(e->get_string());
      }
    }
    if (!pull_error.empty())
      return unavailable("it is not on the engine and pulling it failed: " + pull_error);
    r = inspect();
    if (!r.ok()) return unavailable(r.error().message);
  }
  if (r->status != 200) return unavailable(r->Message());
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) return unavailable("the engine described it as " + r->body);
  if (auto* d = v.as_object().if_contains("RepoDigests");
      d && d->is_array() && !d->as_array().empty() && d->as_array().front().is_string()) {
    return std::string(d->as_array().front().get_string());
  }
  if (auto* id = v.as_object().if_contains("Id"); id && id->is_string()) {
    return image + "@" + std::string(id->get_string());
  }
  return image;
}

Result<std::unique_ptr<Instance>> DockerRuntime::Start(const InstanceSpec& spec) {
  std::error_code ec;
  fs::create_directories(spec.work_dir, ec);
  if (ec) {
    return Error(Errc::kInternal, "cannot create " + spec.work_dir.string() + ": " + ec.message());
  }
  auto inst = std::make_unique<DockerInstance>(spec, client_, options_);
  INFERD_RETURN_IF_ERROR(inst->Launch(CreateBody(spec)));
  return std::unique_ptr<Instance>(std::move(inst));
}

void DockerRuntime::RemoveLeftovers() {
  std::error_code exists_ec;
  if (!fs::exists(options_.socket_path, exists_ec)) {
    spdlog::debug("fleet: no container engine at unix://{}", options_.socket_path);
    return;
  }
  std::string filters = json::serialize(
      json::object{{"label", json::array{std::string(kOwnerLabel) + "=" + options_.owner}}});
  auto r = client_.Call("GET", "/containers/json?all=1&filters=" + QueryEscape(filters));
  if (!r.ok()) {
    spdlog::info("fleet: docker runtime: {}", r.error().message);
    return;
  }
  if (r->status != 200) {
    spdlog::warn("fleet: cannot list leftover containers: {}", r->Message());
    return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_array()) return;
  for (const auto& c : v.as_array()) {
    const json::value* id = c.is_object() ? c.as_object().if_contains("Id") : nullptr;
    if (!id || !id->is_string()) continue;
    std::string cid(id->get_string());
    auto d = client_.Call("DELETE", "/containers/" + cid + "?force=1&v=1");
    if (d.ok() && (d->status < 300 || d->status == 404)) {
      spdlog::info("fleet: removed leftover container {}", cid.substr(0, 12));
    } else {
      spdlog::warn("fleet: cannot remove leftover container {}: {}", cid.substr(0, 12),
                   d.ok() ? d->Message() : d.error().message);
    }
  }
}

}  // namespace inferd::fleet
