#include "dispatch/reasons.h"

#include <fmt/format.h>

#include <algorithm>

namespace inferd::dispatch::reasons {

std::string ModelError(int status) {
  const char* kind = status >= 500   ? "server error"
                     : status >= 400 ? "client error"
                                     : "unexpected status";
  return fmt::format(
      "ClientError: Received {} ({}) from model. See the SageMaker Endpoint logs in your account "
      "for more information.",
      kind, status);
}

std::string Expired(int ttl_seconds) {
  return fmt::format(
      "Request expired: it waited longer than RequestTTLSeconds ({} s) in the queue before a "
      "model instance was free. Add capacity to the endpoint or invoke with a longer "
      "RequestTTLSeconds.",
      ttl_seconds);
}

std::string Timeout(int timeout_seconds) {
  return fmt::format(
      "Your invocation timed out while waiting for a response from container primary: no "
      "complete answer within InvocationTimeoutSeconds ({} s). Review the model's latency, or "
      "invoke with a longer InvocationTimeoutSeconds.",
      timeout_seconds);
}

std::string InputUnreadable(const std::string& input_location, const std::string& detail) {
  return fmt::format(
      "Failed to download the input from {}: {} Check that the object exists and is readable "
      "before invoking.",
      input_location, detail);
}

std::string UploadFailed(const std::string& location, const std::string& detail) {
  return fmt::format("Failed to upload the model's response to {}: {}", location, detail);
}

std::string Oversize(uint64_t limit, std::optional<uint64_t> content_length) {
  if (content_length) {
    return fmt::format(
        "The response from container primary is too large: {} bytes (Content-Length), over the "
        "limit of {} bytes for asynchronous inference.",
        *content_length, limit);
  }
  return fmt::format(
      "The response from container primary is too large: more than the limit of {} bytes for "
      "asynchronous inference.",
      limit);
}

std::string Connection(const std::string& endpoint, int attempts, const std::string& detail) {
  return fmt::format(
      "Connection reset by peer for the {} endpoint. Please retry. (The model instance failed "
      "before answering, {} attempt{} in all; last: {}.)",
      endpoint, attempts, attempts == 1 ? "" : "s", detail);
}

std::string Cancelled() {
  return "Cancelled: the invocation was cancelled while it was queued (inferd invocations "
         "cancel); it was not run.";
}

std::string EndpointDeleted(const std::string& endpoint) {
  return fmt::format(
      "Endpoint {} was deleted before the invocation ran; it was not run. Create the endpoint "
      "again and invoke again.",
      endpoint);
}

std::string Unrecorded() {
  return "The invocation failed; the failure object holds the details (its reason was not "
         "recorded before inferd restarted).";
}

std::string ForHeader(const std::string& reason) {
  std::string out;
  out.reserve(std::min<size_t>(reason.size(), 1024));
  for (unsigned char c : reason) {
    if (out.size() >= 1024) break;
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : ' ';
  }
  return out;
}

}  // namespace inferd::dispatch::reasons
