#include "db/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "db/checkpointer.h"
#include "db/page_cache.h"

static_assert(inferd::db::Stmt::kRow == SQLITE_ROW);
static_assert(inferd::db::Stmt::kDone == SQLITE_DONE);
static_assert(inferd::db::Stmt::kConstraint == SQLITE_CONSTRAINT);

namespace inferd::db {

namespace {

constexpr int kFirstPollUs = 25;
constexpr int kLongestPollUs = 1000;

// sqlite3_busy_handler: `count` is how many times it ran for this lock.
int PollWhileBusy(void* limit_us, int count) {
  int waited = 0;  // what the earlier polls slept, recomputed from count
  int poll = kFirstPollUs;
  for (int i = 0; i < count; ++i) {
    waited += poll;
    poll = std::min(poll * 2, kLongestPollUs);
  }
  if (waited >= static_cast<int>(reinterpret_cast<intptr_t>(limit_us))) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(poll));
  return 1;
}

}  // namespace

void WaitWhileBusy(sqlite3* db, int limit_ms) {
  sqlite3_busy_handler(db, &PollWhileBusy,
                       reinterpret_cast<void*>(static_cast<intptr_t>(limit_ms) * 1000));
}

const char* VfsFor(Sharing sharing) {
  return sharing == Sharing::kThisProcess ? "unix-excl" : nullptr;
}

Result<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& path,
                                                 std::string label, const char* schema,
                                                 const CheckpointOptions& checkpoints,
                                                 Sharing sharing) {
  InstallPageCache();  // before SQLite's first use in the process (page_cache.h)
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           VfsFor(sharing));
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    return Error(Errc::kUnavailable, "cannot open " + label + " " + path.string() + ": " + msg);
  }
  WaitWhileBusy(raw, 5000);
  std::unique_ptr<Database> db(new Database(raw, std::move(label), path, checkpoints, sharing));
  INFERD_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  // Replaces SQLite's automatic checkpoint (which runs inside the commit).
  sqlite3_wal_hook(raw, &Database::OnCommit, db.get());
  if (schema) INFERD_RETURN_IF_ERROR(db->Exec(schema));
  return db;
}

Database::Database(sqlite3* db, std::string label, std::filesystem::path path,
                   const CheckpointOptions& checkpoints, Sharing sharing)
    : db_(db),
      label_(std::move(label)),
      path_(std::move(path)),
      checkpoint_options_(checkpoints),
      sharing_(sharing) {}

int Database::CheckpointsRun() const { return checkpointer_ ? checkpointer_->runs() : 0; }

bool Database::CheckpointerIdle() const { return !checkpointer_ || checkpointer_->idle(); }

bool Database::FinishCheckpointIfDue() {
  if (!finish_due_.exchange(false, std::memory_order_acq_rel)) return false;
  int log = 0, copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  return rc == SQLITE_OK && log == copied;
}

int Database::OnCommit(void* self, sqlite3*, const char*, int frames) {
  auto* d = static_cast<Database*>(self);
  if (!d->checkpointer_) {
    if (frames < d->checkpoint_options_.frames) return SQLITE_OK;
    std::function<void()> handoff;
    if (d->checkpoint_options_.writer_finishes) {
      handoff = [d] {
        d->finish_due_.store(true, std::memory_order_release);
        if (d->checkpoint_options_.wake_writer) d->checkpoint_options_.wake_writer();
      };
    }
    d->checkpointer_ =
        std::make_unique<Checkpointer>(d->path_, d->label_, VfsFor(d->sharing_),
                                       d->checkpoint_options_.frames, std::move(handoff));
  }
  d->checkpointer_->Signal(frames);
  return SQLITE_OK;
}

Database::~Database() {
  checkpointer_.reset();  // before the close, which checkpoints what is left
  for (auto& [sql, idle] : cache_) {
    for (sqlite3_stmt* s : idle) sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

sqlite3_stmt* Database::Acquire(std::string_view sql, std::vector<sqlite3_stmt*>*& home) {
  home = nullptr;
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    home = &it->second;
    if (!home->empty()) {
      sqlite3_stmt* s = home->back();
      home->pop_back();
      return s;
    }
  } else if (cache_.size() < kMaxCachedSql) {
    home = &cache_.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first->second;
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  return s;
}

void Database::Release(sqlite3_stmt* stmt, std::vector<sqlite3_stmt*>* home) {
  if (stmt == nullptr) return;
  sqlite3_reset(stmt);  // ends its read of the database (a reader's snapshot)
  sqlite3_clear_bindings(stmt);
  if (home != nullptr && home->size() < kIdlePerSql) {
    home->push_back(stmt);
  } else {
    sqlite3_finalize(stmt);
  }
}

Status Database::AddColumnIfMissing(const char* table, const char* column,
                                    const char* declaration) {
  Stmt s(*this, "SELECT 1 FROM pragma_table_info(?) WHERE name=?");
  s.Bind(table).Bind(column);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return OkStatus();
  if (rc != SQLITE_DONE) return s.Fail("schema check");
  const std::string sql =
      std::string("ALTER TABLE ") + table + " ADD COLUMN " + column + " " + declaration;
  return Exec(sql.c_str());
}

Status Database::Exec(const char* sql) {
  if (std::string_view(sql).find(';') == std::string_view::npos) {
    Stmt s(*this, sql);
    if (!s.ok()) return Error(Errc::kInternal, label_ + ": " + sqlite3_errmsg(db_));
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return Error(Errc::kInternal, label_ + ": " + sqlite3_errmsg(db_));
    return OkStatus();
  }
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Error(Errc::kInternal, label_ + ": " + msg);
  }
  return OkStatus();
}

int Database::Changes() const { return sqlite3_changes(db_); }

int64_t Database::TotalChanges() const { return sqlite3_total_changes64(db_); }

Error Database::Fail(std::string_view what) const {
  return Error(Errc::kInternal, label_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

Stmt::Stmt(Database& db, std::string_view sql) : db_(db) { stmt_ = db.Acquire(sql, home_); }

Stmt::~Stmt() { db_.Release(stmt_, home_); }

Stmt& Stmt::Bind(std::string_view v) {
  sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::Bind(double v) {
  sqlite3_bind_double(stmt_, ++n_, v);
  return *this;
}

Stmt& Stmt::Bind(int64_t v) {
  sqlite3_bind_int64(stmt_, ++n_, v);
  return *this;
}

namespace {
// A non-null pointer for an empty BLOB (SQLite binds a null pointer as NULL).
const char kEmptyBlob = 0;
}  // namespace

Stmt& Stmt::BindBlob(std::string_view v) {
  sqlite3_bind_blob(stmt_, ++n_, v.empty() ? &kEmptyBlob : v.data(), static_cast<int>(v.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindView(std::string_view v) {
  sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::BindBlobView(std::string_view v) {
  sqlite3_bind_blob(stmt_, ++n_, v.empty() ? &kEmptyBlob : v.data(), static_cast<int>(v.size()),
                    SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::BindNull() {
  sqlite3_bind_null(stmt_, ++n_);
  return *this;
}

int Stmt::Step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_MISUSE; }

Status Stmt::Run(std::string_view what) {
  int rc;
  while ((rc = Step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return Fail(what);
  return OkStatus();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  n_ = 0;
}

bool Stmt::IsNull(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::string Stmt::Text(int col) {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
}

std::string Stmt::Blob(int col) {
  auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
}

double Stmt::Real(int col) { return sqlite3_column_double(stmt_, col); }
int64_t Stmt::Int(int col) { return sqlite3_column_int64(stmt_, col); }

ReadTransaction::ReadTransaction(Database& db) : db_(db), status_(db.Exec("BEGIN")) {}

ReadTransaction::~ReadTransaction() {
  // COMMIT of a read-only transaction writes nothing; should it fail, ROLLBACK still ends it.
  if (status_.ok() && !db_.Exec("COMMIT").ok()) (void)db_.Exec("ROLLBACK");
}

Transaction::Transaction(Database& db) : db_(db), status_(db.Exec("BEGIN IMMEDIATE")) {}

Transaction::~Transaction() {
  if (status_.ok() && !done_) (void)db_.Exec("ROLLBACK");
}

Status Transaction::Commit() {
  done_ = true;
  Status st = db_.Exec("COMMIT");
  if (!st.ok()) (void)db_.Exec("ROLLBACK");
  return st;
}

}  // namespace inferd::db
