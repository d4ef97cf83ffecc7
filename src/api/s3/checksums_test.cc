#include "api/s3/checksums.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/base64.h"
#include "common/strings.h"

namespace inferd::api::s3 {
namespace {

constexpr std::string_view kCheck = "123456789";

TEST(Checksums, CrcCheckValues) {
  EXPECT_EQ(Crc32(0, kCheck.data(), kCheck.size()), 0xCBF43926u);
  EXPECT_EQ(Crc32c(0, kCheck.data(), kCheck.size()), 0xE3069283u);
  EXPECT_EQ(Crc64Nvme(0, kCheck.data(), kCheck.size()), 0xAE8B14860A799888ull);
  EXPECT_EQ(Crc32c(0, "", 0), 0u);
}

TEST(Checksums, Base64AsS3SendsThem) {
  // Big-endian CRCs, base64: what x-amz-checksum-* carry.
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kCrc32, kCheck), "y/Q5Jg==");
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kCrc32c, kCheck), "4waSgw==");
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kCrc32, ""), "AAAAAA==");
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kCrc64Nvme, ""), "AAAAAAAAAAA=");
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kSha1, ""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kSha256, ""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_EQ(Base64Encode(Digest(DigestAlgorithm::kMd5, "")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(HexEncode(Digest(DigestAlgorithm::kMd5, "hello")), "5d41402abc4b2a76b9719d911017c592");
  // "Hello world" as in S3's documentation examples.
  EXPECT_EQ(ChecksumBase64(ChecksumAlgorithm::kCrc32, "Hello world"), "i9aeUg==");
}

TEST(Checksums, IncrementalEqualsOneShotForEverySplit) {
  std::mt19937 rng(42);
  std::string data(100000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (auto algorithm :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    const std::string whole = ChecksumBase64(algorithm, data);
    for (size_t piece : {1u, 3u, 7u, 8u, 9u, 4096u, 65537u}) {
      auto h = MakeChecksumHasher(algorithm);
      for (size_t i = 0; i < data.size(); i += piece) {
        h->Update(std::string_view(data).substr(i, piece));
      }
      EXPECT_EQ(Base64Encode(h->Final()), whole) << ChecksumName(algorithm) << " piece " << piece;
    }
  }
}

TEST(Checksums, Crc32cHardwareAndTableAgree) {
  // Unaligned starts and odd lengths exercise the 8-byte and the byte loops of both paths.
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  uint32_t reference = 0;
  for (char c : data) reference = Crc32c(reference, &c, 1);
  EXPECT_EQ(Crc32c(0, data.data(), data.size()), reference);
  EXPECT_EQ(Crc32c(Crc32c(0, data.data() + 0, 13), data.data() + 13, data.size() - 13), reference);
}

TEST(Checksums, Names) {
  EXPECT_EQ(ParseChecksumName("crc32c"), ChecksumAlgorithm::kCrc32c);
  EXPECT_EQ(ParseChecksumName("SHA256"), ChecksumAlgorithm::kSha256);
  EXPECT_EQ(ParseChecksumName("md5"), std::nullopt);
  EXPECT_EQ(ChecksumFromHeader("X-Amz-Checksum-CRC32"), ChecksumAlgorithm::kCrc32);
  EXPECT_EQ(ChecksumFromHeader("x-amz-checksum-crc64nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ChecksumFromHeader("x-amz-checksum-mode"), std::nullopt);
  EXPECT_EQ(ChecksumFromHeader("x-amz-checksum-algorithm"), std::nullopt);
  EXPECT_EQ(ChecksumHeader(ChecksumAlgorithm::kSha1), "x-amz-checksum-sha1");
}

}  // namespace
}  // namespace inferd::api::s3
