// Reconciler: moves the actual model fleet towards the catalog's desired state (TF Serving's
// aspired versions). One thread, owned by the Reconciler, loops every `reconcile_interval` (or
// sooner after Wake()) over CatalogStore::All(kEndpoint):
//
//   Creating   → fetch the model data, prepare the image (docker: pull if missing), start
//                DesiredInstanceCount instances per variant with the image's runtime, /ping
//                them; all healthy → Catalog::ReportFleet(kFleetReady) (InService); no runtime /
//                bad or slow artifact / unavailable image / server exit / /ping timeout →
//                kFleetFailed (Failed) with a FailureReason naming the cause.
//   InService  → keep DesiredInstanceCount healthy instances per variant: an instance that exits
//                or fails `unhealthy_threshold` pings in a row is stopped and replaced, with
//                exponential backoff, never exceeding the desired count. After an inferd restart
//                the fleet is started again here.
//   Updating   → UpdateEndpoint (a Pending configuration): blue/green — the new configuration's
//                fleet starts beside the current one; all healthy → kFleetReady, the new fleet
//                is published by HealthyInstances() and the old one retires; a failure →
//                kFleetFailed (InService, old fleet kept). At no moment does
//                HealthyInstances() list no instance while the old fleet was healthy.
//                UpdateEndpointWeightsAndCapacities: instances are started (or retired, newest
//                first) to the new desired counts, 0 included; all healthy → kFleetReady.
//   Deleting   → stop the instances (SIGTERM, SIGKILL after stop_grace), then
//                Catalog::RemoveDeleted.
//   Failed / gone from the catalog → instances stopped.
// Retiring instances leave HealthyInstances() first and are stopped `drain_delay` later, so a
// request routed from the previous list still reaches a live server.
//
// Runtimes (the InstanceRuntime seam): `process` always; `docker` when FleetOptions::
// docker_socket is set (its leftovers from a crashed inferd are removed before the first pass).
//
// Instances are children of the reconciler thread (PR_SET_PDEATHSIG): Stop() stops them
// gracefully on that thread before it exits. Artifact fetches and stops block the loop (first
// increment: one endpoint's slow download delays the others).
//
// Thread-safety: Start/Stop from one owner thread; Wake() and HealthyInstances() from any thread.
#pragma once

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/store.h"
#include "common/result.h"
#include "fleet/artifact.h"
#include "fleet/instance.h"
#include "fleet/options.h"
#include "store/object_store.h"

namespace inferd::fleet {

struct InstanceInfo {
  std::string variant;
  std::string host;  // "127.0.0.1"
  uint16_t port = 0;
  pid_t pid = 0;  // for diagnostics and tests
};

class Reconciler {
 public:
  Reconciler(FleetOptions options, catalog::CatalogStore& catalog_store, catalog::Catalog& catalog,
             store::ObjectStore& objects);
  ~Reconciler();  // Stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Validates the options, creates <data-dir>/{models,instances} and starts the loop. Once per
  // Reconciler (a stopped one is not restarted: make a new one).
  Status Start();
  // Ends the loop and stops every instance (graceful, within stop_grace). Idempotent.
  void Stop();
  // Runs a pass soon (after an API call changed desired state).
  void Wake();

  // Instances of an endpoint currently passing /ping (as of the last pass).
  std::vector<InstanceInfo> HealthyInstances(const std::string& region,
                                             const std::string& endpoint) const;

 private:
  struct Fleet;
  struct VariantFleet;
  void Loop();
  void ReconcileOnce();
  void ReconcileCreating(const catalog::Resource& endpoint);
  void ReconcileRunning(const catalog::Resource& endpoint);
  void ReconcileUpdating(const catalog::Resource& endpoint);
  // `spec`: the endpoint document, or its Pending part (Models, Config, Variants).
  Result<std::unique_ptr<Fleet>> BuildFleet(const catalog::Resource& endpoint,
                                            const boost::json::object& spec);
  void StopFleet(Fleet& fleet);
  // Moves every instance of `fleet` to retiring_ (stopped after drain_delay).
  void RetireFleet(Fleet& fleet);
  void StopRetired(bool all);
  void PublishHealthy();
  InstanceRuntime* RuntimeFor(RuntimeKind kind, std::string* why);
  struct TickResult;
  TickResult TickVariant(VariantFleet& v, const std::string& id_prefix, bool replace);

  FleetOptions options_;
  catalog::CatalogStore& catalog_store_;
  catalog::Catalog& catalog_;
  std::unique_ptr<ArtifactCache> artifacts_;
  std::unique_ptr<InstanceRuntime> process_runtime_;
  std::unique_ptr<InstanceRuntime> docker_runtime_;  // null without docker_socket

  // Owned by the loop thread.
  using FleetMap = std::map<std::string, std::unique_ptr<Fleet>>;
  enum class BringUp { kPending, kReady, kFailed };
  BringUp BringUpFleet(const catalog::Resource& endpoint, const boost::json::object& doc,
                       FleetMap& fleets, const char* what,
                       std::vector<catalog::Catalog::VariantReport>& reports);

  FleetMap fleets_;          // key: region + '\n' + lower(name)
  FleetMap pending_fleets_;  // UpdateEndpoint rollouts
  std::map<std::string, std::chrono::steady_clock::time_point> rebuild_not_before_;
  struct Retiring {
    std::unique_ptr<Instance> instance;
    std::chrono::steady_clock::time_point stop_at;
  };
  std::vector<Retiring> retiring_;
  uint64_t next_instance_ = 0;

  std::mutex mu_;  // guards stop_, wake_
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;

  mutable std::mutex healthy_mu_;
  std::map<std::string, std::vector<InstanceInfo>> healthy_;
};

bool operator==(const InstanceInfo& a, const InstanceInfo& b);

}  // namespace inferd::fleet
