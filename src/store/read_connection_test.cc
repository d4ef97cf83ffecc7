// FilesystemStore's read connection: reads do not wait for the write connection (a group commit
// holding it through its fsync), see every write that returned, and survive files unlinked by
// concurrent overwrites, deletes and bucket deletions between a row read and the open.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "db/sqlite.h"
#include "store/file_io.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::store {

class FilesystemStoreTestPeer {
 public:
  static std::mutex& WriteMutex(FilesystemStore& s) { return s.mu_; }
  static db::Database& WriteDb(FilesystemStore& s) { return *s.db_; }
  static void SetGetBeforeOpen(FilesystemStore& s, std::function<void()> hook) {
    s.get_before_open_for_test_ = std::move(hook);
  }
};

namespace {

using testing::ReadAll;
using testing::StoreFixture;
using testing::StringSource;
using Peer = FilesystemStoreTestPeer;

std::string Md5Hex(const std::string& bytes) {
  internal::Md5 md5;
  md5.Update(bytes.data(), bytes.size());
  return internal::HexEncode(md5.Final());
}

// `size` pseudo-random bytes starting with `tag`.
std::string Body(const std::string& tag, size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out = tag;
  out.reserve(size);
  while (out.size() < size) out.push_back(static_cast<char>(rng()));
  out.resize(std::max(size, tag.size()));
  return out;
}

// Equal bytes; on failure a short description instead of two 100 KiB dumps.
::testing::AssertionResult SameBytes(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes starting \"" << got.substr(0, 12) << "\", want "
         << want.size() << " bytes starting \"" << want.substr(0, 12) << "\"";
}

constexpr size_t kFileSize = 100 * 1024;  // above inline_max_bytes (64 KiB): a data file
constexpr size_t kInlineSize = 1024;

class ReadConnectionTest : public StoreFixture {
 protected:
  // Get's bytes (checked against the reader's own info), or "<error: code>".
  std::string GetChecked(const std::string& bucket, const std::string& key) {
    auto r = store_->Get(bucket, key);
    if (!r.ok()) return "<error: " + r.error().aws_code + ">";
    std::string bytes = ReadAll(**r);
    EXPECT_EQ(Md5Hex(bytes), (*r)->info().etag) << bucket << "/" << key;
    EXPECT_EQ(bytes.size(), (*r)->info().size) << bucket << "/" << key;
    return bytes;
  }
};

// The old design read through the write connection under its mutex, so every read here waited
// for the open write transaction (as reads waited for each group commit's fsync).
TEST_F(ReadConnectionTest, ReadsProceedWhileAWriteTransactionIsOpen) {
  const std::string big = Body("big", kFileSize, 1), small = Body("small", kInlineSize, 2);
  ASSERT_TRUE(Put("big", big).ok());
  ASSERT_TRUE(Put("small", small).ok());
  auto upload = store_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(upload.ok());
  StringSource part_body("part one");
  ASSERT_TRUE(store_->UploadPart("bkt", "mp", *upload, 1, part_body).ok());

  // Hold the write connection as a group commit does, with an uncommitted row in it.
  std::unique_lock write_lock(Peer::WriteMutex(*store_));
  db::Database& wdb = Peer::WriteDb(*store_);
  ASSERT_TRUE(wdb.Exec("BEGIN IMMEDIATE").ok());
  ASSERT_TRUE(wdb.Exec("INSERT INTO objects (bucket, key, size, etag, last_modified, content_type, "
                       "headers, file, inline_data) VALUES ('bkt', X'67686F7374', 1, "
                       "'0cc175b9c0f1b6a831c399e269772661', 0, '', '[]', '', X'61')")
                  .ok());

  auto reads = std::async(std::launch::async, [&] {
    EXPECT_TRUE(SameBytes(GetChecked("bkt", "big"), big));
    EXPECT_TRUE(SameBytes(GetChecked("bkt", "small"), small));
    EXPECT_EQ(GetChecked("bkt", "ghost"), "<error: NoSuchKey>");  // not committed
    auto head = store_->Head("bkt", "big");
    EXPECT_TRUE(head.ok() && head->etag == Md5Hex(big));
    auto list = store_->List("bkt", {});
    EXPECT_TRUE(list.ok());
    if (list.ok()) {
      ASSERT_EQ(list->objects.size(), 2u);
      EXPECT_EQ(list->objects[0].key, "big");
      EXPECT_EQ(list->objects[1].key, "small");
    }
    EXPECT_TRUE(store_->HeadBucket("bkt").ok());
    EXPECT_EQ(store_->HeadBucket("nope").error().aws_code, "NoSuchBucket");
    auto buckets = store_->ListBuckets();
    EXPECT_TRUE(buckets.ok() && buckets->size() == 1);
    auto parts = store_->ListParts("bkt", "mp", *upload);
    EXPECT_TRUE(parts.ok() && parts->size() == 1);
    auto uploads = store_->ListMultipartUploads("bkt");
    EXPECT_TRUE(uploads.ok() && uploads->size() == 1);
  });
  bool finished = reads.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  EXPECT_TRUE(wdb.Exec("ROLLBACK").ok());
  write_lock.unlock();
  reads.get();
  EXPECT_TRUE(finished) << "reads waited for the write connection";
  EXPECT_EQ(GetChecked("bkt", "ghost"), "<error: NoSuchKey>");
}

// A write that returned is visible to the next read from any thread: no read transaction (and
// so no old snapshot) survives a call on the read connection.
TEST_F(ReadConnectionTest, ReadsSeeEveryWriteThatReturned) {
  fsync_ = false;
  Reopen();
  for (const size_t size : {kInlineSize, kFileSize}) {
    SCOPED_TRACE(size);
    std::atomic<int> published{-1};
    std::atomic<bool> stop{false};
    std::jthread writer([&] {  // joined on every way out
      for (int i = 0; i < 150; ++i) {
        StringSource src(Body(std::to_string(i) + ":", size, i));
        if (!store_->Put("bkt", "k", {}, src).ok()) break;
        published.store(i);
      }
      stop = true;
    });
    int seen = 0;
    while (!stop) {
      int before = published.load();
      if (before < 0) {
        std::this_thread::yield();
        continue;
      }
      std::string got = GetChecked("bkt", "k");
      size_t colon = got.find(':');
      int version = got.starts_with("<error") ? -1 : std::stoi(got.substr(0, colon));
      EXPECT_GE(version, before) << got.substr(0, 20);
      auto head = store_->Head("bkt", "k");
      auto list = store_->List("bkt", {});
      if (!head.ok() || !list.ok() || list->objects.size() != 1) {
        ADD_FAILURE() << "head or list failed";
        break;
      }
      int after = published.load();
      // Both ran after `before` was published; each saw that version or a later one.
      auto version_of = [&](const std::string& etag) {
        for (int v = before; v <= after + 1 && v < 150; ++v) {
          if (Md5Hex(Body(std::to_string(v) + ":", size, v)) == etag) return v;
        }
        return -1;
      };
      EXPECT_GE(version_of(head->etag), before);
      EXPECT_GE(version_of(list->objects[0].etag), before);
      ++seen;
    }
    writer.join();
    EXPECT_TRUE(SameBytes(GetChecked("bkt", "k"), Body("149:", size, 149)));
    EXPECT_GT(seen, 0);
  }
  // Deletes too.
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  EXPECT_EQ(GetChecked("bkt", "k"), "<error: NoSuchKey>");
  EXPECT_EQ(store_->Head("bkt", "k").error().aws_code, "NoSuchKey");
}

// The races the read connection opens, made deterministic: the hook runs in Get between reading
// a file-backed row and opening its file.
TEST_F(ReadConnectionTest, GetRereadsTheRowWhenItsFileIsReplacedBeforeTheOpen) {
  const std::string v1 = Body("v1", kFileSize, 1), v2 = Body("v2", kFileSize + 7, 2),
                    v3 = Body("v3", kInlineSize, 3);
  ASSERT_TRUE(Put("k", v1).ok());
  int calls = 0;
  Peer::SetGetBeforeOpen(*store_, [&] {
    if (calls++ > 0) return;
    ASSERT_TRUE(Put("k", v2).ok());  // file → file: v1's file unlinked
  });
  EXPECT_TRUE(SameBytes(GetChecked("bkt", "k"), v2));
  EXPECT_EQ(calls, 2);  // v1's row, then v2's

  calls = 0;
  Peer::SetGetBeforeOpen(*store_, [&] {
    if (calls++ > 0) return;
    ASSERT_TRUE(Put("k", v3).ok());  // file → inline
  });
  EXPECT_TRUE(SameBytes(GetChecked("bkt", "k"), v3));
  EXPECT_EQ(calls, 1);  // the second row is inline: nothing to open
}

TEST_F(ReadConnectionTest, GetOfAnObjectDeletedBeforeTheOpenIsNoSuchKey) {
  ASSERT_TRUE(Put("k", Body("v1", kFileSize, 1)).ok());
  Peer::SetGetBeforeOpen(*store_, [&] { ASSERT_TRUE(store_->Delete("bkt", "k").ok()); });
  EXPECT_EQ(GetChecked("bkt", "k"), "<error: NoSuchKey>");
}

TEST_F(ReadConnectionTest, GetRacingABucketDeletionAnswersForTheBucketAsItIsNow) {
  const std::string old_bytes = Body("old", kFileSize, 1), new_bytes = Body("new", kFileSize, 2);
  // Deleted (its folder removed): NoSuchBucket.
  ASSERT_TRUE(Put("k", old_bytes).ok());
  Peer::SetGetBeforeOpen(*store_, [&] {
    ASSERT_TRUE(store_->Delete("bkt", "k").ok());
    ASSERT_TRUE(store_->DeleteBucket("bkt").ok());
  });
  EXPECT_EQ(GetChecked("bkt", "k"), "<error: NoSuchBucket>");

  // Deleted and created again: NoSuchKey, or the new bucket's object of that key.
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  ASSERT_TRUE(Put("k", old_bytes).ok());
  Peer::SetGetBeforeOpen(*store_, [&] {
    ASSERT_TRUE(store_->Delete("bkt", "k").ok());
    ASSERT_TRUE(store_->DeleteBucket("bkt").ok());
    ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  });
  EXPECT_EQ(GetChecked("bkt", "k"), "<error: NoSuchKey>");

  ASSERT_TRUE(Put("k", old_bytes).ok());
  int calls = 0;
  Peer::SetGetBeforeOpen(*store_, [&] {
    if (calls++ > 0) return;
    ASSERT_TRUE(store_->Delete("bkt", "k").ok());
    ASSERT_TRUE(store_->DeleteBucket("bkt").ok());
    ASSERT_TRUE(store_->CreateBucket("bkt").ok());
    ASSERT_TRUE(Put("k", new_bytes).ok());
  });
  EXPECT_TRUE(SameBytes(GetChecked("bkt", "k"), new_bytes));
}

// An object replaced before every open on the read connection: the last attempt, under the
// write connection's mutex, cannot race and returns the newest object.
TEST_F(ReadConnectionTest, GetEndsEvenWhenEveryAttemptRaces) {
  ASSERT_TRUE(Put("k", Body("v0", kFileSize, 0)).ok());
  int calls = 0;
  Peer::SetGetBeforeOpen(*store_, [&] {
    ++calls;
    ASSERT_TRUE(Put("k", Body("v" + std::to_string(calls), kFileSize, calls)).ok());
  });
  std::string got = GetChecked("bkt", "k");
  EXPECT_TRUE(SameBytes(got, Body("v" + std::to_string(calls), kFileSize, calls)));
  EXPECT_EQ(calls, FilesystemStore::kGetReadAttempts);
  Peer::SetGetBeforeOpen(*store_, nullptr);
  EXPECT_EQ(DataFiles().size(), 1u);  // every replaced file was unlinked
}

// 8 threads overwrite and delete a few file-backed and inline keys (and one key that switches
// between both), one more creates, fills, empties and deletes a second bucket, while 8 threads
// read them all. A read returns one whole object (bytes matching its own ETag and size) or
// NoSuchKey/NoSuchBucket; never a mix, another bucket's bytes or another error.
TEST_F(ReadConnectionTest, ConcurrentOverwritesDeletesAndReads) {
  fsync_ = false;  // the races are the same; the test is faster
  Reopen();
  const std::vector<std::string> keys = {"f0", "f1", "i0", "i1", "x"};
  auto size_of = [&](const std::string& key, uint32_t n) -> size_t {
    if (key[0] == 'f' || (key == "x" && n % 2 == 0)) return kFileSize + n % 4096;
    return kInlineSize + n % 1024;
  };
  std::atomic<int> writers_left{8};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(1000 + w);
      for (uint32_t i = 0; i < 120 && !failed; ++i) {
        const std::string& key = keys[rng() % keys.size()];
        if (rng() % 4 == 0) {
          if (!store_->Delete("bkt", key).ok()) failed = true;
        } else {
          uint32_t n = w * 1000 + i;
          StringSource src(Body("bkt:" + key + ":", size_of(key, n), n), 8192);
          if (!store_->Put("bkt", key, {}, src).ok()) failed = true;
        }
      }
      --writers_left;
    });
  }
  threads.emplace_back([&] {  // bucket churn
    while (writers_left > 0 && !failed) {
      if (!store_->CreateBucket("churn").ok()) failed = true;
      StringSource src(Body("churn:", kFileSize, 7), 8192);
      if (!store_->Put("churn", "f0", {}, src).ok()) failed = true;
      if (!store_->Delete("churn", "f0").ok()) failed = true;
      if (!store_->DeleteBucket("churn").ok()) failed = true;
    }
  });
  std::atomic<int> whole{0}, missing{0};
  for (int r = 0; r < 8; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(r);
      while (writers_left > 0 && !failed) {
        const bool churn = rng() % 5 == 0;
        const std::string bucket = churn ? "churn" : "bkt";
        const std::string& key = churn ? keys[0] : keys[rng() % keys.size()];
        auto reader = store_->Get(bucket, key);
        if (!reader.ok()) {
          const std::string& code = reader.error().aws_code;
          if (code != "NoSuchKey" && !(churn && code == "NoSuchBucket")) {
            ADD_FAILURE() << bucket << "/" << key << ": " << reader.error().message;
            failed = true;
          }
          ++missing;
          continue;
        }
        std::string bytes = ReadAll(**reader, 5000);
        const ObjectInfo& info = (*reader)->info();
        if (Md5Hex(bytes) != info.etag || bytes.size() != info.size ||
            bytes.rfind(bucket + ":", 0) != 0) {
          ADD_FAILURE() << bucket << "/" << key << ": " << bytes.size() << " bytes, not the "
                        << info.size << " bytes of ETag " << info.etag;
          failed = true;
        }
        ++whole;
        if (rng() % 8 == 0) {  // listing and heads never fail for the live bucket
          if (!store_->List("bkt", {}).ok()) failed = true;
          auto head = store_->Head("bkt", key);
          if (!head.ok() && head.error().aws_code != "NoSuchKey") failed = true;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(whole.load(), 0);
  // Nothing leaked: one data file per file-backed object left.
  size_t files = 0;
  for (const auto& key : keys) {
    auto head = store_->Head("bkt", key);
    if (head.ok() && head->size > FilesystemStoreOptions{}.inline_max_bytes) ++files;
  }
  EXPECT_EQ(DataFiles().size(), files);
}

}  // namespace
}  // namespace inferd::store
