// Small helpers for reading members out of Boost.JSON objects: requests inside catalog/, and the
// stored documents that dispatch/ and fleet/ read (absent or of another type: empty/null).
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>

namespace inferd::catalog {

inline std::string Str(const boost::json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}

inline std::optional<double> Num(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

inline const boost::json::object* Obj(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

inline const boost::json::array* Arr(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}

}  // namespace inferd::catalog
