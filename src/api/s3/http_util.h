// HTTP details of S3's REST interface, as pure functions: path-style bucket/key decoding, the
// x-amz-copy-source header, Range headers, HTTP dates, ETags and conditional requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"
#include "store/object_store.h"

namespace inferd::api::s3 {

// "/bucket/key..." (still percent-encoded, as sent) → bucket and key, each percent-decoded once.
// The key is everything after the first '/' following the bucket, verbatim: "a//b", "../x", "%"
// (sent as %25) and spaces are kept. "/" → both empty; "/b" and "/b/" → key empty.
// kValidation "InvalidURI" on a malformed escape.
struct S3Path {
  std::string bucket;
  std::string key;
};
Result<S3Path> ParsePath(std::string_view raw_path);

// x-amz-copy-source: "[/]bucket/key[?versionId=…]", URL-encoded. kValidation "InvalidArgument".
Result<S3Path> ParseCopySource(std::string_view header);

// A Range header as S3 reads it: "bytes=a-b", "bytes=a-", "bytes=-n". nullopt when the header is
// absent or not a single syntactically valid byte range (S3 then ignores it and answers 200 with
// the whole object); satisfiability is checked by the store (InvalidRange).
std::optional<store::RangeSpec> ParseRange(std::string_view header);

// RFC 1123 ("Sun, 06 Nov 1994 08:49:37 GMT"); also RFC 850 and asctime forms on input.
std::string FormatHttpDate(double epoch_seconds);
std::optional<int64_t> ParseHttpDate(std::string_view text);  // epoch seconds
// ISO 8601 with milliseconds, as S3's XML carries times: "2009-10-12T17:50:30.000Z".
std::string FormatIsoDate(double epoch_seconds);

// `"<etag>"` as S3 sends ETags.
std::string QuotedEtag(std::string_view etag);
// Whether an If-Match / If-None-Match list ("*", "\"a\", \"b\"", W/ prefixes) names `etag`.
bool EtagListMatches(std::string_view list, std::string_view etag);

// Conditional request headers: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
// or their x-amz-copy-source-if-* forms. Unparsable dates are ignored, as S3 does.
struct Conditions {
  std::optional<std::string> if_match;
  std::optional<std::string> if_none_match;
  std::optional<int64_t> if_modified_since;
  std::optional<int64_t> if_unmodified_since;

  static Conditions FromHeaders(const http::Headers& headers, bool copy_source = false);
  bool empty() const {
    return !if_match && !if_none_match && !if_modified_since && !if_unmodified_since;
  }
};

enum class ConditionOutcome { kProceed, kNotModified, kPreconditionFailed };

// RFC 9110 §13.2.2 precedence, which S3 follows: If-Match (else If-Unmodified-Since) failing →
// 412; then If-None-Match (else If-Modified-Since) failing → 304. Dates compare at one-second
// resolution.
ConditionOutcome Evaluate(const Conditions& conditions, const store::ObjectInfo& info);

}  // namespace inferd::api::s3
