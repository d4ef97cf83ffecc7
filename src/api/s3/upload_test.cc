#include "api/s3/upload.h"

#include <gtest/gtest.h>

#include <string>

#include "api/s3/checksums.h"
#include "common/base64.h"
#include "http/sigv4.h"

namespace inferd::api::s3 {
namespace {

http::Headers MakeHeaders(std::initializer_list<std::pair<std::string, std::string>> items) {
  http::Headers h;
  for (const auto& [k, v] : items) h.Add(k, v);
  return h;
}

struct Outcome {
  Status read;    // reading the body
  Status verify;  // Verify() (only when the read succeeded)
  std::string data;
  std::optional<http::Header> checksum;
};

Outcome Upload(const http::Headers& headers, const std::string& body, uint64_t max = 1 << 20) {
  Outcome out;
  auto spec = UploadSpec::Parse(headers, max);
  if (!spec.ok()) {
    out.read = spec.error();
    return out;
  }
  http::StringSource raw(body);
  UploadBody upload(raw, *spec, std::nullopt, max);
  char buf[7];
  while (true) {
    auto n = upload.Read(buf, sizeof buf);
    if (!n.ok()) {
      out.read = n.error();
      return out;
    }
    if (*n == 0) break;
    out.data.append(buf, *n);
  }
  out.verify = upload.Verify();
  out.checksum = upload.checksum();
  return out;
}

std::string Md5B64(std::string_view s) { return Base64Encode(Digest(DigestAlgorithm::kMd5, s)); }

TEST(Upload, PlainBodyWithoutClaimsPasses) {
  auto out = Upload({}, "hello");
  ASSERT_TRUE(out.read.ok());
  EXPECT_TRUE(out.verify.ok());
  EXPECT_EQ(out.data, "hello");
  EXPECT_FALSE(out.checksum.has_value());
}

TEST(Upload, ContentMd5) {
  auto good = Upload(MakeHeaders({{"Content-MD5", Md5B64("hello")}}), "hello");
  EXPECT_TRUE(good.verify.ok());
  auto bad = Upload(MakeHeaders({{"Content-MD5", Md5B64("hellO")}}), "hello");
  ASSERT_FALSE(bad.verify.ok());
  EXPECT_EQ(bad.verify.error().aws_code, "BadDigest");
  EXPECT_EQ(bad.verify.error().message,
            "The Content-MD5 you specified did not match what we received.");
  auto invalid = Upload(MakeHeaders({{"Content-MD5", "not-base64"}}), "hello");
  ASSERT_FALSE(invalid.read.ok());
  EXPECT_EQ(invalid.read.error().aws_code, "InvalidDigest");
}

TEST(Upload, ChecksumHeaderOfEveryAlgorithm) {
  for (auto algorithm :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    const std::string name = ChecksumHeader(algorithm);
    auto good = Upload(MakeHeaders({{name, ChecksumBase64(algorithm, "data")}}), "data");
    ASSERT_TRUE(good.read.ok()) << name;
    EXPECT_TRUE(good.verify.ok()) << name;
    ASSERT_TRUE(good.checksum.has_value());
    EXPECT_EQ(good.checksum->name, name);
    EXPECT_EQ(good.checksum->value, ChecksumBase64(algorithm, "data"));

    auto bad = Upload(MakeHeaders({{name, ChecksumBase64(algorithm, "datA")}}), "data");
    ASSERT_FALSE(bad.verify.ok()) << name;
    EXPECT_EQ(bad.verify.error().aws_code, "BadDigest");
    EXPECT_EQ(bad.verify.error().message, "The " + std::string(ChecksumName(algorithm)) +
                                              " you specified did not match the calculated "
                                              "checksum.");
  }
}

TEST(Upload, AlgorithmWithoutValueIsComputed) {
  auto out = Upload(MakeHeaders({{"x-amz-sdk-checksum-algorithm", "CRC32C"}}), "abc");
  ASSERT_TRUE(out.verify.ok());
  ASSERT_TRUE(out.checksum.has_value());
  EXPECT_EQ(out.checksum->name, "x-amz-checksum-crc32c");
  EXPECT_EQ(out.checksum->value, ChecksumBase64(ChecksumAlgorithm::kCrc32c, "abc"));
}

TEST(Upload, HexContentSha256) {
  auto good = Upload(MakeHeaders({{"x-amz-content-sha256", http::sigv4::Sha256Hex("abc")}}), "abc");
  EXPECT_TRUE(good.verify.ok());
  auto bad = Upload(MakeHeaders({{"x-amz-content-sha256", http::sigv4::Sha256Hex("abd")}}), "abc");
  ASSERT_FALSE(bad.verify.ok());
  EXPECT_EQ(bad.verify.error().aws_code, "XAmzContentSHA256Mismatch");
  auto unsigned_payload =
      Upload(MakeHeaders({{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}}), "abc");
  EXPECT_TRUE(unsigned_payload.verify.ok());
  auto nonsense = Upload(MakeHeaders({{"x-amz-content-sha256", "whatever"}}), "abc");
  ASSERT_FALSE(nonsense.read.ok());
  EXPECT_EQ(nonsense.read.error().aws_code, "InvalidArgument");
}

TEST(Upload, InvalidChecksumHeaders) {
  auto two =
      Upload(MakeHeaders({{"x-amz-checksum-crc32", ChecksumBase64(ChecksumAlgorithm::kCrc32, "")},
                          {"x-amz-checksum-sha1", ChecksumBase64(ChecksumAlgorithm::kSha1, "")}}),
             "");
  ASSERT_FALSE(two.read.ok());
  EXPECT_EQ(two.read.error().aws_code, "InvalidRequest");
  auto short_value = Upload(MakeHeaders({{"x-amz-checksum-sha256", "AAAA"}}), "");
  ASSERT_FALSE(short_value.read.ok());
  EXPECT_EQ(short_value.read.error().message, "Value for x-amz-checksum-sha256 header is invalid.");
  auto unknown = Upload(MakeHeaders({{"x-amz-sdk-checksum-algorithm", "MD5"}}), "");
  ASSERT_FALSE(unknown.read.ok());
  EXPECT_EQ(unknown.read.error().aws_code, "InvalidRequest");
  auto conflicting =
      Upload(MakeHeaders({{"x-amz-checksum-crc32", ChecksumBase64(ChecksumAlgorithm::kCrc32, "")},
                          {"x-amz-sdk-checksum-algorithm", "SHA1"}}),
             "");
  ASSERT_FALSE(conflicting.read.ok());
}

http::Headers ChunkedHeaders(uint64_t decoded,
                             const std::string& trailer = "x-amz-checksum-crc32") {
  return MakeHeaders({{"Content-Encoding", "aws-chunked"},
                      {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
                      {"x-amz-decoded-content-length", std::to_string(decoded)},
                      {"x-amz-trailer", trailer}});
}

TEST(Upload, AwsChunkedWithTrailingChecksum) {
  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32, "hello world");
  const std::string body = "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n";
  auto out = Upload(ChunkedHeaders(11), body);
  ASSERT_TRUE(out.read.ok()) << out.read.error().message;
  EXPECT_TRUE(out.verify.ok());
  EXPECT_EQ(out.data, "hello world");
  ASSERT_TRUE(out.checksum.has_value());
  EXPECT_EQ(out.checksum->value, crc);

  const std::string wrong = ChecksumBase64(ChecksumAlgorithm::kCrc32, "hello worle");
  auto bad = Upload(ChunkedHeaders(11),
                    "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:" + wrong + "\r\n\r\n");
  ASSERT_FALSE(bad.verify.ok());
  EXPECT_EQ(bad.verify.error().aws_code, "BadDigest");

  auto missing = Upload(ChunkedHeaders(11), "b\r\nhello world\r\n0\r\n\r\n");
  ASSERT_FALSE(missing.verify.ok());
  EXPECT_EQ(missing.verify.error().aws_code, "InvalidRequest");

  auto short_body = Upload(ChunkedHeaders(12), body);
  ASSERT_FALSE(short_body.read.ok());
  EXPECT_EQ(short_body.read.error().aws_code, "IncompleteBody");
}

TEST(Upload, TrailerRequiresAwsChunked) {
  auto out = Upload(MakeHeaders({{"x-amz-trailer", "x-amz-checksum-crc32"}}), "x");
  ASSERT_FALSE(out.read.ok());
  EXPECT_EQ(out.read.error().aws_code, "InvalidRequest");
}

TEST(Upload, SizeLimits) {
  auto declared = Upload(MakeHeaders({{"Content-Length", "11"}}), "hello world", 10);
  ASSERT_FALSE(declared.read.ok());
  EXPECT_EQ(declared.read.error().aws_code, "EntityTooLarge");
  EXPECT_EQ(declared.read.error().code, Errc::kPayloadTooLarge);
  auto streamed = Upload({}, "hello world", 10);
  ASSERT_FALSE(streamed.read.ok());
  EXPECT_EQ(streamed.read.error().aws_code, "EntityTooLarge");
  auto decoded = Upload(ChunkedHeaders(11), "", 10);
  ASSERT_FALSE(decoded.read.ok());
  EXPECT_EQ(decoded.read.error().aws_code, "EntityTooLarge");
  auto exact = Upload({}, "0123456789", 10);
  EXPECT_TRUE(exact.read.ok());
}

TEST(Upload, VerifyBufferedBody) {
  http::Request r;
  r.body = "<Delete/>";
  r.headers.Add("Content-MD5", Md5B64(r.body));
  auto ok = VerifyBufferedBody(r, 1 << 20);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, r.body);
  r.headers.Set("Content-MD5", Md5B64("other"));
  auto bad = VerifyBufferedBody(r, 1 << 20);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().aws_code, "BadDigest");
}

}  // namespace
}  // namespace inferd::api::s3
