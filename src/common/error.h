// Error vocabulary shared by every component.
//
// An Errc says what the caller should do about a failure; the protocol front ends (src/api) map
// each code to an HTTP status and an AWS error code through one table (api/error_table.h). No
// component below api/ picks status codes. `aws_code` optionally narrows the protocol's default
// code where a protocol distinguishes more cases than Errc does (S3's NoSuchBucket vs NoSuchKey,
// for example).
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace inferd {

enum class Errc {
  kValidation,           // bad input: the request is wrong and will stay wrong
  kSerialization,        // the body could not be parsed (malformed JSON/XML, wrong types)
  kNotFound,             // the named resource does not exist
  kAlreadyExists,        // a resource with that name exists
  kInvalidState,         // the resource is in a state that does not allow the operation
  kResourceLimit,        // a quota would be exceeded
  kThrottled,            // retry later
  kUnknownOperation,     // the operation is not one this API knows
  kNotImplemented,       // a known API whose implementation has not landed
  kMissingAuth,          // no signature at all
  kUnknownAccessKey,     // signature by an access key we do not know
  kBadSignature,         // signature does not match
  kClockSkew,            // request time too far from server time
  kAccessDenied,         // authenticated but not allowed (e.g. expired presigned URL)
  kPayloadTooLarge,      // body above a limit
  kPreconditionFailed,   // a conditional request's condition does not hold (If-Match, ...)
  kRangeNotSatisfiable,  // a byte range outside the object
  kModelError,           // the model container answered with an error
  kUnavailable,          // a dependency is temporarily unavailable
  kInternal,             // a bug or an environment failure on our side
};

std::string_view ErrcName(Errc code);

struct Error {
  Errc code = Errc::kInternal;
  std::string message;
  std::string aws_code;  // optional protocol-specific refinement; empty = the table's default

  Error() = default;
  Error(Errc c, std::string msg, std::string aws = {})
      : code(c), message(std::move(msg)), aws_code(std::move(aws)) {}
};

}  // namespace inferd
