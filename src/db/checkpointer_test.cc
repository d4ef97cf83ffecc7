// Background checkpoints: commits never checkpoint themselves, a Checkpointer thread keeps the
// WAL bounded (it starts over once checkpointed), and everything committed is in the database.
#include "db/checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "common/testing/test_support.h"
#include "db/sqlite.h"

namespace inferd::db {
namespace {

constexpr const char* kSchema = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)";

// Commits `n` transactions of one row of `bytes` (at least one page each).
void Commit(Database& db, int first, int n, size_t bytes) {
  const std::string value(bytes, 'x');
  for (int i = first; i < first + n; ++i) {
    Stmt s(db, "INSERT INTO t (k, v) VALUES (?, ?)");
    s.Bind(i).BindBlob(value);
    ASSERT_TRUE(s.Run("insert").ok());
  }
}

uintmax_t WalBytes(const std::filesystem::path& db) {
  std::error_code ec;
  auto n = std::filesystem::file_size(db.string() + "-wal", ec);
  return ec ? 0 : n;
}

TEST(Checkpointer, TheWalStartsOverAfterEachBackgroundCheckpoint) {
  test_support::TempDir dir;
  const auto path = dir.path() / "t.db";
  auto db = Database::Open(path, "test database", kSchema, CheckpointOptions{.frames = 40});
  ASSERT_TRUE(db.ok());
  // Below the threshold nothing starts.
  Commit(**db, 0, 10, 3000);
  EXPECT_EQ((*db)->CheckpointsRun(), 0);
  Commit(**db, 10, 100, 3000);
  ASSERT_TRUE(test_support::WaitFor([&] { return (*db)->CheckpointsRun() >= 1; }));
  const uintmax_t first = WalBytes(path);
  ASSERT_GT(first, 0u);
  // Ten more rounds, each just past the threshold: without checkpoints the WAL would grow by
  // each (by 160 commits in all, more than `first` holds); with them every round overwrites it
  // from the beginning, so it stays near `first` (a round or two of slack when a checkpoint
  // overlaps a round's last commits).
  const uintmax_t per_commit = first / 110;
  int key = 110;
  for (int round = 0; round < 10; ++round) {
    const int before = (*db)->CheckpointsRun();
    Commit(**db, key, 16, 3000);
    key += 16;
    ASSERT_TRUE(test_support::WaitFor([&] { return (*db)->CheckpointsRun() > before; }));
  }
  EXPECT_LE(WalBytes(path), first + 4 * 16 * per_commit);
  Stmt count(**db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), key);
}

TEST(Checkpointer, WhatWasCommittedIsInTheDatabaseAfterReopening) {
  test_support::TempDir dir;
  const auto path = dir.path() / "t.db";
  {
    auto db = Database::Open(path, "test database", kSchema, CheckpointOptions{.frames = 20});
    ASSERT_TRUE(db.ok());
    Commit(**db, 0, 300, 3000);
  }
  auto db = Database::Open(path, "test database", kSchema);
  ASSERT_TRUE(db.ok());
  Stmt count(**db, "SELECT count(*), sum(length(v)) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), 300);
  EXPECT_EQ(count.Int(1), 300 * 3000);
}

}  // namespace
}  // namespace inferd::db
