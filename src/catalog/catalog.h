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
#include <string>

#include "catalog/endpoint_status.h"
#include "catalog/store.h"
#include "common/clock.h"
#include "common/result.h"

namespace inferd::catalog {

enum class ArnKind { kModel, kEndpointConfig, kEndpoint };

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

  const std::string& account_id() const { return account_id_; }

 private:
  std::string Arn(ArnKind kind, const std::string& region, const std::string& name) const {
    return MakeArn(kind, region, account_id_, name);
  }
  double Now() const;
  Result<Resource> GetOr404(Kind kind, const std::string& region, const std::string& name);
  Result<Object> List(Kind kind, const std::string& region, const Object& in);
  Status CheckUpdatable(const Resource& endpoint);

  CatalogStore& store_;
  const Clock& clock_;
  std::string account_id_;
};

}  // namespace inferd::catalog
