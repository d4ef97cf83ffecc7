// URI helpers: percent-decoding, AWS-style percent-encoding and query-string parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inferd::http {

// Decodes %XX escapes; with `plus_as_space` also '+' → ' ' (form encoding). Returns nullopt on a
// malformed escape.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_as_space = false);

// AWS SigV4 encoding: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex);
// '/' is kept when `keep_slash`.
std::string AwsUriEncode(std::string_view in, bool keep_slash);

// Splits "a=1&b=&c" into decoded pairs in order ("c" → {"c",""}). Malformed escapes are kept
// verbatim. `plus_as_space` for application/x-www-form-urlencoded bodies.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query,
                                                            bool plus_as_space = false);

// First value of a parameter in parsed pairs.
std::optional<std::string_view> FindParam(
    const std::vector<std::pair<std::string, std::string>>& params, std::string_view name);

}  // namespace inferd::http
