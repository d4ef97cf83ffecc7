#include <array>
#include <boost/json.hpp>

#include "api/protocol.h"

namespace inferd::api {
namespace {

struct Row {
  Errc code;
  AwsError sagemaker;  // JSON 1.1
  AwsError runtime;    // REST-JSON
  AwsError s3;
  AwsError sns;
  AwsError inferd;  // /inferd/: REST-JSON like the runtime, HTTP-style statuses
};

// THE table. One row per Errc; columns per protocol.
constexpr std::array<Row, 20> kTable{{
    {Errc::kValidation,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {400, "InvalidArgument"},
     {400, "InvalidParameter"},
     {400, "ValidationError"}},
    {Errc::kSerialization,
     {400, "SerializationException"},
     {400, "ValidationError"},
     {400, "MalformedXML"},
     {400, "MalformedQueryString"},
     {400, "ValidationError"}},
    {Errc::kNotFound,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {404, "NoSuchKey"},
     {404, "NotFound"},
     {404, "ResourceNotFound"}},
    {Errc::kAlreadyExists,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {409, "BucketAlreadyOwnedByYou"},
     {400, "InvalidParameter"},
     {409, "Conflict"}},
    {Errc::kInvalidState,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {409, "OperationAborted"},
     {400, "InvalidParameter"},
     {409, "Conflict"}},
    {Errc::kResourceLimit,
     {400, "ResourceLimitExceeded"},
     {400, "ValidationError"},
     {400, "TooManyBuckets"},
     {403, "LimitExceeded"},
     {400, "ResourceLimitExceeded"}},
    {Errc::kThrottled,
     {400, "ThrottlingException"},
     {429, "ThrottlingException"},
     {503, "SlowDown"},
     {400, "Throttling"},
     {429, "ThrottlingException"}},
    {Errc::kUnknownOperation,
     {400, "UnknownOperationException"},
     {404, "UnknownOperationException"},
     {400, "InvalidRequest"},
     {400, "InvalidAction"},
     {404, "UnknownOperationException"}},
    {Errc::kNotImplemented,
     {501, "NotImplemented"},
     {501, "NotImplemented"},
     {501, "NotImplemented"},
     {501, "NotImplemented"},
     {501, "NotImplemented"}},
    {Errc::kMissingAuth,
     {403, "MissingAuthenticationTokenException"},
     {403, "MissingAuthenticationTokenException"},
     {403, "AccessDenied"},
     {403, "MissingAuthenticationToken"},
     {403, "MissingAuthenticationTokenException"}},
    {Errc::kUnknownAccessKey,
     {403, "UnrecognizedClientException"},
     {403, "UnrecognizedClientException"},
     {403, "InvalidAccessKeyId"},
     {403, "InvalidClientTokenId"},
     {403, "UnrecognizedClientException"}},
    {Errc::kBadSignature,
     {403, "InvalidSignatureException"},
     {403, "InvalidSignatureException"},
     {403, "SignatureDoesNotMatch"},
     {403, "SignatureDoesNotMatch"},
     {403, "InvalidSignatureException"}},
    {Errc::kClockSkew,
     {403, "RequestTimeTooSkewed"},
     {403, "RequestTimeTooSkewed"},
     {403, "RequestTimeTooSkewed"},
     {403, "RequestTimeTooSkewed"},
     {403, "RequestTimeTooSkewed"}},
    {Errc::kAccessDenied,
     {403, "AccessDeniedException"},
     {403, "AccessDeniedException"},
     {403, "AccessDenied"},
     {403, "AuthorizationError"},
     {403, "AccessDeniedException"}},
    {Errc::kPayloadTooLarge,
     {413, "SerializationException"},
     {413, "ValidationError"},
     {400, "EntityTooLarge"},
     {400, "InvalidParameter"},
     {413, "ValidationError"}},
    {Errc::kPreconditionFailed,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {412, "PreconditionFailed"},
     {400, "InvalidParameter"},
     {412, "PreconditionFailed"}},
    {Errc::kRangeNotSatisfiable,
     {400, "ValidationException"},
     {400, "ValidationError"},
     {416, "InvalidRange"},
     {400, "InvalidParameter"},
     {416, "InvalidRange"}},
    {Errc::kModelError,
     {500, "InternalFailure"},
     {424, "ModelError"},
     {500, "InternalError"},
     {500, "InternalError"},
     {424, "ModelError"}},
    {Errc::kUnavailable,
     {503, "ServiceUnavailable"},
     {503, "ServiceUnavailable"},
     {503, "ServiceUnavailable"},
     {503, "ServiceUnavailable"},
     {503, "ServiceUnavailable"}},
    {Errc::kInternal,
     {500, "InternalFailure"},
     {500, "InternalFailure"},
     {500, "InternalError"},
     {500, "InternalError"},
     {500, "InternalFailure"}},
}};

}  // namespace

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kSageMaker:
      return "SageMaker";
    case Protocol::kRuntime:
      return "SageMakerRuntime";
    case Protocol::kSns:
      return "SNS";
    case Protocol::kS3:
      return "S3";
    case Protocol::kInferd:
      return "Inferd";
  }
  return "?";
}

bool ErrorTableCovers(Errc code) {
  for (const auto& row : kTable) {
    if (row.code == code) return true;
  }
  return false;
}

AwsError LookupError(Protocol protocol, const Error& error) {
  AwsError found{500, "InternalFailure"};
  for (const auto& row : kTable) {
    if (row.code != error.code) continue;
    switch (protocol) {
      case Protocol::kSageMaker:
        found = row.sagemaker;
        break;
      case Protocol::kRuntime:
        found = row.runtime;
        break;
      case Protocol::kS3:
        found = row.s3;
        break;
      case Protocol::kSns:
        found = row.sns;
        break;
      case Protocol::kInferd:
        found = row.inferd;
        break;
    }
    break;
  }
  if (!error.aws_code.empty()) found.code = error.aws_code;
  return found;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

http::Response MakeErrorResponse(Protocol protocol, const Error& error,
                                 const std::string& request_id) {
  AwsError aws = LookupError(protocol, error);
  http::Response r;
  r.status = aws.status;
  std::string code(aws.code);
  switch (protocol) {
    case Protocol::kSageMaker:
      r.headers.Add("Content-Type", "application/x-amz-json-1.1");
      r.body =
          boost::json::serialize(boost::json::object{{"__type", code}, {"message", error.message}});
      break;
    case Protocol::kRuntime:
    case Protocol::kInferd:
      r.headers.Add("Content-Type", "application/json");
      r.headers.Add("x-amzn-ErrorType", code);
      r.body = boost::json::serialize(
          boost::json::object{{"ErrorCode", code}, {"message", error.message}});
      break;
    case Protocol::kS3:
      r.headers.Add("Content-Type", "application/xml");
      r.headers.Add("x-amz-request-id", request_id);
      r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + XmlEscape(code) +
               "</Code><Message>" + XmlEscape(error.message) + "</Message><RequestId>" +
               XmlEscape(request_id) + "</RequestId></Error>";
      break;
    case Protocol::kSns:
      r.headers.Add("Content-Type", "text/xml");
      r.body = std::string(
                   "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
                   "<Error><Type>") +
               (aws.status >= 500 ? "Receiver" : "Sender") + "</Type><Code>" + XmlEscape(code) +
               "</Code><Message>" + XmlEscape(error.message) + "</Message></Error><RequestId>" +
               XmlEscape(request_id) + "</RequestId></ErrorResponse>";
      break;
  }
  return r;
}

}  // namespace inferd::api
