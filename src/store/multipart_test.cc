#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

namespace fs = std::filesystem;
using testing::PatternSource;
using testing::ReadAll;
using testing::StoreFixture;
using testing::StringSource;

std::string Md5(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), len);
}

std::string Hex(const std::string& bytes) {
  std::string out;
  char buf[3];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

std::string Pattern(uint64_t size, uint64_t offset = 0) {
  std::string out(size, '\0');
  for (uint64_t i = 0; i < size; ++i) out[i] = PatternSource::Byte(offset + i);
  return out;
}

constexpr uint64_t kMiB = 1024 * 1024;

class MultipartTest : public StoreFixture {
 protected:
  std::string Create(const std::string& key, const ObjectAttributes& attrs = {}) {
    auto id = store_->CreateMultipartUpload("bkt", key, attrs);
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : "";
  }
  Result<PartInfo> Upload(const std::string& key, const std::string& id, int n,
                          const std::string& data) {
    StringSource src(data);
    return store_->UploadPart("bkt", key, id, n, src);
  }
  std::vector<std::string> UploadFiles(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(root() / "uploads" / id)) {
      out.push_back(e.path().filename());
    }
    return out;
  }
};

TEST_F(MultipartTest, CompletesThreePartsWithS3Etag) {
  ObjectAttributes attrs;
  attrs.content_type = "application/x-tar";
  attrs.headers = {{"x-amz-meta-job", "42"}};
  std::string id = Create("big/model.tar.gz", attrs);
  const std::string p1 = Pattern(5 * kMiB), p2 = Pattern(5 * kMiB, 5 * kMiB), p3 = "tail";
  // Out of order, as parallel uploaders do.
  ASSERT_TRUE(Upload("big/model.tar.gz", id, 3, p3).ok());
  auto r1 = Upload("big/model.tar.gz", id, 1, p1);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->etag, Hex(Md5(p1)));
  EXPECT_EQ(r1->size, 5 * kMiB);
  EXPECT_EQ(r1->part_number, 1);
  ASSERT_TRUE(Upload("big/model.tar.gz", id, 2, p2).ok());

  auto parts = store_->ListParts("bkt", "big/model.tar.gz", id);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].part_number, 1);
  EXPECT_EQ((*parts)[1].part_number, 2);
  EXPECT_EQ((*parts)[2].part_number, 3);
  EXPECT_EQ((*parts)[2].etag, Hex(Md5(p3)));
  EXPECT_EQ((*parts)[2].size, 4u);
  EXPECT_EQ((*parts)[2].last_modified, 1700000000);

  auto info = store_->CompleteMultipartUpload(
      "bkt", "big/model.tar.gz", id,
      {{1, "\"" + Hex(Md5(p1)) + "\""}, {2, Hex(Md5(p2))}, {3, "\"" + Hex(Md5(p3)) + "\""}});
  ASSERT_TRUE(info.ok()) << info.error().message;
  const std::string expected_etag = Hex(Md5(Md5(p1) + Md5(p2) + Md5(p3))) + "-3";
  EXPECT_EQ(info->etag, expected_etag);
  EXPECT_EQ(info->size, 10 * kMiB + 4);
  EXPECT_EQ(info->attributes.content_type, "application/x-tar");

  auto head = store_->Head("bkt", "big/model.tar.gz");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, expected_etag);
  ASSERT_EQ(head->attributes.headers.size(), 1u);
  EXPECT_EQ(head->attributes.headers[0].value, "42");
  EXPECT_EQ(GetString("big/model.tar.gz"), p1 + p2 + p3);
  EXPECT_EQ(GetString("big/model.tar.gz", RangeSpec{5 * kMiB - 2, 5 * kMiB + 1}),
            p1.substr(5 * kMiB - 2) + p2.substr(0, 2));

  // The upload is gone, and so are its files.
  EXPECT_TRUE(store_->ListMultipartUploads("bkt")->empty());
  EXPECT_EQ(store_->ListParts("bkt", "big/model.tar.gz", id).error().aws_code, "NoSuchUpload");
  EXPECT_FALSE(fs::exists(root() / "uploads" / id));
  EXPECT_EQ(DataFiles().size(), 1u);
}

TEST_F(MultipartTest, SubsetOfPartsAndReuploadedPart) {
  std::string id = Create("k");
  ASSERT_TRUE(Upload("k", id, 1, "first try").ok());
  auto again = Upload("k", id, 1, "second");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(Upload("k", id, 2, "unused").ok());
  auto parts = store_->ListParts("bkt", "k", id);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].etag, Hex(Md5("second")));
  EXPECT_EQ(UploadFiles(id).size(), 2u);  // the replaced part's file is gone

  // A single (last) part may be small; unlisted parts are dropped.
  auto info = store_->CompleteMultipartUpload("bkt", "k", id, {{1, again->etag}});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->etag, Hex(Md5(Md5("second"))) + "-1");
  EXPECT_EQ(GetString("k"), "second");
  EXPECT_FALSE(fs::exists(root() / "uploads" / id));
}

TEST_F(MultipartTest, CompleteReplacesExistingObject) {
  ASSERT_TRUE(Put("k", "old").ok());
  auto reader = store_->Get("bkt", "k");
  std::string id = Create("k");
  auto p = Upload("k", id, 1, "new");
  ASSERT_TRUE(store_->CompleteMultipartUpload("bkt", "k", id, {{1, p->etag}}).ok());
  EXPECT_EQ(GetString("k"), "new");
  EXPECT_EQ(ReadAll(**reader), "old");
  EXPECT_EQ(DataFiles().size(), 1u);
}

TEST_F(MultipartTest, CompleteRules) {
  std::string id = Create("k");
  const std::string big = Pattern(5 * kMiB);
  auto p1 = Upload("k", id, 1, big);
  auto p2 = Upload("k", id, 2, "small");
  auto p3 = Upload("k", id, 3, "tail");
  ASSERT_TRUE(p1.ok() && p2.ok() && p3.ok());
  auto complete = [&](std::vector<CompletedPart> parts) {
    auto r = store_->CompleteMultipartUpload("bkt", "k", id, parts);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::string("ok");
    EXPECT_EQ(r.error().code, id == "x" ? Errc::kNotFound : Errc::kValidation);
    return r.error().aws_code;
  };
  EXPECT_EQ(complete({{2, p2->etag}, {1, p1->etag}}), "InvalidPartOrder");
  EXPECT_EQ(complete({{1, p1->etag}, {1, p1->etag}}), "InvalidPartOrder");
  EXPECT_EQ(complete({{1, p1->etag}, {4, p2->etag}}), "InvalidPart");
  EXPECT_EQ(complete({{1, p1->etag}, {2, p3->etag}}), "InvalidPart");  // wrong ETag
  EXPECT_EQ(complete({{1, p1->etag}, {2, p2->etag}, {3, p3->etag}}), "EntityTooSmall");
  EXPECT_EQ(complete({}), "MalformedXML");

  // Nothing happened: the upload still completes.
  auto ok = store_->CompleteMultipartUpload("bkt", "k", id, {{1, p1->etag}, {3, p3->etag}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->size, 5 * kMiB + 4);
  // And only once.
  auto again = store_->CompleteMultipartUpload("bkt", "k", id, {{1, p1->etag}, {3, p3->etag}});
  EXPECT_EQ(again.error().aws_code, "NoSuchUpload");
}

TEST_F(MultipartTest, UnknownUploadsAndBadPartNumbers) {
  std::string id = Create("k");
  for (const std::string& bad_id :
       {std::string("nope"), std::string("../../etc"),
        std::string("00000000-0000-4000-8000-000000000000"), std::string("")}) {
    auto r = Upload("k", bad_id, 1, "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kNotFound);
    EXPECT_EQ(r.error().aws_code, "NoSuchUpload");
    EXPECT_EQ(store_->AbortMultipartUpload("bkt", "k", bad_id).error().aws_code, "NoSuchUpload");
  }
  // The id belongs to another key or bucket.
  EXPECT_EQ(Upload("other", id, 1, "x").error().aws_code, "NoSuchUpload");
  ASSERT_TRUE(store_->CreateBucket("bkt2").ok());
  StringSource src("x");
  EXPECT_EQ(store_->UploadPart("bkt2", "k", id, 1, src).error().aws_code, "NoSuchUpload");
  EXPECT_EQ(store_->UploadPart("nope", "k", id, 1, src).error().aws_code, "NoSuchBucket");

  for (int n : {0, -1, 10001}) {
    auto r = Upload("k", id, n, "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kValidation);
    EXPECT_EQ(r.error().aws_code, "InvalidArgument");
  }
  EXPECT_TRUE(Upload("k", id, 10000, "x").ok());
  EXPECT_EQ(store_->CreateMultipartUpload("bkt", std::string(1025, 'k'), {}).error().aws_code,
            "KeyTooLongError");
  EXPECT_EQ(store_->CreateMultipartUpload("nope", "k", {}).error().aws_code, "NoSuchBucket");
}

TEST_F(MultipartTest, AbortRemovesEverything) {
  std::string id = Create("k");
  ASSERT_TRUE(Upload("k", id, 1, "aaa").ok());
  ASSERT_TRUE(Upload("k", id, 2, "bbb").ok());
  ASSERT_EQ(UploadFiles(id).size(), 2u);
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "k", id).ok());
  EXPECT_FALSE(fs::exists(root() / "uploads" / id));
  EXPECT_TRUE(DataFiles().empty());
  EXPECT_TRUE(store_->ListMultipartUploads("bkt")->empty());
  EXPECT_EQ(Upload("k", id, 3, "ccc").error().aws_code, "NoSuchUpload");
  EXPECT_EQ(store_->AbortMultipartUpload("bkt", "k", id).error().aws_code, "NoSuchUpload");
  EXPECT_EQ(store_->ListParts("bkt", "k", id).error().aws_code, "NoSuchUpload");
  EXPECT_EQ(GetString("k"), "<error: NoSuchKey>");
}

TEST_F(MultipartTest, PartBeforeCommitAndBodyFailures) {
  std::string id = Create("k");
  ASSERT_TRUE(Upload("k", id, 1, "good").ok());
  PutOptions options;
  options.before_commit = [] { return Status(Error(Errc::kValidation, "bad", "BadDigest")); };
  StringSource src("replacement");
  EXPECT_EQ(store_->UploadPart("bkt", "k", id, 1, src, options).error().aws_code, "BadDigest");
  PatternSource failing(1 << 20, 1000);
  EXPECT_EQ(store_->UploadPart("bkt", "k", id, 1, failing).error().code, Errc::kUnavailable);
  auto parts = store_->ListParts("bkt", "k", id);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].etag, Hex(Md5("good")));
  EXPECT_EQ(UploadFiles(id).size(), 1u);
}

TEST_F(MultipartTest, ListUploadsSortedByKeyThenInitiation) {
  std::string b = Create("b");
  clock_.Advance(std::chrono::seconds(1));
  std::string a1 = Create("a");
  clock_.Advance(std::chrono::seconds(1));
  std::string a2 = Create("a");
  auto list = store_->ListMultipartUploads("bkt");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].key, "a");
  EXPECT_EQ((*list)[0].upload_id, a1);
  EXPECT_EQ((*list)[0].initiated, 1700000001);
  EXPECT_EQ((*list)[1].upload_id, a2);
  EXPECT_EQ((*list)[2].upload_id, b);
  EXPECT_EQ(store_->ListMultipartUploads("nope").error().aws_code, "NoSuchBucket");
}

TEST_F(MultipartTest, SurvivesRestart) {
  std::string id = Create("k");
  auto p1 = Upload("k", id, 1, "persisted");
  ASSERT_TRUE(p1.ok());
  Reopen();
  auto p2 = Upload("k", id, 2, "!");
  ASSERT_TRUE(p2.ok());
  // min part size: part 1 is small, so only the last may be; complete with part 1 alone.
  ASSERT_TRUE(store_->CompleteMultipartUpload("bkt", "k", id, {{1, p1->etag}}).ok());
  EXPECT_EQ(GetString("k"), "persisted");
}

}  // namespace
}  // namespace inferd::store
