// The SNS message bodies SageMaker publishes for asynchronous inference (spec §4.2), built field
// by field in SageMaker's key order. Pure functions.
//
// Success (to SuccessTopic): awsRegion, eventTime, receivedTime, invocationStatus "Completed",
//   requestParameters{accept?, contentType?, customAttributes?, endpointName, inputLocation?}
//   (only what the caller supplied; an inline Body has no inputLocation),
//   responseParameters{contentType?, outputLocation},
//   responseBody{content (base64), message, encoding "BASE64"} — only when
//   SUCCESS_NOTIFICATION_TOPIC is in IncludeInferenceResponseIn and the response ≤ 128 KiB,
//   inferenceId, eventVersion "1.0", eventSource "aws:sagemaker", eventName "InferenceResult".
// Error (to ErrorTopic): the same head with invocationStatus "Failed" and failureReason after
//   it; responseParameters{contentType?, failureLocation} when a failure object exists
//   (S3FailurePath configured); responseBody (the failure object's content: the model's answer
//   or the platform's reason text) only with ERROR_NOTIFICATION_TOPIC and ≤ 128 KiB.
// Test: {"eventVersion":"1.0","eventSource":"aws:sagemaker","eventName":"TestNotification"}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace inferd::dispatch {

// Responses up to this size are embedded in notifications (IncludeInferenceResponseIn).
inline constexpr size_t kMaxEmbeddedResponse = 128 * 1024;
// responseBody.message, as SageMaker writes it.
inline constexpr const char* kResponseBodyMessage =
    "Check S3 path location(if configured) or Cloudwatch for additional details.";

struct NotificationFacts {
  std::string region;
  int64_t received_ms = 0;  // acceptance
  int64_t event_ms = 0;     // when processing finished
  bool success = false;
  std::string failure_reason;  // errors
  // requestParameters: "" = not supplied (left out).
  std::string accept, content_type, custom_attributes;
  std::string endpoint_name;
  std::string input_location;
  // responseParameters
  std::string response_content_type;  // the container's Content-Type ("" = none: left out)
  std::string output_location;        // success
  std::string failure_location;       // errors: "" = no failure object (no responseParameters)
  std::string inference_id;
  // Set when the response (or failure object content) is to be embedded: the caller checks
  // IncludeInferenceResponseIn; the builder checks the size limit.
  std::optional<std::string> response_body;
};

std::string SuccessMessage(const NotificationFacts& facts);
std::string ErrorMessage(const NotificationFacts& facts);
std::string TestNotificationMessage();

}  // namespace inferd::dispatch
