#include "api/runtime/request_parse.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace inferd::api::runtime {
namespace {

http::Request Async(std::string endpoint = "ep-1") {
  http::Request r;
  r.method = "POST";
  r.path = "/endpoints/" + endpoint + "/async-invocations";
  return r;
}

http::Request Sync(std::string endpoint = "ep-1") {
  http::Request r;
  r.method = "POST";
  r.path = "/endpoints/" + endpoint + "/invocations";
  return r;
}

std::string AsyncError(const http::Request& r) {
  auto parsed = ParseInvokeEndpointAsync(r, "us-east-1");
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.error().code, Errc::kValidation);
  return parsed.error().message;
}

TEST(ParseRuntimePath, BothOperations) {
  auto a = ParseRuntimePath("/endpoints/my-ep/async-invocations");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint, "my-ep");
  EXPECT_TRUE(a->async);
  auto s = ParseRuntimePath("/endpoints/my%2Dep/invocations");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->endpoint, "my-ep");
  EXPECT_FALSE(s->async);
  EXPECT_FALSE(ParseRuntimePath("/endpoints/x/other").ok());
}

// What botocore 1.43.11 sends (spec §2.2): every input in a header, no body.
TEST(ParseInvokeEndpointAsync, BotocoreRequest) {
  http::Request r = Async();
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/in.csv");
  r.headers.Add("X-Amzn-SageMaker-Content-Type", "text/csv");
  r.headers.Add("X-Amzn-SageMaker-Accept", "text/csv");
  r.headers.Add("X-Amzn-SageMaker-Inference-Id", "id-1");
  r.headers.Add("X-Amzn-SageMaker-RequestTTLSeconds", "600");
  r.headers.Add("X-Amzn-SageMaker-InvocationTimeoutSeconds", "900");
  r.headers.Add("X-Amzn-SageMaker-Custom-Attributes", "a=b");
  r.headers.Add("X-Amzn-SageMaker-S3OutputPathExtension", "batch/7");
  r.headers.Add("X-Amzn-SageMaker-Filename", "result.json");
  auto parsed = ParseInvokeEndpointAsync(r, "eu-west-1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->region, "eu-west-1");
  EXPECT_EQ(parsed->endpoint, "ep-1");
  EXPECT_EQ(parsed->input_location, "s3://b/in.csv");
  EXPECT_EQ(parsed->inline_body, "");
  EXPECT_EQ(parsed->content_type, "text/csv");
  EXPECT_EQ(parsed->accept, "text/csv");
  EXPECT_EQ(parsed->inference_id, "id-1");
  EXPECT_EQ(parsed->ttl_seconds, 600);
  EXPECT_EQ(parsed->invocation_timeout_seconds, 900);
  EXPECT_EQ(parsed->custom_attributes, "a=b");
  EXPECT_EQ(parsed->output_path_extension, "batch/7");
  EXPECT_EQ(parsed->filename, "result.json");
}

TEST(ParseInvokeEndpointAsync, DefaultsWhenHeadersAbsent) {
  http::Request r = Async();
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "https://host/b/k");
  r.headers.Add("Content-Type", "application/octet-stream");  // what the JS SDK adds
  auto parsed = ParseInvokeEndpointAsync(r, "us-east-1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->ttl_seconds, 21600);
  EXPECT_EQ(parsed->invocation_timeout_seconds, 900);
  EXPECT_EQ(parsed->inference_id, "");
  EXPECT_EQ(parsed->content_type, "");  // the payload's type comes only from its own header
}

TEST(ParseInvokeEndpointAsync, InlineBody) {
  http::Request r = Async();
  r.body = "1,2,3";
  r.headers.Add("X-Amzn-SageMaker-Content-Type", "text/csv");
  auto parsed = ParseInvokeEndpointAsync(r, "us-east-1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->inline_body, "1,2,3");
  EXPECT_EQ(parsed->input_location, "");

  r.body = std::string(kMaxAsyncBodyBytes, 'x');
  EXPECT_TRUE(ParseInvokeEndpointAsync(r, "us-east-1").ok());
  r.body += "x";
  EXPECT_EQ(AsyncError(r),
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member "
            "must have length less than or equal to 128000");
}

TEST(ParseInvokeEndpointAsync, ExactlyOneOfBodyAndInputLocation) {
  http::Request both = Async();
  both.body = "x";
  both.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/k");
  EXPECT_NE(AsyncError(both).find("mutually exclusive"), std::string::npos);
  EXPECT_NE(AsyncError(Async()).find("An input is required"), std::string::npos);
}

TEST(ParseInvokeEndpointAsync, EachConstraintInAwsWording) {
  struct Case {
    std::string header, value, message;
  };
  const std::string head = "1 validation error detected: ";
  std::vector<Case> cases = {
      {"X-Amzn-SageMaker-InputLocation", "ftp://b/k",
       "Value 'ftp://b/k' at 'inputLocation' failed to satisfy constraint: Member must satisfy "
       "regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"},
      {"X-Amzn-SageMaker-InputLocation", "s3://b/" + std::string(1020, 'k'),
       "Value 's3://b/" + std::string(1020, 'k') +
           "' at 'inputLocation' failed to satisfy constraint: Member must have length less "
           "than or equal to 1024"},
      {"X-Amzn-SageMaker-Inference-Id", std::string(65, 'i'),
       "Value '" + std::string(65, 'i') +
           "' at 'inferenceId' failed to satisfy constraint: Member must have length less than "
           "or equal to 64"},
      {"X-Amzn-SageMaker-Inference-Id", "bad\x01id",
       "Value 'bad\x01id' at 'inferenceId' failed to satisfy constraint: Member must satisfy "
       "regular expression pattern: \\A\\S[\\p{Print}]*\\z"},
      {"X-Amzn-SageMaker-S3OutputPathExtension", "s3://x",
       "Value 's3://x' at 's3OutputPathExtension' failed to satisfy constraint: Member must "
       "satisfy regular expression pattern: ^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$"},
      {"X-Amzn-SageMaker-Filename", "a.b.c",
       "Value 'a.b.c' at 'filename' failed to satisfy constraint: Member must satisfy regular "
       "expression pattern: ^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$"},
      {"X-Amzn-SageMaker-Filename", std::string(33, 'f'),
       "Value '" + std::string(33, 'f') +
           "' at 'filename' failed to satisfy constraint: Member must have length less than or "
           "equal to 32"},
      {"X-Amzn-SageMaker-RequestTTLSeconds", "59",
       "Value '59' at 'requestTTLSeconds' failed to satisfy constraint: Member must have value "
       "greater than or equal to 60"},
      {"X-Amzn-SageMaker-RequestTTLSeconds", "21601",
       "Value '21601' at 'requestTTLSeconds' failed to satisfy constraint: Member must have "
       "value less than or equal to 21600"},
      {"X-Amzn-SageMaker-InvocationTimeoutSeconds", "0",
       "Value '0' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must have "
       "value greater than or equal to 1"},
      {"X-Amzn-SageMaker-InvocationTimeoutSeconds", "3601",
       "Value '3601' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must "
       "have value less than or equal to 3600"},
      {"X-Amzn-SageMaker-InvocationTimeoutSeconds", "ten",
       "Value 'ten' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must be "
       "an integer"},
      {"X-Amzn-SageMaker-Content-Type", "text/\xc3\xa9",
       "Value 'text/\xc3\xa9' at 'contentType' failed to satisfy constraint: Member must "
       "satisfy regular expression pattern: \\p{ASCII}*"},
      {"X-Amzn-SageMaker-Accept", std::string(1025, 'a'),
       "Value '" + std::string(1025, 'a') +
           "' at 'accept' failed to satisfy constraint: Member must have length less than or "
           "equal to 1024"},
      // Sensitive: the value is not repeated.
      {"X-Amzn-SageMaker-Custom-Attributes", std::string(1025, 'c'),
       "Value at 'customAttributes' failed to satisfy constraint: Member must have length less "
       "than or equal to 1024"},
  };
  for (const auto& c : cases) {
    http::Request r = Async();
    if (c.header != "X-Amzn-SageMaker-InputLocation") {
      r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/in");
    }
    r.headers.Add(c.header, c.value);
    EXPECT_EQ(AsyncError(r), head + c.message) << c.header;
  }
}

TEST(ParseInvokeEndpointAsync, AcceptsTheEdgesOfEveryRange) {
  http::Request r = Async(std::string(63, 'e'));
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://bucket");
  r.headers.Add("X-Amzn-SageMaker-Inference-Id", std::string(64, 'i'));
  r.headers.Add("X-Amzn-SageMaker-Filename", "a-b_c.out");
  r.headers.Add("X-Amzn-SageMaker-S3OutputPathExtension", "x/y(1)!*'");
  r.headers.Add("X-Amzn-SageMaker-RequestTTLSeconds", "60");
  r.headers.Add("X-Amzn-SageMaker-InvocationTimeoutSeconds", "3600");
  auto parsed = ParseInvokeEndpointAsync(r, "us-east-1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->ttl_seconds, 60);
  EXPECT_EQ(parsed->invocation_timeout_seconds, 3600);
}

TEST(ParseInvokeEndpointAsync, EndpointNameAndSeveralViolations) {
  http::Request r = Async("bad_name");
  r.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/k");
  r.headers.Add("X-Amzn-SageMaker-Inference-Id", "");
  EXPECT_EQ(
      AsyncError(r),
      "3 validation errors detected: Value 'bad_name' at 'endpointName' failed to satisfy "
      "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
      "; Value '' at 'inferenceId' failed to satisfy constraint: Member must have length "
      "greater than or equal to 1; Value '' at 'inferenceId' failed to satisfy constraint: "
      "Member must satisfy regular expression pattern: \\A\\S[\\p{Print}]*\\z");
  http::Request long_name = Async(std::string(64, 'e'));
  long_name.headers.Add("X-Amzn-SageMaker-InputLocation", "s3://b/k");
  EXPECT_EQ(AsyncError(long_name),
            "1 validation error detected: Value '" + std::string(64, 'e') +
                "' at 'endpointName' failed to satisfy constraint: Member must have length less "
                "than or equal to 63");
}

TEST(ParseInvokeEndpoint, HeadersAndBody) {
  http::Request r = Sync();
  r.body = "1,2";
  r.headers.Add("Content-Type", "text/csv");
  r.headers.Add("Accept", "application/json");
  r.headers.Add("X-Amzn-SageMaker-Custom-Attributes", "k=v");
  r.headers.Add("X-Amzn-SageMaker-Target-Variant", "blue");
  r.headers.Add("X-Amzn-SageMaker-Inference-Id", "req-1");
  r.headers.Add("X-Amzn-SageMaker-Enable-Explanations", "`true`");  // ignored
  auto parsed = ParseInvokeEndpoint(r, "us-east-1");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->endpoint, "ep-1");
  EXPECT_EQ(parsed->body, "1,2");
  EXPECT_EQ(parsed->content_type, "text/csv");
  EXPECT_EQ(parsed->accept, "application/json");
  EXPECT_EQ(parsed->custom_attributes, "k=v");
  EXPECT_EQ(parsed->target_variant, "blue");
  EXPECT_EQ(parsed->inference_id, "req-1");
}

TEST(ParseInvokeEndpoint, LimitsAndUnsupportedFeatures) {
  http::Request big = Sync();
  big.body = std::string(kMaxSyncBodyBytes + 1, 'x');
  auto parsed = ParseInvokeEndpoint(big, "us-east-1");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, Errc::kPayloadTooLarge);
  EXPECT_EQ(parsed.error().message,
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member "
            "must have length less than or equal to 6291456");

  http::Request variant = Sync();
  variant.headers.Add("X-Amzn-SageMaker-Target-Variant", "no_underscores");
  EXPECT_FALSE(ParseInvokeEndpoint(variant, "us-east-1").ok());

  http::Request multi_model = Sync();
  multi_model.headers.Add("X-Amzn-SageMaker-Target-Model", "m.tar.gz");
  auto refused = ParseInvokeEndpoint(multi_model, "us-east-1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kValidation);
  EXPECT_NE(refused.error().message.find("multi-model endpoints"), std::string::npos);
}

// The hand-written matchers that run before the regular expressions give the same answers:
// every string of up to two bytes (all 256 values, so ASCII, controls and non-ASCII bytes),
// and longer samples built from the characters that matter to each pattern.
TEST(PatternMatchers, AgreeWithTheRegularExpressions) {
  std::vector<std::string> samples;
  for (int a = 0; a < 256; ++a) {
    samples.push_back(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) {
      samples.push_back(std::string{static_cast<char>(a), static_cast<char>(b)});
    }
  }
  samples.push_back("");
  const std::string pieces[] = {"a",        "Z",  "0",    "-",     "--",       " ",       "_",
                                ".",        "/",  "//",   "s3://", "https://", "http://", "S3://",
                                "\xC3\xA9", "\t", "\x7f", "\n",    "\0"};
  for (const auto& x : pieces) {
    for (const auto& y : pieces) {
      for (const auto& z : pieces) samples.push_back(x + y + z);
    }
  }
  for (std::string s : {"ep-1", "my--endpoint-2", "a", "-a", "a-", "inference-id 1",
                        "s3://bucket/key", "s3://bucket", "s3:///key", "https://h/p?q=1",
                        "https://", "s3://b/k with spaces", "s3://b/\xff"}) {
    samples.push_back(s);
  }
  for (const char* member : {"endpointName", "inferenceId", "inputLocation"}) {
    int decided = 0;
    for (const std::string& s : samples) {
      std::optional<bool> fast = MatchesPatternForTest(member, s, /*regex=*/false);
      if (!fast) continue;  // left to the expression
      ++decided;
      std::optional<bool> re = MatchesPatternForTest(member, s, /*regex=*/true);
      ASSERT_TRUE(re.has_value());
      ASSERT_EQ(*fast, *re) << member << " on \"" << s << "\" (" << s.size() << " bytes)";
    }
    EXPECT_GT(decided, 50000) << member;
  }
  EXPECT_EQ(MatchesPatternForTest("inputLocation", "s3://b/k", false), true);
  EXPECT_EQ(MatchesPatternForTest("inputLocation", "s3://b/\x01", false), std::nullopt);
}

}  // namespace
}  // namespace inferd::api::runtime
