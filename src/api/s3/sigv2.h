// S3's Signature Version 2 query authentication (presigned URLs carrying AWSAccessKeyId,
// Signature and Expires), which is what boto3 and AWS CLI v1 `generate_presigned_url` /
// `s3 presign` produce by default. The router's SigV4 Verifier does not know it, so S3Api
// exempts such requests from router authentication (RequiresAuth) and verifies them here:
//
//   Signature = base64(HMAC-SHA1(secret, VERB \n Content-MD5 \n Content-Type \n Expires \n
//                                CanonicalizedAmzHeaders CanonicalizedResource))
//
// where the resource is the request path as sent plus the signed subresources (uploadId,
// partNumber, response-* overrides, …) in name order. Pure computation; thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"
#include "http/sigv4.h"

namespace inferd::api::s3 {

// Whether the request carries SigV2 query authentication (an AWSAccessKeyId parameter).
bool HasSigV2QueryAuth(const http::Request& request);

// The string SigV2 signs for `request`, with `expires` in the date position.
std::string SigV2StringToSign(const http::Request& request, std::string_view expires);

// base64(HMAC-SHA1(secret, string_to_sign)).
std::string SigV2Signature(std::string_view secret, std::string_view string_to_sign);

using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

// Verifies the SigV2 query authentication of `request` at time `now`. With no `secrets` (the
// server has no credentials) any well-formed, unexpired signature is accepted. Errors:
// kValidation (malformed parameters or two auth mechanisms), kUnknownAccessKey
// (InvalidAccessKeyId), kBadSignature (SignatureDoesNotMatch), kAccessDenied (expired).
Result<http::sigv4::Identity> VerifySigV2Query(const http::Request& request,
                                               const SecretLookup& secrets,
                                               std::chrono::system_clock::time_point now,
                                               const std::string& region);

}  // namespace inferd::api::s3
