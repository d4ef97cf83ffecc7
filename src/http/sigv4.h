// AWS Signature Version 4: verification of `Authorization` headers and of presigned URLs
// (query parameters), plus the signing primitives (exposed for tests and for our own clients).
//
// Pure computation: no I/O, thread-safe after construction (the Verifier's key cache is locked).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "http/message.h"

namespace inferd::http::sigv4 {

// Who signed a request and for which scope. `region` becomes the region of ARNs we mint.
struct Identity {
  std::string access_key_id;
  std::string region;
  std::string service;
  bool presigned = false;
};

struct VerifierOptions {
  // access key id → secret access key. Empty = no credentials configured: any well-formed
  // signature is accepted (the app allows that only on loopback listeners).
  std::map<std::string, std::string> credentials;
  std::chrono::seconds max_clock_skew{15 * 60};
};

class Verifier {
 public:
  Verifier(VerifierOptions options, const Clock& clock);

  // Verifies the request's signature (Authorization header, or X-Amz-* query parameters).
  // Errors: kMissingAuth (no signature), kValidation (malformed Authorization/credential),
  // kUnknownAccessKey, kBadSignature, kClockSkew, kAccessDenied (presigned URL expired).
  // The payload hash is the x-amz-content-sha256 header when present (S3), otherwise
  // SHA-256(request.body); presigned requests use UNSIGNED-PAYLOAD unless the header says
  // otherwise.
  Result<Identity> Verify(const Request& request) const;

 private:
  // The signing key of (access key id, date, region, service): four HMACs derived once per day
  // and scope, not per request. Bounded: cleared when it grows past kMaxCachedKeys.
  std::string CachedSigningKey(const std::string& access_key_id, const std::string& secret,
                               const std::string& date, const std::string& region,
                               const std::string& service) const;
  static constexpr std::size_t kMaxCachedKeys = 1024;

  VerifierOptions options_;
  const Clock& clock_;
  mutable std::mutex keys_mu_;
  mutable std::unordered_map<std::string, std::string> keys_;  // "akid/date/region/service"
};

// ---- primitives ----

std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw bytes

// The canonical request of SigV4. `double_encode_path` is true for every service but s3.
// For presigned requests X-Amz-Signature is left out of the canonical query.
std::string CanonicalRequest(const Request& request, const std::vector<std::string>& signed_headers,
                             std::string_view payload_hash, bool double_encode_path);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>"
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The raw signing key: HMAC chain "AWS4"+secret → date → region → service → aws4_request.
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);
// Hex signature: HMAC-SHA256 of the string to sign with SigningKey(...).
std::string Signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// Signs a request in place (adds X-Amz-Date from `now` if missing, replaces Authorization). The
// Host header must already be present (asserted): it is always signed, together with every
// x-amz-* header, content-type, content-md5 and date present; other headers (user-agent,
// connection, ...) are left unsigned so proxies may touch them. request.path/query must be what
// will be sent. Payload hash: for s3, `payload_hash` (default SHA-256(body)) is also written to
// x-amz-content-sha256; for other services SHA-256(body) (`payload_hash` ignored) unless the
// request already carries x-amz-content-sha256, the same rule Verify applies. For our own outgoing
// requests and for tests.
void SignRequest(Request& request, std::string_view access_key_id, std::string_view secret,
                 std::string_view region, std::string_view service,
                 std::chrono::system_clock::time_point now, std::string_view payload_hash = {});

// SignRequest for one identity (access key, secret, region, service), with the signing key derived
// once per date instead of per request: the four HMACs the AWS SDKs cache too. Thread-safe.
class RequestSigner {
 public:
  RequestSigner(std::string access_key_id, std::string secret, std::string region,
                std::string service);
  // What SignRequest(request, <this identity>, now, payload_hash) does.
  void Sign(Request& request, std::chrono::system_clock::time_point now,
            std::string_view payload_hash = {}) const;

 private:
  const std::string access_key_id_, secret_, region_, service_;
  mutable std::mutex mu_;
  mutable std::string date_, key_;  // guarded by mu_: the newest date's signing key
};

}  // namespace inferd::http::sigv4
