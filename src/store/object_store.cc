#include "store/object_store.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "http/uri.h"

namespace inferd::store {
namespace {

Error NotAnS3Uri(const std::string& uri, std::string_view why) {
  return Error(Errc::kValidation, "\"" + uri + "\" is not a valid S3 URI (" + std::string(why) +
                                      "): use s3://bucket/key or https://host/bucket/key.");
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// The bucket of a virtual-hosted-style AWS host ("bucket.s3.amazonaws.com",
// "bucket.s3.<region>.amazonaws.com", "bucket.s3-<region>.amazonaws.com"), or "" when the host
// is not one (path-style: the bucket is the first path segment).
std::string VirtualHostBucket(std::string host) {
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  constexpr std::string_view kSuffix = ".amazonaws.com";
  if (host.size() <= kSuffix.size() ||
      host.compare(host.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return "";
  }
  size_t dot = host.rfind(".s3.");
  size_t dash = host.rfind(".s3-");
  size_t pos = dot == std::string::npos    ? dash
               : dash == std::string::npos ? dot
                                           : std::max(dot, dash);
  if (pos == std::string::npos || pos == 0) return "";
  return host.substr(0, pos);
}

}  // namespace

Result<S3Location> ParseS3Uri(const std::string& uri) {
  std::string_view rest = uri;
  S3Location loc;
  if (StartsWithIgnoreCase(rest, "s3://")) {
    // The key is taken verbatim: s3:// URIs are not percent-encoded (as the AWS CLI treats them).
    rest.remove_prefix(5);
    size_t slash = rest.find('/');
    loc.bucket = std::string(rest.substr(0, slash));
    if (slash != std::string_view::npos) loc.key = std::string(rest.substr(slash + 1));
    if (loc.bucket.empty()) return NotAnS3Uri(uri, "no bucket");
    return loc;
  }
  if (StartsWithIgnoreCase(rest, "https://")) {
    rest.remove_prefix(8);
  } else if (StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    return NotAnS3Uri(uri, "unknown scheme");
  }
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (authority.find('@') != std::string_view::npos) return NotAnS3Uri(uri, "credentials in URL");
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);  // IPv6 literal
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) return NotAnS3Uri(uri, "no host");

  std::string_view key_part = path;
  loc.bucket = VirtualHostBucket(std::string(host));
  if (loc.bucket.empty()) {
    size_t sep = path.find('/');
    auto bucket = http::PercentDecode(path.substr(0, sep));
    if (!bucket) return NotAnS3Uri(uri, "malformed percent-encoding");
    loc.bucket = std::move(*bucket);
    key_part = sep == std::string_view::npos ? "" : path.substr(sep + 1);
  }
  if (loc.bucket.empty()) return NotAnS3Uri(uri, "no bucket");
  auto key = http::PercentDecode(key_part);
  if (!key) return NotAnS3Uri(uri, "malformed percent-encoding");
  loc.key = std::move(*key);
  return loc;
}

}  // namespace inferd::store
