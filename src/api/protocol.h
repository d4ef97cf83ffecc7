// The wire protocols inferd speaks on its one port, and the one table that maps an Error to
// each protocol's HTTP status and error code (see error_table.cc). No handler picks status codes.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "http/message.h"

namespace inferd::api {

enum class Protocol {
  kSageMaker,  // control plane: AWS JSON 1.1, X-Amz-Target: SageMaker.*
  kRuntime,    // sagemaker-runtime: REST-JSON, /endpoints/{name}/...
  kSns,        // Query protocol, XML answers
  kS3,         // REST-XML
  kInferd,     // inferd's own API (/inferd/..., GET /metrics): JSON, errors as the runtime's
};

std::string_view ProtocolName(Protocol p);

struct AwsError {
  int status;
  std::string_view code;
};

// Status and code of `error` in `protocol` (error.aws_code, when set, replaces the code).
AwsError LookupError(Protocol protocol, const Error& error);

// Whether the table has a row for `code` (every Errc must; checked by a unit test).
bool ErrorTableCovers(Errc code);

// A complete error response in the protocol's format (body, Content-Type, x-amzn-ErrorType…).
http::Response MakeErrorResponse(Protocol protocol, const Error& error,
                                 const std::string& request_id);

// XML text escaping for element content and attribute values.
std::string XmlEscape(std::string_view text);

}  // namespace inferd::api
