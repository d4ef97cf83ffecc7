#include "dispatch/endpoint_directory.h"

#include <boost/json.hpp>
#include <mutex>

#include "catalog/json_util.h"
#include "common/strings.h"

namespace inferd::dispatch {

namespace json = boost::json;

namespace {

using catalog::Arr;
using catalog::Num;
using catalog::Obj;
using catalog::Str;

// The AsyncInferenceConfig of an EndpointConfig document, if it has one.
std::optional<AsyncConfig> ParseAsync(const json::object& config) {
  const json::object* async = Obj(config, "AsyncInferenceConfig");
  if (!async) return std::nullopt;
  AsyncConfig out;
  if (const json::object* output = Obj(*async, "OutputConfig")) {
    out.s3_output_path = Str(*output, "S3OutputPath");
    out.s3_failure_path = Str(*output, "S3FailurePath");
    if (const json::object* n = Obj(*output, "NotificationConfig")) {
      out.success_topic = Str(*n, "SuccessTopic");
      out.error_topic = Str(*n, "ErrorTopic");
      if (const json::array* include = Arr(*n, "IncludeInferenceResponseIn")) {
        for (const auto& v : *include) {
          if (!v.is_string()) continue;
          if (v.get_string() == "SUCCESS_NOTIFICATION_TOPIC") out.include_success = true;
          if (v.get_string() == "ERROR_NOTIFICATION_TOPIC") out.include_error = true;
        }
      }
    }
  }
  if (const json::object* client = Obj(*async, "ClientConfig")) {
    if (auto n = Num(*client, "MaxConcurrentInvocationsPerInstance"); n && *n >= 1) {
      out.max_concurrency = static_cast<int>(*n);
    }
  }
  return out;
}

}  // namespace

bool EndpointView::HasVariant(const std::string& variant) const {
  for (const VariantView& v : variants) {
    if (v.name == variant) return true;
  }
  return false;
}

std::string EndpointKey(const std::string& region, const std::string& name) {
  return region + '\n' + AsciiLower(name);
}

Result<std::shared_ptr<const EndpointView>> ParseEndpoint(const catalog::Resource& endpoint) {
  boost::system::error_code ec;
  json::value doc = json::parse(endpoint.doc, ec);
  if (ec || !doc.is_object()) {
    return Error(Errc::kInternal,
                 "the catalog document of endpoint " + endpoint.name + " is not a JSON object");
  }
  const json::object& o = doc.get_object();
  auto view = std::make_shared<EndpointView>();
  view->region = endpoint.region;
  view->name = endpoint.name;
  view->deleting = endpoint.status == "Deleting";
  if (const json::object* config = Obj(o, "Config")) view->async = ParseAsync(*config);
  if (const json::array* variants = Arr(o, "Variants")) {
    for (const auto& v : *variants) {
      if (!v.is_object()) continue;
      VariantView vv;
      vv.name = Str(v.get_object(), "VariantName");
      vv.weight = Num(v.get_object(), "CurrentWeight").value_or(1.0);
      view->variants.push_back(std::move(vv));
    }
  }
  if (const json::object* pending = Obj(o, "Pending")) {
    if (const json::object* config = Obj(*pending, "Config")) {
      view->pending_async = ParseAsync(*config);
    }
  }
  return std::shared_ptr<const EndpointView>(std::move(view));
}

void EndpointDirectory::Put(std::shared_ptr<const EndpointView> view) {
  std::string key = EndpointKey(view->region, view->name);
  std::unique_lock lock(mu_);
  views_[key] = std::move(view);
}

void EndpointDirectory::Remove(const std::string& region, const std::string& name) {
  std::unique_lock lock(mu_);
  views_.erase(EndpointKey(region, name));
}

std::shared_ptr<const EndpointView> EndpointDirectory::Find(const std::string& region,
                                                            const std::string& name) const {
  return FindKey(EndpointKey(region, name));
}

std::shared_ptr<const EndpointView> EndpointDirectory::FindKey(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = views_.find(key);
  return it == views_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const EndpointView>> EndpointDirectory::All() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const EndpointView>> out;
  out.reserve(views_.size());
  for (const auto& [key, view] : views_) out.push_back(view);
  return out;
}

}  // namespace inferd::dispatch
