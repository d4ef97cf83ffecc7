// Catalog: the SageMaker control plane's resources — models, endpoint configurations, endpoints and
// their tags — with SageMaker's rules (existence, uniqueness, the endpoint state machine), stored
// durably in a CatalogStore.
//
// Operations take the request's members (already checked against the API model's constraints by
// api/sagemaker) as a JSON object in SageMaker's shapes and return the response object in those
// shapes; the documents are stored as given so Describe* echoes them in full.
//
// Resources are regional: `region` is the region of the caller's credential scope.
// Thread-safe; every operation blocks on the store (call from the blocking pool).
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "catalog/endpoint_status.h"
#include "catalog/store.h"
#include "common/clock.h"
#include "common/result.h"

namespace inferd::catalog {

enum class ArnKind { kModel, kEndpointConfig, kEndpoint };

// What happened to an endpoint, as told to the endpoint observer (see SetEndpointObserver).
enum class EndpointChange {
  kCreated,          // CreateEndpoint (status Creating)
  kUpdated,          // UpdateEndpoint (status Updating, doc["Pending"] holds the new config)
  kCapacityUpdated,  // UpdateEndpointWeightsAndCapacities (status Updating)
  kDeleting,         // DeleteEndpoint (status Deleting)
  kFleetReported,    // ReportFleet: InService / Failed (an update's config may now be current)
  kRemoved,          // RemoveDeleted: gone from the catalog (`resource` is its last state)
};

// arn:aws:sagemaker:<region>:<account>:<kind>/<lower-cased name>
std::string MakeArn(ArnKind kind, const std::string& region, const std::string& account,
                    const std::string& name);

class Catalog {
 public:
  Catalog(CatalogStore& store, const Clock& clock, std::string account_id);

  using Object = boost::json::object;
  Result<Object> CreateModel(const std::string& region, const Object& in);
  Result<Object> DescribeModel(const std::string& region, const Object& in);
  Result<Object> ListModels(const std::string& region, const Object& in);
  Result<Object> DeleteModel(const std::string& region, const Object& in);

  Result<Object> CreateEndpointConfig(const std::string& region, const Object& in);
  Result<Object> DescribeEndpointConfig(const std::string& region, const Object& in);
  Result<Object> ListEndpointConfigs(const std::string& region, const Object& in);
  Result<Object> DeleteEndpointConfig(const std::string& region, const Object& in);

  Result<Object> CreateEndpoint(const std::string& region, const Object& in);
  Result<Object> DescribeEndpoint(const std::string& region, const Object& in);
  Result<Object> ListEndpoints(const std::string& region, const Object& in);
  Result<Object> UpdateEndpoint(const std::string& region, const Object& in);
  Result<Object> UpdateEndpointWeightsAndCapacities(const std::string& region, const Object& in);
  Result<Object> DeleteEndpoint(const std::string& region, const Object& in);

  Result<Object> AddTags(const std::string& region, const Object& in);
  Result<Object> DeleteTags(const std::string& region, const Object& in);
  Result<Object> ListTags(const std::string& region, const Object& in);

  // ---- reported by the fleet reconciler (fleet/) ----
  // What a variant's fleet runs, for DescribeEndpoint.
  struct VariantReport {
    std::string variant_name;
    int current_instance_count = 0;
    std::vector<std::string> resolved_images;  // one per container, in DeployedImages order
  };
  // Applies kFleetReady or kFleetFailed to the endpoint through Transition() and persists it:
  // on ready, an Updating endpoint's Pending configuration becomes its own, then variants take
  // their current counts/weights and resolved images, VariantStatus empties and FailureReason
  // goes; on failure, FailureReason = `failure_reason` (Updating: Pending is dropped). kNotFound
  // when the endpoint is gone; kInvalidState when the endpoint moved on meanwhile (e.g. Deleting).
  Status ReportFleet(const std::string& region, const std::string& name, EndpointEvent event,
                     const std::string& failure_reason, const std::vector<VariantReport>& variants);
  // Removes an endpoint in Deleting once its instances stopped. kInvalidState in any other
  // status; kNotFound when absent.
  Status RemoveDeleted(const std::string& region, const std::string& name);

  const std::string& account_id() const { return account_id_; }

  // Called after every committed change of an endpoint with the endpoint as stored (for
  // kRemoved, as it was before removal), under the catalog's endpoint lock: changes reach the
  // observer in commit order. Keep it short and never call back into the Catalog from it. Set
  // once, before the catalog is shared between threads.
  using EndpointObserver = std::function<void(EndpointChange change, const Resource& endpoint)>;
  void SetEndpointObserver(EndpointObserver observer) { observer_ = std::move(observer); }

 private:
  std::string Arn(ArnKind kind, const std::string& region, const std::string& name) const {
    return MakeArn(kind, region, account_id_, name);
  }
  double Now() const;
  Result<Resource> GetOr404(Kind kind, const std::string& region, const std::string& name);
  Result<Object> List(Kind kind, const std::string& region, const Object& in);
  Status CheckUpdatable(const Resource& endpoint);
  // Stores `endpoint` as `status`, modified `now`, with `doc` (nullptr: unchanged), and tells the
  // observer `change`: every update of a stored endpoint goes through here. Call with
  // endpoint_mu_ held.
  Status CommitEndpoint(Resource endpoint, EndpointStatus status, double now, const Object* doc,
                        EndpointChange change);

  CatalogStore& store_;
  const Clock& clock_;
  // Serializes read-modify-write of endpoint documents (API calls vs. fleet reports).
  std::mutex endpoint_mu_;
  std::string account_id_;
  EndpointObserver observer_;
  void Notify(EndpointChange change, const Resource& endpoint) const {
    if (observer_) observer_(change, endpoint);
  }
};

}  // namespace inferd::catalog
