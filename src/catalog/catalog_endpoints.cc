// Endpoints: creation, description, updates and deletion, with the endpoint state machine.
//
// An endpoint's document holds what it runs, independent of later changes to models and
// configurations (SageMaker behaves the same way):
//   EndpointConfigName, Config (the configuration's document), Models (name → model document),
//   Variants (per variant: desired/current instance count and weight, VariantStatus,
//   DeployedImages), FailureReason, DeploymentConfig, and while Updating, Pending (the same
//   fields for the configuration being rolled out, plus StartTime).
#include <set>

#include "catalog/catalog.h"
#include "catalog/json_util.h"

namespace inferd::catalog {

namespace json = boost::json;

namespace {

Error ValidationError(std::string message) { return Error(Errc::kValidation, std::move(message)); }

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// Desired state of each variant of a configuration, before any instance runs.
json::array InitialVariants(const json::object& config, const json::object& models, double now) {
  json::array variants;
  const json::array* list = Arr(config, "ProductionVariants");
  for (const auto& v : list ? *list : json::array{}) {
    const json::object& pv = v.as_object();
    json::object state;
    state["VariantName"] = Str(pv, "VariantName");
    state["ModelName"] = Str(pv, "ModelName");
    state["DesiredInstanceCount"] =
        static_cast<int64_t>(Num(pv, "InitialInstanceCount").value_or(0));
    state["CurrentInstanceCount"] = 0;
    double weight = Num(pv, "InitialVariantWeight").value_or(1.0);
    state["DesiredWeight"] = weight;
    state["CurrentWeight"] = weight;
    state["VariantStatus"] = json::array{json::object{{"Status", "Creating"}, {"StartTime", now}}};
    json::array images;
    if (auto* model = Obj(models, Str(pv, "ModelName"))) {
      if (auto* primary = Obj(*model, "PrimaryContainer")) {
        images.push_back(json::object{{"SpecifiedImage", Str(*primary, "Image")}});
      } else if (auto* list = Arr(*model, "Containers")) {
        for (const auto& c : *list) {
          images.push_back(json::object{{"SpecifiedImage", Str(c.as_object(), "Image")}});
        }
      }
    }
    state["DeployedImages"] = std::move(images);
    variants.push_back(std::move(state));
  }
  return variants;
}

json::object* FindVariant(json::array& variants, const std::string& name) {
  for (auto& v : variants) {
    if (Str(v.as_object(), "VariantName") == name) return &v.as_object();
  }
  return nullptr;
}

json::object VariantSummary(const json::object& v) {
  json::object out;
  out["VariantName"] = v.at("VariantName");
  if (auto* images = Arr(v, "DeployedImages"); images && !images->empty()) {
    out["DeployedImages"] = *images;
  }
  out["CurrentWeight"] = v.at("CurrentWeight");
  out["DesiredWeight"] = v.at("DesiredWeight");
  out["CurrentInstanceCount"] = v.at("CurrentInstanceCount");
  out["DesiredInstanceCount"] = v.at("DesiredInstanceCount");
  if (auto* status = Arr(v, "VariantStatus"); status && !status->empty()) {
    out["VariantStatus"] = *status;
  }
  return out;
}

}  // namespace

Status Catalog::CheckUpdatable(const Resource& endpoint) {
  auto status = ParseEndpointStatus(endpoint.status).value_or(EndpointStatus::kOutOfService);
  if (Transition(status, EndpointEvent::kUpdateRequested).ok()) return OkStatus();
  if (status == EndpointStatus::kFailed) {
    return ValidationError("Cannot update failed endpoint " + Quote(endpoint.arn) + ".");
  }
  return ValidationError("Cannot update in-progress endpoint " + Quote(endpoint.arn) + ".");
}

Result<json::object> Catalog::CreateEndpoint(const std::string& region, const json::object& in) {
  std::lock_guard lock(endpoint_mu_);
  std::string name = Str(in, "EndpointName");
  std::string arn = Arn(ArnKind::kEndpoint, region, name);
  auto config = GetOr404(Kind::kEndpointConfig, region, Str(in, "EndpointConfigName"));
  if (!config.ok()) return std::move(config).error();
  json::object config_doc = json::parse(config->doc).as_object();
  json::object models;
  for (const auto& v : config_doc.at("ProductionVariants").as_array()) {
    std::string model_name = Str(v.as_object(), "ModelName");
    auto model = GetOr404(Kind::kModel, region, model_name);
    if (!model.ok()) return std::move(model).error();
    models[model_name] = json::parse(model->doc);
  }
  double now = Now();
  json::object doc;
  doc["EndpointConfigName"] = config->name;
  doc["Variants"] = InitialVariants(config_doc, models, now);
  doc["Config"] = std::move(config_doc);
  doc["Models"] = std::move(models);
  if (auto* dc = Obj(in, "DeploymentConfig")) doc["DeploymentConfig"] = *dc;

  json::array tags;
  std::vector<Tag> tag_list;
  if (auto* arr = Arr(in, "Tags")) {
    for (const auto& t : *arr) {
      tag_list.push_back({Str(t.as_object(), "Key"), Str(t.as_object(), "Value")});
    }
  }
  Resource r{Kind::kEndpoint,
             region,
             name,
             arn,
             now,
             now,
             std::string(ToString(EndpointStatus::kCreating)),
             json::serialize(doc)};
  if (auto st = store_.Insert(r, tag_list); !st.ok()) {
    if (st.error().code == Errc::kAlreadyExists) {
      return ValidationError("Cannot create already existing endpoint " + Quote(arn) + ".");
    }
    return std::move(st).error();
  }
  Notify(EndpointChange::kCreated, r);
  return json::object{{"EndpointArn", arn}};
}

Result<json::object> Catalog::DescribeEndpoint(const std::string& region, const json::object& in) {
  auto r = GetOr404(Kind::kEndpoint, region, Str(in, "EndpointName"));
  if (!r.ok()) return std::move(r).error();
  json::object doc = json::parse(r->doc).as_object();
  const json::object& config = doc.at("Config").as_object();
  json::object out;
  out["EndpointName"] = r->name;
  out["EndpointArn"] = r->arn;
  out["EndpointConfigName"] = doc.at("EndpointConfigName");
  json::array variants;
  for (const auto& v : doc.at("Variants").as_array()) {
    variants.push_back(VariantSummary(v.as_object()));
  }
  out["ProductionVariants"] = std::move(variants);
  if (auto* dc = Obj(config, "DataCaptureConfig")) {
    json::object summary{{"EnableCapture", dc->contains("EnableCapture") ? dc->at("EnableCapture")
                                                                         : json::value(true)},
                         {"CaptureStatus", "Stopped"},
                         {"CurrentSamplingPercentage",
                          static_cast<int64_t>(Num(*dc, "InitialSamplingPercentage").value_or(0))},
                         {"DestinationS3Uri", Str(*dc, "DestinationS3Uri")},
                         {"KmsKeyId", Str(*dc, "KmsKeyId")}};
    out["DataCaptureConfig"] = std::move(summary);
  }
  out["EndpointStatus"] = r->status;
  if (auto reason = Str(doc, "FailureReason"); !reason.empty()) out["FailureReason"] = reason;
  out["CreationTime"] = r->creation_time;
  out["LastModifiedTime"] = r->last_modified_time;
  if (auto* dep = Obj(doc, "DeploymentConfig")) out["LastDeploymentConfig"] = *dep;
  if (auto* async = Obj(config, "AsyncInferenceConfig")) out["AsyncInferenceConfig"] = *async;
  if (auto* pending = Obj(doc, "Pending")) {
    json::array pv;
    for (const auto& v : pending->at("Variants").as_array()) {
      json::object s = VariantSummary(v.as_object());
      s.erase("CurrentWeight");
      s.erase("CurrentInstanceCount");
      pv.push_back(std::move(s));
    }
    out["PendingDeploymentSummary"] =
        json::object{{"EndpointConfigName", pending->at("EndpointConfigName")},
                     {"ProductionVariants", std::move(pv)},
                     {"StartTime", pending->at("StartTime")}};
  }
  return out;
}

Result<json::object> Catalog::UpdateEndpoint(const std::string& region, const json::object& in) {
  std::lock_guard lock(endpoint_mu_);
  auto r = GetOr404(Kind::kEndpoint, region, Str(in, "EndpointName"));
  if (!r.ok()) return std::move(r).error();
  INFERD_RETURN_IF_ERROR(CheckUpdatable(*r));
  auto config = GetOr404(Kind::kEndpointConfig, region, Str(in, "EndpointConfigName"));
  if (!config.ok()) return std::move(config).error();
  json::object config_doc = json::parse(config->doc).as_object();
  json::object models;
  for (const auto& v : config_doc.at("ProductionVariants").as_array()) {
    std::string model_name = Str(v.as_object(), "ModelName");
    auto model = GetOr404(Kind::kModel, region, model_name);
    if (!model.ok()) return std::move(model).error();
    models[model_name] = json::parse(model->doc);
  }
  double now = Now();
  json::object doc = json::parse(r->doc).as_object();
  json::array variants = InitialVariants(config_doc, models, now);
  if (auto* retain = in.if_contains("RetainAllVariantProperties");
      retain && retain->is_bool() && retain->get_bool()) {
    std::set<std::string> excluded;
    if (auto* ex = Arr(in, "ExcludeRetainedVariantProperties")) {
      for (const auto& e : *ex) excluded.insert(Str(e.as_object(), "VariantPropertyType"));
    }
    json::array& current = doc.at("Variants").as_array();
    for (auto& v : variants) {
      json::object& nv = v.as_object();
      json::object* old = FindVariant(current, Str(nv, "VariantName"));
      if (!old) continue;
      if (!excluded.count("DesiredInstanceCount")) {
        nv["DesiredInstanceCount"] = old->at("DesiredInstanceCount");
      }
      if (!excluded.count("DesiredWeight")) nv["DesiredWeight"] = old->at("DesiredWeight");
    }
  }
  for (auto& v : variants)
    v.as_object()["VariantStatus"] =
        json::array{json::object{{"Status", "Updating"}, {"StartTime", now}}};
  json::object pending{{"EndpointConfigName", config->name},
                       {"Config", std::move(config_doc)},
                       {"Models", std::move(models)},
                       {"Variants", std::move(variants)},
                       {"StartTime", now}};
  if (auto* dc = Obj(in, "DeploymentConfig")) pending["DeploymentConfig"] = *dc;
  doc["Pending"] = std::move(pending);
  doc.erase("FailureReason");
  INFERD_RETURN_IF_ERROR(
      CommitEndpoint(*r, EndpointStatus::kUpdating, now, &doc, EndpointChange::kUpdated));
  return json::object{{"EndpointArn", r->arn}};
}

Result<json::object> Catalog::UpdateEndpointWeightsAndCapacities(const std::string& region,
                                                                 const json::object& in) {
  std::lock_guard lock(endpoint_mu_);
  auto r = GetOr404(Kind::kEndpoint, region, Str(in, "EndpointName"));
  if (!r.ok()) return std::move(r).error();
  json::object doc = json::parse(r->doc).as_object();
  json::array& variants = doc.at("Variants").as_array();
  const json::array* wanted = Arr(in, "DesiredWeightsAndCapacities");
  std::set<std::string> seen;
  std::string missing;
  for (const auto& w : wanted ? *wanted : json::array{}) {
    std::string name = Str(w.as_object(), "VariantName");
    if (!seen.insert(name).second) {
      return ValidationError("The variant name " + Quote(name) +
                             " was non-unique within the request.");
    }
    if (!FindVariant(variants, name)) missing += (missing.empty() ? "" : ", ") + Quote(name);
  }
  if (!missing.empty()) {
    return ValidationError("The variant name(s) " + missing +
                           " is/are not present within endpoint configuration " +
                           Quote(Str(doc, "EndpointConfigName")) + ".");
  }
  INFERD_RETURN_IF_ERROR(CheckUpdatable(*r));
  double now = Now();
  for (const auto& w : *wanted) {
    const json::object& wo = w.as_object();
    json::object& v = *FindVariant(variants, Str(wo, "VariantName"));
    if (auto n = Num(wo, "DesiredInstanceCount")) {
      v["DesiredInstanceCount"] = static_cast<int64_t>(*n);
    }
    if (auto n = Num(wo, "DesiredWeight")) v["DesiredWeight"] = *n;
    v["VariantStatus"] = json::array{json::object{{"Status", "Updating"}, {"StartTime", now}}};
  }
  doc.erase("FailureReason");
  INFERD_RETURN_IF_ERROR(
      CommitEndpoint(*r, EndpointStatus::kUpdating, now, &doc, EndpointChange::kCapacityUpdated));
  return json::object{{"EndpointArn", r->arn}};
}

Result<json::object> Catalog::DeleteEndpoint(const std::string& region, const json::object& in) {
  std::lock_guard lock(endpoint_mu_);
  auto r = GetOr404(Kind::kEndpoint, region, Str(in, "EndpointName"));
  if (!r.ok()) return std::move(r).error();
  auto status = ParseEndpointStatus(r->status).value_or(EndpointStatus::kOutOfService);
  if (!Transition(status, EndpointEvent::kDeleteRequested).ok()) {
    return ValidationError("Cannot delete endpoint " + Quote(r->arn) +
                           ": it is already being deleted.");
  }
  // The fleet reconciler stops the instances, then removes the endpoint (RemoveDeleted).
  INFERD_RETURN_IF_ERROR(
      CommitEndpoint(*r, EndpointStatus::kDeleting, Now(), nullptr, EndpointChange::kDeleting));
  return json::object{};
}

Status Catalog::ReportFleet(const std::string& region, const std::string& name, EndpointEvent event,
                            const std::string& failure_reason,
                            const std::vector<VariantReport>& reports) {
  std::lock_guard lock(endpoint_mu_);
  auto r = store_.Get(Kind::kEndpoint, region, name);
  if (!r.ok()) return std::move(r).error();
  auto from = ParseEndpointStatus(r->status).value_or(EndpointStatus::kOutOfService);
  auto to = Transition(from, event);
  if (!to.ok()) return std::move(to).error();
  double now = Now();
  json::object doc = json::parse(r->doc).as_object();
  if (from == EndpointStatus::kUpdating && event == EndpointEvent::kFleetReady) {
    // The new configuration's fleet took over: it becomes the endpoint's.
    if (auto* pending = doc.if_contains("Pending"); pending && pending->is_object()) {
      json::object p = pending->as_object();
      for (const char* field : {"EndpointConfigName", "Config", "Models", "Variants"}) {
        doc[field] = p[field];
      }
      if (auto* dc = Obj(p, "DeploymentConfig")) doc["DeploymentConfig"] = *dc;
      doc.erase("Pending");
    }
  }
  if (from == EndpointStatus::kUpdating && event == EndpointEvent::kFleetFailed) {
    // The old fleet keeps serving; the update is abandoned.
    doc.erase("Pending");
    for (auto& v : doc.at("Variants").as_array()) v.as_object()["VariantStatus"] = json::array{};
  }
  if (event == EndpointEvent::kFleetReady) {
    doc.erase("FailureReason");
    json::array& variants = doc.at("Variants").as_array();
    for (const VariantReport& report : reports) {
      json::object* v = FindVariant(variants, report.variant_name);
      if (!v) continue;
      (*v)["CurrentInstanceCount"] = static_cast<int64_t>(report.current_instance_count);
      (*v)["CurrentWeight"] = v->at("DesiredWeight");
      (*v)["VariantStatus"] = json::array{};
      json::array& images = (*v)["DeployedImages"].as_array();
      for (size_t i = 0; i < images.size() && i < report.resolved_images.size(); ++i) {
        images[i].as_object()["ResolvedImage"] = report.resolved_images[i];
        images[i].as_object()["ResolutionTime"] = now;
      }
    }
  } else if (event == EndpointEvent::kFleetFailed) {
    doc["FailureReason"] = failure_reason;
  }
  return CommitEndpoint(*r, *to, now, &doc, EndpointChange::kFleetReported);
}

Status Catalog::CommitEndpoint(Resource endpoint, EndpointStatus status, double now,
                               const json::object* doc, EndpointChange change) {
  endpoint.status = std::string(ToString(status));
  endpoint.last_modified_time = now;
  if (doc != nullptr) endpoint.doc = json::serialize(*doc);
  INFERD_RETURN_IF_ERROR(store_.Update(endpoint));
  Notify(change, endpoint);
  return OkStatus();
}

Status Catalog::RemoveDeleted(const std::string& region, const std::string& name) {
  std::lock_guard lock(endpoint_mu_);
  auto r = store_.Get(Kind::kEndpoint, region, name);
  if (!r.ok()) return std::move(r).error();
  if (r->status != ToString(EndpointStatus::kDeleting)) {
    return Error(Errc::kInvalidState, "endpoint " + Quote(r->arn) + " is " + r->status +
                                          ", not Deleting; it stays in the catalog.");
  }
  INFERD_RETURN_IF_ERROR(store_.Remove(Kind::kEndpoint, region, r->name));
  Notify(EndpointChange::kRemoved, *r);
  return OkStatus();
}

}  // namespace inferd::catalog
