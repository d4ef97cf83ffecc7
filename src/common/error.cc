#include "common/error.h"

namespace inferd {

std::string_view ErrcName(Errc code) {
  switch (code) {
    case Errc::kValidation:
      return "validation";
    case Errc::kSerialization:
      return "serialization";
    case Errc::kNotFound:
      return "not-found";
    case Errc::kAlreadyExists:
      return "already-exists";
    case Errc::kInvalidState:
      return "invalid-state";
    case Errc::kResourceLimit:
      return "resource-limit";
    case Errc::kThrottled:
      return "throttled";
    case Errc::kUnknownOperation:
      return "unknown-operation";
    case Errc::kNotImplemented:
      return "not-implemented";
    case Errc::kMissingAuth:
      return "missing-auth";
    case Errc::kUnknownAccessKey:
      return "unknown-access-key";
    case Errc::kBadSignature:
      return "bad-signature";
    case Errc::kClockSkew:
      return "clock-skew";
    case Errc::kAccessDenied:
      return "access-denied";
    case Errc::kPayloadTooLarge:
      return "payload-too-large";
    case Errc::kPreconditionFailed:
      return "precondition-failed";
    case Errc::kRangeNotSatisfiable:
      return "range-not-satisfiable";
    case Errc::kModelError:
      return "model-error";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace inferd
