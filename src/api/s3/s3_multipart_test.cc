// Handler-level tests of S3Api's multipart uploads (see s3_test_util.h; min_part_size is 5 bytes).
#include <gtest/gtest.h>

#include <string>

#include "api/s3/checksums.h"
#include "api/s3/s3_test_util.h"
#include "common/base64.h"
#include "common/strings.h"
#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

using testing::ParseXml;
using testing::Reply;

class MultipartTest : public testing::S3ApiFixture {
 protected:
  void SetUp() override {
    S3ApiFixture::SetUp();
    CreateBucket("mpu");
  }

  std::string Create(const std::string& key, const testing::HeaderList& headers = {}) {
    Reply r = Send("POST", "/mpu/" + key + "?uploads", headers);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.operation, "S3.CreateMultipartUpload");
    auto doc = ParseXml(r.body);
    auto root = doc.child("InitiateMultipartUploadResult");
    EXPECT_STREQ(root.child_value("Bucket"), "mpu");
    return root.child_value("UploadId");
  }

  std::string UploadPart(const std::string& key, const std::string& id, int n,
                         const std::string& data, const testing::HeaderList& headers = {}) {
    Reply r = Send("PUT", "/mpu/" + key + "?partNumber=" + std::to_string(n) + "&uploadId=" + id,
                   headers, data, 3);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "");
    return r.Header("ETag");
  }

  static std::string CompleteXml(const std::vector<std::pair<int, std::string>>& parts) {
    std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (const auto& [n, etag] : parts) {
      xml += "<Part><ETag>" + etag + "</ETag><PartNumber>" + std::to_string(n) +
             "</PartNumber></Part>";
    }
    return xml + "</CompleteMultipartUpload>";
  }
};

std::string Md5(std::string_view s) { return Digest(DigestAlgorithm::kMd5, s); }

TEST_F(MultipartTest, FullUpload) {
  const std::string id =
      Create("big%20file", {{"Content-Type", "video/mp4"}, {"x-amz-meta-origin", "camera"}});
  ASSERT_FALSE(id.empty());
  const std::string p1 = "first part of the object|";
  const std::string p2 = "second part|";
  const std::string p3 = "end";
  std::string e1 = UploadPart("big%20file", id, 1, p1);
  std::string e3 = UploadPart("big%20file", id, 3, p3);
  std::string e2 = UploadPart("big%20file", id, 2, p2);
  EXPECT_EQ(e1, "\"" + HexEncode(Md5(p1)) + "\"");

  Reply parts = Send("GET", "/mpu/big%20file?uploadId=" + id);
  ASSERT_EQ(parts.status, 200) << parts.body;
  EXPECT_EQ(parts.operation, "S3.ListParts");
  auto doc = ParseXml(parts.body);
  auto root = doc.child("ListPartsResult");
  std::vector<std::string> numbers;
  for (auto p : root.children("Part")) numbers.push_back(p.child_value("PartNumber"));
  EXPECT_EQ(numbers, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_STREQ(root.child("Part").child_value("ETag"), e1.c_str());
  EXPECT_STREQ(root.child("Part").child_value("Size"), std::to_string(p1.size()).c_str());
  EXPECT_STREQ(root.child_value("Key"), "big file");

  Reply limited = Send("GET", "/mpu/big%20file?uploadId=" + id + "&max-parts=2");
  doc = ParseXml(limited.body);
  EXPECT_STREQ(doc.child("ListPartsResult").child_value("IsTruncated"), "true");
  EXPECT_STREQ(doc.child("ListPartsResult").child_value("NextPartNumberMarker"), "2");
  Reply rest = Send("GET", "/mpu/big%20file?uploadId=" + id + "&part-number-marker=2");
  doc = ParseXml(rest.body);
  EXPECT_STREQ(doc.child("ListPartsResult").child("Part").child_value("PartNumber"), "3");

  Reply uploads = Send("GET", "/mpu?uploads");
  ASSERT_EQ(uploads.status, 200);
  doc = ParseXml(uploads.body);
  EXPECT_STREQ(doc.child("ListMultipartUploadsResult").child("Upload").child_value("Key"),
               "big file");
  EXPECT_STREQ(doc.child("ListMultipartUploadsResult").child("Upload").child_value("UploadId"),
               id.c_str());

  Reply done =
      Send("POST", "/mpu/big%20file?uploadId=" + id, {}, CompleteXml({{1, e1}, {2, e2}, {3, e3}}));
  ASSERT_EQ(done.status, 200) << done.body;
  doc = ParseXml(done.body);
  auto result = doc.child("CompleteMultipartUploadResult");
  const std::string expected_etag = "\"" + HexEncode(Md5(Md5(p1) + Md5(p2) + Md5(p3))) + "-3\"";
  EXPECT_EQ(std::string(result.child_value("ETag")), expected_etag);
  EXPECT_STREQ(result.child_value("Key"), "big file");
  EXPECT_STREQ(result.child_value("Bucket"), "mpu");
  EXPECT_STREQ(result.child_value("Location"), "http://127.0.0.1:9000/mpu/big%20file");

  Reply get = Send("GET", "/mpu/big%20file");
  EXPECT_EQ(get.body, p1 + p2 + p3);
  EXPECT_EQ(get.Header("ETag"), expected_etag);
  EXPECT_EQ(get.Header("Content-Type"), "video/mp4");
  EXPECT_EQ(get.Header("x-amz-meta-origin"), "camera");

  // The upload is gone.
  EXPECT_EQ(Send("GET", "/mpu/big%20file?uploadId=" + id).ErrorCode(), "NoSuchUpload");
  doc = ParseXml(Send("GET", "/mpu?uploads").body);
  EXPECT_FALSE(doc.child("ListMultipartUploadsResult").child("Upload"));
}

TEST_F(MultipartTest, CompleteErrors) {
  const std::string id = Create("k");
  std::string e1 = UploadPart("k", id, 1, "123456");
  std::string e2 = UploadPart("k", id, 2, "ab");

  Reply wrong_etag = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{1, "\"beef\""}}));
  EXPECT_EQ(wrong_etag.status, 400);
  EXPECT_EQ(wrong_etag.ErrorCode(), "InvalidPart");
  Reply missing_part = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{1, e1}, {5, e2}}));
  EXPECT_EQ(missing_part.ErrorCode(), "InvalidPart");
  Reply order = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{2, e2}, {1, e1}}));
  EXPECT_EQ(order.status, 400);
  EXPECT_EQ(order.ErrorCode(), "InvalidPartOrder");
  Reply small = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{2, e2}, {3, e1}}));
  EXPECT_EQ(small.ErrorCode(), "InvalidPart");
  Reply malformed = Send("POST", "/mpu/k?uploadId=" + id, {}, "<CompleteMultipartUpload>");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.ErrorCode(), "MalformedXML");
  Reply empty = Send("POST", "/mpu/k?uploadId=" + id, {}, "<CompleteMultipartUpload/>");
  EXPECT_EQ(empty.ErrorCode(), "MalformedXML");

  // A part below the minimum that is not the last.
  std::string e3 = UploadPart("k", id, 3, "xyz");
  Reply too_small = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{2, e2}, {3, e3}}));
  EXPECT_EQ(too_small.status, 400);
  EXPECT_EQ(too_small.ErrorCode(), "EntityTooSmall");

  // Still completable after all those failures.
  Reply ok = Send("POST", "/mpu/k?uploadId=" + id, {}, CompleteXml({{1, e1}, {2, e2}}));
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Send("GET", "/mpu/k").body, "123456ab");
}

TEST_F(MultipartTest, UnknownUploads) {
  const std::string bogus = "00000000-0000-4000-8000-000000000000";
  Reply part = Send("PUT", "/mpu/k?partNumber=1&uploadId=" + bogus, {}, "data");
  EXPECT_EQ(part.status, 404);
  EXPECT_EQ(part.ErrorCode(), "NoSuchUpload");
  EXPECT_EQ(Send("POST", "/mpu/k?uploadId=" + bogus, {}, CompleteXml({{1, "\"a\""}})).ErrorCode(),
            "NoSuchUpload");
  EXPECT_EQ(Send("DELETE", "/mpu/k?uploadId=" + bogus).ErrorCode(), "NoSuchUpload");
  EXPECT_EQ(Send("GET", "/mpu/k?uploadId=../../etc").ErrorCode(), "NoSuchUpload");
  // An upload id is tied to its key.
  const std::string id = Create("k");
  EXPECT_EQ(Send("PUT", "/mpu/other?partNumber=1&uploadId=" + id, {}, "data").ErrorCode(),
            "NoSuchUpload");
}

TEST_F(MultipartTest, AbortAndPartNumbers) {
  const std::string id = Create("k");
  for (const char* n : {"0", "10001", "abc", "-1"}) {
    Reply r = Send("PUT", "/mpu/k?partNumber=" + std::string(n) + "&uploadId=" + id, {}, "x");
    EXPECT_EQ(r.status, 400) << n;
    EXPECT_EQ(r.ErrorCode(), "InvalidArgument") << n;
  }
  UploadPart("k", id, 1, "data");
  Reply aborted = Send("DELETE", "/mpu/k?uploadId=" + id);
  EXPECT_EQ(aborted.status, 204);
  EXPECT_EQ(aborted.operation, "S3.AbortMultipartUpload");
  EXPECT_EQ(Send("GET", "/mpu/k?uploadId=" + id).ErrorCode(), "NoSuchUpload");
  EXPECT_EQ(Send("GET", "/mpu/k").status, 404);
}

TEST_F(MultipartTest, PartChecksumsAreVerified) {
  const std::string id = Create("k", {{"x-amz-checksum-algorithm", "CRC32"}});
  const std::string data = "part data";
  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32, data);
  Reply ok =
      Send("PUT", "/mpu/k?partNumber=1&uploadId=" + id, {{"x-amz-checksum-crc32", crc}}, data);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Header("x-amz-checksum-crc32"), crc);
  Reply bad = Send("PUT", "/mpu/k?partNumber=2&uploadId=" + id,
                   {{"Content-MD5", Base64Encode(Md5("other"))}}, data);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.ErrorCode(), "BadDigest");
  auto doc = ParseXml(Send("GET", "/mpu/k?uploadId=" + id).body);
  int count = 0;
  for (auto p : doc.child("ListPartsResult").children("Part")) {
    (void)p;
    ++count;
  }
  EXPECT_EQ(count, 1);  // the bad part was not stored
}

TEST_F(MultipartTest, UploadPartCopy) {
  Reply src = Send("PUT", "/mpu/source", {}, "0123456789abcdef");
  ASSERT_EQ(src.status, 200);
  const std::string id = Create("dest");
  Reply c1 = Send("PUT", "/mpu/dest?partNumber=1&uploadId=" + id,
                  {{"x-amz-copy-source", "/mpu/source"}, {"x-amz-copy-source-range", "bytes=0-9"}});
  ASSERT_EQ(c1.status, 200) << c1.body;
  EXPECT_EQ(c1.operation, "S3.UploadPartCopy");
  auto doc = ParseXml(c1.body);
  std::string e1 = doc.child("CopyPartResult").child_value("ETag");
  EXPECT_EQ(e1, "\"" + HexEncode(Md5("0123456789")) + "\"");
  Reply c2 =
      Send("PUT", "/mpu/dest?partNumber=2&uploadId=" + id, {{"x-amz-copy-source", "/mpu/source"}});
  ASSERT_EQ(c2.status, 200);
  std::string e2 = ParseXml(c2.body).child("CopyPartResult").child_value("ETag");
  Reply bad_range =
      Send("PUT", "/mpu/dest?partNumber=3&uploadId=" + id,
           {{"x-amz-copy-source", "/mpu/source"}, {"x-amz-copy-source-range", "bytes=10-16"}});
  EXPECT_EQ(bad_range.status, 400);
  EXPECT_EQ(bad_range.ErrorCode(), "InvalidArgument");
  Reply malformed_range =
      Send("PUT", "/mpu/dest?partNumber=3&uploadId=" + id,
           {{"x-amz-copy-source", "/mpu/source"}, {"x-amz-copy-source-range", "bytes=10-"}});
  EXPECT_EQ(malformed_range.ErrorCode(), "InvalidArgument");
  Reply done = Send("POST", "/mpu/dest?uploadId=" + id, {}, CompleteXml({{1, e1}, {2, e2}}));
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Send("GET", "/mpu/dest").body, "01234567890123456789abcdef");
}

TEST_F(MultipartTest, ListMultipartUploadsPagination) {
  std::vector<std::string> ids;
  for (const char* k : {"a/1", "a/2", "b", "c"}) ids.push_back(Create(k));
  Reply r = Send("GET", "/mpu?uploads&delimiter=%2F");
  auto doc = ParseXml(r.body);
  auto root = doc.child("ListMultipartUploadsResult");
  std::vector<std::string> keys;
  for (auto u : root.children("Upload")) keys.push_back(u.child_value("Key"));
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "c"}));
  EXPECT_STREQ(root.child("CommonPrefixes").child_value("Prefix"), "a/");

  r = Send("GET", "/mpu?uploads&max-uploads=2");
  doc = ParseXml(r.body);
  root = doc.child("ListMultipartUploadsResult");
  EXPECT_STREQ(root.child_value("IsTruncated"), "true");
  std::string key_marker = root.child_value("NextKeyMarker");
  std::string id_marker = root.child_value("NextUploadIdMarker");
  EXPECT_EQ(key_marker, "a/2");
  r = Send("GET", "/mpu?uploads&key-marker=" + http::AwsUriEncode(key_marker, false) +
                      "&upload-id-marker=" + id_marker);
  doc = ParseXml(r.body);
  keys.clear();
  for (auto u : doc.child("ListMultipartUploadsResult").children("Upload")) {
    keys.push_back(u.child_value("Key"));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Send("GET", "/nope?uploads").ErrorCode(), "NoSuchBucket");
}

}  // namespace
}  // namespace inferd::api::s3
