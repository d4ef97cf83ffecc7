// S3StoreOptions: validation and the JSON configuration.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "http/client.h"
#include "store/s3_store.h"

namespace inferd::store {
namespace {

constexpr uint64_t kMinPartSize = 5ull * 1024 * 1024;
constexpr uint64_t kMaxPartSize = 5ull * 1024 * 1024 * 1024;

Result<std::string> JsonString(const boost::json::value& v, const std::string& where) {
  if (!v.is_string()) return Error(Errc::kValidation, where + " must be a string.");
  return std::string(v.get_string());
}

Result<int64_t> JsonPositive(const boost::json::value& v, const std::string& where) {
  if (v.is_int64() && v.get_int64() > 0) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() > 0 && v.get_uint64() <= INT64_MAX) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return Error(Errc::kValidation, where + " must be a positive integer.");
}

}  // namespace

Status S3StoreOptions::Validate() const {
  auto invalid = [](std::string msg) { return Error(Errc::kValidation, std::move(msg)); };
  Result<http::Url> url = http::ParseUrl(endpoint);
  if (endpoint.empty()) return invalid("S3 store: endpoint is required (e.g. http://host:9000).");
  if (!url.ok()) return invalid("S3 store: endpoint: " + url.error().message);
  if (url->target != "/") {
    return invalid("S3 store: endpoint \"" + endpoint + "\" must not have a path or query.");
  }
  if (!path_style && (url->host.find(':') != std::string::npos ||
                      url->host.find_first_not_of("0123456789.") == std::string::npos)) {
    return invalid(
        "S3 store: virtual-hosted addressing (path_style false) needs a DNS name, not \"" +
        url->host + "\".");
  }
  if (region.empty()) return invalid("S3 store: region is required.");
  if (access_key_id.empty() != secret_access_key.empty()) {
    return invalid("S3 store: set both access_key_id and secret_access_key, or neither.");
  }
  if (timeout.count() <= 0 || transfer_timeout.count() <= 0 || connect_timeout.count() <= 0) {
    return invalid("S3 store: timeouts must be positive.");
  }
  if (part_size < kMinPartSize || part_size > kMaxPartSize) {
    return invalid(fmt::format("S3 store: part_size must be {} .. {} bytes, not {}.", kMinPartSize,
                               kMaxPartSize, part_size));
  }
  return OkStatus();
}

Result<S3StoreOptions> S3StoreOptionsFromJson(const boost::json::object& config,
                                              const std::string& where) {
  S3StoreOptions o;
  for (const auto& [name, value] : config) {
    const std::string field = where + "." + std::string(name);
    auto text = [&](std::string& out) -> Status {
      auto s = JsonString(value, field);
      if (!s.ok()) return std::move(s).error();
      out = std::move(*s);
      return OkStatus();
    };
    auto millis = [&](std::chrono::milliseconds& out) -> Status {
      auto v = JsonPositive(value, field);
      if (!v.ok()) return std::move(v).error();
      out = std::chrono::milliseconds(*v);
      return OkStatus();
    };
    auto flag = [&](bool& out) -> Status {
      if (!value.is_bool()) return Error(Errc::kValidation, field + " must be true or false.");
      out = value.get_bool();
      return OkStatus();
    };
    Status s;
    if (name == "endpoint") {
      s = text(o.endpoint);
    } else if (name == "region") {
      s = text(o.region);
    } else if (name == "access_key_id") {
      s = text(o.access_key_id);
    } else if (name == "secret_access_key") {
      s = text(o.secret_access_key);
    } else if (name == "session_token") {
      s = text(o.session_token);
    } else if (name == "path_style") {
      s = flag(o.path_style);
    } else if (name == "verify_tls") {
      s = flag(o.verify_tls);
    } else if (name == "timeout_ms") {
      s = millis(o.timeout);
    } else if (name == "transfer_timeout_ms") {
      s = millis(o.transfer_timeout);
    } else if (name == "connect_timeout_ms") {
      s = millis(o.connect_timeout);
    } else if (name == "part_size_bytes") {
      auto v = JsonPositive(value, field);
      if (v.ok()) o.part_size = static_cast<uint64_t>(*v);
      if (!v.ok()) s = std::move(v).error();
    } else {
      s = Error(Errc::kValidation,
                fmt::format("{}: unknown field \"{}\" (known: endpoint, region, access_key_id, "
                            "secret_access_key, session_token, path_style, verify_tls, "
                            "timeout_ms, transfer_timeout_ms, connect_timeout_ms, "
                            "part_size_bytes).",
                            where, std::string(name)));
    }
    INFERD_RETURN_IF_ERROR(s);
  }
  if (Status s = o.Validate(); !s.ok()) {
    return Error(Errc::kValidation, where + ": " + s.error().message);
  }
  return o;
}

Result<std::unique_ptr<S3Store>> S3StoreFromJson(const boost::json::object& config,
                                                 const std::string& where) {
  auto options = S3StoreOptionsFromJson(config, where);
  if (!options.ok()) return std::move(options).error();
  return S3Store::Create(std::move(*options));
}
}  // namespace inferd::store
