// Database's statement cache: a statement is prepared once per SQL text and reused, the same SQL
// can be in use twice at once, a returned statement keeps no bindings and no read snapshot, and
// the cache follows schema changes. Sharing: which processes may read a file.
#include "db/sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/testing/test_support.h"

namespace inferd::db {
namespace {

constexpr const char* kSchema = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)";

std::unique_ptr<Database> Open(const test_support::TempDir& dir) {
  auto db = Database::Open(dir.path() / "t.db", "test database", kSchema);
  EXPECT_TRUE(db.ok());
  return std::move(db).value();
}

TEST(StatementCache, ReusesOneStatementPerSql) {
  test_support::TempDir dir;
  auto db = Open(dir);
  sqlite3_stmt* first = nullptr;
  for (int i = 0; i < 5; ++i) {
    Stmt s(*db, "INSERT INTO t (k, v) VALUES (?, ?)");
    ASSERT_TRUE(s.ok());
    s.Bind(i).Bind("v");
    ASSERT_TRUE(s.Run("insert").ok());
    if (first == nullptr) first = s.handle();
    EXPECT_EQ(s.handle(), first);
    // The same prepared statement every time: its run counter keeps counting.
    EXPECT_EQ(sqlite3_stmt_status(s.handle(), SQLITE_STMTSTATUS_RUN, 0), i + 1);
  }
  Stmt count(*db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), 5);
}

TEST(StatementCache, SameSqlTwiceAtOnceAndNoBindingsCarriedOver) {
  test_support::TempDir dir;
  auto db = Open(dir);
  ASSERT_TRUE(db->Exec("INSERT INTO t (k, v) VALUES (1, 'a'), (2, 'b')").ok());
  {
    Stmt outer(*db, "SELECT v FROM t WHERE k = ?");
    outer.Bind(1);
    ASSERT_TRUE(outer.Row());
    Stmt inner(*db, "SELECT v FROM t WHERE k = ?");  // outer is still on its row
    inner.Bind(2);
    ASSERT_TRUE(inner.Row());
    EXPECT_NE(inner.handle(), outer.handle());
    EXPECT_EQ(outer.Text(0), "a");
    EXPECT_EQ(inner.Text(0), "b");
  }
  // Taken from the cache again: its earlier binding is gone (an unbound parameter is NULL).
  Stmt again(*db, "SELECT count(*) FROM t WHERE k = ?");
  ASSERT_TRUE(again.Row());
  EXPECT_EQ(again.Int(0), 0);
}

// BindView and BindBlobView store the caller's bytes (not a copy) and Reset forgets them: the
// statement run again without binding sees NULL, not bytes that may have been freed since.
TEST(StatementCache, ViewBindingsStoreTheBytesAndResetForgetsThem) {
  test_support::TempDir dir;
  auto db = Open(dir);
  ASSERT_TRUE(db->Exec("CREATE TABLE b (k INTEGER PRIMARY KEY, v TEXT, blob BLOB)").ok());
  Stmt insert(*db, "INSERT INTO b (k, v, blob) VALUES (?, ?, ?)");
  {
    std::string text = "a value longer than any short-string buffer";
    std::string bytes("\0\x01\xff", 3);
    insert.Bind(1).BindView(text).BindBlobView(bytes);
    ASSERT_EQ(insert.Step(), Stmt::kDone);
    insert.Reset();
  }  // the bound strings are gone
  insert.Bind(2);
  ASSERT_EQ(insert.Step(), Stmt::kDone);  // v and blob unbound: NULL
  insert.Reset();
  insert.Bind(3).BindView("").BindBlobView("");
  ASSERT_EQ(insert.Step(), Stmt::kDone);
  insert.Reset();
  Stmt read(*db, "SELECT v, blob, v IS NULL, blob IS NULL FROM b ORDER BY k");
  ASSERT_TRUE(read.Row());
  EXPECT_EQ(read.Text(0), "a value longer than any short-string buffer");
  EXPECT_EQ(read.Blob(1), std::string("\0\x01\xff", 3));
  ASSERT_TRUE(read.Row());
  EXPECT_EQ(read.Int(2), 1);
  EXPECT_EQ(read.Int(3), 1);
  ASSERT_TRUE(read.Row());  // empty, not NULL
  EXPECT_EQ(read.Int(2), 0);
  EXPECT_EQ(read.Int(3), 0);
  EXPECT_EQ(read.Blob(1), "");
  EXPECT_FALSE(read.Row());
}

TEST(StatementCache, AReturnedStatementHoldsNoSnapshot) {
  test_support::TempDir dir;
  auto writer = Open(dir);
  auto reader = Open(dir);
  {
    Stmt s(*reader, "SELECT count(*) FROM t");
    ASSERT_TRUE(s.Row());  // left on its row: destroyed without stepping to the end
    EXPECT_EQ(s.Int(0), 0);
  }
  ASSERT_TRUE(writer->Exec("INSERT INTO t (k, v) VALUES (1, 'a')").ok());
  // A checkpoint can only complete when no reader holds an old snapshot.
  int log = -1, checkpointed = -1;
  ASSERT_EQ(sqlite3_wal_checkpoint_v2(writer->handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log,
                                      &checkpointed),
            SQLITE_OK);
  Stmt s(*reader, "SELECT count(*) FROM t");
  ASSERT_TRUE(s.Row());
  EXPECT_EQ(s.Int(0), 1);  // the cached statement sees the new commit
}

TEST(StatementCache, FollowsSchemaChangesAndSingleStatementExec) {
  test_support::TempDir dir;
  auto db = Open(dir);
  ASSERT_TRUE(db->Exec("INSERT INTO t (k, v) VALUES (1, 'a')").ok());
  {
    Stmt s(*db, "SELECT * FROM t");
    ASSERT_TRUE(s.Row());
  }
  ASSERT_TRUE(db->Exec("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'x'").ok());
  Stmt s(*db, "SELECT * FROM t");
  ASSERT_TRUE(s.Row());
  EXPECT_EQ(sqlite3_column_count(s.handle()), 3);
  // A failing single statement reports SQLite's message; a transaction through Exec still works.
  Status bad = db->Exec("INSERT INTO nowhere VALUES (1)");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("no such table"), std::string::npos) << bad.error().message;
  ASSERT_TRUE(db->Exec("BEGIN IMMEDIATE").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t (k, v) VALUES (2, 'b')").ok());
  ASSERT_TRUE(db->Exec("ROLLBACK").ok());
  Stmt count(*db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.Row());
  EXPECT_EQ(count.Int(0), 1);
}

}  // namespace
}  // namespace inferd::db

namespace inferd::db {
namespace {

// A connection that meets another's write lock waits for it, and gives up after its limit.
TEST(BusyWait, WaitsForALockHeldBrieflyAndGivesUpAfterTheLimit) {
  test_support::TempDir dir;
  auto holder = Open(dir);
  auto waiter = Open(dir);
  using Clock = std::chrono::steady_clock;

  // Held 30 ms: the waiter's BEGIN IMMEDIATE succeeds once it is released.
  ASSERT_TRUE(holder->Exec("BEGIN IMMEDIATE").ok());
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_TRUE(holder->Exec("COMMIT").ok());
  });
  auto start = Clock::now();
  EXPECT_TRUE(waiter->Exec("BEGIN IMMEDIATE").ok());
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(25));
  release.join();
  ASSERT_TRUE(waiter->Exec("COMMIT").ok());

  // Held longer than the waiter's limit (50 ms): SQLITE_BUSY after the limit, not at once.
  WaitWhileBusy(waiter->handle(), 50);
  ASSERT_TRUE(holder->Exec("BEGIN IMMEDIATE").ok());
  start = Clock::now();
  EXPECT_EQ(sqlite3_exec(waiter->handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_BUSY);
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, std::chrono::milliseconds(2000));
  ASSERT_TRUE(holder->Exec("COMMIT").ok());
}

// What a reader in another process (python3's sqlite3, SQLite's default VFS) finds: 0 = the
// committed row, 1 = "database is locked", else another failure. Not a fork of this process: a
// forked child shares SQLite's view of which locks this process holds.
int ReadFromAnotherProcess(const std::filesystem::path& path) {
  const std::string command =
      "python3 -c 'import sqlite3, sys\n"
      "try:\n"
      "    n = sqlite3.connect(sys.argv[1], timeout=0).execute(\"SELECT count(*) FROM t\")"
      ".fetchone()[0]\n"
      "    sys.exit(0 if n == 1 else 2)\n"
      "except sqlite3.OperationalError as e:\n"
      "    sys.exit(1 if \"locked\" in str(e) else 3)' '" +
      path.string() + "'";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}

TEST(Sharing, ThisProcessLocksOthersOutAnyProcessLetsThemRead) {
  test_support::TempDir dir;
  {
    auto mine = Open(dir);  // Sharing::kThisProcess, the default
    ASSERT_TRUE(mine->Exec("INSERT INTO t (v) VALUES ('a')").ok());
    EXPECT_EQ(ReadFromAnotherProcess(dir.path() / "t.db"), 1);
    // A second connection of this process shares the lock and sees the row.
    auto reader = Database::Open(dir.path() / "t.db", "reader", nullptr);
    ASSERT_TRUE(reader.ok());
    Stmt count(**reader, "SELECT count(*) FROM t");
    ASSERT_TRUE(count.Row());
    EXPECT_EQ(sqlite3_column_int(count.handle(), 0), 1);
  }
  // Closed: free for anyone.
  EXPECT_EQ(ReadFromAnotherProcess(dir.path() / "t.db"), 0);

  auto shared = Database::Open(dir.path() / "t.db", "shared", kSchema, {}, Sharing::kAnyProcess);
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(ReadFromAnotherProcess(dir.path() / "t.db"), 0);
}

}  // namespace
}  // namespace inferd::db
