#include "dispatch/notification.h"

#include <boost/json.hpp>
#include <chrono>

#include "common/base64.h"
#include "common/clock.h"

namespace inferd::dispatch {

namespace json = boost::json;

namespace {

std::string Iso(int64_t ms) {
  return FormatIso8601Millis(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

void Head(const NotificationFacts& f, json::object& o) {
  o["awsRegion"] = f.region;
  o["eventTime"] = Iso(f.event_ms);
  o["receivedTime"] = Iso(f.received_ms);
  o["invocationStatus"] = f.success ? "Completed" : "Failed";
  if (!f.success) o["failureReason"] = f.failure_reason;
  json::object request;
  if (!f.accept.empty()) request["accept"] = f.accept;
  if (!f.content_type.empty()) request["contentType"] = f.content_type;
  if (!f.custom_attributes.empty()) request["customAttributes"] = f.custom_attributes;
  request["endpointName"] = f.endpoint_name;
  if (!f.input_location.empty()) request["inputLocation"] = f.input_location;
  o["requestParameters"] = std::move(request);
}

void Body(const NotificationFacts& f, json::object& o) {
  if (!f.response_body || f.response_body->size() > kMaxEmbeddedResponse) return;
  o["responseBody"] = json::object{{"content", Base64Encode(*f.response_body)},
                                   {"message", kResponseBodyMessage},
                                   {"encoding", "BASE64"}};
}

// responseParameters: the answer's content type (when known) and where the result object is.
void Response(const NotificationFacts& f, const char* location_key, const std::string& location,
              json::object& o) {
  json::object response;
  if (!f.response_content_type.empty()) response["contentType"] = f.response_content_type;
  response[location_key] = location;
  o["responseParameters"] = std::move(response);
}

void Tail(const NotificationFacts& f, json::object& o) {
  o["inferenceId"] = f.inference_id;
  o["eventVersion"] = "1.0";
  o["eventSource"] = "aws:sagemaker";
  o["eventName"] = "InferenceResult";
}

}  // namespace

std::string SuccessMessage(const NotificationFacts& f) {
  json::object o;
  Head(f, o);
  Response(f, "outputLocation", f.output_location, o);
  Body(f, o);
  Tail(f, o);
  return json::serialize(o);
}

std::string ErrorMessage(const NotificationFacts& f) {
  json::object o;
  Head(f, o);
  if (!f.failure_location.empty()) Response(f, "failureLocation", f.failure_location, o);
  Body(f, o);
  Tail(f, o);
  return json::serialize(o);
}

std::string TestNotificationMessage() {
  return R"({"eventVersion":"1.0","eventSource":"aws:sagemaker","eventName":"TestNotification"})";
}

}  // namespace inferd::dispatch
