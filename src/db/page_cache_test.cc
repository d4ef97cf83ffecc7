// The page cache wrapper (page_cache.h) through real databases: commits whose B-tree balancing
// parked pages at the lock-byte key no longer hand pcache1 a truncate, a rolled-back growth is
// still dropped from the cache, and the data stays whole either way.
#include "db/page_cache.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/testing/test_support.h"
#include "db/sqlite.h"

namespace inferd::db {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, name TEXT, v BLOB);"
    "CREATE INDEX IF NOT EXISTS t_name ON t (name);";

class PageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(dir_.path() / "t.db", "test database", kSchema);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::move(opened).value();
    ASSERT_TRUE(InstallPageCache());  // Database::Open installed it before SQLite's first use
  }

  // `n` rows with random names (index pages split all over: balancing) in one transaction.
  void Insert(int first, int n, bool commit = true) {
    Transaction tx(*db_);
    for (int k = first; k < first + n; ++k) {
      Stmt s(*db_, "INSERT INTO t (k, name, v) VALUES (?, ?, ?)");
      s.Bind(k).Bind(std::to_string(random_()) + "-name").BindBlob(std::string(200, 'v'));
      ASSERT_TRUE(s.Run("insert").ok());
    }
    if (commit) {
      ASSERT_TRUE(tx.Commit().ok());
    }
  }

  void ExpectWhole(int rows) {
    Stmt check(*db_, "PRAGMA integrity_check");
    ASSERT_TRUE(check.Row());
    EXPECT_EQ(check.Text(0), "ok");
    Stmt count(*db_, "SELECT count(*), count(DISTINCT k) FROM t INDEXED BY t_name WHERE name > ''");
    ASSERT_TRUE(count.Row());
    EXPECT_EQ(count.Int(0), rows);
    EXPECT_EQ(count.Int(1), rows);
  }

  test_support::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::mt19937_64 random_{42};
};

TEST_F(PageCacheTest, CommitsAfterBalancingDoNotScanTheCache) {
  Insert(0, 2000);
  const PageCacheStats before = GetPageCacheStats();
  for (int i = 0; i < 200; ++i) Insert(2000 + i * 10, 10);  // small commits, as the queue's
  const PageCacheStats after = GetPageCacheStats();
  // Balancing parked pages at the lock-byte key (which made pcache1 scan on the next commit)...
  EXPECT_GT(after.temporary_rekeys, before.temporary_rekeys);
  // ...yet every commit's truncate could drop nothing and was skipped.
  EXPECT_GE(after.truncates_skipped - before.truncates_skipped, 200u);
  EXPECT_EQ(after.truncates_passed, before.truncates_passed);
  ExpectWhole(4000);
}

TEST_F(PageCacheTest, ARolledBackGrowthIsStillDroppedFromTheCache) {
  Insert(0, 500);
  const PageCacheStats before = GetPageCacheStats();
  Insert(500, 3000, /*commit=*/false);  // grows the file by many pages, then rolls back
  EXPECT_GT(GetPageCacheStats().truncates_passed, before.truncates_passed);
  ExpectWhole(500);
  // The same page numbers again, with other content: nothing stale comes back from the cache.
  Insert(10000, 3000);
  ExpectWhole(3500);
}

}  // namespace
}  // namespace inferd::db
