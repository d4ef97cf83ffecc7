#include "fleet/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "catalog/endpoint_status.h"
#include "common/ids.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "fleet/docker_runtime.h"
#include "fleet/plan.h"
#include "fleet/process_runtime.h"

namespace inferd::fleet {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using catalog::EndpointEvent;
using catalog::EndpointStatus;

namespace {

std::string Key(const std::string& region, const std::string& name) {
  return region + "\n" + AsciiLower(name);
}

}  // namespace

// One running instance and its health bookkeeping.
struct Slot {
  std::unique_ptr<Instance> instance;
  SteadyClock::time_point startup_deadline;
  SteadyClock::time_point next_ping;
  int failed_pings = 0;
};

struct Reconciler::VariantFleet {
  std::string name;
  int desired = 0;
  InstanceRuntime* runtime = nullptr;
  InstanceSpec spec;           // work_dir filled per instance
  std::string resolved_image;  // DeployedImages.ResolvedImage
  std::chrono::milliseconds startup_timeout{0};
  std::vector<Slot> slots;
  std::chrono::milliseconds backoff{0};
  SteadyClock::time_point restart_not_before;
};

struct Reconciler::Fleet {
  std::string region;
  std::string name;
  std::vector<VariantFleet> variants;
};

struct Reconciler::TickResult {
  int healthy = 0;
  std::vector<std::string> failures;  // instances removed this tick, with why
};

bool operator==(const InstanceInfo& a, const InstanceInfo& b) {
  return a.variant == b.variant && a.host == b.host && a.port == b.port && a.pid == b.pid;
}

Reconciler::Reconciler(FleetOptions options, catalog::CatalogStore& catalog_store,
                       catalog::Catalog& catalog, store::ObjectStore& objects)
    : options_(std::move(options)), catalog_store_(catalog_store), catalog_(catalog) {
  if (options_.bin_dir.empty()) options_.bin_dir = SelfBinDir();
  // Containers mount model directories by absolute path, and are labelled with it.
  std::error_code ec;
  if (!options_.data_dir.empty()) options_.data_dir = fs::absolute(options_.data_dir, ec);
  process_runtime_ = std::make_unique<ProcessRuntime>();
  if (!options_.docker_socket.empty()) {
    DockerRuntimeOptions docker;
    docker.socket_path = options_.docker_socket;
    docker.owner = options_.data_dir.lexically_normal().string();
    docker_runtime_ = std::make_unique<DockerRuntime>(docker);
  }
  artifacts_ = std::make_unique<ArtifactCache>(
      objects, options_.data_dir / "models",
      ExtractLimits{options_.max_artifact_bytes, options_.max_artifact_ratio});
}

Reconciler::~Reconciler() { Stop(); }

Status Reconciler::Start() {
  INFERD_RETURN_IF_ERROR(options_.Validate());
  std::error_code ec;
  for (const char* sub : {"models", "instances"}) {
    fs::create_directories(options_.data_dir / sub, ec);
    if (ec) {
      return Error(Errc::kInternal,
                   "cannot create " + (options_.data_dir / sub).string() + ": " + ec.message());
    }
  }
  thread_ = std::thread([this] {
    SetThreadName("reconciler");
    Loop();
  });
  return OkStatus();
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

std::vector<InstanceInfo> Reconciler::HealthyInstances(const std::string& region,
                                                       const std::string& endpoint) const {
  std::lock_guard lock(healthy_mu_);
  auto it = healthy_.find(Key(region, endpoint));
  return it == healthy_.end() ? std::vector<InstanceInfo>{} : it->second;
}

void Reconciler::Loop() {
  if (docker_runtime_ && options_.host_models) docker_runtime_->RemoveLeftovers();
  for (;;) {
    ReconcileOnce();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.reconcile_interval, [this] { return stop_ || wake_; });
    wake_ = false;
    if (stop_) break;
  }
  // Children die with this thread (PDEATHSIG): stop them gracefully before it exits.
  for (auto& [key, fleet] : pending_fleets_) StopFleet(*fleet);
  pending_fleets_.clear();
  for (auto& [key, fleet] : fleets_) StopFleet(*fleet);
  fleets_.clear();
  PublishHealthy();
  StopRetired(true);
}

void Reconciler::ReconcileOnce() {
  auto all = catalog_store_.All(catalog::Kind::kEndpoint);
  if (!all.ok()) {
    spdlog::warn("fleet: cannot read the endpoints: {}", all.error().message);
    return;
  }
  std::set<std::string> seen;
  std::set<std::string> updating;  // endpoints whose pending fleet may live on
  for (const catalog::Resource& r : *all) {
    std::string key = Key(r.region, r.name);
    seen.insert(key);
    auto status = catalog::ParseEndpointStatus(r.status).value_or(EndpointStatus::kOutOfService);
    if (status == EndpointStatus::kUpdating) updating.insert(key);
    if (!options_.host_models && status != EndpointStatus::kDeleting) continue;
    switch (status) {
      case EndpointStatus::kCreating:
        ReconcileCreating(r);
        break;
      case EndpointStatus::kUpdating:
        ReconcileUpdating(r);
        break;
      case EndpointStatus::kInService:
      case EndpointStatus::kSystemUpdating:
      case EndpointStatus::kRollingBack:
        ReconcileRunning(r);
        break;
      case EndpointStatus::kDeleting: {
        // Unlisted for dispatch first, then stopped, then gone from the catalog: dispatch never
        // sees a stopping instance, nor the instances of an endpoint that no longer exists.
        std::vector<std::unique_ptr<Fleet>> gone;
        for (FleetMap* map : {&pending_fleets_, &fleets_}) {
          if (auto it = map->find(key); it != map->end()) {
            gone.push_back(std::move(it->second));
            map->erase(it);
          }
        }
        PublishHealthy();
        for (auto& fleet : gone) StopFleet(*fleet);
        Status st = catalog_.RemoveDeleted(r.region, r.name);
        if (!st.ok() && st.error().code != Errc::kNotFound) {
          spdlog::warn("fleet: cannot remove endpoint {}: {}", r.name, st.error().message);
        }
        break;
      }
      default:
        if (auto it = fleets_.find(key); it != fleets_.end()) {
          StopFleet(*it->second);
          fleets_.erase(it);
        }
        break;
    }
  }
  // A pending fleet lives only while its endpoint is Updating; a fleet whose endpoint left the
  // catalog is stopped.
  auto stop_all_but = [this](FleetMap& fleets, const std::set<std::string>& keep) {
    std::erase_if(fleets, [&](auto& entry) {
      if (keep.count(entry.first)) return false;
      StopFleet(*entry.second);
      return true;
    });
  };
  stop_all_but(pending_fleets_, updating);
  stop_all_but(fleets_, seen);
  PublishHealthy();
  StopRetired(false);
}

InstanceRuntime* Reconciler::RuntimeFor(RuntimeKind kind, std::string* why) {
  if (kind == RuntimeKind::kProcess) return process_runtime_.get();
  if (!docker_runtime_) {
    *why = "the docker runtime is not configured (set docker_host)";
    return nullptr;
  }
  return docker_runtime_.get();
}

Result<std::unique_ptr<Reconciler::Fleet>> Reconciler::BuildFleet(const catalog::Resource& r,
                                                                  const json::object& doc) {
  auto plans = PlanFleet(options_, r.name, doc);
  if (!plans.ok()) return std::move(plans).error();
  auto fleet = std::make_unique<Fleet>();
  fleet->region = r.region;
  fleet->name = r.name;
  for (VariantPlan& plan : *plans) {
    VariantFleet vf;
    vf.name = plan.name;
    vf.desired = plan.desired;
    std::string why;
    vf.runtime = RuntimeFor(plan.runtime, &why);
    if (!vf.runtime) {
      return Error(Errc::kValidation, "image " + plan.spec.image +
                                          " maps to the docker runtime, "
                                          "but " +
                                          why);
    }
    vf.spec = std::move(plan.spec);
    if (plan.model_data) {
      auto dir = artifacts_->Get(*plan.model_data, plan.download_timeout);
      if (!dir.ok()) return std::move(dir).error();
      vf.spec.model_dir = *dir;
    } else {
      vf.spec.model_dir = options_.data_dir / "models" / "empty";
      std::error_code ec;
      fs::create_directories(vf.spec.model_dir, ec);
    }
    auto resolved = vf.runtime->PrepareImage(vf.spec);
    if (!resolved.ok()) return std::move(resolved).error();
    vf.resolved_image = *resolved;
    vf.startup_timeout = plan.startup_timeout;
    vf.backoff = options_.restart_backoff_initial;
    fleet->variants.push_back(std::move(vf));
  }
  return fleet;
}

void Reconciler::StopFleet(Fleet& fleet) {
  for (auto& v : fleet.variants) {
    for (auto& s : v.slots) s.instance->BeginStop(options_.stop_grace);
  }
  for (auto& v : fleet.variants) {
    for (auto& s : v.slots) s.instance->FinishStop();
    v.slots.clear();
  }
}

void Reconciler::RetireFleet(Fleet& fleet) {
  auto stop_at = SteadyClock::now() + options_.drain_delay;
  for (auto& v : fleet.variants) {
    for (auto& s : v.slots) retiring_.push_back({std::move(s.instance), stop_at});
    v.slots.clear();
  }
}

// Stops the retiring instances whose drain delay is over (`all`: every one), in parallel.
void Reconciler::StopRetired(bool all) {
  auto now = SteadyClock::now();
  std::vector<std::unique_ptr<Instance>> due;
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    if (all || now >= it->stop_at) {
      due.push_back(std::move(it->instance));
      it = retiring_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& inst : due) inst->BeginStop(options_.stop_grace);
  for (auto& inst : due) {
    inst->FinishStop();
    spdlog::info("fleet: retired {} ({})", inst->work_dir().filename().string(), inst->id());
  }
}

namespace {

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000);
  return std::to_string(d.count() / 1000.0);
}

std::string ExitReason(const Instance& inst) {
  std::string reason =
      "the model server exited with code " + std::to_string(inst.exit_code().value_or(-1));
  if (!inst.exit_detail().empty()) reason += " (" + inst.exit_detail() + ")";
  std::string tail = inst.LogTail(10);
  return tail.empty() ? reason : reason + ": " + tail;
}

}  // namespace

// Starts missing instances (when the restart backoff allows), pings the due ones and collects
// failures (exited, /ping timeout at startup, too many failed pings). With `replace`, failed
// instances are stopped and removed (restarted next pass, after the backoff); without it the
// caller fails the endpoint. Instances above the desired count retire, newest first.
Reconciler::TickResult Reconciler::TickVariant(VariantFleet& v, const std::string& id_prefix,
                                               bool replace) {
  const FleetOptions& o = options_;
  TickResult result;
  auto now = SteadyClock::now();
  while (static_cast<int>(v.slots.size()) < v.desired && now >= v.restart_not_before) {
    InstanceSpec spec = v.spec;
    // Unique across inferd restarts: a new instance never appends to an old one's log.
    spec.work_dir =
        o.data_dir / "instances" /
        (id_prefix + "-" + std::to_string(next_instance_++) + "-" + NewUuid().substr(0, 8));
    auto inst = v.runtime->Start(spec);
    if (!inst.ok()) {
      result.failures.push_back("the model server could not be started: " + inst.error().message);
      v.restart_not_before = now + v.backoff;
      v.backoff = std::min(v.backoff * 2, o.restart_backoff_max);
      break;
    }
    spdlog::info("fleet: started {} ({}, port {}) in {}", spec.image, (*inst)->id(),
                 (*inst)->port(), spec.work_dir.string());
    v.slots.push_back(Slot{std::move(*inst), now + v.startup_timeout, now, 0});
  }
  auto stop_at = now + o.drain_delay;
  while (static_cast<int>(v.slots.size()) > v.desired) {
    retiring_.push_back({std::move(v.slots.back().instance), stop_at});
    v.slots.pop_back();
  }
  for (auto it = v.slots.begin(); it != v.slots.end();) {
    Instance& inst = *it->instance;
    std::string failure;
    if (!inst.Poll()) {
      failure = ExitReason(inst);
    } else if (SteadyClock::now() >= it->next_ping) {
      bool ok = inst.Ping(o.ping_timeout);
      bool starting = inst.state() == InstanceState::kStarting;
      it->next_ping =
          SteadyClock::now() + (starting ? o.startup_poll_interval : o.health_check_interval);
      if (ok) {
        it->failed_pings = 0;
        v.backoff = o.restart_backoff_initial;
      } else if (inst.state() == InstanceState::kExited) {
        failure = ExitReason(inst);
      } else if (starting && SteadyClock::now() >= it->startup_deadline) {
        failure = "/ping did not pass within " + Seconds(v.startup_timeout) + " s";
      } else if (!starting && ++it->failed_pings >= o.unhealthy_threshold) {
        failure = "/ping failed " + std::to_string(it->failed_pings) + " times in a row";
      }
    }
    if (failure.empty()) {
      if (inst.state() == InstanceState::kHealthy) ++result.healthy;
      ++it;
      continue;
    }
    result.failures.push_back(failure);
    if (!replace) {
      ++it;
      continue;
    }
    spdlog::warn("fleet: replacing instance {} of variant {}: {}", inst.work_dir().string(), v.name,
                 failure);
    inst.Stop(o.stop_grace);
    it = v.slots.erase(it);
    v.restart_not_before = SteadyClock::now() + v.backoff;
    v.backoff = std::min(v.backoff * 2, o.restart_backoff_max);
  }
  return result;
}

// Builds (on first call) and ticks the fleet kept in `fleets` under the endpoint's key until every
// desired instance is healthy. On a failure the fleet is stopped and dropped, and kFleetFailed is
// reported with the reason. `what` names the rollout in logs ("endpoint", "update of endpoint").
Reconciler::BringUp Reconciler::BringUpFleet(
    const catalog::Resource& r, const json::object& doc, FleetMap& fleets, const char* what,
    std::vector<catalog::Catalog::VariantReport>& reports) {
  std::string key = Key(r.region, r.name);
  auto it = fleets.find(key);
  if (it == fleets.end()) {
    auto fleet = BuildFleet(r, doc);
    if (!fleet.ok()) {
      spdlog::warn("fleet: {} {} failed: {}", what, r.name, fleet.error().message);
      (void)catalog_.ReportFleet(r.region, r.name, EndpointEvent::kFleetFailed,
                                 fleet.error().message, {});
      return BringUp::kFailed;
    }
    it = fleets.emplace(key, std::move(*fleet)).first;
  }
  Fleet& fleet = *it->second;
  bool ready = true;
  std::string failure;
  for (auto& v : fleet.variants) {
    TickResult t = TickVariant(v, AsciiLower(r.name) + "-" + v.name, false);
    if (!t.failures.empty()) {
      failure = t.failures.front();
      break;
    }
    if (t.healthy < v.desired) ready = false;
    reports.push_back({v.name, t.healthy, {v.resolved_image}});
  }
  if (!failure.empty()) {
    spdlog::warn("fleet: {} {} failed: {}", what, r.name, failure);
    StopFleet(fleet);
    fleets.erase(it);
    (void)catalog_.ReportFleet(r.region, r.name, EndpointEvent::kFleetFailed, failure, {});
    return BringUp::kFailed;
  }
  return ready ? BringUp::kReady : BringUp::kPending;
}

void Reconciler::ReconcileCreating(const catalog::Resource& r) {
  std::vector<catalog::Catalog::VariantReport> reports;
  if (BringUpFleet(r, json::parse(r.doc).as_object(), fleets_, "endpoint", reports) !=
      BringUp::kReady) {
    return;
  }
  PublishHealthy();  // dispatch sees the instances no later than the catalog says InService
  Status st = catalog_.ReportFleet(r.region, r.name, EndpointEvent::kFleetReady, "", reports);
  if (st.ok()) spdlog::info("fleet: endpoint {} is InService", r.name);
}

void Reconciler::ReconcileRunning(const catalog::Resource& r) {
  std::string key = Key(r.region, r.name);
  auto it = fleets_.find(key);
  if (it == fleets_.end()) {
    auto now = SteadyClock::now();
    if (auto nb = rebuild_not_before_.find(key);
        nb != rebuild_not_before_.end() && now < nb->second) {
      return;
    }
    auto fleet = BuildFleet(r, json::parse(r.doc).as_object());
    if (!fleet.ok()) {
      spdlog::warn("fleet: cannot bring back endpoint {}: {}", r.name, fleet.error().message);
      rebuild_not_before_[key] = now + options_.restart_backoff_max;
      return;
    }
    rebuild_not_before_.erase(key);
    it = fleets_.emplace(key, std::move(*fleet)).first;
  }
  for (auto& v : it->second->variants) TickVariant(v, AsciiLower(r.name) + "-" + v.name, true);
}

void Reconciler::ReconcileUpdating(const catalog::Resource& r) {
  std::string key = Key(r.region, r.name);
  json::object doc = json::parse(r.doc).as_object();
  const json::value* pending = doc.if_contains("Pending");
  if (!pending || !pending->is_object()) {
    // UpdateEndpointWeightsAndCapacities: the current fleet moves to the new desired counts.
    auto it = fleets_.find(key);
    if (it != fleets_.end()) {
      std::map<std::string, int> desired = DesiredCounts(doc);
      for (auto& v : it->second->variants) {
        if (auto d = desired.find(v.name); d != desired.end()) v.desired = d->second;
      }
    }
    ReconcileRunning(r);
    it = fleets_.find(key);
    if (it == fleets_.end()) return;
    std::vector<catalog::Catalog::VariantReport> reports;
    for (const auto& v : it->second->variants) {
      int healthy = 0;
      for (const auto& s : v.slots) healthy += s.instance->state() == InstanceState::kHealthy;
      if (healthy != v.desired || static_cast<int>(v.slots.size()) != v.desired) return;
      reports.push_back({v.name, healthy, {v.resolved_image}});
    }
    PublishHealthy();  // dispatch sees the new counts no later than the catalog does
    (void)catalog_.ReportFleet(r.region, r.name, EndpointEvent::kFleetReady, "", reports);
    return;
  }
  // UpdateEndpoint: blue/green. The current fleet keeps serving while the new one starts.
  ReconcileRunning(r);
  std::vector<catalog::Catalog::VariantReport> reports;
  if (BringUpFleet(r, pending->as_object(), pending_fleets_, "update of endpoint", reports) !=
      BringUp::kReady) {
    return;
  }
  // The new fleet takes over (listed by HealthyInstances() before the endpoint reads InService);
  // the old one drains, then stops.
  auto it = pending_fleets_.find(key);
  if (auto old = fleets_.find(key); old != fleets_.end()) RetireFleet(*old->second);
  fleets_[key] = std::move(it->second);
  pending_fleets_.erase(it);
  PublishHealthy();
  if (catalog_.ReportFleet(r.region, r.name, EndpointEvent::kFleetReady, "", reports).ok()) {
    spdlog::info("fleet: endpoint {} now runs {}", r.name,
                 json::serialize(pending->as_object().at("EndpointConfigName")));
  }
}

void Reconciler::PublishHealthy() {
  std::map<std::string, std::vector<InstanceInfo>> healthy;
  for (const auto& [key, fleet] : fleets_) {
    auto& list = healthy[key];
    for (const auto& v : fleet->variants) {
      for (const auto& s : v.slots) {
        if (s.instance->state() == InstanceState::kHealthy) {
          list.push_back({v.name, "127.0.0.1", s.instance->port(), s.instance->pid()});
        }
      }
    }
  }
  bool changed;
  {
    std::lock_guard lock(healthy_mu_);
    changed = healthy != healthy_;
    healthy_ = std::move(healthy);
  }
  if (changed && options_.on_healthy_changed) options_.on_healthy_changed();
}

}  // namespace inferd::fleet
