// Incremental digests of S3 bodies: MD5 (ETag, Content-MD5), SHA-256 (x-amz-content-sha256) and
// the flexible checksums (x-amz-checksum-crc32 / crc32c / crc64nvme / sha1 / sha256).
//
// Pure computation; a Hasher is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace inferd::api::s3 {

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256" (as in x-amz-sdk-checksum-algorithm).
std::string_view ChecksumName(ChecksumAlgorithm algorithm);
// "x-amz-checksum-crc32" etc.
std::string ChecksumHeader(ChecksumAlgorithm algorithm);
// Case-insensitive inverse of ChecksumName.
std::optional<ChecksumAlgorithm> ParseChecksumName(std::string_view name);
// Which algorithm an "x-amz-checksum-<alg>" header name is for (case-insensitive).
std::optional<ChecksumAlgorithm> ChecksumFromHeader(std::string_view header_name);
// Size of the raw digest in bytes (4, 4, 8, 20, 32).
size_t ChecksumBytes(ChecksumAlgorithm algorithm);

enum class DigestAlgorithm { kMd5, kSha1, kSha256 };

class Hasher {
 public:
  virtual ~Hasher() = default;
  virtual void Update(const char* data, size_t n) = 0;
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The raw digest (CRCs big-endian, as S3 base64-encodes them). Call once.
  virtual std::string Final() = 0;
};

std::unique_ptr<Hasher> MakeChecksumHasher(ChecksumAlgorithm algorithm);
std::unique_ptr<Hasher> MakeDigestHasher(DigestAlgorithm algorithm);

// One-shot helpers.
uint32_t Crc32(uint32_t crc, const void* data, size_t n);      // zlib's CRC-32 (crc starts at 0)
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);     // Castagnoli (crc starts at 0)
uint64_t Crc64Nvme(uint64_t crc, const void* data, size_t n);  // CRC-64/NVME (crc starts at 0)
std::string Digest(DigestAlgorithm algorithm, std::string_view data);
// base64(raw checksum of data).
std::string ChecksumBase64(ChecksumAlgorithm algorithm, std::string_view data);

}  // namespace inferd::api::s3
