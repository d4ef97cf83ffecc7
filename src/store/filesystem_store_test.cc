#include "store/filesystem_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "store/store_test_util.h"

namespace inferd::store {
namespace {

namespace fs = std::filesystem;
using testing::PatternSource;
using testing::ReadAll;
using testing::StoreFixture;
using testing::StringSource;

class FilesystemStoreTest : public StoreFixture {};

TEST_F(FilesystemStoreTest, PutGetHeadRoundTripWithAttributes) {
  ObjectAttributes attrs;
  attrs.content_type = "text/plain; charset=utf-8";
  attrs.headers = {{"Content-Encoding", "gzip"},
                   {"x-amz-meta-Owner", "me and \"you\""},
                   {"x-amz-meta-empty", ""},
                   {"x-amz-meta-utf8", "h\xC3\xA9llo \xFF raw"}};
  auto put = Put("dir/hello.txt", "hello world", attrs);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");  // md5("hello world")
  EXPECT_EQ(put->size, 11u);
  EXPECT_EQ(put->last_modified, 1700000000);

  auto head = store_->Head("bkt", "dir/hello.txt");
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(head->bucket, "bkt");
  EXPECT_EQ(head->key, "dir/hello.txt");
  EXPECT_EQ(head->size, 11u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->last_modified, 1700000000);
  EXPECT_EQ(head->attributes.content_type, attrs.content_type);
  ASSERT_EQ(head->attributes.headers.size(), attrs.headers.size());
  for (size_t i = 0; i < attrs.headers.size(); ++i) {
    EXPECT_EQ(head->attributes.headers[i].name, attrs.headers[i].name);
    EXPECT_EQ(head->attributes.headers[i].value, attrs.headers[i].value);
  }

  auto get = store_->Get("bkt", "dir/hello.txt");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ((*get)->first(), 0u);
  EXPECT_EQ((*get)->length(), 11u);
  EXPECT_EQ((*get)->info().etag, put->etag);
  EXPECT_EQ((*get)->info().attributes.content_type, attrs.content_type);
  EXPECT_EQ(ReadAll(**get), "hello world");
  EXPECT_EQ(ReadAll(**get), "");  // stays at the end
}

TEST_F(FilesystemStoreTest, EmptyObject) {
  auto put = Put("empty", "");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(GetString("empty"), "");
  EXPECT_EQ(store_->Head("bkt", "empty")->size, 0u);
}

// S3's precedence: a missing bucket is reported before anything wrong with the body, short or
// long; with the bucket there, the body's error is the answer.
TEST_F(FilesystemStoreTest, AMissingBucketComesBeforeABodyError) {
  PutOptions refuse;
  refuse.before_commit = [] { return Error(Errc::kValidation, "bad checksum", "BadDigest"); };
  for (const char* bucket : {"nope", "bkt"}) {
    const bool missing = std::string(bucket) == "nope";
    SCOPED_TRACE(bucket);
    StringSource checked("short");
    auto refused = store_->Put(bucket, "k", {}, checked, refuse);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().aws_code, missing ? "NoSuchBucket" : "BadDigest");
    PatternSource cut(1 << 20, /*fail_after=*/100);  // fails within the inline prefix
    auto failed = store_->Put(bucket, "k", {}, cut);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().aws_code, missing ? "NoSuchBucket" : "");
    PatternSource cut_late(4 << 20, /*fail_after=*/2 << 20);  // fails while staged
    auto failed_late = store_->Put(bucket, "k", {}, cut_late);
    ASSERT_FALSE(failed_late.ok());
    EXPECT_EQ(failed_late.error().aws_code, missing ? "NoSuchBucket" : "");
  }
  EXPECT_EQ(store_->Head("bkt", "k").error().aws_code, "NoSuchKey");
}

TEST_F(FilesystemStoreTest, MissingBucketAndKey) {
  StringSource src("x");
  auto put = store_->Put("nope", "k", {}, src);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, Errc::kNotFound);
  EXPECT_EQ(put.error().aws_code, "NoSuchBucket");
  EXPECT_EQ(put.error().message, "The specified bucket does not exist");
  EXPECT_EQ(store_->Get("nope", "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->Head("nope", "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->Delete("nope", "k").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->List("nope", {}).error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->List("../bkt", {}).error().aws_code, "NoSuchBucket");

  auto get = store_->Get("bkt", "missing");
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, Errc::kNotFound);
  EXPECT_EQ(get.error().aws_code, "NoSuchKey");
  EXPECT_EQ(get.error().message, "The specified key does not exist.");
  EXPECT_EQ(store_->Head("bkt", "missing").error().aws_code, "NoSuchKey");
  EXPECT_TRUE(store_->Delete("bkt", "missing").ok());  // S3: deleting nothing succeeds
}

TEST_F(FilesystemStoreTest, OverwriteAndDeleteLeaveNoStaleFiles) {
  inline_max_bytes_ = 0;  // every object in a file (inline_objects_test.cc covers the others)
  Reopen();
  ASSERT_TRUE(Put("k", "first").ok());
  ASSERT_TRUE(Put("k", "second, longer").ok());
  EXPECT_EQ(GetString("k"), "second, longer");
  EXPECT_EQ(store_->Head("bkt", "k")->size, 14u);
  EXPECT_EQ(DataFiles().size(), 1u);
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  EXPECT_EQ(GetString("k"), "<error: NoSuchKey>");
  EXPECT_TRUE(DataFiles().empty());
}

TEST_F(FilesystemStoreTest, ReaderOpenedBeforeOverwriteReadsOldBytes) {
  const uint64_t size = 3 * 1024 * 1024 + 17;
  PatternSource old_src(size);
  ASSERT_TRUE(store_->Put("bkt", "k", {}, old_src).ok());
  auto reader = store_->Get("bkt", "k");
  ASSERT_TRUE(reader.ok());
  std::string head(1000, '\0');
  ASSERT_EQ(*(*reader)->Read(head.data(), head.size()), 1000u);

  ASSERT_TRUE(Put("k", "replacement").ok());
  EXPECT_EQ(GetString("k"), "replacement");
  std::string rest = ReadAll(**reader, 64 * 1024);
  ASSERT_EQ(rest.size(), size - 1000);
  for (uint64_t i = 0; i < rest.size(); ++i) {
    ASSERT_EQ(rest[i], PatternSource::Byte(i + 1000)) << "at " << i;
  }
  // Deleting while a reader is open does not disturb it either.
  auto reader2 = store_->Get("bkt", "k");
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  EXPECT_EQ(ReadAll(**reader2), "replacement");
}

TEST_F(FilesystemStoreTest, BeforeCommitFailureKeepsOldObject) {
  inline_max_bytes_ = 0;  // file-backed puts; inline_objects_test.cc has the inline case
  Reopen();
  ASSERT_TRUE(Put("k", "old").ok());
  PutOptions options;
  bool called = false;
  options.before_commit = [&]() -> Status {
    called = true;
    // The new bytes are written but invisible; the store is usable from the callback.
    EXPECT_EQ(GetString("k"), "old");
    return Error(Errc::kValidation, "checksum mismatch", "BadDigest");
  };
  auto put = Put("k", "new bytes", {}, options);
  ASSERT_TRUE(called);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().aws_code, "BadDigest");
  EXPECT_EQ(GetString("k"), "old");
  EXPECT_EQ(DataFiles().size(), 1u);  // no temp file, no new file

  // Same for a new key: nothing becomes visible.
  EXPECT_FALSE(Put("fresh", "x", {}, options).ok());
  EXPECT_EQ(GetString("fresh"), "<error: NoSuchKey>");
  EXPECT_EQ(DataFiles().size(), 1u);
}

TEST_F(FilesystemStoreTest, BodyErrorAbortsPut) {
  ASSERT_TRUE(Put("k", "old").ok());  // inline
  // Fails while the store buffers (below the inline threshold), then while it streams to a file.
  for (uint64_t fail_after : {uint64_t{1000}, uint64_t{200 * 1024}}) {
    PatternSource failing(1 << 20, fail_after);
    auto put = store_->Put("bkt", "k", {}, failing);
    ASSERT_FALSE(put.ok()) << fail_after;
    EXPECT_EQ(put.error().code, Errc::kUnavailable);
    EXPECT_EQ(GetString("k"), "old");
    EXPECT_TRUE(DataFiles().empty()) << fail_after;
  }
}

TEST_F(FilesystemStoreTest, Ranges) {
  ASSERT_TRUE(Put("k", "0123456789").ok());
  auto range = [](std::optional<uint64_t> a, std::optional<uint64_t> b) { return RangeSpec{a, b}; };
  EXPECT_EQ(GetString("k", range(0, 0)), "0");
  EXPECT_EQ(GetString("k", range(2, 5)), "2345");
  EXPECT_EQ(GetString("k", range(7, 100)), "789");  // last clamped to size - 1
  EXPECT_EQ(GetString("k", range(9, 9)), "9");
  EXPECT_EQ(GetString("k", range(3, std::nullopt)), "3456789");
  EXPECT_EQ(GetString("k", range(std::nullopt, 3)), "789");  // suffix
  EXPECT_EQ(GetString("k", range(std::nullopt, 10)), "0123456789");
  EXPECT_EQ(GetString("k", range(std::nullopt, 100)), "0123456789");
  EXPECT_EQ(GetString("k", range(0, std::nullopt)), "0123456789");

  auto r = store_->Get("bkt", "k", range(2, 5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->first(), 2u);
  EXPECT_EQ((*r)->length(), 4u);
  EXPECT_EQ((*r)->info().size, 10u);
  r = store_->Get("bkt", "k", range(std::nullopt, 4));
  EXPECT_EQ((*r)->first(), 6u);
  EXPECT_EQ((*r)->length(), 4u);

  for (auto bad : {range(10, std::nullopt), range(10, 20), range(50, 60), range(std::nullopt, 0),
                   range(5, 3), range(std::nullopt, std::nullopt)}) {
    auto g = store_->Get("bkt", "k", bad);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, Errc::kRangeNotSatisfiable);
    EXPECT_EQ(g.error().aws_code, "InvalidRange");
  }
  ASSERT_TRUE(Put("empty", "").ok());
  EXPECT_EQ(GetString("empty", range(0, std::nullopt)), "<error: InvalidRange>");
  EXPECT_EQ(GetString("empty", range(std::nullopt, 1)), "<error: InvalidRange>");
  EXPECT_EQ(GetString("empty"), "");
}

TEST_F(FilesystemStoreTest, HostileKeysAreStoredVerbatimAndStayInside) {
  // Something outside the store root that a path-traversing key would hit.
  std::ofstream(dir_ / "sentinel") << "untouched";
  std::vector<std::string> keys = {"../../etc/passwd",
                                   "../sentinel",
                                   "..",
                                   ".",
                                   "%2F",
                                   "a%2Fb%00",
                                   "with space",
                                   "  ",
                                   "\xC3\xA9t\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x98\x80",
                                   std::string(1024, 'k'),
                                   std::string(1023, '/') + "x",
                                   "a//b",
                                   "/leading",
                                   "trailing/",
                                   "back\\slash",
                                   "tab\tnew\nline",
                                   std::string("nul\0byte", 8),
                                   "index.db",
                                   "data/bkt"};
  for (const auto& key : keys) {
    auto put = Put(key, "value of " + key);
    ASSERT_TRUE(put.ok()) << key << ": " << put.error().message;
  }
  for (const auto& key : keys) EXPECT_EQ(GetString(key), "value of " + key);

  auto list = store_->List("bkt", {});
  ASSERT_TRUE(list.ok());
  std::vector<std::string> listed, expected = keys;
  for (const auto& o : list->objects) listed.push_back(o.key);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);

  // Nothing but the index and data files under the root; nothing new outside it.
  for (const auto& f : FilesUnderRoot()) {
    EXPECT_TRUE(f.rfind("index.db", 0) == 0 || f.rfind("data/bkt/", 0) == 0) << f;
  }
  std::vector<std::string> outside;
  for (const auto& e : fs::directory_iterator(dir_)) outside.push_back(e.path().filename());
  std::sort(outside.begin(), outside.end());
  EXPECT_EQ(outside, (std::vector<std::string>{"objects", "sentinel"}));
  std::ifstream sentinel(dir_ / "sentinel");
  std::string content;
  std::getline(sentinel, content);
  EXPECT_EQ(content, "untouched");

  for (const auto& key : keys) ASSERT_TRUE(store_->Delete("bkt", key).ok());
  EXPECT_TRUE(DataFiles().empty());
}

TEST_F(FilesystemStoreTest, KeyLengthLimits) {
  auto too_long = Put(std::string(1025, 'k'), "x");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().code, Errc::kValidation);
  EXPECT_EQ(too_long.error().aws_code, "KeyTooLongError");
  auto empty = Put("", "x");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::kValidation);
}

TEST_F(FilesystemStoreTest, RestartKeepsEverythingAndRemovesLeftovers) {
  ObjectAttributes attrs;
  attrs.content_type = "application/json";
  attrs.headers = {{"x-amz-meta-a", "1"}};
  ASSERT_TRUE(Put("a/b", "{}", attrs).ok());
  ASSERT_TRUE(Put("c", "cc").ok());
  const std::string big(100 * 1024, 'b');  // above the inline threshold: a data file
  ASSERT_TRUE(Put("big", big).ok());
  ASSERT_TRUE(store_->CreateBucket("other").ok());
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  StringSource part("part");
  ASSERT_TRUE(store_->UploadPart("bkt", "mp", *upload, 1, part).ok());
  auto before = DataFiles();
  ASSERT_EQ(before.size(), 2u);  // "big" and the part; "a/b" and "c" are inline

  // What a crash can leave: temp files, files renamed but never indexed, folders of deleted
  // buckets and of ended uploads.
  std::vector<fs::path> leftovers = {root() / "data/bkt/ab/0123.tmp",
                                     root() / "data/bkt/ab/orphan",
                                     root() / "data/ghost-bucket/00/file",
                                     root() / "uploads/deadbeef/part",
                                     root() / ("uploads/" + *upload + "/x.tmp"),
                                     root() / ("uploads/" + *upload + "/orphan")};
  for (const auto& p : leftovers) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "junk";
  }
  Reopen();
  EXPECT_EQ(DataFiles(), before);
  for (const auto& p : leftovers) EXPECT_FALSE(fs::exists(p)) << p;
  EXPECT_FALSE(fs::exists(root() / "data/ghost-bucket"));

  auto head = store_->Head("bkt", "a/b");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->attributes.content_type, "application/json");
  ASSERT_EQ(head->attributes.headers.size(), 1u);
  EXPECT_EQ(GetString("a/b"), "{}");
  EXPECT_EQ(GetString("c"), "cc");
  EXPECT_EQ(GetString("big"), big);
  auto buckets = store_->ListBuckets();
  ASSERT_TRUE(buckets.ok());
  ASSERT_EQ(buckets->size(), 2u);
  EXPECT_EQ((*buckets)[0].name, "bkt");
  EXPECT_EQ((*buckets)[1].name, "other");
  auto parts = store_->ListParts("bkt", "mp", *upload);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);
}

TEST_F(FilesystemStoreTest, BucketRules) {
  for (const char* bad :
       {"ab", "Upper", "under_score", "-start", "end-", ".dot", "dot.", "a..b", "192.168.5.4",
        "xn--bucket", "sthree-x", "x-s3alias", "x--ol-s3", "has space", "a/b", "..", ""}) {
    auto st = store_->CreateBucket(bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.error().code, Errc::kValidation) << bad;
    EXPECT_EQ(st.error().aws_code, "InvalidBucketName") << bad;
  }
  std::string max_name(63, 'a');
  for (const std::string& good : {std::string("abc"), std::string("my.bucket-1"), max_name,
                                  std::string("1.2.3.4.5"), std::string("192.168.5.a")}) {
    EXPECT_TRUE(store_->CreateBucket(good).ok()) << good;
  }
  EXPECT_FALSE(store_->CreateBucket(std::string(64, 'a')).ok());
  auto dup = store_->CreateBucket("abc");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(dup.error().aws_code, "BucketAlreadyOwnedByYou");

  auto list = store_->ListBuckets();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const auto& b : *list) names.push_back(b.name);
  EXPECT_EQ(names, (std::vector<std::string>{"1.2.3.4.5", "192.168.5.a", max_name, "abc", "bkt",
                                             "my.bucket-1"}));
  EXPECT_EQ(store_->HeadBucket("abc")->creation_time, 1700000000);
  EXPECT_EQ(store_->HeadBucket("nope").error().aws_code, "NoSuchBucket");

  ASSERT_TRUE(Put("k", "v").ok());
  auto not_empty = store_->DeleteBucket("bkt");
  ASSERT_FALSE(not_empty.ok());
  EXPECT_EQ(not_empty.error().code, Errc::kInvalidState);
  EXPECT_EQ(not_empty.error().aws_code, "BucketNotEmpty");
  EXPECT_EQ(not_empty.error().message, "The bucket you tried to delete is not empty");
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());

  // An in-progress multipart upload also keeps the bucket.
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").error().aws_code, "BucketNotEmpty");
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "mp", *upload).ok());

  ASSERT_TRUE(store_->DeleteBucket("bkt").ok());
  EXPECT_EQ(store_->HeadBucket("bkt").error().aws_code, "NoSuchBucket");
  EXPECT_EQ(store_->DeleteBucket("bkt").error().aws_code, "NoSuchBucket");
  EXPECT_FALSE(fs::exists(root() / "data/bkt"));
  // Re-created, it is empty.
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  EXPECT_TRUE(store_->List("bkt", {})->objects.empty());
}

TEST_F(FilesystemStoreTest, ConcurrentPutsAndGetsSeeWholeObjects) {
  const std::string a(300 * 1024, 'a'), b(200 * 1024, 'b');
  ASSERT_TRUE(Put("k", a).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 40; ++i) {
        StringSource src((i + w) % 2 ? b : a, 4096);
        if (!store_->Put("bkt", "k", {}, src).ok()) ++bad;
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      do {
        auto g = store_->Get("bkt", "k");
        if (!g.ok()) {
          ++bad;
          continue;
        }
        std::string got = ReadAll(**g, 50000);
        if (got != a && got != b) ++bad;
        ++reads;
      } while (!stop);
    });
  }
  for (int i = 0; i < 2; ++i) threads[i].join();
  stop = true;
  for (size_t i = 2; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(bad, 0);
  EXPECT_GT(reads, 0);
  EXPECT_EQ(DataFiles().size(), 1u);
}

TEST(FilesystemStoreOptionsTest, Validate) {
  FilesystemStoreOptions options;
  EXPECT_FALSE(options.Validate().ok());
  options.root = "/tmp/x";
  EXPECT_TRUE(options.Validate().ok());
  options.buffer_bytes = 10;
  EXPECT_EQ(options.Validate().error().code, Errc::kValidation);
  EXPECT_FALSE(FilesystemStore::Open(options).ok());
  options.buffer_bytes = 4096;
  EXPECT_EQ(options.inline_max_bytes, 64u * 1024);
  for (size_t ok : {size_t{0}, size_t{1}, size_t{1024 * 1024}}) {
    options.inline_max_bytes = ok;
    EXPECT_TRUE(options.Validate().ok()) << ok;
  }
  options.inline_max_bytes = 1024 * 1024 + 1;
  EXPECT_EQ(options.Validate().error().code, Errc::kValidation);
}

}  // namespace
}  // namespace inferd::store
