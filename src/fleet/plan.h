// What each production variant of an endpoint should run, read from the endpoint document the
// catalog stores (or its Pending part during UpdateEndpoint): {"Models": {name: CreateModel
// input}, "Config": CreateEndpointConfig input, "Variants": [{VariantName, ModelName,
// DesiredInstanceCount, …}]}. Pure: no I/O, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "fleet/artifact.h"
#include "fleet/instance.h"
#include "fleet/options.h"

namespace inferd::fleet {

struct VariantPlan {
  std::string name;
  int desired = 0;
  RuntimeKind runtime = RuntimeKind::kProcess;
  // image, command (process), environment, instance type and its resources, endpoint, variant;
  // model_dir and work_dir are filled later.
  InstanceSpec spec;
  std::optional<ModelData> model_data;  // none: the model server gets an empty directory
  std::chrono::milliseconds startup_timeout{0};
  std::chrono::milliseconds download_timeout{0};
};

// kValidation with a FailureReason when a variant cannot run: its model has no container, no
// runtime matches the image, or its ModelDataSource is not one inferd can fetch.
Result<std::vector<VariantPlan>> PlanFleet(const FleetOptions& options, const std::string& endpoint,
                                           const boost::json::object& doc);

// Variant name → DesiredInstanceCount of the endpoint document's Variants.
std::map<std::string, int> DesiredCounts(const boost::json::object& doc);

// The model data a ContainerDefinition names: ModelDataSource.S3DataSource (S3Prefix + None,
// S3Object + Gzip, S3Object + None) or ModelDataUrl (.tar.gz); nullopt when neither.
Result<std::optional<ModelData>> ModelDataOf(const boost::json::object& container);

}  // namespace inferd::fleet
