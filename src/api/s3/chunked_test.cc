#include "api/s3/chunked.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "api/s3/checksums.h"
#include "http/sigv4.h"

namespace inferd::api::s3 {
namespace {

// Delivers `data` in reads of at most `piece` bytes (as a socket would).
class PieceSource final : public http::ByteSource {
 public:
  PieceSource(std::string data, size_t piece) : data_(std::move(data)), piece_(piece) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min({n, piece_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t piece_;
  size_t pos_ = 0;
};

// Reads everything with reads of `piece` bytes; the error if there is one.
Result<std::string> ReadAll(http::ByteSource& src, size_t piece = 4096) {
  std::string out;
  std::string buf(piece, '\0');
  while (true) {
    auto n = src.Read(buf.data(), buf.size());
    if (!n.ok()) return std::move(n).error();
    if (*n == 0) return out;
    out.append(buf.data(), *n);
  }
}

Result<std::string> Decode(const std::string& body, AwsChunkedOptions options = {},
                           size_t raw_piece = 1 << 20, size_t read_piece = 4096) {
  PieceSource raw(body, raw_piece);
  AwsChunkedSource src(raw, std::move(options));
  return ReadAll(src, read_piece);
}

std::string Chunk(std::string_view data) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx", data.size());
  return std::string(hex) + "\r\n" + std::string(data) + "\r\n";
}

// ---- AWS's published example (sigv4-streaming): 66560 bytes of 'a' in 65536 + 1024 + 0 ----
constexpr std::string_view kExampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kSeed =
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr std::string_view kSig1 =
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
constexpr std::string_view kSig2 =
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
constexpr std::string_view kSig3 =
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

ChunkSigner ExampleSigner() {
  return ChunkSigner(kExampleSecret, "20130524T000000Z", "20130524", "us-east-1", "s3",
                     std::string(kSeed));
}

std::string ExampleBody(char corrupt_at_1024 = 0) {
  std::string c2(1024, 'a');
  if (corrupt_at_1024) c2[10] = corrupt_at_1024;
  return "10000;chunk-signature=" + std::string(kSig1) + "\r\n" + std::string(65536, 'a') + "\r\n" +
         "400;chunk-signature=" + std::string(kSig2) + "\r\n" + c2 + "\r\n" +
         "0;chunk-signature=" + std::string(kSig3) + "\r\n\r\n";
}

TEST(ChunkSigner, ReproducesAwsExampleSignatures) {
  ChunkSigner s = ExampleSigner();
  std::string sig1 = s.ChunkSignature(kSeed, http::sigv4::Sha256Hex(std::string(65536, 'a')));
  EXPECT_EQ(sig1, kSig1);
  std::string sig2 = s.ChunkSignature(sig1, http::sigv4::Sha256Hex(std::string(1024, 'a')));
  EXPECT_EQ(sig2, kSig2);
  EXPECT_EQ(s.ChunkSignature(sig2, http::sigv4::Sha256Hex("")), kSig3);
}

TEST(ChunkSigner, FromRequestReadsTheAuthorizationHeader) {
  http::Request r;
  r.headers.Add("Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                "x-amz-storage-class,Signature=" +
                    std::string(kSeed));
  r.headers.Add("x-amz-date", "20130524T000000Z");
  EXPECT_EQ(ChunkSigner::AccessKeyId(r), "AKIAIOSFODNN7EXAMPLE");
  auto s = ChunkSigner::FromRequest(r, kExampleSecret);
  ASSERT_TRUE(s.ok()) << s.error().message;
  AwsChunkedOptions options;
  options.require_signatures = true;
  options.signer = *s;
  auto out = Decode(ExampleBody(), options);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, std::string(66560, 'a'));

  http::Request unsigned_request;
  EXPECT_EQ(ChunkSigner::AccessKeyId(unsigned_request), "");
  EXPECT_FALSE(ChunkSigner::FromRequest(unsigned_request, kExampleSecret).ok());
}

TEST(AwsChunked, SignedExampleDecodesAtEveryReadSize) {
  for (size_t raw_piece : {1u, 7u, 100u, 65536u, 1u << 20}) {
    for (size_t read_piece : {1u, 3u, 4096u, 100000u}) {
      if (raw_piece == 1 && read_piece == 1) continue;  // slow and adds nothing
      AwsChunkedOptions options;
      options.require_signatures = true;
      options.signer = ExampleSigner();
      auto out = Decode(ExampleBody(), options, raw_piece, read_piece);
      ASSERT_TRUE(out.ok()) << out.error().message << " raw " << raw_piece;
      EXPECT_EQ(*out, std::string(66560, 'a'));
    }
  }
}

TEST(AwsChunked, CorruptedChunkFailsItsSignature) {
  AwsChunkedOptions options;
  options.signer = ExampleSigner();
  auto out = Decode(ExampleBody('b'), options);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kBadSignature);
  EXPECT_EQ(out.error().aws_code, "SignatureDoesNotMatch");
}

TEST(AwsChunked, WrongSecretFailsTheFirstChunk) {
  AwsChunkedOptions options;
  options.signer = ChunkSigner("not-the-secret", "20130524T000000Z", "20130524", "us-east-1", "s3",
                               std::string(kSeed));
  PieceSource raw(ExampleBody(), 1 << 20);
  AwsChunkedSource src(raw, options);
  auto out = ReadAll(src, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kBadSignature);
  // Sticky: a further read reports the same error.
  char c;
  EXPECT_FALSE(src.Read(&c, 1).ok());
}

TEST(AwsChunked, SignaturesAreIgnoredWithoutASigner) {
  auto out = Decode(ExampleBody('b'));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 66560u);
}

TEST(AwsChunked, MissingChunkSignatureWhenRequired) {
  AwsChunkedOptions options;
  options.require_signatures = true;
  auto out = Decode(Chunk("hello") + "0\r\n\r\n", options);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().aws_code, "InvalidRequest");
}

TEST(AwsChunked, UnsignedWithTrailerAsTheJsSdkSendsIt) {
  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32, "hello world");
  const std::string body =
      Chunk("hello ") + Chunk("world") + "0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n";
  for (size_t raw_piece : {1u, 2u, 5u, 1000u}) {
    PieceSource raw(body, raw_piece);
    AwsChunkedSource src(raw, {});
    auto out = ReadAll(src, 3);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, "hello world");
    ASSERT_EQ(src.trailers().size(), 1u);
    EXPECT_EQ(src.trailers()[0].name, "x-amz-checksum-crc32");
    EXPECT_EQ(src.trailers()[0].value, crc);
  }
}

TEST(AwsChunked, ChunkExtensionsAndUpperCaseHexAreAccepted) {
  auto out = Decode("A;foo=bar;chunk-signature=x\r\n0123456789\r\n0;x=y\r\n\r\n");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "0123456789");
}

TEST(AwsChunked, MissingFinalCrlfIsTolerated) {
  auto out = Decode(Chunk("abc") + "0\r\n");
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "abc");
}

TEST(AwsChunked, SignedTrailerIsVerified) {
  ChunkSigner signer = ExampleSigner();
  const std::string data = "payload";
  std::string sig1 = signer.ChunkSignature(kSeed, http::sigv4::Sha256Hex(data));
  std::string sig0 = signer.ChunkSignature(sig1, http::sigv4::Sha256Hex(""));
  const std::string crc = ChecksumBase64(ChecksumAlgorithm::kCrc32c, data);
  std::string trailer_sig = signer.TrailerSignature(sig0, "x-amz-checksum-crc32c:" + crc + "\n");
  auto body = [&](const std::string& tsig) {
    return "7;chunk-signature=" + sig1 + "\r\n" + data + "\r\n0;chunk-signature=" + sig0 +
           "\r\nx-amz-checksum-crc32c:" + crc + "\r\nx-amz-trailer-signature:" + tsig + "\r\n\r\n";
  };
  AwsChunkedOptions options;
  options.require_signatures = true;
  options.signer = signer;
  auto ok = Decode(body(trailer_sig), options, 5, 2);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, data);

  std::string bad = trailer_sig;
  bad[0] = bad[0] == '0' ? '1' : '0';
  auto fails = Decode(body(bad), options);
  ASSERT_FALSE(fails.ok());
  EXPECT_EQ(fails.error().code, Errc::kBadSignature);
}

TEST(AwsChunked, MalformedFramingIsRejected) {
  struct Case {
    const char* name;
    std::string body;
    const char* aws_code;
  };
  const Case cases[] = {
      {"not hex", "zz\r\nhello\r\n0\r\n\r\n", "InvalidRequest"},
      {"empty size", "\r\nhello\r\n0\r\n\r\n", "InvalidRequest"},
      {"huge size", "fffffffffffffffff\r\n", "InvalidRequest"},
      {"chunk longer than declared", "3\r\nhello\r\n0\r\n\r\n", "InvalidRequest"},
      {"bare LF", "5\nhello\r\n0\r\n\r\n", "InvalidRequest"},
      {"ends inside data", "5\r\nhel", "IncompleteBody"},
      {"ends before the last chunk", Chunk("hello"), "IncompleteBody"},
      {"ends inside a header line", "5\r\nhello\r\n0;chunk-sig", "IncompleteBody"},
      {"data after the end", Chunk("hello") + "0\r\n\r\nextra", "InvalidRequest"},
      {"trailer without name", Chunk("hello") + "0\r\n:x\r\n\r\n", "InvalidRequest"},
      {"line too long", std::string(5000, '1') + "\r\n", "InvalidRequest"},
  };
  for (const Case& c : cases) {
    for (size_t raw_piece : {1u, 4096u}) {
      auto out = Decode(c.body, {}, raw_piece);
      ASSERT_FALSE(out.ok()) << c.name;
      EXPECT_EQ(out.error().aws_code, c.aws_code) << c.name << ": " << out.error().message;
    }
  }
}

TEST(AwsChunked, RawSourceErrorsPassThrough) {
  class Failing final : public http::ByteSource {
   public:
    Result<size_t> Read(char*, size_t) override {
      return Error(Errc::kUnavailable, "peer went away");
    }
  } raw;
  AwsChunkedSource src(raw, {});
  char buf[16];
  auto n = src.Read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, Errc::kUnavailable);
}

}  // namespace
}  // namespace inferd::api::s3
