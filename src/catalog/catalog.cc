// Models, endpoint configurations, listing and tags. Endpoints are in catalog_endpoints.cc.
#include "catalog/catalog.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "catalog/json_util.h"

namespace inferd::catalog {

namespace json = boost::json;

std::string MakeArn(ArnKind kind, const std::string& region, const std::string& account,
                    const std::string& name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const char* type = kind == ArnKind::kModel            ? "model"
                     : kind == ArnKind::kEndpointConfig ? "endpoint-config"
                                                        : "endpoint";
  return "arn:aws:sagemaker:" + region + ":" + account + ":" + type + "/" + lower;
}

namespace {

ArnKind ArnKindOf(Kind kind) {
  return kind == Kind::kModel            ? ArnKind::kModel
         : kind == Kind::kEndpointConfig ? ArnKind::kEndpointConfig
                                         : ArnKind::kEndpoint;
}

const char* Noun(Kind kind) {
  return kind == Kind::kModel            ? "model"
         : kind == Kind::kEndpointConfig ? "endpoint configuration"
                                         : "endpoint";
}

std::vector<Tag> TagsOf(const json::object& in) {
  std::vector<Tag> tags;
  if (auto* arr = Arr(in, "Tags")) {
    for (const auto& t : *arr) {
      if (!t.is_object()) continue;
      tags.push_back({Str(t.get_object(), "Key"), Str(t.get_object(), "Value")});
    }
  }
  return tags;
}

// The stored document: the request without its Tags (tags live in their own table).
std::string DocOf(const json::object& in) {
  json::object doc = in;
  doc.erase("Tags");
  return json::serialize(doc);
}

Error ValidationError(std::string message) { return Error(Errc::kValidation, std::move(message)); }

}  // namespace

Catalog::Catalog(CatalogStore& store, const Clock& clock, std::string account_id)
    : store_(store), clock_(clock), account_id_(std::move(account_id)) {}

double Catalog::Now() const {
  // Millisecond precision, as SageMaker reports times.
  return std::floor(ToEpochSeconds(clock_.Now()) * 1000.0) / 1000.0;
}

Result<Resource> Catalog::GetOr404(Kind kind, const std::string& region, const std::string& name) {
  auto r = store_.Get(kind, region, name);
  if (!r.ok() && r.error().code == Errc::kNotFound) {
    return ValidationError(std::string("Could not find ") + Noun(kind) + " \"" +
                           Arn(ArnKindOf(kind), region, name) + "\".");
  }
  return r;
}

// ---- models ----

Result<json::object> Catalog::CreateModel(const std::string& region, const json::object& in) {
  std::string name = Str(in, "ModelName");
  bool primary = in.contains("PrimaryContainer");
  bool containers = Arr(in, "Containers") && !Arr(in, "Containers")->empty();
  if (primary == containers) {
    return ValidationError(primary ? "Specify either PrimaryContainer or Containers, not both."
                                   : "Either PrimaryContainer or Containers must be specified.");
  }
  double now = Now();
  Resource r{Kind::kModel, region, name, Arn(ArnKind::kModel, region, name),
             now,          now,    "",   DocOf(in)};
  if (auto st = store_.Insert(r, TagsOf(in)); !st.ok()) {
    if (st.error().code == Errc::kAlreadyExists) {
      return ValidationError("Cannot create already existing model \"" + r.arn + "\".");
    }
    return std::move(st).error();
  }
  return json::object{{"ModelArn", r.arn}};
}

Result<json::object> Catalog::DescribeModel(const std::string& region, const json::object& in) {
  auto r = GetOr404(Kind::kModel, region, Str(in, "ModelName"));
  if (!r.ok()) return std::move(r).error();
  json::object out = json::parse(r->doc).as_object();
  out["ModelName"] = r->name;
  out["ModelArn"] = r->arn;
  out["CreationTime"] = r->creation_time;
  return out;
}

Result<json::object> Catalog::DeleteModel(const std::string& region, const json::object& in) {
  std::string name = Str(in, "ModelName");
  auto st = store_.Remove(Kind::kModel, region, name);
  if (!st.ok() && st.error().code == Errc::kNotFound) {
    return ValidationError("Could not find model \"" + Arn(ArnKind::kModel, region, name) + "\".");
  }
  if (!st.ok()) return std::move(st).error();
  return json::object{};
}

// ---- endpoint configurations ----

Result<json::object> Catalog::CreateEndpointConfig(const std::string& region,
                                                   const json::object& in) {
  std::string name = Str(in, "EndpointConfigName");
  const json::array* variants = Arr(in, "ProductionVariants");
  if (!variants || variants->empty()) {
    return ValidationError("ProductionVariants must contain at least one variant.");
  }
  const json::object* async = Obj(in, "AsyncInferenceConfig");
  std::set<std::string> seen;
  std::vector<std::string> unsupported;
  for (const auto& v : *variants) {
    const json::object& pv = v.as_object();
    std::string vname = Str(pv, "VariantName");
    if (!seen.insert(vname).second) {
      return ValidationError("The variant name \"" + vname +
                             "\" is used by more than one production variant.");
    }
    std::string model = Str(pv, "ModelName");
    if (model.empty()) {
      return ValidationError("Production variant \"" + vname + "\" must name a model (ModelName).");
    }
    if (auto m = GetOr404(Kind::kModel, region, model); !m.ok()) return std::move(m).error();
    bool serverless = pv.contains("ServerlessConfig");
    if (serverless && async) unsupported.push_back("ServerlessConfig (variant " + vname + ")");
    if (!serverless && (Str(pv, "InstanceType").empty() || !pv.contains("InitialInstanceCount"))) {
      return ValidationError("Production variant \"" + vname +
                             "\" needs InstanceType and InitialInstanceCount (or a "
                             "ServerlessConfig).");
    }
  }
  if (async) {
    if (in.contains("ShadowProductionVariants")) unsupported.push_back("ShadowProductionVariants");
    if (in.contains("ExplainerConfig")) unsupported.push_back("ExplainerConfig");
    if (!unsupported.empty()) {
      std::string list;
      for (const auto& u : unsupported) list += (list.empty() ? "" : ", ") + u;
      return ValidationError(
          "One or more endpoint features are not supported using this configuration: " + list +
          " cannot be combined with AsyncInferenceConfig.");
    }
    const json::object* out = Obj(*async, "OutputConfig");
    if (!out || Str(*out, "S3OutputPath").empty()) {
      return ValidationError(
          "AsyncInferenceConfig.OutputConfig.S3OutputPath is required: inferd has no default "
          "bucket for asynchronous inference results.");
    }
  }
  double now = Now();
  Resource r{Kind::kEndpointConfig,
             region,
             name,
             Arn(ArnKind::kEndpointConfig, region, name),
             now,
             now,
             "",
             DocOf(in)};
  if (auto st = store_.Insert(r, TagsOf(in)); !st.ok()) {
    if (st.error().code == Errc::kAlreadyExists) {
      return ValidationError("Cannot create already existing endpoint configuration \"" + r.arn +
                             "\".");
    }
    return std::move(st).error();
  }
  return json::object{{"EndpointConfigArn", r.arn}};
}

Result<json::object> Catalog::DescribeEndpointConfig(const std::string& region,
                                                     const json::object& in) {
  auto r = GetOr404(Kind::kEndpointConfig, region, Str(in, "EndpointConfigName"));
  if (!r.ok()) return std::move(r).error();
  json::object out = json::parse(r->doc).as_object();
  out["EndpointConfigName"] = r->name;
  out["EndpointConfigArn"] = r->arn;
  out["CreationTime"] = r->creation_time;
  return out;
}

Result<json::object> Catalog::DeleteEndpointConfig(const std::string& region,
                                                   const json::object& in) {
  std::string name = Str(in, "EndpointConfigName");
  auto st = store_.Remove(Kind::kEndpointConfig, region, name);
  if (!st.ok() && st.error().code == Errc::kNotFound) {
    return ValidationError("Could not find endpoint configuration \"" +
                           Arn(ArnKind::kEndpointConfig, region, name) + "\".");
  }
  if (!st.ok()) return std::move(st).error();
  return json::object{};
}

// ---- listing ----

Result<json::object> Catalog::List(Kind kind, const std::string& region, const json::object& in) {
  ListQuery q;
  q.name_contains = Str(in, "NameContains");
  q.creation_before = Num(in, "CreationTimeBefore");
  q.creation_after = Num(in, "CreationTimeAfter");
  q.modified_before = Num(in, "LastModifiedTimeBefore");
  q.modified_after = Num(in, "LastModifiedTimeAfter");
  q.status_equals = Str(in, "StatusEquals");
  std::string sort_by = Str(in, "SortBy");
  q.sort_by = sort_by == "Name"     ? SortBy::kName
              : sort_by == "Status" ? SortBy::kStatus
                                    : SortBy::kCreationTime;
  q.descending = Str(in, "SortOrder") != "Ascending";
  if (auto n = Num(in, "MaxResults")) q.limit = static_cast<int>(*n);
  q.next_token = Str(in, "NextToken");
  auto page = store_.List(kind, region, q);
  if (!page.ok()) return std::move(page).error();

  const char* name_key = kind == Kind::kModel            ? "ModelName"
                         : kind == Kind::kEndpointConfig ? "EndpointConfigName"
                                                         : "EndpointName";
  const char* arn_key = kind == Kind::kModel            ? "ModelArn"
                        : kind == Kind::kEndpointConfig ? "EndpointConfigArn"
                                                        : "EndpointArn";
  json::array items;
  for (const auto& r : page->items) {
    json::object item{{name_key, r.name}, {arn_key, r.arn}, {"CreationTime", r.creation_time}};
    if (kind == Kind::kEndpoint) {
      item["LastModifiedTime"] = r.last_modified_time;
      item["EndpointStatus"] = r.status;
    }
    items.push_back(std::move(item));
  }
  const char* list_key = kind == Kind::kModel            ? "Models"
                         : kind == Kind::kEndpointConfig ? "EndpointConfigs"
                                                         : "Endpoints";
  json::object out{{list_key, std::move(items)}};
  if (!page->next_token.empty()) out["NextToken"] = page->next_token;
  return out;
}

Result<json::object> Catalog::ListModels(const std::string& region, const json::object& in) {
  return List(Kind::kModel, region, in);
}
Result<json::object> Catalog::ListEndpointConfigs(const std::string& region,
                                                  const json::object& in) {
  return List(Kind::kEndpointConfig, region, in);
}
Result<json::object> Catalog::ListEndpoints(const std::string& region, const json::object& in) {
  return List(Kind::kEndpoint, region, in);
}

// ---- tags ----

namespace {
Error NoSuchResource(const std::string& arn) {
  return Error(Errc::kValidation, "Could not find resource \"" + arn + "\".");
}
}  // namespace

Result<json::object> Catalog::AddTags(const std::string&, const json::object& in) {
  std::string arn = Str(in, "ResourceArn");
  if (!store_.ArnExists(arn)) return NoSuchResource(arn);
  auto tags = TagsOf(in);
  INFERD_RETURN_IF_ERROR(store_.AddTags(arn, tags));
  json::array out;
  for (const auto& t : tags) out.push_back(json::object{{"Key", t.key}, {"Value", t.value}});
  return json::object{{"Tags", std::move(out)}};
}

Result<json::object> Catalog::DeleteTags(const std::string&, const json::object& in) {
  std::string arn = Str(in, "ResourceArn");
  if (!store_.ArnExists(arn)) return NoSuchResource(arn);
  std::vector<std::string> keys;
  if (auto* arr = Arr(in, "TagKeys")) {
    for (const auto& k : *arr) {
      if (k.is_string()) keys.emplace_back(k.get_string());
    }
  }
  INFERD_RETURN_IF_ERROR(store_.DeleteTags(arn, keys));
  return json::object{};
}

Result<json::object> Catalog::ListTags(const std::string&, const json::object& in) {
  std::string arn = Str(in, "ResourceArn");
  if (!store_.ArnExists(arn)) return NoSuchResource(arn);
  int limit = 50;
  if (auto n = Num(in, "MaxResults")) limit = static_cast<int>(*n);
  auto page = store_.ListTags(arn, limit, Str(in, "NextToken"));
  if (!page.ok()) return std::move(page).error();
  json::array tags;
  for (const auto& t : page->first)
    tags.push_back(json::object{{"Key", t.key}, {"Value", t.value}});
  json::object out{{"Tags", std::move(tags)}};
  if (!page->second.empty()) out["NextToken"] = page->second;
  return out;
}

}  // namespace inferd::catalog
