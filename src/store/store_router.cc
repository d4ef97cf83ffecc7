#include "store/store_router.h"

#include <boost/json.hpp>

#include "store/s3_store.h"

namespace inferd::store {
namespace {

// "embedded" → null; an object → an S3Store.
Result<std::unique_ptr<ObjectStore>> StoreFromJson(const boost::json::value& v,
                                                   const std::string& where) {
  if (v.is_string() && v.get_string() == "embedded") return std::unique_ptr<ObjectStore>();
  if (!v.is_object()) {
    return Error(Errc::kValidation,
                 where +
                     " must be \"embedded\" or an object with the remote S3 service's "
                     "\"endpoint\" (and region, access_key_id, secret_access_key, ...).");
  }
  auto store = S3StoreFromJson(v.get_object(), where);
  if (!store.ok()) return std::move(store).error();
  return std::unique_ptr<ObjectStore>(std::move(*store));
}

}  // namespace

Result<RemoteStores> RemoteStoresFromJson(const boost::json::value& object_stores) {
  const std::string where = "object_stores";
  RemoteStores out;
  if (object_stores.is_null()) return out;
  if (!object_stores.is_object()) {
    return Error(Errc::kValidation, where + " must be an object with \"default\" and \"buckets\".");
  }
  for (const auto& [name, value] : object_stores.get_object()) {
    if (name == "default") {
      auto store = StoreFromJson(value, where + ".default");
      if (!store.ok()) return std::move(store).error();
      out.default_store = std::move(*store);
    } else if (name == "buckets") {
      if (!value.is_object()) {
        return Error(Errc::kValidation, where + ".buckets must map bucket names to stores.");
      }
      for (const auto& [bucket, config] : value.get_object()) {
        const std::string b(bucket);
        if (b.empty()) return Error(Errc::kValidation, where + ".buckets: empty bucket name.");
        auto store = StoreFromJson(config, where + ".buckets." + b);
        if (!store.ok()) return std::move(store).error();
        out.buckets.emplace(b, std::move(*store));
      }
    } else {
      return Error(Errc::kValidation, where + ": unknown field \"" + std::string(name) +
                                          "\" (known: default, buckets).");
    }
  }
  return out;
}

StoreRouter::StoreRouter(ObjectStore& embedded, RemoteStores remote)
    : embedded_(embedded), remote_(std::move(remote)) {}

ObjectStore& StoreRouter::For(const std::string& bucket) const {
  if (auto it = remote_.buckets.find(bucket); it != remote_.buckets.end()) {
    return it->second ? *it->second : embedded_;
  }
  return remote_.default_store ? *remote_.default_store : embedded_;
}

Result<ObjectInfo> StoreRouter::Put(const std::string& bucket, const std::string& key,
                                    const ObjectAttributes& attributes, http::ByteSource& body,
                                    const PutOptions& options) {
  return For(bucket).Put(bucket, key, attributes, body, options);
}

Result<ObjectInfo> StoreRouter::Head(const std::string& bucket, const std::string& key) {
  return For(bucket).Head(bucket, key);
}

Result<std::unique_ptr<ObjectReader>> StoreRouter::Get(const std::string& bucket,
                                                       const std::string& key,
                                                       std::optional<RangeSpec> range) {
  return For(bucket).Get(bucket, key, range);
}

Status StoreRouter::Delete(const std::string& bucket, const std::string& key) {
  return For(bucket).Delete(bucket, key);
}

Result<ListResult> StoreRouter::List(const std::string& bucket, const ListOptions& options) {
  return For(bucket).List(bucket, options);
}

}  // namespace inferd::store
