#include "store/object_store.h"

#include <gtest/gtest.h>

namespace inferd::store {
namespace {

void ExpectLocation(const std::string& uri, const std::string& bucket, const std::string& key) {
  auto loc = ParseS3Uri(uri);
  ASSERT_TRUE(loc.ok()) << uri << ": " << loc.error().message;
  EXPECT_EQ(loc->bucket, bucket) << uri;
  EXPECT_EQ(loc->key, key) << uri;
}

TEST(ParseS3UriTest, S3Scheme) {
  ExpectLocation("s3://bucket/key/with/slashes", "bucket", "key/with/slashes");
  ExpectLocation("s3://bucket/prefix/", "bucket", "prefix/");
  ExpectLocation("s3://bucket", "bucket", "");
  ExpectLocation("s3://bucket/", "bucket", "");
  ExpectLocation("S3://bucket/k", "bucket", "k");
  // s3:// URIs are not percent-encoded: keys are taken verbatim.
  ExpectLocation("s3://bucket/a%20b c?d#e", "bucket", "a%20b c?d#e");
  ExpectLocation("s3://bucket//double", "bucket", "/double");
}

TEST(ParseS3UriTest, PathStyle) {
  ExpectLocation("https://localhost:8080/bucket/key/x.json", "bucket", "key/x.json");
  ExpectLocation("http://127.0.0.1:9000/bucket/a%20b%2Fc", "bucket", "a b/c");
  ExpectLocation("https://s3.amazonaws.com/bucket/key", "bucket", "key");
  ExpectLocation("https://s3.us-west-2.amazonaws.com/bucket/key?versionId=1", "bucket", "key");
  ExpectLocation("https://s3-us-west-2.amazonaws.com/bucket/key", "bucket", "key");
  ExpectLocation("http://[::1]:8080/bucket/k", "bucket", "k");
  ExpectLocation("https://example.com/bucket", "bucket", "");
}

TEST(ParseS3UriTest, VirtualHostStyle) {
  ExpectLocation("https://bucket.s3.amazonaws.com/key/x", "bucket", "key/x");
  ExpectLocation("https://my.bucket.s3.us-east-1.amazonaws.com/k%2B1", "my.bucket", "k+1");
  ExpectLocation("https://bucket.s3-eu-west-1.amazonaws.com/k", "bucket", "k");
  ExpectLocation("https://bucket.s3.dualstack.us-east-1.amazonaws.com/k", "bucket", "k");
  ExpectLocation("https://Bucket.S3.Amazonaws.com:443/k", "bucket", "k");
}

TEST(ParseS3UriTest, Errors) {
  for (const char* bad :
       {"", "bucket/key", "ftp://host/b/k", "s3://", "s3:///key", "https://host", "https://host/",
        "https:///b/k", "https://host/b/%zz", "https://user@host/b/k"}) {
    auto r = ParseS3Uri(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kValidation) << bad;
  }
}

}  // namespace
}  // namespace inferd::store
