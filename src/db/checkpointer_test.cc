// Background checkpoints: commits never checkpoint themselves, a Checkpointer thread keeps the
// WAL bounded (it starts over once checkpointed), and everything committed is in the database;
// handed off, the writer's FinishCheckpointIfDue starts it over, and without it the checkpointer
// still bounds it.
#include "db/checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
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

CheckpointOptions Frames(int frames) {
  CheckpointOptions options;
  options.frames = frames;
  return options;
}

uintmax_t WalBytes(const std::filesystem::path& db) {
  std::error_code ec;
  auto n = std::filesystem::file_size(db.string() + "-wal", ec);
  return ec ? 0 : n;
}

// Ten rounds of 16 commits, each just past a threshold of 40 frames, after 110 commits made the
// WAL what it is: `done()` counts the checkpoints finished so far, and `finish` is the writer's
// part, if it has one. Without checkpoints the WAL would grow by each round (by 160 commits in
// all, more than it holds); with them every round overwrites it from the beginning, so it stays
// near its size (a round or two of slack when a checkpoint overlaps a round's last commits).
void ExpectTheWalToStartOverEachRound(Database& db, const std::filesystem::path& path,
                                      const std::function<int()>& done,
                                      const std::function<void()>& finish = {}) {
  const uintmax_t first = WalBytes(path);
  ASSERT_GT(first, 0u);
  const uintmax_t per_commit = first / 110;
  int key = 110;
  for (int round = 0; round < 10; ++round) {
    const int before = done();
    Commit(db, key, 16, 3000);
    key += 16;
    ASSERT_TRUE(test_support::WaitFor([&] { return done() > before; }));
    if (finish) finish();
  }
  EXPECT_LE(WalBytes(path), first + 4 * 16 * per_commit);
  Stmt count(db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), key);
}

// A database file in a fresh directory.
class CheckpointerTest : public ::testing::Test {
 protected:
  test_support::TempDir dir_;
  const std::filesystem::path path_ = dir_.path() / "t.db";
};

TEST_F(CheckpointerTest, TheWalStartsOverAfterEachBackgroundCheckpoint) {
  auto db = Database::Open(path_, "test database", kSchema, Frames(40));
  ASSERT_TRUE(db.ok());
  // Below the threshold nothing starts.
  Commit(**db, 0, 10, 3000);
  EXPECT_EQ((*db)->CheckpointsRun(), 0);
  Commit(**db, 10, 100, 3000);
  ASSERT_TRUE(test_support::WaitFor([&] { return (*db)->CheckpointsRun() >= 1; }));
  ExpectTheWalToStartOverEachRound(**db, path_, [&] { return (*db)->CheckpointsRun(); });
}

TEST_F(CheckpointerTest, WhatWasCommittedIsInTheDatabaseAfterReopening) {
  {
    auto db = Database::Open(path_, "test database", kSchema, Frames(20));
    ASSERT_TRUE(db.ok());
    Commit(**db, 0, 300, 3000);
  }
  auto db = Database::Open(path_, "test database", kSchema);
  ASSERT_TRUE(db.ok());
  Stmt count(**db, "SELECT count(*), sum(length(v)) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), 300);
  EXPECT_EQ(count.Int(1), 300 * 3000);
}

// Handed off (writer_finishes): a database whose checkpoints end in a handoff, after 110
// commits and the first handoff.
class HandedOff : public CheckpointerTest {
 protected:
  void SetUp() override {
    CheckpointOptions options = Frames(40);
    options.writer_finishes = true;
    options.wake_writer = [this] { ++handed_; };
    auto opened = Database::Open(path_, "test database", kSchema, options);
    ASSERT_TRUE(opened.ok());
    db_ = std::move(opened).value();
    Commit(*db_, 0, 110, 3000);
    ASSERT_TRUE(test_support::WaitFor([&] { return handed_.load() >= 1; }));
  }

  std::atomic<int> handed_{0};
  std::unique_ptr<Database> db_;
};

// The checkpointer RESTARTs nothing; the writer finishes each checkpoint between its
// transactions and its next commit starts the WAL over.
TEST_F(HandedOff, TheWriterFinishesEachCheckpointAndTheWalStartsOver) {
  // Like the writer, the test answers the handoffs of those commits (one or more; a PASSIVE step
  // may still be running, and then the writer's is refused as busy).
  ASSERT_TRUE(test_support::WaitFor([&] { return db_->FinishCheckpointIfDue(); }));
  // As with RESTART: each round overwrites the WAL from its beginning. The writer's part:
  // everything up to its last commit copied, nothing left to wait for.
  ExpectTheWalToStartOverEachRound(
      *db_, path_, [&] { return handed_.load(); },
      [&] { EXPECT_TRUE(db_->FinishCheckpointIfDue()); });
}

// A writer that never finishes (too busy, or readers kept the WAL from starting over): once the
// WAL reaches 4 × frames the checkpointer RESTARTs it itself, so it stays bounded.
TEST_F(HandedOff, NeverFinishedTheWalIsStillBounded) {
  const uintmax_t per_commit = WalBytes(path_) / 110;
  // 1,000 more commits, about 25 times the threshold: without a checkpoint that starts the WAL
  // over it would hold all of them. Between batches the writer leaves the checkpointer room to
  // do what is due (on a loaded machine it may get no CPU during a batch, and a RESTART tried
  // then may find the writer busy): the WAL holds at most the 4 × frames that make the fallback
  // due plus a batch.
  for (int key = 110; key < 1110; key += 50) {
    Commit(*db_, key, 50, 3000);
    ASSERT_TRUE(test_support::WaitFor([&] { return db_->CheckpointerIdle(); }));
  }
  EXPECT_GT(db_->CheckpointsRun(), handed_.load());  // RESTARTs of its own happened
  EXPECT_LE(WalBytes(path_), (4 * 40 + 2 * 50 + 110) * per_commit);
  Stmt count(*db_, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), 1110);
}

}  // namespace
}  // namespace inferd::db
