#include "api/sns/sns_params.h"

#include <cctype>
#include <charconv>

#include "api/protocol.h"
#include "http/uri.h"

namespace inferd::api::sns {

namespace {

Error InvalidParameter(const std::string& what) {
  return Error(Errc::kValidation, "Invalid parameter: " + what, "InvalidParameter");
}

void Merge(std::map<std::string, std::string, std::less<>>& into, std::string_view text,
           bool plus_as_space) {
  for (auto& [k, v] : http::ParseQuery(text, plus_as_space)) into[k] = std::move(v);
}

}  // namespace

Params Params::FromQuery(std::string_view query) {
  Params p;
  Merge(p.values_, query, true);
  return p;
}

Params Params::FromRequest(const http::Request& request) {
  Params p;
  Merge(p.values_, request.query, true);
  if (request.method == "POST") Merge(p.values_, request.body, true);
  return p;
}

std::optional<std::string> Params::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Params::GetOr(std::string_view name, std::string fallback) const {
  auto v = Get(name);
  return v ? *v : std::move(fallback);
}

Result<std::string> Params::Required(std::string_view name) const {
  auto v = Get(name);
  if (!v || v->empty()) {
    return InvalidParameter(std::string(name) + " Reason: no value for required parameter");
  }
  return *v;
}

bool Params::IsTrue(std::string_view name) const {
  auto v = Get(name);
  if (!v || v->size() != 4) return false;
  std::string lower;
  for (char c : *v) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return lower == "true";
}

std::map<int, std::map<std::string, std::string>> Params::Indexed(std::string_view prefix,
                                                                  std::string_view kind) const {
  std::map<int, std::map<std::string, std::string>> out;
  std::string head = std::string(prefix) + "." + std::string(kind) + ".";
  for (auto it = values_.lower_bound(head); it != values_.end(); ++it) {
    std::string_view key = it->first;
    if (key.substr(0, head.size()) != head) break;
    std::string_view rest = key.substr(head.size());
    int n = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc() || n < 1) continue;
    std::string_view tail(end, rest.data() + rest.size() - end);
    if (!tail.empty() && tail.front() == '.') tail.remove_prefix(1);
    out[n][std::string(tail)] = it->second;
  }
  return out;
}

Result<notify::AttributeMap> Params::EntryMap(std::string_view prefix) const {
  notify::AttributeMap out;
  for (const auto& [n, fields] : Indexed(prefix, "entry")) {
    auto key = fields.find("key");
    if (key == fields.end() || key->second.empty()) {
      return InvalidParameter(std::string(prefix) + " Reason: entry " + std::to_string(n) +
                              " has no key");
    }
    auto value = fields.find("value");
    out[key->second] = value == fields.end() ? "" : value->second;
  }
  return out;
}

Result<notify::MessageAttributes> Params::MessageAttributes(std::string_view prefix) const {
  notify::MessageAttributes out;
  for (const auto& [n, fields] : Indexed(prefix, "entry")) {
    auto name = fields.find("Name");
    auto type = fields.find("Value.DataType");
    if (name == fields.end() || name->second.empty()) {
      return InvalidParameter(std::string(prefix) + " Reason: entry " + std::to_string(n) +
                              " has no Name");
    }
    if (type == fields.end() || type->second.empty()) {
      return Error(Errc::kValidation,
                   "The message attribute '" + name->second + "' must contain a DataType.",
                   "ParameterValueInvalid");
    }
    notify::MessageAttribute a;
    a.data_type = type->second;
    bool binary = type->second.rfind("Binary", 0) == 0;
    auto value = fields.find(binary ? "Value.BinaryValue" : "Value.StringValue");
    if (value != fields.end()) a.value = value->second;
    out[name->second] = std::move(a);
  }
  return out;
}

Result<notify::TagMap> Params::Tags(std::string_view prefix) const {
  notify::TagMap out;
  for (const auto& [n, fields] : Indexed(prefix, "member")) {
    auto key = fields.find("Key");
    if (key == fields.end() || key->second.empty()) {
      return InvalidParameter("Tags Reason: tag " + std::to_string(n) + " has no Key");
    }
    auto value = fields.find("Value");
    out[key->second] = value == fields.end() ? "" : value->second;
  }
  return out;
}

std::vector<std::string> Params::StringList(std::string_view prefix) const {
  std::vector<std::string> out;
  for (const auto& [n, fields] : Indexed(prefix, "member")) {
    auto v = fields.find("");
    if (v != fields.end()) out.push_back(v->second);
  }
  return out;
}

std::vector<int> Params::MemberIndexes(std::string_view prefix) const {
  std::vector<int> out;
  for (const auto& [n, fields] : Indexed(prefix, "member")) out.push_back(n);
  return out;
}

std::string Element(std::string_view name, std::string_view text) {
  std::string out;
  out.append("<").append(name).append(">");
  out += XmlEscape(text);
  out.append("</").append(name).append(">");
  return out;
}

std::string MapElement(std::string_view name, const std::map<std::string, std::string>& map) {
  std::string out = "<" + std::string(name) + ">";
  for (const auto& [k, v] : map) {
    out += "<entry>" + Element("key", k) + Element("value", v) + "</entry>";
  }
  return out + "</" + std::string(name) + ">";
}

std::string ResponseXml(std::string_view action, std::string_view result, bool has_result,
                        std::string_view request_id) {
  std::string out = "<" + std::string(action) + "Response xmlns=\"" + std::string(kXmlns) + "\">";
  if (has_result) {
    out += "<" + std::string(action) + "Result>";
    out += result;
    out += "</" + std::string(action) + "Result>";
  }
  out += "<ResponseMetadata>" + Element("RequestId", request_id) + "</ResponseMetadata>";
  out += "</" + std::string(action) + "Response>";
  return out;
}

}  // namespace inferd::api::sns
