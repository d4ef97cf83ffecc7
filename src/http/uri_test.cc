#include "http/uri.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace inferd::http {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(PercentDecode, DecodesEscapes) {
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("plain"), "plain");
  EXPECT_EQ(PercentDecode("a%20b"), "a b");
  EXPECT_EQ(PercentDecode("%41%42c"), "ABc");
  EXPECT_EQ(PercentDecode("a%2Fb%2fc"), "a/b/c");  // either hex case
  EXPECT_EQ(PercentDecode("%E1%88%b4"), "\xe1\x88\xb4");
  EXPECT_EQ(PercentDecode("%00", false), std::string("\0", 1));
  EXPECT_EQ(PercentDecode("100%25"), "100%");
  EXPECT_EQ(PercentDecode("%2525"), "%25");  // decodes one level only
}

TEST(PercentDecode, PlusIsSpaceOnlyInFormEncoding) {
  EXPECT_EQ(PercentDecode("a+b"), "a+b");
  EXPECT_EQ(PercentDecode("a+b", /*plus_as_space=*/true), "a b");
  EXPECT_EQ(PercentDecode("a%2Bb", /*plus_as_space=*/true), "a+b");
}

TEST(PercentDecode, RejectsMalformedEscapes) {
  EXPECT_EQ(PercentDecode("%"), std::nullopt);
  EXPECT_EQ(PercentDecode("abc%"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("abc%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4g"), std::nullopt);
  EXPECT_EQ(PercentDecode("%g4"), std::nullopt);
  EXPECT_EQ(PercentDecode("ok%20then%"), std::nullopt);
}

TEST(AwsUriEncode, KeepsOnlyUnreservedCharacters) {
  const std::string unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
  EXPECT_EQ(AwsUriEncode(unreserved, false), unreserved);
  EXPECT_EQ(AwsUriEncode("", false), "");
  EXPECT_EQ(AwsUriEncode("a b", false), "a%20b");  // never '+'
  EXPECT_EQ(AwsUriEncode("a+b=c&d", false), "a%2Bb%3Dc%26d");
  EXPECT_EQ(AwsUriEncode("*!'()$:@,;", false), "%2A%21%27%28%29%24%3A%40%2C%3B");
  EXPECT_EQ(AwsUriEncode("100%", false), "100%25");
  EXPECT_EQ(AwsUriEncode("\xe1\x88\xb4", false), "%E1%88%B4");  // upper-case hex, byte by byte
  EXPECT_EQ(AwsUriEncode(std::string("\0\x7f\xff", 3), false), "%00%7F%FF");
}

TEST(AwsUriEncode, SlashHandling) {
  EXPECT_EQ(AwsUriEncode("/a b/c", true), "/a%20b/c");
  EXPECT_EQ(AwsUriEncode("/a b/c", false), "%2Fa%20b%2Fc");
  EXPECT_EQ(AwsUriEncode("AKID/20150830/us-east-1/s3/aws4_request", false),
            "AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request");
}

TEST(AwsUriEncode, RoundTripsThroughPercentDecode) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(PercentDecode(AwsUriEncode(all, false)), all);
  EXPECT_EQ(PercentDecode(AwsUriEncode(all, true)), all);
}

TEST(ParseQuery, SplitsAndDecodes) {
  EXPECT_EQ(ParseQuery(""), Params{});
  EXPECT_EQ(ParseQuery("a=1&b=&c"), (Params{{"a", "1"}, {"b", ""}, {"c", ""}}));
  EXPECT_EQ(ParseQuery("x%20y=a%2Fb&z=%E1%88%B4"), (Params{{"x y", "a/b"}, {"z", "\xe1\x88\xb4"}}));
  // Order and duplicates are preserved.
  EXPECT_EQ(ParseQuery("k=2&k=1&a=0"), (Params{{"k", "2"}, {"k", "1"}, {"a", "0"}}));
  // Only the first '=' separates name from value.
  EXPECT_EQ(ParseQuery("a=b=c"), (Params{{"a", "b=c"}}));
  EXPECT_EQ(ParseQuery("=v"), (Params{{"", "v"}}));
}

TEST(ParseQuery, SkipsEmptyParts) {
  EXPECT_EQ(ParseQuery("&"), Params{});
  EXPECT_EQ(ParseQuery("&&a=1&&b=2&"), (Params{{"a", "1"}, {"b", "2"}}));
}

TEST(ParseQuery, PlusAsSpaceForForms) {
  EXPECT_EQ(ParseQuery("q=a+b"), (Params{{"q", "a+b"}}));
  EXPECT_EQ(ParseQuery("q=a+b&r+s=%2B", true), (Params{{"q", "a b"}, {"r s", "+"}}));
  EXPECT_EQ(ParseQuery("Action=CreateTopic&Name=my+topic", true),
            (Params{{"Action", "CreateTopic"}, {"Name", "my topic"}}));
}

TEST(ParseQuery, KeepsMalformedEscapesVerbatim) {
  EXPECT_EQ(ParseQuery("a=%zz&b%=1&c=%41"), (Params{{"a", "%zz"}, {"b%", "1"}, {"c", "A"}}));
  EXPECT_EQ(ParseQuery("a=100%"), (Params{{"a", "100%"}}));
}

TEST(FindParam, ReturnsFirstValue) {
  Params params = ParseQuery("k=2&k=1&empty=&flag");
  EXPECT_EQ(FindParam(params, "k"), "2");
  EXPECT_EQ(FindParam(params, "empty"), "");
  EXPECT_EQ(FindParam(params, "flag"), "");
  EXPECT_EQ(FindParam(params, "K"), std::nullopt);  // names are case-sensitive
  EXPECT_EQ(FindParam(params, "missing"), std::nullopt);
}

}  // namespace
}  // namespace inferd::http
