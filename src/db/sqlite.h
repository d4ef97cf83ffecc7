// Thin RAII helpers over SQLite shared by every component that keeps durable state (catalog,
// object index, notification outbox, queue): a Database that opens with the project's durability
// settings, prepared statements with positional binding, and transactions that roll back unless
// committed.
//
// Not thread-safe by themselves: the owner serializes use of one Database (a mutex around it).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace inferd::db {

class Checkpointer;

// Makes `db` wait up to `limit` for a lock another connection holds, polling every 25 µs at
// first and at most every 1 ms (SQLite's own busy timeout sleeps 1, 2, 5, 10 … ms: a writer
// that meets a checkpoint holding the WAL's write lock for 0.3 ms would wait 1–3 ms).
void WaitWhileBusy(sqlite3* db, int limit_ms);

// Which processes may use a database file while this one has it open.
enum class Sharing {
  // This process only — inferd's own files. The first connection locks the file for the
  // process until the last one closes, and the WAL index lives in this process's memory, not in
  // a -shm file (SQLite's "unix-excl" VFS): a transaction makes no file-lock system calls (with
  // the default VFS a dispatch worker made ≈ 16 fcntl calls per invocation), and another
  // process that opens the file gets SQLITE_BUSY. Every connection this process opens to the
  // file must be opened with the same Sharing.
  kThisProcess,
  // Any process (SQLite's default "unix" VFS: fcntl locks and a -shm file): the catalog, which
  // `inferd logs` reads while a server runs.
  kAnyProcess,
};

// The VFS that gives `sharing` (nullptr: SQLite's default).
const char* VfsFor(Sharing sharing);

// When the Checkpointer (checkpointer.h) checkpoints a database's WAL.
struct CheckpointOptions {
  int frames = 1000;  // WAL frames (pages) after a commit; SQLite's automatic threshold
  // The database's writer finishes each checkpoint (checkpointer.h says why): after the
  // checkpointer's PASSIVE step, instead of its RESTART, FinishCheckpointIfDue() — which the
  // writer calls between two of its transactions — copies the last frames, and the writer's
  // next transaction starts the WAL over. Should the WAL still reach 4 × frames (readers kept
  // it from starting over), the checkpointer RESTARTs it itself.
  bool writer_finishes = false;
  // With writer_finishes: called on the checkpointer's thread once a finish is due, to wake a
  // writer that waits for work (GroupCommit needs none: its next leader finishes). Must only
  // wake: a writer checks CheckpointDue().
  std::function<void()> wake_writer;
};

class Database {
 public:
  // Opens (creating) the file with WAL and synchronous=FULL (a commit that returned is on disk),
  // and runs `schema` (idempotent DDL). `label` prefixes error messages ("catalog database").
  // WAL checkpoints run on a Checkpointer thread (checkpointer.h), started by the first commit
  // that fills the WAL past CheckpointOptions::frames pages, never inside a commit. `sharing`:
  // see Sharing.
  static Result<std::unique_ptr<Database>> Open(const std::filesystem::path& path,
                                                std::string label, const char* schema,
                                                const CheckpointOptions& checkpoints = {},
                                                Sharing sharing = Sharing::kThisProcess);
  // Background checkpoints run so far (tests).
  int CheckpointsRun() const;
  // No background checkpoint running or due (tests).
  bool CheckpointerIdle() const;
  // With CheckpointOptions::writer_finishes: whether the checkpointer has handed its last step
  // over (any thread).
  bool CheckpointDue() const { return finish_due_.load(std::memory_order_acquire); }
  // The writer's part of a handed-off checkpoint, between its transactions, if one is due:
  // copies the frames committed since the checkpointer's PASSIVE step, so that the writer's
  // next transaction starts the WAL over. Returns whether the whole WAL is now in the database
  // file (false: none due, busy with another checkpoint, or readers still need frames).
  bool FinishCheckpointIfDue();
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs `sql`. A single statement (no ';') runs as a cached prepared statement; several go
  // through sqlite3_exec.
  Status Exec(const char* sql);
  sqlite3* handle() const { return db_; }
  const std::string& label() const { return label_; }
  // Rows changed by the last statement.
  int Changes() const;
  // Rows changed by every statement since the connection opened (rolled back ones included).
  int64_t TotalChanges() const;
  // Adds `column` (`declaration`: type and constraints) to `table` unless it has it: how a
  // schema written by an older inferd gains a column.
  Status AddColumnIfMissing(const char* table, const char* column, const char* declaration);
  Error Fail(std::string_view what) const;

 private:
  friend class Stmt;
  // Prepared statements are kept per SQL text and handed out again (reset, bindings cleared):
  // preparing costs more than running most of our statements. A statement in use is taken out
  // of the cache, so the same SQL may be in use twice at once.
  struct TransparentHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StmtCache =
      std::unordered_map<std::string, std::vector<sqlite3_stmt*>, TransparentHash, std::equal_to<>>;
  static constexpr std::size_t kIdlePerSql = 4;
  static constexpr std::size_t kMaxCachedSql = 256;
  // A prepared statement for `sql` (nullptr when it does not prepare) and where to return it.
  sqlite3_stmt* Acquire(std::string_view sql, std::vector<sqlite3_stmt*>*& home);
  void Release(sqlite3_stmt* stmt, std::vector<sqlite3_stmt*>* home);

  Database(sqlite3* db, std::string label, std::filesystem::path path,
           const CheckpointOptions& checkpoints, Sharing sharing);
  // sqlite3_wal_hook: after each commit, with the frames now in the WAL.
  static int OnCommit(void* self, sqlite3* db, const char* name, int frames);
  sqlite3* db_;
  std::string label_;
  std::filesystem::path path_;
  CheckpointOptions checkpoint_options_;
  Sharing sharing_;  // the checkpointer's connection opens the file the same way
  std::atomic<bool> finish_due_{false};  // set by the checkpointer's handoff
  StmtCache cache_;
  std::unique_ptr<Checkpointer> checkpointer_;  // from the first commit that needs one
};

// A prepared statement, taken from the database's cache and given back (reset) when destroyed.
// Bind* append positional parameters in order.
class Stmt {
 public:
  Stmt(Database& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  sqlite3_stmt* handle() const { return stmt_; }
  Stmt& Bind(std::string_view v);  // TEXT
  Stmt& Bind(const std::string& v) { return Bind(std::string_view(v)); }
  Stmt& Bind(const char* v) { return Bind(std::string_view(v)); }
  Stmt& Bind(double v);
  Stmt& Bind(int64_t v);
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  // BLOB (compares with memcmp: byte order). Never NULL, even when empty.
  Stmt& BindBlob(std::string_view v);
  // As Bind / BindBlob, without SQLite's copy of the bytes: they must stay valid and unchanged
  // until Reset() or the Stmt's destruction (hot paths whose values outlive the Step).
  Stmt& BindView(std::string_view v);
  Stmt& BindBlobView(std::string_view v);
  Stmt& BindNull();

  // SQLITE_ROW, SQLITE_DONE or an error code (SQLITE_MISUSE when the SQL did not prepare).
  int Step();
  bool Row() { return Step() == kRow; }
  // Runs to completion; an error unless it finished.
  Status Run(std::string_view what);
  // Clears bindings and rewinds, to run again.
  void Reset();

  bool IsNull(int col);
  std::string Text(int col);
  std::string Blob(int col);
  double Real(int col);
  int64_t Int(int col);
  Error Fail(std::string_view what) const { return db_.Fail(what); }

  static constexpr int kRow = 100;        // SQLITE_ROW
  static constexpr int kDone = 101;       // SQLITE_DONE
  static constexpr int kConstraint = 19;  // SQLITE_CONSTRAINT

 private:
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::vector<sqlite3_stmt*>* home_ = nullptr;  // the cache slot it returns to
  int n_ = 0;
};

// One snapshot for a read-only call: BEGIN (deferred, so the snapshot starts at the first
// statement's first step) on construction, COMMIT on destruction. A snapshot left open would hide
// later commits from every following read on the connection, so it never outlives the call.
// Statements must be finalized or reset before it ends (declare them after it).
class ReadTransaction {
 public:
  explicit ReadTransaction(Database& db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

  const Status& status() const { return status_; }  // the result of BEGIN

 private:
  Database& db_;
  Status status_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() ran.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return status_; }  // the result of BEGIN
  Status Commit();

 private:
  Database& db_;
  Status status_;
  bool done_ = false;
};

}  // namespace inferd::db
