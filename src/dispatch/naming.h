// Where an invocation's result goes (spec §4.1), decided at acceptance and returned in the 202:
//
//   output:  <S3OutputPath>[/<S3OutputPathExtension>]/<Filename or <output id>.out>
//   failure: <S3FailurePath>/<output id>-error.out        ("" without S3FailurePath)
//
// The output id is a fresh UUID per invocation (not the InferenceId: SageMaker names outputs
// that way too). Parts are joined with exactly one '/': trailing slashes of the left part and
// leading slashes of the right part collapse; slashes inside a part are kept. A Filename only
// names the output; the failure object keeps the <output id>-error.out name.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "dispatch/endpoint_directory.h"

namespace inferd::dispatch {

// "s3://b/p/" + "/x" → "s3://b/p/x"; an empty `part` leaves `base` unchanged.
std::string JoinPath(std::string_view base, std::string_view part);

struct ResultLocations {
  std::string output;
  std::string failure;  // "" when the endpoint has no S3FailurePath
};

// kValidation when the configuration has no S3OutputPath (the message names the endpoint and
// what to do).
Result<ResultLocations> MakeLocations(const AsyncConfig& config, std::string_view endpoint,
                                      std::string_view output_path_extension,
                                      std::string_view filename, std::string_view output_id);

}  // namespace inferd::dispatch
