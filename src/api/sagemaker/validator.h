// Server-side validation of SageMaker control-plane request bodies against botocore's service
// model.
//
// botocore checks only required members, JSON types and minimums on the client; the server enforces
// the rest (maximum lengths, patterns, numeric ranges, enums) and answers with AWS's message
// format:
//
//   2 validation errors detected: Value 'bad_name' at 'modelName' failed to satisfy constraint:
//   Member must satisfy regular expression pattern: [a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?; Value
//   null at 'primaryContainer.image' failed to satisfy constraint: ...
//
// The model subset lives in shapes.json (written by tools/gen_sagemaker_shapes.py, embedded in the
// binary at build time). Paths name members in camelCase, list elements as `tags.3.member`. Lengths
// count Unicode code points. Patterns are Java regexes matched against the whole value; Java's
// \p{L}, \p{N}, \p{Z} and \p{Print} are approximated by their ASCII sets plus every non-ASCII byte,
// so any non-ASCII character passes them. Members the model does not know are ignored.
//
// Thread safety: a Validator is immutable; Validate and ValidateInput may be called from any
// thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace boost::json {
class value;
}  // namespace boost::json

namespace inferd::api::sagemaker {

class Validator {
 public:
  // Parses a shapes document in the format of shapes.json and compiles every pattern. Fails with
  // Errc::kInternal listing every problem: malformed JSON, unknown types, dangling shape
  // references, patterns Boost.Regex cannot compile.
  static Result<Validator> Load(std::string_view shapes_json);

  // Validates `input`, the parsed JSON body of `operation` (null counts as an empty object).
  //   - Errc::kValidation: every constraint violation, in AWS's message format;
  //   - Errc::kSerialization (aws_code "SerializationException"): a member has the wrong JSON type
  //     (the first one found is reported);
  //   - Errc::kUnknownOperation: `operation` is not in the model subset.
  Status Validate(std::string_view operation, const boost::json::value& input) const;

  // Whether SageMaker has this operation at all (validated here or not): inferd answers the
  // others NotImplemented (501) and names it does not know UnknownOperationException (400).
  bool IsKnownOperation(std::string_view operation) const;

  std::size_t OperationCount() const;
  std::size_t ShapeCount() const;
  std::size_t PatternCount() const;  // compiled patterns (one per shape that has one)

 private:
  struct Schema;
  explicit Validator(std::shared_ptr<const Schema> schema) : schema_(std::move(schema)) {}

  std::shared_ptr<const Schema> schema_;
};

// The text of shapes.json as embedded at build time (defined in the generated source).
std::string_view EmbeddedShapesJson();

// The validator for the embedded model, loaded once on first use; an error if it failed to load
// (the unit tests guarantee it does not).
const Result<Validator>& EmbeddedValidator();

// Validates against the embedded model; see Validator::Validate. Errc::kInternal if the embedded
// model failed to load.
Status ValidateInput(std::string_view operation, const boost::json::value& input);

// AWS's wording, shared with checks that do not walk a JSON body (the runtime's headers,
// api/runtime/request_parse.cc):
// "1 validation error detected: <v>" or "N validation errors detected: <v1>; <v2>" as `code`.
Error ValidationErrors(const std::vector<std::string>& violations, Errc code = Errc::kValidation);
// A string's length as the model counts it: the code points of its UTF-8 encoding.
std::size_t CodePoints(std::string_view s);

}  // namespace inferd::api::sagemaker
