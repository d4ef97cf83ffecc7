// StoreRouter: the ObjectStore the core uses. Each call goes to the store configured for its
// bucket (a remote S3Store), else to the default: the embedded store, or a remote default when
// one is configured. The router owns the remote stores; the embedded store is the app's.
//
// Configuration (the "object_stores" value of the config file), parsed by RemoteStoresFromJson:
//   {"default": "embedded" | {S3 store},
//    "buckets": {"<bucket>": "embedded" | {S3 store}, ...}}
// where {S3 store} is the object S3StoreOptionsFromJson reads ({"endpoint": ..., "region": ...,
// "access_key_id": ..., "secret_access_key": ..., "path_style": true, ...}). Both keys are
// optional; absent means everything stays embedded. "embedded" for a bucket keeps it local when
// the default is remote.
//
// Lifecycle: built once at start-up and immutable afterwards. Thread-safety: as the stores it
// routes to (every method may be called concurrently). Every call blocks: use the blocking pool.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <string>

#include "store/object_store.h"

namespace inferd::store {

struct RemoteStores {
  std::unique_ptr<ObjectStore> default_store;  // null: the embedded store
  // A null store: that bucket stays embedded (only meaningful with a remote default).
  std::map<std::string, std::unique_ptr<ObjectStore>> buckets;
};

// kValidation naming the bad field ("object_stores.buckets.models.endpoint: ...").
Result<RemoteStores> RemoteStoresFromJson(const boost::json::value& object_stores);

class StoreRouter final : public ObjectStore {
 public:
  // `embedded` must outlive the router.
  explicit StoreRouter(ObjectStore& embedded, RemoteStores remote = {});

  // The store serving `bucket`.
  ObjectStore& For(const std::string& bucket) const;
  // Whether `bucket` lives in the embedded store (inferd's own S3 API serves it).
  bool IsEmbedded(const std::string& bucket) const { return &For(bucket) == &embedded_; }

  Result<ObjectInfo> Put(const std::string& bucket, const std::string& key,
                         const ObjectAttributes& attributes, http::ByteSource& body,
                         const PutOptions& options = {}) override;
  Result<ObjectInfo> Head(const std::string& bucket, const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Get(const std::string& bucket, const std::string& key,
                                            std::optional<RangeSpec> range = {}) override;
  Status Delete(const std::string& bucket, const std::string& key) override;
  Result<ListResult> List(const std::string& bucket, const ListOptions& options) override;

 private:
  ObjectStore& embedded_;
  RemoteStores remote_;
};

}  // namespace inferd::store
