#include "fleet/artifact.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fleet/test_util.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::fleet {
namespace {

namespace fs = std::filesystem;
using store::testing::StringSource;
using testing::Entry;
using ::testing::HasSubstr;
using testing::MakeTarGz;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ExtractTest : public ::testing::Test {
 protected:
  Status Extract(const std::string& archive, ExtractLimits limits = {}) {
    StringSource src(archive, 1000);
    return ExtractTarGz(src, dest_, limits);
  }
  testing::TempDir tmp_;
  fs::path dest_ = tmp_.path() / "model";
};

TEST_F(ExtractTest, ExtractsFilesDirectoriesAndInnerLinks) {
  Status st = Extract(MakeTarGz({{.path = "xgboost-model", .content = "weights"},
                                 {.path = "code", .directory = true},
                                 {.path = "code/inference.py", .content = "print(1)"},
                                 {.path = "code/link", .symlink = "../xgboost-model"},
                                 {.path = "copy", .hardlink = "xgboost-model"}}));
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(ReadAll(dest_ / "xgboost-model"), "weights");
  EXPECT_EQ(ReadAll(dest_ / "code/inference.py"), "print(1)");
  EXPECT_EQ(ReadAll(dest_ / "code/link"), "weights");
  EXPECT_EQ(ReadAll(dest_ / "copy"), "weights");
}

TEST_F(ExtractTest, RefusesDotDot) {
  Status st = Extract(MakeTarGz({{.path = "../x", .content = "evil"}}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kValidation);
  EXPECT_THAT(st.error().message, HasSubstr("escapes the model directory"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "x"));
  EXPECT_FALSE(fs::exists(dest_));  // nothing left behind
}

TEST_F(ExtractTest, RefusesAbsolutePath) {
  Status st = Extract(MakeTarGz({{.path = "/tmp/inferd-fleet-test-abs", .content = "evil"}}));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("absolute path"));
  EXPECT_FALSE(fs::exists("/tmp/inferd-fleet-test-abs"));
}

TEST_F(ExtractTest, RefusesSymlinkOutside) {
  Status st = Extract(MakeTarGz({{.path = "a/link", .symlink = "../../etc"}}));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("symlink a/link points outside"));
  st = Extract(MakeTarGz({{.path = "link", .symlink = "/etc/passwd"}}));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("points outside"));
}

TEST_F(ExtractTest, RefusesHardlinkOutside) {
  Status st = Extract(MakeTarGz({{.path = "h", .hardlink = "/etc/passwd"}}));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("hardlink h points outside"));
}

TEST_F(ExtractTest, RefusesBombs) {
  std::string zeros(4 << 20, '\0');
  Status st = Extract(MakeTarGz({{.path = "big", .content = zeros}}), {.max_bytes = 1 << 20});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("more than 1048576 bytes"));
  st = Extract(MakeTarGz({{.path = "big", .content = zeros}}), {.max_ratio = 10});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("compression ratio exceeds 10"));
  EXPECT_FALSE(fs::exists(dest_));
}

TEST_F(ExtractTest, RefusesGarbage) {
  Status st = Extract(std::string(2000, 'x'));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kValidation);
}

TEST(ArtifactCacheTest, FetchesOnceAndNamesMissingArtifacts) {
  testing::TempDir tmp;
  auto objects = store::FilesystemStore::Open({.root = tmp.path() / "objects", .fsync = false});
  ASSERT_TRUE(objects.ok());
  ASSERT_TRUE((*objects)->CreateBucket("models").ok());
  StringSource body(MakeTarGz({{.path = "xgboost-model", .content = "w"}}));
  ASSERT_TRUE((*objects)->Put("models", "m.tar.gz", {}, body).ok());
  StringSource bad_body("not an archive at all, certainly not gzip");
  ASSERT_TRUE((*objects)->Put("models", "bad.tar.gz", {}, bad_body).ok());

  ArtifactCache cache(**objects, tmp.path() / "models", {});
  auto dir = cache.Get("s3://models/m.tar.gz");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(ReadAll(*dir / "xgboost-model"), "w");
  auto again = cache.Get("s3://models/m.tar.gz");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *dir);

  auto missing = cache.Get("s3://models/nope.tar.gz");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message,
              HasSubstr("model artifact s3://models/nope.tar.gz could not be fetched: "));
  auto bad = cache.Get("s3://models/bad.tar.gz");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message,
              HasSubstr("model artifact s3://models/bad.tar.gz is not a valid .tar.gz: "));
}

}  // namespace
}  // namespace inferd::fleet
