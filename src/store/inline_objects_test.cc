// FilesystemStore: small objects kept in the index (inline_max_bytes), puts sharing index commits
// (db::GroupCommit), and indexes written before either existed.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <latch>
#include <map>
#include <thread>

#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::store {
namespace {

namespace fs = std::filesystem;
using testing::PatternSource;
using testing::ReadAll;
using testing::StoreFixture;
using testing::StringSource;

std::string HexMd5(const std::string& data) {
  internal::Md5 md5;
  md5.Update(data.data(), data.size());
  return internal::HexEncode(md5.Final());
}

std::string Pattern(uint64_t size, uint64_t offset = 0) {
  std::string out(size, '\0');
  for (uint64_t i = 0; i < size; ++i) out[i] = PatternSource::Byte(offset + i);
  return out;
}

class InlineObjectsTest : public StoreFixture {};

TEST_F(InlineObjectsTest, RoundTripWithRangesAndEmptyBody) {
  ObjectAttributes attrs;
  attrs.content_type = "application/json";
  attrs.headers = {{"x-amz-meta-a", "1"}, {"x-amz-checksum-crc32", "AAAAAA=="}};
  const std::string body = std::string("0123456789") + std::string("\0\xFF", 2);
  auto put = Put("k", body, attrs);
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->etag, HexMd5(body));
  EXPECT_EQ(put->size, 12u);
  EXPECT_TRUE(DataFiles().empty());  // in the index, no data file

  auto head = store_->Head("bkt", "k");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, 12u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->attributes.content_type, "application/json");
  ASSERT_EQ(head->attributes.headers.size(), 2u);
  EXPECT_EQ(head->attributes.headers[1].value, "AAAAAA==");
  auto list = store_->List("bkt", {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_EQ(list->objects[0].size, 12u);
  EXPECT_EQ(list->objects[0].etag, put->etag);

  EXPECT_EQ(GetString("k"), body);
  auto range = [](std::optional<uint64_t> a, std::optional<uint64_t> b) { return RangeSpec{a, b}; };
  EXPECT_EQ(GetString("k", range(0, 0)), "0");
  EXPECT_EQ(GetString("k", range(2, 5)), "2345");
  EXPECT_EQ(GetString("k", range(7, 100)), body.substr(7));
  EXPECT_EQ(GetString("k", range(std::nullopt, 2)), std::string("\0\xFF", 2));
  EXPECT_EQ(GetString("k", range(std::nullopt, 100)), body);
  auto r = store_->Get("bkt", "k", range(2, 5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->first(), 2u);
  EXPECT_EQ((*r)->length(), 4u);
  EXPECT_EQ((*r)->info().size, 12u);
  EXPECT_EQ((*r)->info().attributes.content_type, "application/json");
  for (auto bad : {range(12, std::nullopt), range(5, 3), range(std::nullopt, 0)}) {
    auto g = store_->Get("bkt", "k", bad);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().aws_code, "InvalidRange");
  }

  // Readers hold their bytes: an overwrite or a delete after Get does not change what they read.
  auto whole = store_->Get("bkt", "k");
  auto part = store_->Get("bkt", "k", range(3, 4));
  ASSERT_TRUE(whole.ok() && part.ok());
  ASSERT_TRUE(Put("k", "replaced").ok());
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  EXPECT_EQ(ReadAll(**whole, 5), body);
  EXPECT_EQ(ReadAll(**part), "34");
  EXPECT_EQ(GetString("k"), "<error: NoSuchKey>");

  auto empty = Put("empty", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(GetString("empty"), "");
  EXPECT_EQ(store_->Head("bkt", "empty")->size, 0u);
  EXPECT_EQ(GetString("empty", range(0, std::nullopt)), "<error: InvalidRange>");
  EXPECT_TRUE(DataFiles().empty());
}

TEST_F(InlineObjectsTest, ThresholdIsInclusive) {
  const size_t limit = FilesystemStoreOptions{}.inline_max_bytes;
  ASSERT_EQ(limit, 64u * 1024);
  const std::string at = Pattern(limit), over = Pattern(limit + 1, 7);
  // Sources that hand out the bytes in various pieces (one read, odd sizes, exactly the limit).
  for (size_t chunk : {size_t{1} << 20, size_t{7777}, limit}) {
    SCOPED_TRACE(chunk);
    StringSource at_src(at, chunk), over_src(over, chunk);
    auto a = store_->Put("bkt", "at", {}, at_src);
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ(a->etag, HexMd5(at));
    EXPECT_TRUE(DataFiles().empty());  // exactly at the threshold: inline

    auto o = store_->Put("bkt", "over", {}, over_src);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_EQ(o->etag, HexMd5(over));  // MD5 over the buffered prefix and the streamed rest
    EXPECT_EQ(o->size, limit + 1);
    auto files = DataFiles();
    ASSERT_EQ(files.size(), 1u);  // one byte over: a data file, holding every byte
    EXPECT_EQ(fs::file_size(root() / files[0]), limit + 1);

    EXPECT_EQ(GetString("at"), at);
    EXPECT_EQ(GetString("over"), over);
    EXPECT_EQ(GetString("over", RangeSpec{limit - 1, std::nullopt}), over.substr(limit - 1));
    ASSERT_TRUE(store_->Delete("bkt", "over").ok());
    EXPECT_TRUE(DataFiles().empty());
  }
}

TEST_F(InlineObjectsTest, ZeroDisablesInlineObjects) {
  inline_max_bytes_ = 0;
  Reopen();
  ASSERT_TRUE(Put("tiny", "x").ok());
  ASSERT_TRUE(Put("empty", "").ok());
  EXPECT_EQ(DataFiles().size(), 2u);
  EXPECT_EQ(GetString("tiny"), "x");
  EXPECT_EQ(GetString("empty"), "");
}

TEST_F(InlineObjectsTest, OverwritesBetweenInlineAndFileLeaveNoOrphans) {
  const std::string big = Pattern(100 * 1024), big2 = Pattern(80 * 1024, 3);
  ASSERT_TRUE(Put("k", "small").ok());
  EXPECT_TRUE(DataFiles().empty());
  ASSERT_TRUE(Put("k", big).ok());  // inline → file
  EXPECT_EQ(DataFiles().size(), 1u);
  EXPECT_EQ(GetString("k"), big);
  auto file_reader = store_->Get("bkt", "k");
  ASSERT_TRUE(file_reader.ok());
  ASSERT_TRUE(Put("k", "small again").ok());  // file → inline: the file is unlinked
  EXPECT_TRUE(DataFiles().empty());
  EXPECT_EQ(GetString("k"), "small again");
  EXPECT_EQ(ReadAll(**file_reader), big);  // its descriptor still holds the old bytes
  ASSERT_TRUE(Put("k", big).ok());
  ASSERT_TRUE(Put("k", big2).ok());  // file → file
  EXPECT_EQ(DataFiles().size(), 1u);
  EXPECT_EQ(GetString("k"), big2);
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  EXPECT_TRUE(DataFiles().empty());
  // A multipart object is always a file, however small, and replaces an inline one cleanly.
  ASSERT_TRUE(Put("mp", "inline").ok());
  auto id = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(id.ok());
  StringSource part("tiny part");
  auto p = store_->UploadPart("bkt", "mp", *id, 1, part);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(store_->CompleteMultipartUpload("bkt", "mp", *id, {{1, p->etag}}).ok());
  EXPECT_EQ(GetString("mp"), "tiny part");
  auto files = DataFiles();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].rfind("data/bkt/", 0), 0u);
  ASSERT_TRUE(Put("mp", "inline").ok());
  EXPECT_TRUE(DataFiles().empty());
}

TEST_F(InlineObjectsTest, BeforeCommitRefusingAnInlinePutStoresNothing) {
  ASSERT_TRUE(Put("k", "old").ok());
  const size_t commits = store_->index_commits();
  PutOptions options;
  int calls = 0;
  options.before_commit = [&]() -> Status {
    ++calls;
    EXPECT_EQ(GetString("k"), "old");  // not visible yet; the store is usable from here
    return Error(Errc::kValidation, "checksum mismatch", "BadDigest");
  };
  auto put = Put("k", "new bytes", {}, options);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().aws_code, "BadDigest");
  EXPECT_FALSE(Put("fresh", "x", {}, options).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(GetString("k"), "old");
  EXPECT_EQ(store_->Head("bkt", "k")->etag, HexMd5("old"));
  EXPECT_EQ(GetString("fresh"), "<error: NoSuchKey>");
  EXPECT_EQ(store_->List("bkt", {})->objects.size(), 1u);
  EXPECT_TRUE(DataFiles().empty());
  EXPECT_EQ(store_->index_commits(), commits);  // refused before any transaction
}

TEST_F(InlineObjectsTest, ReopenReturnsTheSameBytes) {
  std::map<std::string, std::string> objects = {
      {"empty", ""},
      {"binary", std::string("a\0b\xFF\n", 5)},
      {"at-limit", Pattern(64 * 1024)},
      {"file", Pattern(200 * 1024, 11)},
  };
  ObjectAttributes attrs;
  attrs.content_type = "text/csv";
  for (const auto& [key, bytes] : objects) ASSERT_TRUE(Put(key, bytes, attrs).ok()) << key;
  ASSERT_EQ(DataFiles().size(), 1u);
  Reopen();
  Reopen();  // recovery twice: nothing a row references is removed
  EXPECT_EQ(DataFiles().size(), 1u);
  for (const auto& [key, bytes] : objects) {
    EXPECT_EQ(GetString(key), bytes) << key;
    auto head = store_->Head("bkt", key);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(head->etag, HexMd5(bytes));
    EXPECT_EQ(head->size, bytes.size());
    EXPECT_EQ(head->attributes.content_type, "text/csv");
  }
  // Deleting the bucket needs it empty, inline objects included.
  EXPECT_EQ(store_->DeleteBucket("bkt").error().aws_code, "BucketNotEmpty");
}

TEST_F(InlineObjectsTest, ConcurrentSmallPutsShareIndexCommits) {
  constexpr int kThreads = 32, kPuts = 200;
  auto body = [](int i) { return std::to_string(i) + ":" + Pattern(1024, i).substr(0, 1000); };
  const size_t before = store_->index_commits();
  std::latch start(kThreads);
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = t; i < kPuts; i += kThreads) {
        StringSource src(body(i));
        if (!store_->Put("bkt", "r/" + std::to_string(i), {}, src).ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  const size_t commits = store_->index_commits() - before;
  EXPECT_EQ(failed, 0);
  for (int i = 0; i < kPuts; ++i) EXPECT_EQ(GetString("r/" + std::to_string(i)), body(i)) << i;
  EXPECT_TRUE(DataFiles().empty());
  EXPECT_GT(commits, 0u);
  // One commit per put would be 200: the puts queued while a commit synced share the next one.
  EXPECT_LE(commits, static_cast<size_t>(kPuts / 2));
  std::printf("%d concurrent 1 KiB puts from %d threads: %zu index commits (%.2f per put)\n", kPuts,
              kThreads, commits, static_cast<double>(commits) / kPuts);
}

// The objects table as versions without inline objects created it.
constexpr const char* kOldSchema = R"sql(
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, creation_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL, key BLOB NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
  last_modified REAL NOT NULL, content_type TEXT NOT NULL, headers TEXT NOT NULL,
  file TEXT NOT NULL, PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key BLOB NOT NULL, initiated REAL NOT NULL,
  content_type TEXT NOT NULL, headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,
  etag TEXT NOT NULL, last_modified REAL NOT NULL, file TEXT NOT NULL,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
)sql";

TEST_F(InlineObjectsTest, UpgradesAnIndexWrittenWithoutInlineObjects) {
  store_.reset();
  fs::remove_all(root());
  const std::string id = "ab0123456789", bytes = "old file-backed bytes";
  fs::create_directories(root() / "data/bkt/ab");
  std::ofstream(root() / "data/bkt/ab" / id, std::ios::binary) << bytes;
  {
    auto old = db::Database::Open(root() / "index.db", "old index", kOldSchema);
    ASSERT_TRUE(old.ok()) << old.error().message;
    db::Stmt b(**old, "INSERT INTO buckets VALUES ('bkt', 1600000000)");
    ASSERT_TRUE(b.Run("bucket").ok());
    db::Stmt o(**old,
               "INSERT INTO objects VALUES ('bkt', ?, ?, ?, 1600000000, 'text/plain', "
               "'[[\"x-amz-meta-v\",\"1\"]]', ?)");
    o.BindBlob("old/key").Bind(static_cast<int64_t>(bytes.size())).Bind(HexMd5(bytes)).Bind(id);
    ASSERT_TRUE(o.Run("object").ok());
  }
  Reopen();
  EXPECT_EQ(GetString("old/key"), bytes);
  auto head = store_->Head("bkt", "old/key");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->etag, HexMd5(bytes));
  ASSERT_EQ(head->attributes.headers.size(), 1u);
  EXPECT_EQ(DataFiles(), std::vector<std::string>{"data/bkt/ab/" + id});  // kept by recovery

  ASSERT_TRUE(Put("new/key", "inline now").ok());
  Reopen();  // the upgrade is done once; opening again changes nothing
  EXPECT_EQ(GetString("new/key"), "inline now");
  EXPECT_EQ(GetString("old/key"), bytes);
  ASSERT_TRUE(Put("old/key", "replaced inline").ok());  // the old file goes with its row
  EXPECT_TRUE(DataFiles().empty());
  EXPECT_EQ(GetString("old/key"), "replaced inline");
}

}  // namespace
}  // namespace inferd::store
