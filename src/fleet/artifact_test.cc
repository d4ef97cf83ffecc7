#include "fleet/artifact.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/clock.h"
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

  // Extracted once: asking again downloads nothing; a new version of the object is fetched.
  testing::SlowStore counted(**objects, [] {});
  ArtifactCache counted_cache(counted, tmp.path() / "models", {});
  auto cached = counted_cache.Get("s3://models/m.tar.gz");
  ASSERT_TRUE(cached.ok()) << cached.error().message;
  EXPECT_EQ(*cached, *dir);
  EXPECT_EQ(counted.gets(), 0);
  StringSource v2(MakeTarGz({{.path = "xgboost-model", .content = "w2"}}));
  ASSERT_TRUE((*objects)->Put("models", "m.tar.gz", {}, v2).ok());
  auto changed = counted_cache.Get("s3://models/m.tar.gz");
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_NE(*changed, *dir);
  EXPECT_EQ(ReadAll(*changed / "xgboost-model"), "w2");
  EXPECT_EQ(counted.gets(), 1);

  auto missing = cache.Get("s3://models/nope.tar.gz");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message,
              HasSubstr("model artifact s3://models/nope.tar.gz could not be fetched: "));
  auto bad = cache.Get("s3://models/bad.tar.gz");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message,
              HasSubstr("model artifact s3://models/bad.tar.gz is not a valid .tar.gz: "));
}

class ModelDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto objects = store::FilesystemStore::Open({.root = tmp_.path() / "objects", .fsync = false});
    ASSERT_TRUE(objects.ok());
    objects_ = std::move(*objects);
    ASSERT_TRUE(objects_->CreateBucket("bkt").ok());
    fs::create_directories(tmp_.path() / "models");
  }
  void Put(const std::string& key, const std::string& data) {
    StringSource body(data);
    ASSERT_TRUE(objects_->Put("bkt", key, {}, body).ok()) << key;
  }
  testing::TempDir tmp_;
  std::unique_ptr<store::FilesystemStore> objects_;
};

TEST_F(ModelDataTest, PrefixDownloadsEveryObjectKeepingPaths) {
  Put("models/m1/xgboost-model", "weights");
  Put("models/m1/code/inference.py", "print(1)");
  Put("models/m1/", "");  // a folder marker, as consoles create them
  Put("models/m10/other", "not mine");
  ArtifactCache cache(*objects_, tmp_.path() / "models", {});
  auto dir = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/models/m1/"}, std::chrono::seconds(60));
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(ReadAll(*dir / "xgboost-model"), "weights");
  EXPECT_EQ(ReadAll(*dir / "code/inference.py"), "print(1)");
  EXPECT_FALSE(fs::exists(*dir / "other"));
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(*dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);
  // Cached while unchanged; a changed object is a new version.
  auto again =
      cache.Get({ModelData::Kind::kPrefix, "s3://bkt/models/m1/"}, std::chrono::seconds(60));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *dir);
  Put("models/m1/xgboost-model", "weights v2");
  auto changed =
      cache.Get({ModelData::Kind::kPrefix, "s3://bkt/models/m1/"}, std::chrono::seconds(60));
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(*changed, *dir);
  EXPECT_EQ(ReadAll(*changed / "xgboost-model"), "weights v2");
}

TEST_F(ModelDataTest, PrefixRefusesEscapingKeysAndEmptyPrefixes) {
  Put("evil/../../../etc/x", "escape");
  ArtifactCache cache(*objects_, tmp_.path() / "models", {});
  auto evil = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/evil/"}, std::chrono::seconds(60));
  ASSERT_FALSE(evil.ok());
  EXPECT_EQ(evil.error().message,
            "model data s3://bkt/evil/ holds key evil/../../../etc/x that would escape the model "
            "directory");
  EXPECT_FALSE(fs::exists(tmp_.path() / "etc"));
  Put("dots/./x", "dot");
  auto dots = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/dots/"}, std::chrono::seconds(60));
  ASSERT_FALSE(dots.ok());
  EXPECT_THAT(dots.error().message, HasSubstr("refused"));
  auto empty = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/nothing/"}, std::chrono::seconds(60));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message,
            "model data s3://bkt/nothing/ could not be fetched: no objects under this prefix");
  auto no_slash =
      cache.Get({ModelData::Kind::kPrefix, "s3://bkt/models"}, std::chrono::seconds(60));
  ASSERT_FALSE(no_slash.ok());
  EXPECT_THAT(no_slash.error().message, HasSubstr("must end with /"));
  // Nothing half-done is left in the cache.
  for (const auto& e : fs::directory_iterator(tmp_.path() / "models")) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

TEST_F(ModelDataTest, SingleUncompressedObject) {
  Put("models/model.bin", "weights");
  ArtifactCache cache(*objects_, tmp_.path() / "models", {});
  auto dir =
      cache.Get({ModelData::Kind::kObject, "s3://bkt/models/model.bin"}, std::chrono::seconds(60));
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_EQ(ReadAll(*dir / "model.bin"), "weights");
  auto missing =
      cache.Get({ModelData::Kind::kObject, "s3://bkt/models/nope"}, std::chrono::seconds(60));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message,
              HasSubstr("model data s3://bkt/models/nope could not be fetched"));
}

TEST_F(ModelDataTest, DownloadsSlowerThanTheTimeoutFail) {
  Put("slow/a", "0123456789");
  Put("slow/b", "0123456789");
  Put("slow.tar.gz", MakeTarGz({{.path = "xgboost-model", .content = "weights"}}));
  FakeClock clock;
  testing::SlowStore slow(*objects_, [&] { clock.Advance(std::chrono::seconds(10)); });
  ArtifactCache cache(slow, tmp_.path() / "models", {}, clock);
  auto prefix = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/slow/"}, std::chrono::seconds(60));
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.error().message,
            "model artifact s3://bkt/slow/ was not downloaded within "
            "ModelDataDownloadTimeoutInSeconds (60 s)");
  auto tgz = cache.Get({ModelData::Kind::kTarGz, "s3://bkt/slow.tar.gz"}, std::chrono::seconds(60));
  ASSERT_FALSE(tgz.ok());
  EXPECT_EQ(tgz.error().message,
            "model artifact s3://bkt/slow.tar.gz was not downloaded within "
            "ModelDataDownloadTimeoutInSeconds (60 s)");
  for (const auto& e : fs::directory_iterator(tmp_.path() / "models")) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
  // With time enough, the same downloads pass.
  auto ok = cache.Get({ModelData::Kind::kPrefix, "s3://bkt/slow/"}, std::chrono::seconds(3600));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ReadAll(*ok / "b"), "0123456789");
}

}  // namespace
}  // namespace inferd::fleet
