#include "inferd-xgboost/content_types.h"

#include <algorithm>
#include <cctype>

namespace inferd::xgboost_server {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Splits on `sep` outside double quotes.
std::vector<std::string_view> SplitUnquoted(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    if (s[i] == sep && !quoted) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

constexpr char kSupportedAccepts[] = "['application/json', 'application/jsonlines', 'text/csv']";

}  // namespace

std::optional<std::string_view> MediaType::Param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

MediaType ParseMediaType(std::string_view header) {
  MediaType m;
  auto parts = SplitUnquoted(header, ';');
  m.type = Lower(Trim(parts[0]));
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = Trim(parts[i]);
    if (p.empty()) continue;
    auto eq = p.find('=');
    std::string name = Lower(Trim(p.substr(0, eq)));
    std::string_view value = eq == std::string_view::npos ? "" : Trim(p.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    m.params.emplace_back(std::move(name), std::string(value));
  }
  return m;
}

Result<std::optional<InputType>> ResolveContentType(std::optional<std::string_view> header) {
  if (!header || Trim(*header).empty()) {
    return std::optional<InputType>(InputType{InputFormat::kLibsvm, false, "libsvm"});
  }
  MediaType m = ParseMediaType(*header);
  const std::string& t = m.type;
  if (t == "text/csv" || t == "csv") {
    InputType in{InputFormat::kCsv, false, "csv"};
    if (auto label_size = m.Param("label_size")) {
      if (Trim(*label_size) != "1") {
        return Error(Errc::kValidation,
                     std::string(Trim(*header)) +
                         " is not an accepted csv ContentType. Optional parameter label_size "
                         "must be equal to 1");
      }
      in.drop_first_column = true;
    }
    return std::optional<InputType>(in);
  }
  if (t == "text/libsvm" || t == "text/x-libsvm" || t == "libsvm") {
    return std::optional<InputType>(InputType{InputFormat::kLibsvm, false, "libsvm"});
  }
  if (t == "application/json" || t == "json") {
    return std::optional<InputType>(InputType{InputFormat::kJson, false, "json"});
  }
  if (t == "application/jsonlines" || t == "application/x-jsonlines" || t == "jsonlines") {
    return std::optional<InputType>(InputType{InputFormat::kJsonLines, false, "jsonlines"});
  }
  return std::optional<InputType>();
}

std::string UnsupportedContentTypeMessage(std::string_view header) {
  return "Content-type " + std::string(Trim(header)) +
         " not supported. Supported content-types are text/csv, text/libsvm, text/x-libsvm, "
         "application/json and application/jsonlines.";
}

std::optional<OutputType> OutputTypeFor(std::string_view type) {
  std::string t = Lower(Trim(type));
  if (t == "text/csv" || t == "csv") return OutputType{OutputFormat::kCsv, "text/csv"};
  if (t == "application/json" || t == "json") {
    return OutputType{OutputFormat::kJson, "application/json"};
  }
  if (t == "application/jsonlines" || t == "application/x-jsonlines" || t == "jsonlines") {
    return OutputType{OutputFormat::kJsonLines, "application/jsonlines"};
  }
  return std::nullopt;
}

std::optional<OutputType> NegotiateAccept(std::optional<std::string_view> accept,
                                          const OutputType& default_type) {
  if (!accept || Trim(*accept).empty()) return default_type;
  for (std::string_view entry : SplitUnquoted(*accept, ',')) {
    MediaType m = ParseMediaType(entry);
    if (m.type == "*/*") return default_type;
    if (auto out = OutputTypeFor(m.type)) return out;
  }
  return std::nullopt;
}

std::string UnsupportedAcceptMessage(std::string_view accept) {
  return "Accept type " + std::string(Trim(accept)) +
         " is not supported. Please use supported accept types: " + kSupportedAccepts + ".";
}

}  // namespace inferd::xgboost_server
