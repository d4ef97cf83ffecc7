#include "api/s3/sigv2.h"

#include <gtest/gtest.h>

#include "http/uri.h"

namespace inferd::api::s3 {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// The SigV2 documentation's query-string authentication example.
constexpr std::string_view kAkid = "44CF9590006BF252F707";
constexpr std::string_view kSecret = "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV";

http::Request Presigned(std::string method, std::string path, std::string extra_query,
                        std::string signature, std::string expires = "1141889120") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = extra_query + (extra_query.empty() ? "" : "&") +
            "AWSAccessKeyId=" + std::string(kAkid) + "&Expires=" + expires +
            "&Signature=" + http::AwsUriEncode(signature, false);
  r.target = r.path + "?" + r.query;
  return r;
}

SecretLookup Secrets() {
  return [](std::string_view akid) -> std::optional<std::string> {
    if (akid == kAkid) return std::string(kSecret);
    return std::nullopt;
  };
}

const auto kBefore = system_clock::time_point(seconds(1141889000));

TEST(SigV2, AwsDocumentationExample) {
  http::Request r = Presigned("GET", "/quotes/nelson", "", "");
  EXPECT_EQ(SigV2StringToSign(r, "1141889120"), "GET\n\n\n1141889120\n/quotes/nelson");
  EXPECT_EQ(SigV2Signature(kSecret, SigV2StringToSign(r, "1141889120")),
            "vjbyPxybdZaNmGa+yT272YEAiv4=");
}

TEST(SigV2, VerifiesSignatureAndExpiry) {
  http::Request good = Presigned("GET", "/quotes/nelson", "", "vjbyPxybdZaNmGa+yT272YEAiv4=");
  EXPECT_TRUE(HasSigV2QueryAuth(good));
  auto id = VerifySigV2Query(good, Secrets(), kBefore, "us-east-1");
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->access_key_id, kAkid);
  EXPECT_TRUE(id->presigned);

  auto expired = VerifySigV2Query(good, Secrets(), kBefore + seconds(1000), "us-east-1");
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::kAccessDenied);

  http::Request other_key = good;
  other_key.path = "/quotes/other";
  auto bad = VerifySigV2Query(other_key, Secrets(), kBefore, "us-east-1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().aws_code, "SignatureDoesNotMatch");

  http::Request put = good;
  put.method = "PUT";
  EXPECT_FALSE(VerifySigV2Query(put, Secrets(), kBefore, "us-east-1").ok());

  // Without credentials any well-formed signature passes (as the SigV4 Verifier does).
  EXPECT_TRUE(VerifySigV2Query(other_key, nullptr, kBefore, "us-east-1").ok());
}

TEST(SigV2, UnknownKeyAndMalformed) {
  http::Request r = Presigned("GET", "/b/k", "", "sig");
  r.query = "AWSAccessKeyId=AKIDUNKNOWN&Expires=1141889120&Signature=x";
  auto unknown = VerifySigV2Query(r, Secrets(), kBefore, "us-east-1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().aws_code, "InvalidAccessKeyId");
  r.query = "AWSAccessKeyId=" + std::string(kAkid) + "&Signature=x";
  EXPECT_FALSE(VerifySigV2Query(r, Secrets(), kBefore, "us-east-1").ok());
  r.query = "AWSAccessKeyId=" + std::string(kAkid) + "&Expires=soon&Signature=x";
  EXPECT_EQ(VerifySigV2Query(r, Secrets(), kBefore, "us-east-1").error().code, Errc::kAccessDenied);
  http::Request plain;
  plain.query = "list-type=2";
  EXPECT_FALSE(HasSigV2QueryAuth(plain));
}

TEST(SigV2, SubresourcesAndHeadersAreSigned) {
  http::Request r = Presigned("PUT", "/b/my%20key",
                              "uploadId=abc&partNumber=2&x-id=UploadPart&response-content-type="
                              "text%2Fplain",
                              "");
  r.headers.Add("Content-Type", "text/plain");
  r.headers.Add("Content-MD5", "md5==");
  r.headers.Add("X-Amz-Meta-B", "2");
  r.headers.Add("x-amz-meta-a", " 1 ");
  EXPECT_EQ(SigV2StringToSign(r, "99"),
            "PUT\nmd5==\ntext/plain\n99\nx-amz-meta-a:1\nx-amz-meta-b:2\n"
            "/b/my%20key?partNumber=2&response-content-type=text/plain&uploadId=abc");
}

}  // namespace
}  // namespace inferd::api::s3
