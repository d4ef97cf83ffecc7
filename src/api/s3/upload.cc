#include "api/s3/upload.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "common/base64.h"
#include "common/strings.h"

namespace inferd::api::s3 {
namespace {

std::optional<uint64_t> ParseUint(std::string_view s) {
  s = TrimSpaces(s);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

std::string HexDecode(std::string_view hex) {
  auto nibble = [](char c) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c <= '9' ? c - '0' : c - 'a' + 10;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  }
  return out;
}

Error InvalidRequest(std::string message) {
  return Error(Errc::kValidation, std::move(message), "InvalidRequest");
}

// Whether a comma-separated header value holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (true) {
    size_t comma = value.find(',');
    if (AsciiLower(TrimSpaces(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

Error EntityTooLarge(uint64_t max_bytes) {
  return Error(Errc::kPayloadTooLarge,
               "Your proposed upload exceeds the maximum allowed object size of " +
                   std::to_string(max_bytes) + " bytes.",
               "EntityTooLarge");
}

Result<UploadSpec> UploadSpec::Parse(const http::Headers& headers, uint64_t max_bytes) {
  UploadSpec spec;
  if (auto sha = headers.Get("x-amz-content-sha256")) {
    std::string v(TrimSpaces(*sha));
    if (v == "UNSIGNED-PAYLOAD") {
    } else if (v == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
      spec.aws_chunked = true;
    } else if (v == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" ||
               v == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") {
      spec.aws_chunked = spec.signed_chunks = true;
    } else if (v == "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD" ||
               v == "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER") {
      spec.aws_chunked = spec.sigv4a_chunks = true;
    } else if (IsHex64(v)) {
      spec.sha256 = HexDecode(v);
    } else {
      return Error(Errc::kValidation,
                   "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                   "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
                   "[-TRAILER], or a valid sha256 value.",
                   "InvalidArgument");
    }
  }
  if (auto enc = headers.Get("content-encoding"); enc && HasToken(*enc, "aws-chunked")) {
    spec.aws_chunked = true;
  }
  if (auto decoded = headers.Get("x-amz-decoded-content-length")) {
    spec.decoded_length = ParseUint(*decoded);
    if (!spec.decoded_length) {
      return Error(Errc::kValidation,
                   "x-amz-decoded-content-length must be a non-negative integer.",
                   "InvalidArgument");
    }
    if (*spec.decoded_length > max_bytes) return EntityTooLarge(max_bytes);
  }
  if (!spec.aws_chunked) {
    if (auto len = headers.Get("content-length")) {
      auto n = ParseUint(*len);
      if (n && *n > max_bytes) return EntityTooLarge(max_bytes);
    }
  }
  if (auto md5 = headers.Get("content-md5")) {
    auto raw = Base64Decode(TrimSpaces(*md5));
    if (!raw || raw->size() != 16) {
      return Error(Errc::kValidation, "The Content-MD5 you specified is not valid.",
                   "InvalidDigest");
    }
    spec.md5 = std::move(*raw);
  }
  for (const http::Header& h : headers.all()) {
    auto algorithm = ChecksumFromHeader(h.name);
    if (!algorithm) continue;
    if (spec.checksum) {
      return InvalidRequest(
          "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
    }
    std::string value(TrimSpaces(h.value));
    auto raw = Base64Decode(value);
    if (!raw || raw->size() != ChecksumBytes(*algorithm)) {
      return InvalidRequest("Value for " + ChecksumHeader(*algorithm) + " header is invalid.");
    }
    spec.algorithm = algorithm;
    spec.checksum = std::move(value);
  }
  if (auto trailer = headers.Get("x-amz-trailer")) {
    std::string_view names = *trailer;
    while (true) {
      size_t comma = names.find(',');
      if (auto algorithm = ChecksumFromHeader(TrimSpaces(names.substr(0, comma)))) {
        if (spec.algorithm) {
          return InvalidRequest(
              "Expecting a single x-amz-checksum- header. Multiple checksum Types are not "
              "allowed.");
        }
        spec.algorithm = algorithm;
        spec.checksum_in_trailer = true;
      }
      if (comma == std::string_view::npos) break;
      names.remove_prefix(comma + 1);
    }
    if (spec.checksum_in_trailer && !spec.aws_chunked) {
      return InvalidRequest(
          "x-amz-trailer declares a trailing checksum, but the body is not "
          "aws-chunked encoded.");
    }
  }
  for (const char* name : {"x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"}) {
    auto value = headers.Get(name);
    if (!value) continue;
    auto algorithm = ParseChecksumName(TrimSpaces(*value));
    if (!algorithm) {
      return InvalidRequest("Checksum algorithm \"" + std::string(*value) +
                            "\" is not supported: use CRC32, CRC32C, CRC64NVME, SHA1 or SHA256.");
    }
    if (spec.algorithm && *spec.algorithm != *algorithm) {
      return InvalidRequest("Value for " + std::string(name) +
                            " header is invalid: it does not match the checksum sent.");
    }
    spec.algorithm = algorithm;
  }
  return spec;
}

// ---- UploadBody ----

UploadBody::UploadBody(http::ByteSource& raw, const UploadSpec& spec,
                       std::optional<ChunkSigner> signer, uint64_t max_bytes)
    : spec_(spec), source_(&raw), max_bytes_(max_bytes) {
  if (spec.aws_chunked) {
    AwsChunkedOptions options;
    options.require_signatures = spec.signed_chunks || spec.sigv4a_chunks;
    if (spec.signed_chunks) options.signer = std::move(signer);
    chunked_ = std::make_unique<AwsChunkedSource>(raw, std::move(options));
    source_ = chunked_.get();
  }
  if (spec.sha256) sha256_ = MakeDigestHasher(DigestAlgorithm::kSha256);
  if (spec.md5) md5_ = MakeDigestHasher(DigestAlgorithm::kMd5);
  if (spec.algorithm) checksum_hasher_ = MakeChecksumHasher(*spec.algorithm);
}

UploadBody::~UploadBody() = default;

Result<size_t> UploadBody::Read(char* buf, size_t n) {
  if (ended_ || n == 0) return size_t{0};
  auto got = source_->Read(buf, n);
  if (!got.ok()) return got;
  if (*got == 0) {
    ended_ = true;
    if (spec_.decoded_length && size_ != *spec_.decoded_length) {
      return Error(Errc::kValidation,
                   "You did not provide the number of bytes specified by the "
                   "x-amz-decoded-content-length header (" +
                       std::to_string(*spec_.decoded_length) + " announced, " +
                       std::to_string(size_) + " received).",
                   "IncompleteBody");
    }
    return got;
  }
  size_ += *got;
  if (size_ > max_bytes_) return EntityTooLarge(max_bytes_);
  if (spec_.decoded_length && size_ > *spec_.decoded_length) {
    return Error(Errc::kValidation,
                 "The request body is longer than its x-amz-decoded-content-length header says.",
                 "IncompleteBody");
  }
  if (sha256_) sha256_->Update(buf, *got);
  if (md5_) md5_->Update(buf, *got);
  if (checksum_hasher_) checksum_hasher_->Update(buf, *got);
  return got;
}

Status UploadBody::Verify() {
  if (sha256_ && sha256_->Final() != *spec_.sha256) {
    return Error(Errc::kValidation,
                 "The provided 'x-amz-content-sha256' header does not match what was computed.",
                 "XAmzContentSHA256Mismatch");
  }
  if (md5_ && md5_->Final() != *spec_.md5) {
    return Error(Errc::kValidation, "The Content-MD5 you specified did not match what we received.",
                 "BadDigest");
  }
  if (checksum_hasher_) {
    const ChecksumAlgorithm algorithm = *spec_.algorithm;
    computed_checksum_ = Base64Encode(checksum_hasher_->Final());
    std::optional<std::string> expected = spec_.checksum;
    if (chunked_) {
      const std::string header = ChecksumHeader(algorithm);
      for (const http::Header& t : chunked_->trailers()) {
        if (t.name == header) expected = t.value;
      }
    }
    if (spec_.checksum_in_trailer && !expected) {
      return InvalidRequest("The x-amz-trailer header declares " + ChecksumHeader(algorithm) +
                            ", but the request body has no such trailer.");
    }
    if (expected && *expected != computed_checksum_) {
      return Error(Errc::kValidation,
                   "The " + std::string(ChecksumName(algorithm)) +
                       " you specified did not match the calculated checksum.",
                   "BadDigest");
    }
  }
  return OkStatus();
}

std::optional<http::Header> UploadBody::checksum() const {
  if (!spec_.algorithm || computed_checksum_.empty()) return std::nullopt;
  return http::Header{ChecksumHeader(*spec_.algorithm), computed_checksum_};
}

Result<std::string> VerifyBufferedBody(const http::Request& request, uint64_t max_bytes) {
  auto spec = UploadSpec::Parse(request.headers, max_bytes);
  if (!spec.ok()) return std::move(spec).error();
  if (!spec->aws_chunked && !spec->sha256 && !spec->md5 && !spec->checksum) {
    return request.body;  // nothing to check or decode
  }
  http::StringSource raw(request.body);
  UploadBody body(raw, *spec, std::nullopt, max_bytes);
  std::string out;
  char buf[16 * 1024];
  while (true) {
    auto n = body.Read(buf, sizeof buf);
    if (!n.ok()) return std::move(n).error();
    if (*n == 0) break;
    out.append(buf, *n);
  }
  INFERD_RETURN_IF_ERROR(body.Verify());
  return out;
}

}  // namespace inferd::api::s3
