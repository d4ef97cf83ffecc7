// The `aws-chunked` content encoding of S3 streaming uploads, decoded while it streams:
//
//   <hex size>[;chunk-signature=<sig>][;ext]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//   [<trailer name>:<value>\r\n ...][x-amz-trailer-signature:<sig>\r\n]\r\n
//
// Used for x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER (JS SDK v3 stream bodies,
// botocore over https), STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] (signed chunks: Java SDK and
// others) and STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER] (SigV4a: framing only).
//
// Signed chunks are verified when a ChunkSigner is given: chunk n's signature is HMAC(signing key,
// "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<signature n-1>\n<sha256("")>\n<sha256(data n)>"),
// chained from the seed signature of the Authorization header; the trailer's is
// HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<last signature>\n<sha256(trailers)>").
// A chunk's bytes are handed out before its signature (which follows them) is checked, so callers
// must not commit anything until Read() returned 0 — the store's Put does exactly that.
//
// Errors (sticky): kValidation "IncompleteBody" (the body ends early), kValidation
// "InvalidRequest" (malformed framing), kBadSignature "SignatureDoesNotMatch"; errors of the raw
// source unchanged. Thread-compatible: one reader thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/s3/checksums.h"
#include "common/result.h"
#include "http/body_pipe.h"
#include "http/message.h"

namespace inferd::api::s3 {

// What signed-chunk verification needs from the request's SigV4 signature.
class ChunkSigner {
 public:
  ChunkSigner(std::string_view secret, std::string amz_date, std::string date, std::string region,
              std::string service, std::string seed_signature);

  // From the request's Authorization header (or presigned query) and the signer's secret.
  // kValidation when the request carries no parsable SigV4 signature.
  static Result<ChunkSigner> FromRequest(const http::Request& request, std::string_view secret);
  // The access key id that signed `request` ("" when it is not SigV4-signed).
  static std::string AccessKeyId(const http::Request& request);

  const std::string& seed_signature() const { return seed_signature_; }
  // Hex signature of a chunk whose data has SHA-256 `data_sha256_hex`.
  std::string ChunkSignature(std::string_view previous, std::string_view data_sha256_hex) const;
  // Hex signature of the trailer; `canonical_trailers` is "name:value\n" per trailer.
  std::string TrailerSignature(std::string_view previous,
                               std::string_view canonical_trailers) const;

 private:
  std::string signing_key_;  // raw HMAC key: secret → date → region → service → aws4_request
  std::string amz_date_;
  std::string scope_;
  std::string seed_signature_;
};

struct AwsChunkedOptions {
  // Every chunk must carry a chunk-signature extension (STREAMING-AWS4-*).
  bool require_signatures = false;
  // Set: chunk (and trailer) signatures are verified against it.
  std::optional<ChunkSigner> signer;
  size_t buffer_bytes = 64 * 1024;
};

class AwsChunkedSource final : public http::ByteSource {
 public:
  AwsChunkedSource(http::ByteSource& raw, AwsChunkedOptions options);

  // Decoded bytes; 0 once the final chunk, the trailers and the end of `raw` were read.
  Result<size_t> Read(char* buf, size_t n) override;
  // Trailing headers (names lower-cased, x-amz-trailer-signature excluded); complete once Read()
  // returned 0.
  const std::vector<http::Header>& trailers() const { return trailers_; }

 private:
  enum class State { kChunkHeader, kData, kDataEnd, kTrailer, kDone };

  Result<size_t> Fill();
  // A line without its CRLF. false: the body ended before the line's first byte.
  Result<bool> ReadLine(std::string& line);
  Status ParseChunkHeader(const std::string& line);
  Status ChunkEnded();  // checks the signature of the chunk just read
  Status ReadTrailers();
  Status DrainRaw();
  Error Fail(Error error);

  http::ByteSource& raw_;
  AwsChunkedOptions options_;
  std::string buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  State state_ = State::kChunkHeader;
  uint64_t remaining_ = 0;       // bytes of the current chunk not yet returned
  std::string chunk_signature_;  // as sent with the current chunk
  std::string previous_signature_;
  std::unique_ptr<Hasher> chunk_hash_;  // SHA-256 of the current chunk (when verifying)
  std::vector<http::Header> trailers_;
  std::optional<Error> error_;
};

}  // namespace inferd::api::s3
