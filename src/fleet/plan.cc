#include "fleet/plan.h"

#include <boost/json.hpp>

#include "catalog/json_util.h"

namespace inferd::fleet {

namespace json = boost::json;

namespace {

using catalog::Str;

// A whole number member (the documents store counts and seconds as JSON numbers); `fallback`
// when absent or not a number.
int64_t JInt(const json::object& o, std::string_view key, int64_t fallback) {
  return static_cast<int64_t>(catalog::Num(o, key).value_or(static_cast<double>(fallback)));
}

}  // namespace

std::map<std::string, int> DesiredCounts(const json::object& doc) {
  std::map<std::string, int> out;
  for (const auto& v : doc.at("Variants").as_array()) {
    const json::object& o = v.as_object();
    out[Str(o, "VariantName")] = static_cast<int>(JInt(o, "DesiredInstanceCount", 0));
  }
  return out;
}

Result<std::optional<ModelData>> ModelDataOf(const json::object& container) {
  if (auto* src = container.if_contains("ModelDataSource"); src && src->is_object()) {
    const json::value* s3 = src->as_object().if_contains("S3DataSource");
    if (!s3 || !s3->is_object()) {
      return Error(Errc::kValidation,
                   "ModelDataSource without S3DataSource is not supported by inferd");
    }
    const json::object& o = s3->as_object();
    std::string uri = Str(o, "S3Uri");
    std::string type = Str(o, "S3DataType");
    std::string compression = Str(o, "CompressionType");
    if (type == "S3Prefix" && compression == "None") {
      return std::optional<ModelData>(ModelData{ModelData::Kind::kPrefix, uri});
    }
    if (type == "S3Object" && compression == "Gzip") {
      return std::optional<ModelData>(ModelData{ModelData::Kind::kTarGz, uri});
    }
    if (type == "S3Object" && compression == "None") {
      return std::optional<ModelData>(ModelData{ModelData::Kind::kObject, uri});
    }
    return Error(Errc::kValidation, "ModelDataSource S3DataType " + type +
                                        " with CompressionType " + compression +
                                        " is not supported (S3Prefix needs None; S3Object "
                                        "takes Gzip for a .tar.gz or None for one file)");
  }
  if (std::string url = Str(container, "ModelDataUrl"); !url.empty()) {
    return std::optional<ModelData>(ModelData{ModelData::Kind::kTarGz, url});
  }
  return std::optional<ModelData>();
}

Result<std::vector<VariantPlan>> PlanFleet(const FleetOptions& options, const std::string& endpoint,
                                           const json::object& doc) {
  const json::object& models = doc.at("Models").as_object();
  const json::object& config = doc.at("Config").as_object();
  std::vector<VariantPlan> plans;
  for (const auto& v : doc.at("Variants").as_array()) {
    const json::object& variant = v.as_object();
    VariantPlan plan;
    plan.name = Str(variant, "VariantName");
    plan.desired = static_cast<int>(JInt(variant, "DesiredInstanceCount", 0));
    std::string model_name = Str(variant, "ModelName");
    const json::value* model = models.if_contains(model_name);
    const json::object* container = nullptr;
    if (model && model->is_object()) {
      if (auto* p = model->as_object().if_contains("PrimaryContainer"); p && p->is_object()) {
        container = &p->as_object();
      } else if (auto* c = model->as_object().if_contains("Containers");
                 c && c->is_array() && !c->as_array().empty()) {
        container = &c->as_array().front().as_object();
      }
    }
    if (!container) {
      return Error(Errc::kValidation, "model " + model_name + " has no container to run");
    }
    plan.spec.image = Str(*container, "Image");
    auto runtime = ResolveImage(options, plan.spec.image);
    if (!runtime.ok()) return std::move(runtime).error();
    plan.runtime = runtime->runtime;
    plan.spec.command = runtime->command;
    auto data = ModelDataOf(*container);
    if (!data.ok()) return std::move(data).error();
    plan.model_data = *data;
    if (auto* env = container->if_contains("Environment"); env && env->is_object()) {
      for (const auto& [k, val] : env->as_object()) {
        if (val.is_string()) plan.spec.environment[std::string(k)] = std::string(val.get_string());
      }
    }
    plan.spec.endpoint = endpoint;
    plan.spec.variant = plan.name;
    int64_t startup_s = options.default_startup_timeout.count();
    int64_t download_s = options.default_download_timeout.count();
    if (auto* pvs = config.if_contains("ProductionVariants"); pvs && pvs->is_array()) {
      for (const auto& pv : pvs->as_array()) {
        const json::object& o = pv.as_object();
        if (Str(o, "VariantName") != plan.name) continue;
        startup_s = JInt(o, "ContainerStartupHealthCheckTimeoutInSeconds", startup_s);
        download_s = JInt(o, "ModelDataDownloadTimeoutInSeconds", download_s);
        plan.spec.instance_type = Str(o, "InstanceType");
      }
    }
    plan.spec.resources = ResourcesFor(plan.spec.instance_type, options.instance_types);
    plan.startup_timeout = options.startup_timeout_override.value_or(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(startup_s)));
    plan.download_timeout = std::chrono::seconds(download_s);
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace inferd::fleet
