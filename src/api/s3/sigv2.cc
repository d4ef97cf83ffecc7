#include "api/s3/sigv2.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/strings.h"
#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

// Query parameters that are part of the signed resource (botocore's HmacV1Auth.QSAOfInterest).
constexpr std::array<std::string_view, 37> kSignedSubresources{
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "legal-hold",
    "retention",
};

bool IsSignedSubresource(std::string_view name) {
  return std::find(kSignedSubresources.begin(), kSignedSubresources.end(), name) !=
         kSignedSubresources.end();
}

// The raw (still encoded) query split into name and decoded value, for the signed subresources.
std::vector<std::pair<std::string, std::string>> SignedSubresources(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [name, value] : http::ParseQuery(query)) {
    if (IsSignedSubresource(name)) out.emplace_back(name, value);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

Error BadSignature() {
  return Error(Errc::kBadSignature,
               "The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method.",
               "SignatureDoesNotMatch");
}

}  // namespace

bool HasSigV2QueryAuth(const http::Request& request) {
  for (const auto& [name, value] : http::ParseQuery(request.query)) {
    if (name == "AWSAccessKeyId") return true;
  }
  return false;
}

std::string SigV2StringToSign(const http::Request& request, std::string_view expires) {
  std::string sts = request.method + "\n";
  sts += std::string(TrimSpaces(request.headers.Get("content-md5").value_or(""))) + "\n";
  sts += std::string(TrimSpaces(request.headers.Get("content-type").value_or(""))) + "\n";
  sts += std::string(expires) + "\n";
  std::map<std::string, std::string> amz;  // sorted by lower-cased name; values joined by ','
  for (const http::Header& h : request.headers.all()) {
    std::string name = AsciiLower(h.name);
    if (name.compare(0, 6, "x-amz-") != 0) continue;
    std::string& v = amz[name];
    if (!v.empty()) v += ",";
    v += std::string(TrimSpaces(h.value));
  }
  for (const auto& [name, value] : amz) sts += name + ":" + value + "\n";
  sts += request.path.empty() ? "/" : request.path;
  auto subresources = SignedSubresources(request.query);
  for (size_t i = 0; i < subresources.size(); ++i) {
    sts += i == 0 ? "?" : "&";
    sts += subresources[i].first;
    if (!subresources[i].second.empty()) sts += "=" + subresources[i].second;
  }
  return sts;
}

std::string SigV2Signature(std::string_view secret, std::string_view string_to_sign) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(), md,
       &len);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

Result<http::sigv4::Identity> VerifySigV2Query(const http::Request& request,
                                               const SecretLookup& secrets,
                                               std::chrono::system_clock::time_point now,
                                               const std::string& region) {
  auto params = http::ParseQuery(request.query);
  auto akid = http::FindParam(params, "AWSAccessKeyId");
  auto signature = http::FindParam(params, "Signature");
  auto expires = http::FindParam(params, "Expires");
  if (!akid || !signature || !expires || akid->empty()) {
    return Error(Errc::kValidation,
                 "Query-string authentication requires the Signature, Expires and "
                 "AWSAccessKeyId parameters",
                 "AccessDenied");
  }
  if (request.headers.Has("authorization")) {
    return Error(Errc::kValidation,
                 "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                 "Signature query string parameter or the Authorization header should be "
                 "specified",
                 "InvalidArgument");
  }
  int64_t expiry = 0;
  auto [ptr, ec] = std::from_chars(expires->data(), expires->data() + expires->size(), expiry);
  if (expires->empty() || ec != std::errc() || ptr != expires->data() + expires->size()) {
    return Error(Errc::kAccessDenied,
                 "Invalid date (should be seconds since epoch): " + std::string(*expires));
  }
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (now_s > expiry) return Error(Errc::kAccessDenied, "Request has expired");
  if (secrets) {
    auto secret = secrets(*akid);
    if (!secret) {
      return Error(Errc::kUnknownAccessKey,
                   "The AWS Access Key Id you provided does not exist in our records.",
                   "InvalidAccessKeyId");
    }
    std::string expected = SigV2Signature(*secret, SigV2StringToSign(request, *expires));
    if (expected.size() != signature->size() ||
        CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) != 0) {
      return BadSignature();
    }
  }
  return http::sigv4::Identity{std::string(*akid), region, "s3", /*presigned=*/true};
}

}  // namespace inferd::api::s3
