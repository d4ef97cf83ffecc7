#include "api/s3/http_util.h"

#include <gtest/gtest.h>

namespace inferd::api::s3 {
namespace {

TEST(ParsePath, BucketAndKeyAreDecodedOnce) {
  auto p = ParsePath("/my-bucket/dir/a%20b%25c%2Bd+e");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->bucket, "my-bucket");
  EXPECT_EQ(p->key, "dir/a b%c+d+e");
}

TEST(ParsePath, KeysAreVerbatim) {
  EXPECT_EQ(ParsePath("/b/../x")->key, "../x");
  EXPECT_EQ(ParsePath("/b/a//b/")->key, "a//b/");
  EXPECT_EQ(ParsePath("/b/./")->key, "./");
  EXPECT_EQ(ParsePath("/b/%E2%9C%93%20%C3%A9")->key, "\xE2\x9C\x93 \xC3\xA9");
  EXPECT_EQ(ParsePath("/b//leading")->key, "/leading");
}

TEST(ParsePath, ServiceAndBucketLevel) {
  auto root = ParsePath("/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->bucket, "");
  EXPECT_EQ(root->key, "");
  EXPECT_EQ(ParsePath("/b")->bucket, "b");
  EXPECT_EQ(ParsePath("/b")->key, "");
  EXPECT_EQ(ParsePath("/b/")->key, "");
}

TEST(ParsePath, MalformedEscape) {
  auto p = ParsePath("/b/a%zz");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().aws_code, "InvalidURI");
}

TEST(ParseCopySource, Forms) {
  auto a = ParseCopySource("/src/dir/a%20b.txt");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->bucket, "src");
  EXPECT_EQ(a->key, "dir/a b.txt");
  auto b = ParseCopySource("src/k%3Fq?versionId=null");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->key, "k?q");
  EXPECT_FALSE(ParseCopySource("/only-bucket").ok());
  EXPECT_FALSE(ParseCopySource("/b/").ok());
  EXPECT_FALSE(ParseCopySource("").ok());
}

TEST(ParseRange, ValidForms) {
  auto r = ParseRange("bytes=0-9");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->last, 9u);
  r = ParseRange("bytes=5-");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 5u);
  EXPECT_FALSE(r->last);
  r = ParseRange("bytes=-3");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->first);
  EXPECT_EQ(r->last, 3u);
  r = ParseRange(" Bytes=1-2 ");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 1u);
  // Syntactically valid but unsatisfiable ones are the store's to reject (416).
  EXPECT_TRUE(ParseRange("bytes=100-200"));
  EXPECT_TRUE(ParseRange("bytes=-0"));
}

TEST(ParseRange, InvalidOnesAreIgnored) {
  for (const char* h : {"bytes=5-2", "bytes=a-b", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,3-4",
                        "bytes 0-1", "bytes=1", "bytes=--1"}) {
    EXPECT_FALSE(ParseRange(h)) << h;
  }
}

TEST(HttpDates, FormatAndParse) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(784111777.9), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(ParseHttpDate("2024-01-01"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 CET"), std::nullopt);
  EXPECT_EQ(FormatIsoDate(784111777.25), "1994-11-06T08:49:37.250Z");
  EXPECT_EQ(FormatIsoDate(0), "1970-01-01T00:00:00.000Z");
}

TEST(Etags, Matching) {
  EXPECT_EQ(QuotedEtag("abc"), "\"abc\"");
  EXPECT_TRUE(EtagListMatches("\"abc\"", "abc"));
  EXPECT_TRUE(EtagListMatches("abc", "abc"));
  EXPECT_TRUE(EtagListMatches("\"x\", W/\"abc\"", "abc"));
  EXPECT_TRUE(EtagListMatches("*", "abc"));
  EXPECT_FALSE(EtagListMatches("\"abd\"", "abc"));
  EXPECT_FALSE(EtagListMatches("", "abc"));
}

store::ObjectInfo Info(std::string etag, double modified) {
  store::ObjectInfo info;
  info.etag = std::move(etag);
  info.last_modified = modified;
  return info;
}

// Conditions with the given headers set (nullptr / -1: absent).
Conditions Make(const char* if_match, const char* if_none_match, int64_t if_modified_since = -1,
                int64_t if_unmodified_since = -1) {
  Conditions c;
  if (if_match) c.if_match = if_match;
  if (if_none_match) c.if_none_match = if_none_match;
  if (if_modified_since >= 0) c.if_modified_since = if_modified_since;
  if (if_unmodified_since >= 0) c.if_unmodified_since = if_unmodified_since;
  return c;
}

TEST(Conditions, Precedence) {
  const auto info = Info("e1", 1000.7);  // compared as second 1000
  using O = ConditionOutcome;
  auto eval = [&](Conditions c) { return Evaluate(c, info); };
  EXPECT_EQ(eval({}), O::kProceed);
  EXPECT_EQ(eval(Make("\"e1\"", nullptr)), O::kProceed);
  EXPECT_EQ(eval(Make("\"e2\"", nullptr)), O::kPreconditionFailed);
  EXPECT_EQ(eval(Make(nullptr, nullptr, -1, 999)), O::kPreconditionFailed);
  EXPECT_EQ(eval(Make(nullptr, nullptr, -1, 1000)), O::kProceed);
  // If-Match true wins over a failing If-Unmodified-Since (S3 answers 200).
  EXPECT_EQ(eval(Make("e1", nullptr, -1, 999)), O::kProceed);
  EXPECT_EQ(eval(Make(nullptr, "\"e1\"")), O::kNotModified);
  EXPECT_EQ(eval(Make(nullptr, "\"e2\"")), O::kProceed);
  EXPECT_EQ(eval(Make(nullptr, nullptr, 1000)), O::kNotModified);
  EXPECT_EQ(eval(Make(nullptr, nullptr, 999)), O::kProceed);
  // If-None-Match false (matches) with If-Modified-Since true: 304, as S3 documents.
  EXPECT_EQ(eval(Make(nullptr, "e1", 999)), O::kNotModified);
  // If-None-Match true makes If-Modified-Since irrelevant.
  EXPECT_EQ(eval(Make(nullptr, "e2", 2000)), O::kProceed);
  // 412 is decided before 304.
  EXPECT_EQ(eval(Make("e2", "e1")), O::kPreconditionFailed);
}

TEST(Conditions, FromHeaders) {
  http::Headers h;
  h.Add("If-Match", "\"a\"");
  h.Add("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT");
  h.Add("If-Unmodified-Since", "garbage");
  h.Add("x-amz-copy-source-if-none-match", "\"b\"");
  Conditions c = Conditions::FromHeaders(h);
  EXPECT_EQ(c.if_match, "\"a\"");
  EXPECT_EQ(c.if_modified_since, 784111777);
  EXPECT_FALSE(c.if_unmodified_since);
  EXPECT_FALSE(c.if_none_match);
  Conditions copy = Conditions::FromHeaders(h, /*copy_source=*/true);
  EXPECT_EQ(copy.if_none_match, "\"b\"");
  EXPECT_FALSE(copy.if_match);
}

}  // namespace
}  // namespace inferd::api::s3
