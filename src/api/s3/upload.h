// The body of an upload (PutObject, UploadPart, and buffered bodies such as DeleteObjects) as S3
// checks it: the payload mode declared by x-amz-content-sha256 / Content-Encoding, the digests the
// client sent (Content-MD5, x-amz-checksum-<alg> as a header or an aws-chunked trailer, a hex
// x-amz-content-sha256), and the size limits.
//
// UploadBody decodes and measures the bytes while they stream (nothing is buffered beyond the
// aws-chunked decoder's 64 KiB), and Verify() — called from PutOptions::before_commit, once the
// last byte was read — compares what was computed with what was claimed, so a bad digest stores
// nothing. Thread-compatible: one reader thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/s3/checksums.h"
#include "api/s3/chunked.h"
#include "common/result.h"
#include "http/body_pipe.h"
#include "http/message.h"

namespace inferd::api::s3 {

// What the request headers say about its body. Parse errors are S3's: InvalidArgument (unknown
// x-amz-content-sha256), InvalidDigest (bad Content-MD5), InvalidRequest (several or malformed
// checksum headers, unknown algorithm), EntityTooLarge (declared size above the limit).
struct UploadSpec {
  bool aws_chunked = false;    // the body is aws-chunked framed
  bool signed_chunks = false;  // STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]
  bool sigv4a_chunks = false;  // STREAMING-AWS4-ECDSA-P256-SHA256-*: framing only, not verified
  std::optional<uint64_t> decoded_length;      // x-amz-decoded-content-length
  std::optional<std::string> sha256;           // raw digest from a hex x-amz-content-sha256
  std::optional<std::string> md5;              // raw digest from Content-MD5
  std::optional<ChecksumAlgorithm> algorithm;  // the checksum to compute, if any
  std::optional<std::string> checksum;         // its base64 value from the header, if sent there
  bool checksum_in_trailer = false;            // declared in x-amz-trailer

  static Result<UploadSpec> Parse(const http::Headers& headers, uint64_t max_bytes);
};

// A ByteSource over a body (a pipe, or a buffered string) that undoes aws-chunked, computes the
// digests the spec asks for, and fails with EntityTooLarge past `max_bytes` decoded bytes or
// IncompleteBody when x-amz-decoded-content-length is not met.
class UploadBody final : public http::ByteSource {
 public:
  UploadBody(http::ByteSource& raw, const UploadSpec& spec, std::optional<ChunkSigner> signer,
             uint64_t max_bytes);
  ~UploadBody() override;

  Result<size_t> Read(char* buf, size_t n) override;

  // After the last Read: BadDigest, XAmzContentSHA256Mismatch, or InvalidRequest (a declared
  // trailer that never came). On success checksum() is the computed value.
  Status Verify();
  uint64_t size() const { return size_; }
  // The header name and base64 value of the checksum (after Verify), or nullopt.
  std::optional<http::Header> checksum() const;

 private:
  const UploadSpec& spec_;
  http::ByteSource* source_;  // raw_ or the decoder
  std::unique_ptr<AwsChunkedSource> chunked_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  bool ended_ = false;
  std::unique_ptr<Hasher> sha256_;
  std::unique_ptr<Hasher> md5_;
  std::unique_ptr<Hasher> checksum_hasher_;
  std::string computed_checksum_;  // base64, set by Verify
};

// The same checks for a body the server buffered (request.body): parses the spec, reads the body
// through UploadBody and verifies it. Returns the decoded body.
Result<std::string> VerifyBufferedBody(const http::Request& request, uint64_t max_bytes);

Error EntityTooLarge(uint64_t max_bytes);

}  // namespace inferd::api::s3
