// Thin RAII helpers over SQLite shared by every component that keeps durable state (catalog,
// object index, notification outbox, queue): a Database that opens with the project's durability
// settings, prepared statements with positional binding, and transactions that roll back unless
// committed.
//
// Not thread-safe by themselves: the owner serializes use of one Database (a mutex around it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace inferd::db {

class Database {
 public:
  // Opens (creating) the file with WAL and synchronous=FULL (a commit that returned is on disk),
  // and runs `schema` (idempotent DDL). `label` prefixes error messages ("catalog database").
  static Result<std::unique_ptr<Database>> Open(const std::filesystem::path& path,
                                                std::string label, const char* schema);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Exec(const char* sql);
  sqlite3* handle() const { return db_; }
  const std::string& label() const { return label_; }
  // Rows changed by the last statement.
  int Changes() const;
  Error Fail(std::string_view what) const;

 private:
  Database(sqlite3* db, std::string label) : db_(db), label_(std::move(label)) {}
  sqlite3* db_;
  std::string label_;
};

// A prepared statement. Bind* append positional parameters in order.
class Stmt {
 public:
  Stmt(Database& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& Bind(std::string_view v);  // TEXT
  Stmt& Bind(const std::string& v) { return Bind(std::string_view(v)); }
  Stmt& Bind(const char* v) { return Bind(std::string_view(v)); }
  Stmt& Bind(double v);
  Stmt& Bind(int64_t v);
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  // BLOB (compares with memcmp: byte order). Never NULL, even when empty.
  Stmt& BindBlob(std::string_view v);
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
  int n_ = 0;
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
