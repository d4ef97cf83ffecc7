// Parsing and server-side validation of the runtime's two invoke operations (spec §2.2–§2.4),
// with the constraints of botocore's sagemaker-runtime model (2017-05-13) that botocore leaves to
// the server (maximum lengths, patterns, ranges), answered in AWS's wording — the same as the
// control plane's validator (api/sagemaker/validator.h):
//
//   1 validation error detected: Value 'x_y' at 'endpointName' failed to satisfy constraint:
//   Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*
//
// Sensitive members (CustomAttributes, Body) are named without their value ("Value at
// 'customAttributes' failed to satisfy constraint: ..."), as AWS does. Lengths count code points.
//
// Pure functions: no I/O, thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "dispatch/dispatcher.h"
#include "http/message.h"

namespace inferd::api::runtime {

// Inline Body of InvokeEndpointAsync (newer API, spec §2.4) and InvokeEndpoint's body.
inline constexpr std::size_t kMaxAsyncBodyBytes = 128000;
inline constexpr std::size_t kMaxSyncBodyBytes = 6291456;

// Which invoke operation a runtime path names (api::MatchRuntimePath, the router's test):
// /endpoints/{name}/async-invocations or /endpoints/{name}/invocations. `endpoint` is
// percent-decoded and not yet validated.
struct RuntimePath {
  std::string endpoint;
  bool async = false;
};
// kValidation when the path is not one of the two (the router only sends those).
Result<RuntimePath> ParseRuntimePath(std::string_view path);

// InvokeEndpointAsync: the path's endpoint name, the X-Amzn-SageMaker-* headers and the optional
// inline body (non-empty request body, exclusive with InputLocation). Absent headers take
// SageMaker's defaults (RequestTTLSeconds 21600, InvocationTimeoutSeconds 900); an absent
// InferenceId stays "" (the dispatcher generates one). kValidation with every violation. The
// request is taken by value so its body moves into the result (no copy on the way in).
Result<dispatch::AcceptRequest> ParseInvokeEndpointAsync(http::Request request,
                                                         const std::string& region);

// InvokeEndpoint: body (≤ 6,291,456 bytes: kPayloadTooLarge above), Content-Type, Accept,
// X-Amzn-SageMaker-Custom-Attributes, -Target-Variant, -Inference-Id. The multi-model,
// multi-container, inference-component and session headers are refused (kValidation: inferd
// has none of those features); -Enable-Explanations is ignored.
Result<dispatch::SyncRequest> ParseInvokeEndpoint(http::Request request, const std::string& region);

// For tests: whether `value` satisfies the model's pattern for `member` ("endpointName",
// "inferenceId", "inputLocation") by the regular expression (`regex`) or by the hand-written
// matcher that runs first (nullopt: it leaves that value to the expression).
std::optional<bool> MatchesPatternForTest(std::string_view member, std::string_view value,
                                          bool regex);

}  // namespace inferd::api::runtime
