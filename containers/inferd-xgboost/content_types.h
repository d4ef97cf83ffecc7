// Request Content-Type and Accept handling of inferd-xgboost, following the SageMaker XGBoost
// container (aws/sagemaker-xgboost-container; spec §7.2). Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace inferd::xgboost_server {

// "type/subtype; name=value; ..." with the type and parameter names lower-cased (values keep
// their case, quotes removed).
struct MediaType {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;

  std::optional<std::string_view> Param(std::string_view name) const;
};
MediaType ParseMediaType(std::string_view header);

enum class InputFormat { kCsv, kLibsvm, kJson, kJsonLines };

struct InputType {
  InputFormat format = InputFormat::kCsv;
  bool drop_first_column = false;  // text/csv;label_size=1: the first column is a label
  std::string name;                // "csv", "libsvm", "json", "jsonlines" (for messages)
};

// The request's input type. nullopt: unsupported (the caller answers 415). An error: a supported
// type with an invalid parameter (label_size other than 1; the caller answers 400).
// A missing Content-Type means LIBSVM (data_utils.get_content_type(None) in the container).
Result<std::optional<InputType>> ResolveContentType(std::optional<std::string_view> header);

// The 415 message for an unsupported Content-Type.
std::string UnsupportedContentTypeMessage(std::string_view header);

enum class OutputFormat { kCsv, kJson, kJsonLines };

struct OutputType {
  OutputFormat format = OutputFormat::kCsv;
  std::string content_type;  // "text/csv", "application/json", "application/jsonlines"
};

// Maps a media type name ("text/csv", "csv", "application/json", ...) to an output type.
std::optional<OutputType> OutputTypeFor(std::string_view type);

// Chooses the response type. No Accept, or */*, means `default_type` (from
// SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else text/csv). A list ("a, b;q=0.5") yields its first
// supported entry. nullopt: nothing acceptable (the caller answers 406).
std::optional<OutputType> NegotiateAccept(std::optional<std::string_view> accept,
                                          const OutputType& default_type);

// The 406 message for an unsupported Accept.
std::string UnsupportedAcceptMessage(std::string_view accept);

}  // namespace inferd::xgboost_server
