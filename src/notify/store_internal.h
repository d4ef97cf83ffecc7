// Internal to notify/'s store: the row and JSON helpers store.cc and store_outbox.cc share, and
// the pool of read connections.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "db/sqlite.h"
#include "notify/types.h"

namespace inferd::notify::internal {

// JSON object text ↔ string map (non-string members are ignored).
std::string MapToJson(const std::map<std::string, std::string>& m);
std::map<std::string, std::string> MapFromJson(const std::string& text);

// The subscription columns in the order ReadSubscription expects.
extern const char* const kSubscriptionColumns;
Subscription ReadSubscription(db::Stmt& s);

// Read-only connections to notify.db (PRAGMA query_only). In WAL mode a reader sees the last
// commit made before its statement started and never waits for the writer's transaction or its
// fsync. A Lease is one connection for one thread; the statements made on it must be finished
// (destroyed) before the lease is, so no read transaction outlives the call (it would pin an old
// snapshot and the next call would miss later commits). Thread-safe.
class ReaderPool {
 public:
  // Opens `count` connections to the database at `path` (its schema must exist).
  static Result<std::unique_ptr<ReaderPool>> Open(const std::filesystem::path& path, int count);

  class Lease {
   public:
    Lease(ReaderPool& pool, db::Database& db) : pool_(&pool), db_(&db) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), db_(other.db_) { other.db_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (db_) pool_->Return(db_);
    }
    db::Database& operator*() const { return *db_; }

   private:
    ReaderPool* pool_;
    db::Database* db_;
  };

  // Blocks while every connection is leased.
  Lease Acquire();

 private:
  ReaderPool() = default;
  void Return(db::Database* db);

  std::vector<std::unique_ptr<db::Database>> all_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<db::Database*> idle_;  // guarded by mu_
};

}  // namespace inferd::notify::internal
