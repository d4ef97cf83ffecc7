// EndpointDirectory: the dispatcher's parsed, immutable snapshot of each endpoint (what dispatch
// needs of the catalog's endpoint document), so no invocation reads the catalog or parses JSON.
//
// A view is replaced whole when the catalog reports a change (copy-on-write: readers keep the
// shared_ptr they got, which stays valid and unchanged). Lookups by region + lower-cased name.
// Thread-safe (shared_mutex; lookups take it shared).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "catalog/store.h"
#include "common/result.h"

namespace inferd::dispatch {

// AsyncInferenceConfig, as dispatch uses it.
struct AsyncConfig {
  std::string s3_output_path;   // "" when absent (the catalog refuses that today)
  std::string s3_failure_path;  // KmsKeyId is not read: objects are not encrypted
  std::string success_topic;
  std::string error_topic;
  bool include_success = false;  // IncludeInferenceResponseIn has SUCCESS_NOTIFICATION_TOPIC
  bool include_error = false;    // ... ERROR_NOTIFICATION_TOPIC
  int max_concurrency = 0;       // ClientConfig.MaxConcurrentInvocationsPerInstance; 0 = unset

  // Whether the notification of an invocation that ended so carries its answer (or reason).
  bool Embeds(bool success) const { return success ? include_success : include_error; }
};

struct VariantView {
  std::string name;
  double weight = 1.0;  // CurrentWeight
};

struct EndpointView {
  std::string region;
  std::string name;                  // as created
  bool deleting = false;             // Deleting (or removed)
  std::optional<AsyncConfig> async;  // absent: a real-time endpoint
  std::vector<VariantView> variants;
  // While Updating with a new configuration: that configuration's AsyncInferenceConfig (for the
  // TestNotification sent on UpdateEndpoint).
  std::optional<AsyncConfig> pending_async;

  bool HasVariant(const std::string& variant) const;
};

// region + '\n' + lower(name)
std::string EndpointKey(const std::string& region, const std::string& name);

// Parses an endpoint resource (catalog::Resource of kind kEndpoint). kInternal when the
// document is not the catalog's shape.
Result<std::shared_ptr<const EndpointView>> ParseEndpoint(const catalog::Resource& endpoint);

class EndpointDirectory {
 public:
  void Put(std::shared_ptr<const EndpointView> view);
  void Remove(const std::string& region, const std::string& name);
  // nullptr when unknown.
  std::shared_ptr<const EndpointView> Find(const std::string& region,
                                           const std::string& name) const;
  std::shared_ptr<const EndpointView> FindKey(const std::string& key) const;
  std::vector<std::shared_ptr<const EndpointView>> All() const;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<const EndpointView>> views_;
};

}  // namespace inferd::dispatch
