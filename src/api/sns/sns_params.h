// The SNS Query protocol's request parameters and XML answers.
//
// Parameters come from the query string and, for POST, the form-encoded body (which wins).
// Structured parameters use botocore's query serialisation:
//   maps             Attributes.entry.N.key / .value
//   message attrs    MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue /
//                    .Value.BinaryValue (base64)
//   lists            Tags.member.N.Key / .Value, TagKeys.member.N,
//                    PublishBatchRequestEntries.member.N.<Member>
// Answers are <ActionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"> with an
// <ActionResult> (for actions that have an output) and <ResponseMetadata><RequestId>.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "notify/types.h"

namespace inferd::api::sns {

inline constexpr std::string_view kXmlns = "http://sns.amazonaws.com/doc/2010-03-31/";

class Params {
 public:
  static Params FromRequest(const http::Request& request);
  static Params FromQuery(std::string_view query);

  std::optional<std::string> Get(std::string_view name) const;
  std::string GetOr(std::string_view name, std::string fallback = "") const;
  // kValidation (InvalidParameter) when absent or empty.
  Result<std::string> Required(std::string_view name) const;
  bool IsTrue(std::string_view name) const;  // "true", case-insensitive

  // `prefix`.entry.N.key/value (e.g. "Attributes").
  Result<notify::AttributeMap> EntryMap(std::string_view prefix) const;
  // `prefix`.entry.N.Name/Value.* (e.g. "MessageAttributes").
  Result<notify::MessageAttributes> MessageAttributes(std::string_view prefix) const;
  // `prefix`.member.N.Key/Value (e.g. "Tags").
  Result<notify::TagMap> Tags(std::string_view prefix) const;
  // `prefix`.member.N (e.g. "TagKeys").
  std::vector<std::string> StringList(std::string_view prefix) const;
  // The indexes N present under `prefix`.member.N., ascending (e.g. batch entries).
  std::vector<int> MemberIndexes(std::string_view prefix) const;

 private:
  // For key "<prefix>.<kind>.N.<rest>": N → (rest → value).
  std::map<int, std::map<std::string, std::string>> Indexed(std::string_view prefix,
                                                            std::string_view kind) const;
  std::map<std::string, std::string, std::less<>> values_;
};

// <name>escaped text</name>
std::string Element(std::string_view name, std::string_view text);
// <Attributes><entry><key>…</key><value>…</value></entry>…</Attributes>
std::string MapElement(std::string_view name, const std::map<std::string, std::string>& map);
// The whole response document. `result` is the inner XML of <ActionResult>; without
// `has_result` no Result element is written (actions without output).
std::string ResponseXml(std::string_view action, std::string_view result, bool has_result,
                        std::string_view request_id);

}  // namespace inferd::api::sns
