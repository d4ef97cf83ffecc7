#include "api/s3/chunked.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/strings.h"
#include "http/sigv4.h"
#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

constexpr size_t kMaxLineBytes = 4096;
constexpr size_t kMaxTrailers = 16;
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Error Malformed(const std::string& why) {
  return Error(Errc::kValidation, "The aws-chunked request body is malformed: " + why + ".",
               "InvalidRequest");
}

Error Incomplete() {
  return Error(Errc::kValidation,
               "The request body ended before the end of its aws-chunked encoding: you did not "
               "provide the number of bytes it announced.",
               "IncompleteBody");
}

Error BadChunkSignature() {
  return Error(Errc::kBadSignature,
               "The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method.",
               "SignatureDoesNotMatch");
}

bool SameSignature(std::string_view expected, std::string_view provided) {
  std::string p = AsciiLower(provided);
  return p.size() == expected.size() &&
         CRYPTO_memcmp(p.data(), expected.data(), expected.size()) == 0;
}

// The value of `key=` in "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
std::optional<std::string_view> AuthParam(std::string_view header, std::string_view key) {
  size_t start = 0;
  while (start < header.size()) {
    size_t comma = header.find(',', start);
    std::string_view part = TrimSpaces(header.substr(start, comma - start));
    if (part.substr(0, 17) == "AWS4-HMAC-SHA256 ") part = TrimSpaces(part.substr(17));
    if (part.size() > key.size() && part.substr(0, key.size()) == key && part[key.size()] == '=') {
      return part.substr(key.size() + 1);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return std::nullopt;
}

struct SigV4Params {
  std::string credential;  // AKID/date/region/service/aws4_request
  std::string signature;
  std::string amz_date;
};

std::optional<SigV4Params> FindSigV4Params(const http::Request& request) {
  SigV4Params p;
  if (auto auth = request.headers.Get("authorization")) {
    auto credential = AuthParam(*auth, "Credential");
    auto signature = AuthParam(*auth, "Signature");
    if (!credential || !signature) return std::nullopt;
    p.credential = std::string(*credential);
    p.signature = std::string(*signature);
    p.amz_date = std::string(request.headers.Get("x-amz-date").value_or(""));
    return p;
  }
  auto params = http::ParseQuery(request.query);
  auto credential = http::FindParam(params, "X-Amz-Credential");
  auto signature = http::FindParam(params, "X-Amz-Signature");
  auto date = http::FindParam(params, "X-Amz-Date");
  if (!credential || !signature || !date) return std::nullopt;
  return SigV4Params{std::string(*credential), std::string(*signature), std::string(*date)};
}

}  // namespace

// ---- ChunkSigner ----

ChunkSigner::ChunkSigner(std::string_view secret, std::string amz_date, std::string date,
                         std::string region, std::string service, std::string seed_signature)
    : amz_date_(std::move(amz_date)), seed_signature_(AsciiLower(seed_signature)) {
  namespace sigv4 = http::sigv4;
  signing_key_ = sigv4::HmacSha256("AWS4" + std::string(secret), date);
  signing_key_ = sigv4::HmacSha256(signing_key_, region);
  signing_key_ = sigv4::HmacSha256(signing_key_, service);
  signing_key_ = sigv4::HmacSha256(signing_key_, "aws4_request");
  scope_ = date + "/" + region + "/" + service + "/aws4_request";
}

Result<ChunkSigner> ChunkSigner::FromRequest(const http::Request& request,
                                             std::string_view secret) {
  auto p = FindSigV4Params(request);
  if (!p) {
    return Error(Errc::kValidation,
                 "A signed streaming upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) must be signed "
                 "with AWS Signature Version 4.",
                 "InvalidRequest");
  }
  std::vector<std::string> parts;
  std::string_view rest = p->credential;
  while (true) {
    size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (parts.size() != 5 || p->amz_date.size() != 16) {
    return Error(Errc::kValidation,
                 "The credential scope or X-Amz-Date of the signed streaming upload is malformed.",
                 "InvalidRequest");
  }
  return ChunkSigner(secret, p->amz_date, parts[1], parts[2], parts[3], p->signature);
}

std::string ChunkSigner::AccessKeyId(const http::Request& request) {
  auto p = FindSigV4Params(request);
  if (!p) return "";
  return p->credential.substr(0, p->credential.find('/'));
}

std::string ChunkSigner::ChunkSignature(std::string_view previous,
                                        std::string_view data_sha256_hex) const {
  std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + amz_date_ + "\n" + scope_ + "\n" +
                    std::string(previous) + "\n" + std::string(kEmptySha256) + "\n" +
                    std::string(data_sha256_hex);
  return HexEncode(http::sigv4::HmacSha256(signing_key_, sts));
}

std::string ChunkSigner::TrailerSignature(std::string_view previous,
                                          std::string_view canonical_trailers) const {
  std::string sts = "AWS4-HMAC-SHA256-TRAILER\n" + amz_date_ + "\n" + scope_ + "\n" +
                    std::string(previous) + "\n" + http::sigv4::Sha256Hex(canonical_trailers);
  return HexEncode(http::sigv4::HmacSha256(signing_key_, sts));
}

// ---- AwsChunkedSource ----

AwsChunkedSource::AwsChunkedSource(http::ByteSource& raw, AwsChunkedOptions options)
    : raw_(raw), options_(std::move(options)) {
  buf_.resize(std::max<size_t>(options_.buffer_bytes, 16));
  if (options_.signer) previous_signature_ = options_.signer->seed_signature();
}

Error AwsChunkedSource::Fail(Error error) {
  error_ = error;
  return error;
}

Result<size_t> AwsChunkedSource::Fill() {
  pos_ = end_ = 0;
  auto n = raw_.Read(buf_.data(), buf_.size());
  if (!n.ok()) return std::move(n).error();
  end_ = *n;
  return n;
}

Result<bool> AwsChunkedSource::ReadLine(std::string& line) {
  line.clear();
  while (true) {
    if (pos_ == end_) {
      auto n = Fill();
      if (!n.ok()) return std::move(n).error();
      if (*n == 0) {
        if (line.empty()) return false;
        return Incomplete();
      }
    }
    const char* start = buf_.data() + pos_;
    const size_t avail = end_ - pos_;
    const void* nl = std::memchr(start, '\n', avail);
    const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) + 1 : avail;
    if (line.size() + take > kMaxLineBytes) return Malformed("a chunk header line is too long");
    line.append(start, take);
    pos_ += take;
    if (nl) {
      if (line.size() < 2 || line[line.size() - 2] != '\r') {
        return Malformed("a line is not terminated by CRLF");
      }
      line.resize(line.size() - 2);
      return true;
    }
  }
}

Status AwsChunkedSource::ParseChunkHeader(const std::string& line) {
  std::string_view rest = line;
  size_t semi = rest.find(';');
  std::string_view hex = TrimSpaces(rest.substr(0, semi));
  if (hex.empty() || hex.size() > 15 || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    return Malformed("invalid chunk size \"" + std::string(hex.substr(0, 32)) + "\"");
  }
  remaining_ = std::stoull(std::string(hex), nullptr, 16);
  chunk_signature_.clear();
  while (semi != std::string_view::npos) {
    rest.remove_prefix(semi + 1);
    semi = rest.find(';');
    std::string_view ext = TrimSpaces(rest.substr(0, semi));
    constexpr std::string_view kSig = "chunk-signature=";
    if (ext.substr(0, kSig.size()) == kSig) chunk_signature_ = std::string(ext.substr(kSig.size()));
  }
  if (options_.require_signatures && chunk_signature_.empty()) {
    return Malformed("a chunk has no chunk-signature");
  }
  if (options_.signer) chunk_hash_ = MakeDigestHasher(DigestAlgorithm::kSha256);
  return OkStatus();
}

Status AwsChunkedSource::ChunkEnded() {
  if (!options_.signer) return OkStatus();
  std::string expected =
      options_.signer->ChunkSignature(previous_signature_, HexEncode(chunk_hash_->Final()));
  if (!SameSignature(expected, chunk_signature_)) return BadChunkSignature();
  previous_signature_ = std::move(expected);
  return OkStatus();
}

Status AwsChunkedSource::ReadTrailers() {
  std::string line;
  std::string canonical;
  std::string trailer_signature;
  while (true) {
    auto got = ReadLine(line);
    if (!got.ok()) return std::move(got).error();
    if (!*got || line.empty()) break;  // the end (a missing final CRLF is tolerated)
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      return Malformed("a trailing header has no name");
    }
    std::string name = AsciiLower(TrimSpaces(std::string_view(line).substr(0, colon)));
    std::string value(TrimSpaces(std::string_view(line).substr(colon + 1)));
    if (name == "x-amz-trailer-signature") {
      trailer_signature = std::move(value);
      continue;
    }
    if (trailers_.size() == kMaxTrailers) return Malformed("too many trailing headers");
    canonical += name + ":" + value + "\n";
    trailers_.push_back({std::move(name), std::move(value)});
  }
  if (options_.signer && !trailers_.empty()) {
    if (trailer_signature.empty()) return Malformed("the trailer has no x-amz-trailer-signature");
    std::string expected = options_.signer->TrailerSignature(previous_signature_, canonical);
    if (!SameSignature(expected, trailer_signature)) return BadChunkSignature();
  }
  return OkStatus();
}

Status AwsChunkedSource::DrainRaw() {
  while (true) {
    for (; pos_ < end_; ++pos_) {
      if (buf_[pos_] != '\r' && buf_[pos_] != '\n') {
        return Malformed("there is data after the final chunk");
      }
    }
    auto n = Fill();
    if (!n.ok()) return std::move(n).error();
    if (*n == 0) return OkStatus();
  }
}

Result<size_t> AwsChunkedSource::Read(char* out, size_t n) {
  if (error_) return *error_;
  std::string line;
  while (true) {
    switch (state_) {
      case State::kChunkHeader: {
        auto got = ReadLine(line);
        if (!got.ok()) return Fail(std::move(got).error());
        if (!*got) return Fail(Incomplete());
        if (auto st = ParseChunkHeader(line); !st.ok()) return Fail(std::move(st).error());
        if (remaining_ == 0) {
          if (auto st = ChunkEnded(); !st.ok()) return Fail(std::move(st).error());
          state_ = State::kTrailer;
        } else {
          state_ = State::kData;
        }
        break;
      }
      case State::kData: {
        if (remaining_ == 0) {
          state_ = State::kDataEnd;
          break;
        }
        if (n == 0) return size_t{0};
        if (pos_ == end_) {
          auto filled = Fill();
          if (!filled.ok()) return Fail(std::move(filled).error());
          if (*filled == 0) return Fail(Incomplete());
        }
        size_t k = static_cast<size_t>(std::min<uint64_t>({n, remaining_, end_ - pos_}));
        std::memcpy(out, buf_.data() + pos_, k);
        if (chunk_hash_) chunk_hash_->Update(out, k);
        pos_ += k;
        remaining_ -= k;
        return k;
      }
      case State::kDataEnd: {
        auto got = ReadLine(line);
        if (!got.ok()) return Fail(std::move(got).error());
        if (!*got) return Fail(Incomplete());
        if (!line.empty()) return Fail(Malformed("a chunk is longer than its declared size"));
        if (auto st = ChunkEnded(); !st.ok()) return Fail(std::move(st).error());
        state_ = State::kChunkHeader;
        break;
      }
      case State::kTrailer: {
        if (auto st = ReadTrailers(); !st.ok()) return Fail(std::move(st).error());
        if (auto st = DrainRaw(); !st.ok()) return Fail(std::move(st).error());
        state_ = State::kDone;
        break;
      }
      case State::kDone:
        return size_t{0};
    }
  }
}

}  // namespace inferd::api::s3
