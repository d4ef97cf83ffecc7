// Handler-level tests of S3Api: every operation and error code, driven through Handle() with a
// real FilesystemStore (see s3_test_util.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "api/s3/checksums.h"
#include "api/s3/s3_test_util.h"
#include "api/s3/sigv2.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/strings.h"
#include "http/sigv4.h"
#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

using testing::HeaderList;
using testing::ParseXml;
using testing::Reply;

class S3ApiTest : public testing::S3ApiFixture {};

std::string Md5Hex(std::string_view s) { return HexEncode(Digest(DigestAlgorithm::kMd5, s)); }

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xFF);
  return s;
}

// ---- buckets ----

TEST_F(S3ApiTest, BucketLifecycle) {
  Reply list = Send("GET", "/");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.operation, "S3.ListBuckets");
  EXPECT_EQ(list.Header("x-amz-request-id"), "req-1");
  EXPECT_EQ(ParseXml(list.body).child("ListAllMyBucketsResult").child("Buckets").first_child(),
            pugi::xml_node());

  Reply created = Send("PUT", "/photos");
  EXPECT_EQ(created.status, 200);
  EXPECT_EQ(created.body, "");
  EXPECT_EQ(created.Header("Location"), "/photos");
  Reply again = Send("PUT", "/photos");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.ErrorCode(), "BucketAlreadyOwnedByYou");

  EXPECT_EQ(Send("HEAD", "/photos").status, 200);
  Reply missing = Send("HEAD", "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.ErrorCode(), "NoSuchBucket");

  list = Send("GET", "/");
  auto doc = ParseXml(list.body);
  auto root = doc.child("ListAllMyBucketsResult");
  EXPECT_STREQ(root.child("Owner").child_value("DisplayName"), "inferd");
  EXPECT_STREQ(root.child("Buckets").child("Bucket").child_value("Name"), "photos");
  EXPECT_NE(
      std::string(root.child("Buckets").child("Bucket").child_value("CreationDate")).find('Z'),
      std::string::npos);

  Put("photos", "a.jpg", "x");
  Reply not_empty = Send("DELETE", "/photos");
  EXPECT_EQ(not_empty.status, 409);
  EXPECT_EQ(not_empty.ErrorCode(), "BucketNotEmpty");
  EXPECT_EQ(Send("DELETE", "/photos/a.jpg").status, 204);
  Reply deleted = Send("DELETE", "/photos");
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(deleted.operation, "S3.DeleteBucket");
  EXPECT_EQ(Send("DELETE", "/photos").ErrorCode(), "NoSuchBucket");
}

TEST_F(S3ApiTest, BucketNames) {
  Reply bad = Send("PUT", "/Bad_Name");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.ErrorCode(), "InvalidBucketName");
  Reply reserved = Send("PUT", "/inferd");
  EXPECT_EQ(reserved.status, 400);
  EXPECT_EQ(reserved.ErrorCode(), "InvalidBucketName");
  EXPECT_NE(reserved.ErrorMessage().find("reserved"), std::string::npos);
}

TEST_F(S3ApiTest, CreateBucketConfiguration) {
  Reply r = Send("PUT", "/eu-bucket", {},
                 "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                 "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>");
  EXPECT_EQ(r.status, 200);
  Reply malformed = Send("PUT", "/other-bucket", {}, "<CreateBucketConfiguration>");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.ErrorCode(), "MalformedXML");
}

TEST_F(S3ApiTest, GetBucketLocationAndVersioning) {
  CreateBucket("loc");
  Reply us = Send("GET", "/loc?location");
  ASSERT_EQ(us.status, 200);
  EXPECT_STREQ(ParseXml(us.body).child_value("LocationConstraint"), "");
  Reply eu = Send("GET", "/loc?location", {}, "", 1000, {"AKID", "eu-west-1", "s3", false});
  EXPECT_STREQ(ParseXml(eu.body).child_value("LocationConstraint"), "eu-west-1");
  EXPECT_EQ(Send("GET", "/nope?location").ErrorCode(), "NoSuchBucket");
  Reply versioning = Send("GET", "/loc?versioning");
  EXPECT_EQ(versioning.status, 200);
  EXPECT_TRUE(ParseXml(versioning.body).child("VersioningConfiguration"));
  EXPECT_EQ(Send("HEAD", "/loc").Header("x-amz-bucket-region"), "us-east-1");
}

TEST_F(S3ApiTest, UnsupportedSubresourcesAre501) {
  CreateBucket("bkt");
  for (const char* target :
       {"/bkt?tagging", "/bkt?acl", "/bkt/k?tagging", "/bkt?policy", "/bkt?cors"}) {
    Reply r = Send("GET", target);
    EXPECT_EQ(r.status, 501) << target;
    EXPECT_EQ(r.ErrorCode(), "NotImplemented") << target;
  }
  EXPECT_EQ(Send("PUT", "/bkt?versioning", {}, "<VersioningConfiguration/>").status, 501);
  EXPECT_EQ(Send("POST", "/bkt").status, 501);
  EXPECT_EQ(Send("PATCH", "/bkt/k").status, 501);
  Reply version = Send("GET", "/bkt/k?versionId=3HL4kqtJlcpXroDTDmJ");
  EXPECT_EQ(version.status, 400);
  EXPECT_EQ(version.ErrorCode(), "InvalidArgument");
}

// ---- objects ----

TEST_F(S3ApiTest, PutGetHeadDeleteWithMetadata) {
  CreateBucket("bkt");
  const std::string data = "hello, world";
  Reply put = Send("PUT", "/bkt/dir/hello.txt",
                   {{"Content-Type", "text/plain"},
                    {"x-amz-meta-Color", "blue"},
                    {"Cache-Control", "max-age=60"},
                    {"Content-Disposition", "attachment"},
                    {"Content-Language", "en"},
                    {"Expires", "Thu, 01 Dec 2094 16:00:00 GMT"},
                    {"Content-Encoding", "identity"}},
                   data);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.body, "");
  EXPECT_EQ(put.operation, "S3.PutObject");
  EXPECT_EQ(put.Header("ETag"), "\"" + Md5Hex(data) + "\"");

  Reply get = Send("GET", "/bkt/dir/hello.txt");
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, data);
  EXPECT_TRUE(get.streamed);
  EXPECT_EQ(get.Header("Content-Length"), std::to_string(data.size()));
  EXPECT_EQ(get.Header("Content-Type"), "text/plain");
  EXPECT_EQ(get.Header("ETag"), put.Header("ETag"));
  EXPECT_EQ(get.Header("Accept-Ranges"), "bytes");
  EXPECT_EQ(get.Header("x-amz-meta-color"), "blue");
  EXPECT_EQ(get.Header("Cache-Control"), "max-age=60");
  EXPECT_EQ(get.Header("Content-Disposition"), "attachment");
  EXPECT_EQ(get.Header("Content-Language"), "en");
  EXPECT_EQ(get.Header("Expires"), "Thu, 01 Dec 2094 16:00:00 GMT");
  EXPECT_EQ(get.Header("Content-Encoding"), "identity");
  EXPECT_NE(get.Header("Last-Modified").find(" GMT"), std::string::npos);

  Reply head = Send("HEAD", "/bkt/dir/hello.txt");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_FALSE(head.streamed);
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(data.size()));
  EXPECT_EQ(head.Header("x-amz-meta-color"), "blue");

  Reply overridden = Send("GET",
                          "/bkt/dir/hello.txt?response-content-type=application%2Fjson&"
                          "response-content-disposition=inline");
  EXPECT_EQ(overridden.Header("Content-Type"), "application/json");
  EXPECT_EQ(overridden.Header("Content-Disposition"), "inline");

  EXPECT_EQ(Send("DELETE", "/bkt/dir/hello.txt").status, 204);
  Reply gone = Send("GET", "/bkt/dir/hello.txt");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.ErrorCode(), "NoSuchKey");
  EXPECT_EQ(Send("DELETE", "/bkt/dir/hello.txt").status, 204);  // deleting nothing is fine
  EXPECT_EQ(Send("GET", "/nope/k").ErrorCode(), "NoSuchBucket");
  EXPECT_EQ(Send("PUT", "/nope/k", {}, "x").ErrorCode(), "NoSuchBucket");
}

TEST_F(S3ApiTest, DefaultsAndEmptyObjects) {
  CreateBucket("bkt");
  Put("bkt", "empty", "");
  Reply get = Send("GET", "/bkt/empty");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "");
  EXPECT_EQ(get.Header("Content-Type"), "binary/octet-stream");
  EXPECT_EQ(get.Header("ETag"), "\"d41d8cd98f00b204e9800998ecf8427e\"");
}

TEST_F(S3ApiTest, LargeBodiesStreamBothWays) {
  CreateBucket("bkt");
  const std::string data = Pattern(3 * 1024 * 1024 + 17);
  Reply put = Send("PUT", "/bkt/big", {}, data, 65536 + 3);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Header("ETag"), "\"" + Md5Hex(data) + "\"");
  Reply get = Send("GET", "/bkt/big");
  ASSERT_EQ(get.status, 200);
  EXPECT_TRUE(get.streamed);
  EXPECT_EQ(get.body.size(), data.size());
  EXPECT_TRUE(get.body == data);
}

TEST_F(S3ApiTest, KeysWithSpecialCharacters) {
  CreateBucket("bkt");
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"../escape", "../escape"},
      {"a%20b%25c", "a b%c"},
      {"%E2%9C%93/%C3%A9t%C3%A9", "\xE2\x9C\x93/\xC3\xA9t\xC3\xA9"},
      {"a//b", "a//b"},
      {"plus+sign", "plus+sign"},
      {"q%3Fmark%26amp", "q?mark&amp"},
  };
  for (const auto& [encoded, key] : keys) {
    Put("bkt", encoded, "v:" + key);
    Reply get = Send("GET", "/bkt/" + encoded);
    EXPECT_EQ(get.body, "v:" + key) << key;
  }
  Reply list = Send("GET", "/bkt?list-type=2");
  auto doc = ParseXml(list.body);
  std::vector<std::string> listed;
  for (auto c : doc.child("ListBucketResult").children("Contents")) {
    listed.push_back(c.child_value("Key"));
  }
  std::vector<std::string> expected;
  for (const auto& kv : keys) expected.push_back(kv.second);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(Send("GET", "/bkt/bad%zzescape").ErrorCode(), "InvalidURI");
}

TEST_F(S3ApiTest, Ranges) {
  CreateBucket("bkt");
  Put("bkt", "k", "0123456789");
  Reply r = Send("GET", "/bkt/k", {{"Range", "bytes=2-5"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "2345");
  EXPECT_EQ(r.Header("Content-Range"), "bytes 2-5/10");
  EXPECT_EQ(r.Header("Content-Length"), "4");
  r = Send("GET", "/bkt/k", {{"Range", "bytes=7-"}});
  EXPECT_EQ(r.body, "789");
  EXPECT_EQ(r.Header("Content-Range"), "bytes 7-9/10");
  r = Send("GET", "/bkt/k", {{"Range", "bytes=-3"}});
  EXPECT_EQ(r.body, "789");
  r = Send("GET", "/bkt/k", {{"Range", "bytes=8-100"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "89");
  r = Send("GET", "/bkt/k", {{"Range", "bytes=5-2"}});  // invalid: ignored
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0123456789");
  r = Send("GET", "/bkt/k", {{"Range", "bytes=10-"}});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.ErrorCode(), "InvalidRange");
  EXPECT_EQ(r.Header("Content-Range"), "bytes */10");
  r = Send("HEAD", "/bkt/k", {{"Range", "bytes=0-0"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.Header("Content-Length"), "1");
}

TEST_F(S3ApiTest, ConditionalReads) {
  CreateBucket("bkt");
  Put("bkt", "k", "data");
  const std::string etag = "\"" + Md5Hex("data") + "\"";
  Reply r = Send("GET", "/bkt/k", {{"If-None-Match", etag}});
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("ETag"), etag);
  EXPECT_EQ(Send("HEAD", "/bkt/k", {{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(Send("GET", "/bkt/k", {{"If-None-Match", "\"other\""}}).status, 200);
  r = Send("GET", "/bkt/k", {{"If-Match", "\"other\""}});
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(r.ErrorCode(), "PreconditionFailed");
  EXPECT_EQ(Send("GET", "/bkt/k", {{"If-Match", etag}}).status, 200);
  EXPECT_EQ(Send("GET", "/bkt/k", {{"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"}}).status,
            304);
  EXPECT_EQ(Send("GET", "/bkt/k", {{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}}).status,
            200);
  EXPECT_EQ(
      Send("GET", "/bkt/k", {{"If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}}).status,
      412);
  // If-Match true overrides a failing If-Unmodified-Since.
  EXPECT_EQ(Send("GET", "/bkt/k",
                 {{"If-Match", etag}, {"If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}})
                .status,
            200);
  // Preconditions are evaluated before an unsatisfiable range.
  EXPECT_EQ(Send("GET", "/bkt/k", {{"If-Match", "\"x\""}, {"Range", "bytes=100-"}}).status, 412);
}

TEST_F(S3ApiTest, ConditionalWrites) {
  CreateBucket("bkt");
  EXPECT_EQ(Send("PUT", "/bkt/k", {{"If-None-Match", "*"}}, "one").status, 200);
  Reply again = Send("PUT", "/bkt/k", {{"If-None-Match", "*"}}, "two");
  EXPECT_EQ(again.status, 412);
  EXPECT_EQ(Send("GET", "/bkt/k").body, "one");
  EXPECT_EQ(Send("PUT", "/bkt/k", {{"If-Match", "\"nope\""}}, "two").status, 412);
  EXPECT_EQ(Send("PUT", "/bkt/k", {{"If-Match", "\"" + Md5Hex("one") + "\""}}, "two").status, 200);
  EXPECT_EQ(Send("GET", "/bkt/k").body, "two");
}

TEST_F(S3ApiTest, ContentMd5AndChecksumsAreVerified) {
  CreateBucket("bkt");
  const std::string data = "checked data";
  const std::string md5 = Base64Encode(Digest(DigestAlgorithm::kMd5, data));
  EXPECT_EQ(Send("PUT", "/bkt/md5", {{"Content-MD5", md5}}, data).status, 200);

  Reply bad_md5 = Send("PUT", "/bkt/bad",
                       {{"Content-MD5", Base64Encode(Digest(DigestAlgorithm::kMd5, "x"))}}, data);
  EXPECT_EQ(bad_md5.status, 400);
  EXPECT_EQ(bad_md5.ErrorCode(), "BadDigest");
  EXPECT_EQ(Send("GET", "/bkt/bad").status, 404);  // nothing stored

  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32, data);
  Reply put =
      Send("PUT", "/bkt/crc",
           {{"x-amz-checksum-crc32", crc}, {"x-amz-sdk-checksum-algorithm", "CRC32"}}, data);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Header("x-amz-checksum-crc32"), crc);
  Reply with_mode = Send("GET", "/bkt/crc", {{"x-amz-checksum-mode", "ENABLED"}});
  EXPECT_EQ(with_mode.Header("x-amz-checksum-crc32"), crc);
  EXPECT_EQ(Send("GET", "/bkt/crc").Header("x-amz-checksum-crc32"), "");
  EXPECT_EQ(Send("GET", "/bkt/crc", {{"x-amz-checksum-mode", "ENABLED"}, {"Range", "bytes=0-1"}})
                .Header("x-amz-checksum-crc32"),
            "");

  Reply bad_crc =
      Send("PUT", "/bkt/crc2",
           {{"x-amz-checksum-crc32", ChecksumBase64(ChecksumAlgorithm::kCrc32, "x")}}, data);
  EXPECT_EQ(bad_crc.status, 400);
  EXPECT_EQ(bad_crc.ErrorCode(), "BadDigest");
  EXPECT_EQ(bad_crc.ErrorMessage(),
            "The CRC32 you specified did not match the calculated checksum.");
  EXPECT_EQ(Send("GET", "/bkt/crc2").status, 404);

  Reply bad_sha =
      Send("PUT", "/bkt/sha", {{"x-amz-content-sha256", http::sigv4::Sha256Hex("x")}}, data);
  EXPECT_EQ(bad_sha.status, 400);
  EXPECT_EQ(bad_sha.ErrorCode(), "XAmzContentSHA256Mismatch");
  EXPECT_EQ(Send("PUT", "/bkt/sha", {{"x-amz-content-sha256", http::sigv4::Sha256Hex(data)}}, data)
                .status,
            200);
}

TEST_F(S3ApiTest, AwsChunkedUploadWithTrailerStoresDecodedBytes) {
  CreateBucket("bkt");
  const std::string data = Pattern(200000);
  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32, data);
  std::string body;
  for (size_t i = 0; i < data.size(); i += 65536) {
    std::string chunk = data.substr(i, 65536);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", chunk.size());
    body += std::string(hex) + "\r\n" + chunk + "\r\n";
  }
  body += "0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n";
  HeaderList headers = {{"Content-Encoding", "aws-chunked"},
                        {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
                        {"x-amz-decoded-content-length", std::to_string(data.size())},
                        {"x-amz-trailer", "x-amz-checksum-crc32"},
                        {"x-amz-sdk-checksum-algorithm", "CRC32"},
                        {"Content-Type", "application/octet-stream"}};
  Reply put = Send("PUT", "/bkt/chunked", headers, body, 777);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Header("x-amz-checksum-crc32"), crc);
  Reply get = Send("GET", "/bkt/chunked", {{"x-amz-checksum-mode", "ENABLED"}});
  EXPECT_TRUE(get.body == data);
  EXPECT_EQ(get.Header("x-amz-checksum-crc32"), crc);  // stored although it came in a trailer
  EXPECT_EQ(get.Header("Content-Encoding"), "");       // aws-chunked is not the object's

  std::string bad = body;
  bad.replace(bad.find(crc), crc.size(), ChecksumBase64(ChecksumAlgorithm::kCrc32, "x"));
  Reply rejected = Send("PUT", "/bkt/chunked2", headers, bad, 777);
  EXPECT_EQ(rejected.status, 400);
  EXPECT_EQ(rejected.ErrorCode(), "BadDigest");
  EXPECT_EQ(Send("GET", "/bkt/chunked2").status, 404);
}

TEST_F(S3ApiTest, SignedChunksAreVerifiedWhenTheSecretIsKnown) {
  S3ApiOptions options;
  options.secret_lookup = [](std::string_view akid) -> std::optional<std::string> {
    if (akid == "AKIAIOSFODNN7EXAMPLE") return "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    return std::nullopt;
  };
  MakeApi(options);
  CreateBucket("examplebucket");
  // AWS's published example (sigv4-streaming).
  auto body = [](char corrupt) {
    std::string c2(1024, 'a');
    if (corrupt) c2[10] = corrupt;
    return std::string(
               "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a6"
               "5485a288648\r\n") +
           std::string(65536, 'a') +
           "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef"
           "5497\r\n" +
           c2 +
           "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449d"
           "f9\r\n\r\n";
  };
  HeaderList headers = {
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
       "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
       "x-amz-decoded-content-length;x-amz-storage-class,"
       "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"},
      {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
      {"Content-Encoding", "aws-chunked"},
      {"x-amz-decoded-content-length", "66560"}};
  Reply ok = Send("PUT", "/examplebucket/chunkObject.txt", headers, body(0), 5000);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Send("GET", "/examplebucket/chunkObject.txt").body, std::string(66560, 'a'));

  Reply bad = Send("PUT", "/examplebucket/other.txt", headers, body('b'), 5000);
  EXPECT_EQ(bad.status, 403);
  EXPECT_EQ(bad.ErrorCode(), "SignatureDoesNotMatch");
  EXPECT_EQ(Send("GET", "/examplebucket/other.txt").status, 404);
}

TEST_F(S3ApiTest, EntityTooLarge) {
  S3ApiOptions options;
  options.max_object_bytes = 100;
  MakeApi(options);
  CreateBucket("bkt");
  Reply declared = Send("PUT", "/bkt/k", {}, std::string(101, 'x'));
  EXPECT_EQ(declared.status, 400);
  EXPECT_EQ(declared.ErrorCode(), "EntityTooLarge");
  // Without a usable Content-Length (chunked transfer) the limit applies while streaming.
  Reply streamed = Send("PUT", "/bkt/k", {{"Content-Length", "x"}}, std::string(5000, 'x'), 10);
  EXPECT_EQ(streamed.status, 400);
  EXPECT_EQ(streamed.ErrorCode(), "EntityTooLarge");
  EXPECT_EQ(Send("GET", "/bkt/k").status, 404);
  EXPECT_EQ(Send("PUT", "/bkt/k", {}, std::string(100, 'x')).status, 200);
}

TEST_F(S3ApiTest, SigV2PresignedUrlsAreVerifiedHere) {
  FakeClock clock(std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
  S3ApiOptions options;
  options.clock = &clock;
  options.secret_lookup = [](std::string_view akid) -> std::optional<std::string> {
    if (akid == "AKIDV2") return "v2-secret";
    return std::nullopt;
  };
  MakeApi(options);
  CreateBucket("bkt");
  Put("bkt", "a%20b", "presigned");
  auto presign = [](std::string method, std::string path, std::string akid, std::string secret,
                    std::string expires) {
    http::Request r;
    r.method = method;
    r.path = path;
    std::string sig = SigV2Signature(secret, SigV2StringToSign(r, expires));
    return path + "?AWSAccessKeyId=" + akid + "&Expires=" + expires +
           "&Signature=" + http::AwsUriEncode(sig, false);
  };
  const std::string good = presign("GET", "/bkt/a%20b", "AKIDV2", "v2-secret", "1700000100");
  {
    http::Request head;
    head.method = "GET";
    head.query = good.substr(good.find('?') + 1);
    EXPECT_FALSE(api_->RequiresAuth(head));  // the router's SigV4 check is skipped...
    head.query = "list-type=2";
    EXPECT_TRUE(api_->RequiresAuth(head));
  }
  http::sigv4::Identity anonymous;  // ...and S3Api verifies the signature itself
  Reply ok = Send("GET", good, {}, "", 1000, anonymous);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "presigned");
  Reply put = Send("PUT", presign("PUT", "/bkt/up", "AKIDV2", "v2-secret", "1700000100"), {},
                   "uploaded", 3, anonymous);
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Send("GET", "/bkt/up").body, "uploaded");

  Reply wrong = Send("GET", presign("GET", "/bkt/a%20b", "AKIDV2", "nope", "1700000100"), {}, "",
                     1000, anonymous);
  EXPECT_EQ(wrong.status, 403);
  EXPECT_EQ(wrong.ErrorCode(), "SignatureDoesNotMatch");
  Reply unknown = Send("GET", presign("GET", "/bkt/a%20b", "AKIDX", "v2-secret", "1700000100"), {},
                       "", 1000, anonymous);
  EXPECT_EQ(unknown.ErrorCode(), "InvalidAccessKeyId");
  Reply streamed_bad = Send("PUT", presign("PUT", "/bkt/up2", "AKIDV2", "bad", "1700000100"), {},
                            "never stored", 3, anonymous);
  EXPECT_EQ(streamed_bad.status, 403);
  EXPECT_EQ(Send("GET", "/bkt/up2").status, 404);
  clock.Advance(std::chrono::seconds(101));
  Reply expired = Send("GET", good, {}, "", 1000, anonymous);
  EXPECT_EQ(expired.status, 403);
  EXPECT_EQ(expired.ErrorCode(), "AccessDenied");
}

// ---- copy ----

TEST_F(S3ApiTest, CopyObject) {
  CreateBucket("srcb");
  CreateBucket("dstb");
  Put("srcb", "a%20b", "payload", {{"Content-Type", "text/x"}, {"x-amz-meta-k", "v"}});
  Reply copy = Send("PUT", "/dstb/copy", {{"x-amz-copy-source", "/srcb/a%20b"}});
  ASSERT_EQ(copy.status, 200) << copy.body;
  EXPECT_EQ(copy.operation, "S3.CopyObject");
  auto doc = ParseXml(copy.body);
  EXPECT_EQ(std::string(doc.child("CopyObjectResult").child_value("ETag")),
            "\"" + Md5Hex("payload") + "\"");
  EXPECT_NE(std::string(doc.child("CopyObjectResult").child_value("LastModified")), "");
  Reply got = Send("GET", "/dstb/copy");
  EXPECT_EQ(got.body, "payload");
  EXPECT_EQ(got.Header("Content-Type"), "text/x");
  EXPECT_EQ(got.Header("x-amz-meta-k"), "v");

  Reply replaced = Send("PUT", "/dstb/copy2",
                        {{"x-amz-copy-source", "srcb/a%20b?versionId=null"},
                         {"x-amz-metadata-directive", "REPLACE"},
                         {"Content-Type", "text/y"},
                         {"x-amz-meta-new", "1"}});
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  got = Send("GET", "/dstb/copy2");
  EXPECT_EQ(got.Header("Content-Type"), "text/y");
  EXPECT_EQ(got.Header("x-amz-meta-k"), "");
  EXPECT_EQ(got.Header("x-amz-meta-new"), "1");

  Reply self = Send("PUT", "/srcb/a%20b", {{"x-amz-copy-source", "/srcb/a%20b"}});
  EXPECT_EQ(self.status, 400);
  EXPECT_EQ(self.ErrorCode(), "InvalidRequest");
  EXPECT_EQ(Send("PUT", "/srcb/a%20b",
                 {{"x-amz-copy-source", "/srcb/a%20b"}, {"x-amz-metadata-directive", "REPLACE"}})
                .status,
            200);

  EXPECT_EQ(Send("PUT", "/dstb/x", {{"x-amz-copy-source", "/srcb/missing"}}).ErrorCode(),
            "NoSuchKey");
  EXPECT_EQ(Send("PUT", "/dstb/x", {{"x-amz-copy-source", "/nobucket/k"}}).ErrorCode(),
            "NoSuchBucket");
  EXPECT_EQ(Send("PUT", "/nobucket/x", {{"x-amz-copy-source", "/srcb/a%20b"}}).ErrorCode(),
            "NoSuchBucket");
  Reply cond =
      Send("PUT", "/dstb/x",
           {{"x-amz-copy-source", "/srcb/a%20b"}, {"x-amz-copy-source-if-match", "\"nope\""}});
  EXPECT_EQ(cond.status, 412);
  EXPECT_EQ(Send("PUT", "/dstb/x",
                 {{"x-amz-copy-source", "/srcb/a%20b"},
                  {"x-amz-copy-source-if-none-match", "\"" + Md5Hex("payload") + "\""}})
                .status,
            412);
  EXPECT_EQ(Send("PUT", "/dstb/x",
                 {{"x-amz-copy-source", "/srcb/a%20b"}, {"x-amz-metadata-directive", "MOVE"}})
                .ErrorCode(),
            "InvalidArgument");
}

// ---- delete objects ----

TEST_F(S3ApiTest, DeleteObjects) {
  CreateBucket("bkt");
  for (const char* k : {"a", "b", "c d"}) Put("bkt", k == std::string("c d") ? "c%20d" : k, "x");
  const std::string body =
      "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>a</Key></Object>"
      "<Object><Key>c d</Key></Object><Object><Key>missing</Key></Object></Delete>";
  Reply r = Send("POST", "/bkt?delete",
                 {{"Content-MD5", Base64Encode(Digest(DigestAlgorithm::kMd5, body))}}, body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.operation, "S3.DeleteObjects");
  auto doc = ParseXml(r.body);
  std::vector<std::string> deleted;
  for (auto d : doc.child("DeleteResult").children("Deleted"))
    deleted.push_back(d.child_value("Key"));
  EXPECT_EQ(deleted, (std::vector<std::string>{"a", "c d", "missing"}));
  EXPECT_EQ(Send("GET", "/bkt/a").status, 404);
  EXPECT_EQ(Send("GET", "/bkt/b").status, 200);

  const std::string quiet = "<Delete><Object><Key>b</Key></Object><Quiet>true</Quiet></Delete>";
  r = Send("POST", "/bkt?delete", {}, quiet);
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(ParseXml(r.body).child("DeleteResult").child("Deleted"));
  EXPECT_EQ(Send("GET", "/bkt/b").status, 404);

  EXPECT_EQ(Send("POST", "/bkt?delete", {}, "<Delete>").ErrorCode(), "MalformedXML");
  Reply bad_md5 = Send("POST", "/bkt?delete",
                       {{"Content-MD5", Base64Encode(Digest(DigestAlgorithm::kMd5, "x"))}}, quiet);
  EXPECT_EQ(bad_md5.ErrorCode(), "BadDigest");
  EXPECT_EQ(Send("POST", "/nope?delete", {}, quiet).ErrorCode(), "NoSuchBucket");
}

// ---- listing ----

class ListingTest : public S3ApiTest {
 protected:
  void SetUp() override {
    S3ApiTest::SetUp();
    CreateBucket("lst");
    for (const char* k : {"a.txt", "dir/x", "dir/y", "dir/sub/z", "e f", "zzz"}) {
      std::string encoded = k;
      if (encoded == "e f") encoded = "e%20f";
      Put("lst", encoded, "1");
    }
  }
  static std::vector<std::string> Values(const pugi::xml_node& root, const char* list,
                                         const char* field) {
    std::vector<std::string> out;
    for (auto c : root.children(list)) out.push_back(c.child_value(field));
    return out;
  }
};

TEST_F(ListingTest, V2WithDelimiter) {
  Reply r = Send("GET", "/lst?list-type=2&delimiter=%2F");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.operation, "S3.ListObjectsV2");
  auto doc = ParseXml(r.body);
  auto root = doc.child("ListBucketResult");
  EXPECT_EQ(Values(root, "Contents", "Key"), (std::vector<std::string>{"a.txt", "e f", "zzz"}));
  EXPECT_EQ(Values(root, "CommonPrefixes", "Prefix"), (std::vector<std::string>{"dir/"}));
  EXPECT_STREQ(root.child_value("KeyCount"), "4");
  EXPECT_STREQ(root.child_value("IsTruncated"), "false");
  EXPECT_STREQ(root.child_value("MaxKeys"), "1000");
  EXPECT_STREQ(root.child_value("Delimiter"), "/");
  EXPECT_STREQ(root.child("Contents").child_value("ETag"), ("\"" + Md5Hex("1") + "\"").c_str());
  EXPECT_STREQ(root.child("Contents").child_value("Size"), "1");
  EXPECT_STREQ(root.child("Contents").child_value("StorageClass"), "STANDARD");
  EXPECT_FALSE(root.child("Contents").child("Owner"));
  EXPECT_TRUE(std::string(root.child("Contents").child_value("LastModified")).ends_with("Z"));

  r = Send("GET", "/lst?list-type=2&prefix=dir%2F&delimiter=%2F&fetch-owner=true");
  doc = ParseXml(r.body);
  root = doc.child("ListBucketResult");
  EXPECT_EQ(Values(root, "Contents", "Key"), (std::vector<std::string>{"dir/x", "dir/y"}));
  EXPECT_EQ(Values(root, "CommonPrefixes", "Prefix"), (std::vector<std::string>{"dir/sub/"}));
  EXPECT_STREQ(root.child("Contents").child("Owner").child_value("DisplayName"), "inferd");
  EXPECT_STREQ(root.child_value("Prefix"), "dir/");
}

TEST_F(ListingTest, V2Pagination) {
  std::vector<std::string> keys;
  std::string token;
  int pages = 0;
  while (true) {
    std::string target = "/lst?list-type=2&max-keys=2";
    if (!token.empty()) target += "&continuation-token=" + http::AwsUriEncode(token, false);
    Reply r = Send("GET", target);
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = ParseXml(r.body);
    auto root = doc.child("ListBucketResult");
    for (const auto& k : Values(root, "Contents", "Key")) keys.push_back(k);
    ++pages;
    if (std::string(root.child_value("IsTruncated")) != "true") break;
    EXPECT_STREQ(root.child_value("KeyCount"), "2");
    token = root.child_value("NextContinuationToken");
    ASSERT_FALSE(token.empty());
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(keys, (std::vector<std::string>{"a.txt", "dir/sub/z", "dir/x", "dir/y", "e f", "zzz"}));
  Reply after = Send("GET", "/lst?list-type=2&start-after=dir%2Fy");
  auto doc = ParseXml(after.body);
  EXPECT_EQ(Values(doc.child("ListBucketResult"), "Contents", "Key"),
            (std::vector<std::string>{"e f", "zzz"}));
  EXPECT_STREQ(doc.child("ListBucketResult").child_value("StartAfter"), "dir/y");
  EXPECT_EQ(Send("GET", "/lst?list-type=2&continuation-token=%21%21").ErrorCode(),
            "InvalidArgument");
  EXPECT_EQ(Send("GET", "/lst?list-type=2&max-keys=-1").ErrorCode(), "InvalidArgument");
  EXPECT_EQ(Send("GET", "/lst?list-type=2&max-keys=abc").ErrorCode(), "InvalidArgument");
  EXPECT_EQ(Send("GET", "/nope?list-type=2").ErrorCode(), "NoSuchBucket");
}

TEST_F(ListingTest, UrlEncoding) {
  Reply r = Send("GET", "/lst?list-type=2&encoding-type=url&prefix=e%20&delimiter=%2F");
  auto doc = ParseXml(r.body);
  auto root = doc.child("ListBucketResult");
  EXPECT_EQ(Values(root, "Contents", "Key"), (std::vector<std::string>{"e%20f"}));
  EXPECT_STREQ(root.child_value("Prefix"), "e%20");
  EXPECT_STREQ(root.child_value("EncodingType"), "url");
  EXPECT_EQ(Send("GET", "/lst?list-type=2&encoding-type=base64").ErrorCode(), "InvalidArgument");
}

TEST_F(ListingTest, V1WithMarker) {
  Reply r = Send("GET", "/lst?max-keys=3");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.operation, "S3.ListObjects");
  auto doc = ParseXml(r.body);
  auto root = doc.child("ListBucketResult");
  EXPECT_EQ(Values(root, "Contents", "Key"),
            (std::vector<std::string>{"a.txt", "dir/sub/z", "dir/x"}));
  EXPECT_STREQ(root.child_value("IsTruncated"), "true");
  EXPECT_STREQ(root.child_value("NextMarker"), "dir/x");
  EXPECT_STREQ(root.child("Contents").child("Owner").child_value("ID"),
               S3ApiOptions{}.owner_id.c_str());
  r = Send("GET", "/lst?max-keys=3&marker=dir%2Fx");
  doc = ParseXml(r.body);
  root = doc.child("ListBucketResult");
  EXPECT_EQ(Values(root, "Contents", "Key"), (std::vector<std::string>{"dir/y", "e f", "zzz"}));
  EXPECT_STREQ(root.child_value("Marker"), "dir/x");
  EXPECT_STREQ(root.child_value("IsTruncated"), "false");
}

}  // namespace
}  // namespace inferd::api::s3
