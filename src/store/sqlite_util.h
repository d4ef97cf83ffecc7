// Thin SQLite helpers for FilesystemStore's index (internal to src/store).
//
// Keys are bound and read as BLOBs everywhere: SQLite compares BLOBs with memcmp, which is S3's
// listing order (UTF-8 byte order), and a BLOB survives any byte sequence. Mixing TEXT and BLOB
// bindings on the key column would break ordering (every TEXT sorts before every BLOB), so only
// BindBlob is used for keys.
//
// Not thread-safe: the owner serializes all use of one connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace inferd::store::internal {

// RAII prepared statement with positional binding.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK) {
      stmt_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& BindText(std::string_view v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Never binds NULL, even for an empty value.
  Stmt& BindBlob(std::string_view v) {
    static const char kEmpty = 0;
    sqlite3_bind_blob(stmt_, ++n_, v.empty() ? &kEmpty : v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindReal(double v) {
    sqlite3_bind_double(stmt_, ++n_, v);
    return *this;
  }
  Stmt& BindInt(int64_t v) {
    sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code (SQLITE_MISUSE when the statement did not prepare).
  int Step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_MISUSE; }
  // Runs to completion; kInternal unless it finished.
  Status Run(std::string_view what) {
    int rc;
    while ((rc = Step()) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return Fail(what);
    return OkStatus();
  }
  // Re-runs the statement with new bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    n_ = 0;
  }
  std::string Text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  double Real(int col) { return sqlite3_column_double(stmt_, col); }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  Error Fail(std::string_view what) const {
    return Error(Errc::kInternal,
                 "object store index: " + std::string(what) + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int n_ = 0;
};

inline Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return Error(Errc::kInternal, "object store index: " + msg);
  }
  return OkStatus();
}

// BEGIN IMMEDIATE on construction; rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db), status_(Exec(db, "BEGIN IMMEDIATE")) {}
  ~Transaction() {
    if (status_.ok() && !done_) (void)Exec(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // The result of BEGIN.
  const Status& status() const { return status_; }
  Status Commit() {
    done_ = true;
    Status st = Exec(db_, "COMMIT");
    if (!st.ok()) (void)Exec(db_, "ROLLBACK");
    return st;
  }

 private:
  sqlite3* db_;
  Status status_;
  bool done_ = false;
};

}  // namespace inferd::store::internal
