// The failure reasons inferd writes (the record's failure_reason, the error notification's
// failureReason, the failure object's x-amz-meta-failure-reason, and the failure object's body
// when the model gave none). SageMaker's wording where SageMaker has one (spec §4.1, §4.2),
// followed by what happened and what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace inferd::dispatch::reasons {

// "ClientError: Received client error (404) from model. See the SageMaker Endpoint logs in your
// account for more information." (server error for 5xx).
std::string ModelError(int status);
std::string Expired(int ttl_seconds);
std::string Timeout(int timeout_seconds);
std::string InputUnreadable(const std::string& input_location, const std::string& detail);
std::string UploadFailed(const std::string& location, const std::string& detail);
std::string Oversize(uint64_t limit, std::optional<uint64_t> content_length);
// "Connection reset by peer for the <endpoint> endpoint. Please retry. ..."
std::string Connection(const std::string& endpoint, int attempts, const std::string& detail);
std::string Cancelled();
std::string EndpointDeleted(const std::string& endpoint);
// A restart found the failure object but no reason on it.
std::string Unrecorded();

// `reason` made fit for an HTTP header value (x-amz-meta-failure-reason): printable ASCII, at
// most 1,024 bytes (S3 keeps 2 KB of user metadata).
std::string ForHeader(const std::string& reason);

}  // namespace inferd::dispatch::reasons
