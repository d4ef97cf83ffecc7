#include "dispatch/naming.h"

#include <gtest/gtest.h>

namespace inferd::dispatch {
namespace {

AsyncConfig Config(std::string output, std::string failure = "") {
  AsyncConfig c;
  c.s3_output_path = std::move(output);
  c.s3_failure_path = std::move(failure);
  return c;
}

const std::string kId = "2f4dcf85-01b8-418c-8c93-2b30fcdd1ab8";

TEST(NamingTest, OutputAndFailureObjectsAreNamedByTheOutputId) {
  auto l =
      MakeLocations(Config("s3://bucket/async/out", "s3://bucket/async/fail"), "ep", "", "", kId);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->output, "s3://bucket/async/out/" + kId + ".out");
  EXPECT_EQ(l->failure, "s3://bucket/async/fail/" + kId + "-error.out");
}

TEST(NamingTest, NoFailurePathMeansNoFailureLocation) {
  auto l = MakeLocations(Config("s3://bucket/out"), "ep", "", "", kId);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->failure, "");
}

TEST(NamingTest, ExtensionAndFilename) {
  AsyncConfig c = Config("s3://bucket/out", "s3://bucket/fail");
  EXPECT_EQ(MakeLocations(c, "ep", "2026/11", "", kId)->output,
            "s3://bucket/out/2026/11/" + kId + ".out");
  EXPECT_EQ(MakeLocations(c, "ep", "", "result.json", kId)->output, "s3://bucket/out/result.json");
  auto both = MakeLocations(c, "ep", "batch-7", "result.json", kId);
  EXPECT_EQ(both->output, "s3://bucket/out/batch-7/result.json");
  // A Filename names only the output: the failure keeps the id.
  EXPECT_EQ(both->failure, "s3://bucket/fail/" + kId + "-error.out");
}

TEST(NamingTest, ExactlyOneSlashAtEachJoin) {
  AsyncConfig c = Config("s3://bucket/out///", "s3://bucket/fail/");
  auto l = MakeLocations(c, "ep", "//a//b/", "", kId);
  EXPECT_EQ(l->output, "s3://bucket/out/a//b/" + kId + ".out");  // slashes inside a part stay
  EXPECT_EQ(l->failure, "s3://bucket/fail/" + kId + "-error.out");
  EXPECT_EQ(MakeLocations(Config("s3://bucket"), "ep", "", "", kId)->output,
            "s3://bucket/" + kId + ".out");
  EXPECT_EQ(MakeLocations(Config("s3://bucket/"), "ep", "x/", "f.out", kId)->output,
            "s3://bucket/x/f.out");
  EXPECT_EQ(JoinPath("https://host/bucket/p/", "/k"), "https://host/bucket/p/k");
  EXPECT_EQ(JoinPath("s3://b/p", ""), "s3://b/p");
}

TEST(NamingTest, MissingS3OutputPathIsAValidationErrorNamingIt) {
  auto l = MakeLocations(Config(""), "my-endpoint", "", "", kId);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::kValidation);
  EXPECT_NE(l.error().message.find("my-endpoint"), std::string::npos);
  EXPECT_NE(l.error().message.find("S3OutputPath"), std::string::npos);
}

}  // namespace
}  // namespace inferd::dispatch
