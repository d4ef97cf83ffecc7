#include "catalog/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>

#include "common/base64.h"

namespace inferd::catalog {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS resources (
  kind INTEGER NOT NULL,
  region TEXT NOT NULL,
  name_key TEXT NOT NULL,
  name TEXT NOT NULL,
  arn TEXT NOT NULL,
  creation_time REAL NOT NULL,
  last_modified_time REAL NOT NULL,
  status TEXT NOT NULL DEFAULT '',
  doc TEXT NOT NULL,
  PRIMARY KEY (kind, region, name_key)
);
CREATE INDEX IF NOT EXISTS resources_arn ON resources(arn);
CREATE TABLE IF NOT EXISTS tags (
  arn TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (arn, key)
);
)sql";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// RAII prepared statement with positional binding.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(double v) {
    sqlite3_bind_double(stmt_, ++n_, v);
    return *this;
  }
  Stmt& Bind(int v) {
    sqlite3_bind_int(stmt_, ++n_, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  double Real(int col) { return sqlite3_column_double(stmt_, col); }
  Error Fail(std::string_view what) const {
    return Error(Errc::kInternal, std::string(what) + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int n_ = 0;
};

Resource ReadResource(Stmt& s, Kind kind) {
  Resource r;
  r.kind = kind;
  r.region = s.Text(0);
  r.name = s.Text(1);
  r.arn = s.Text(2);
  r.creation_time = s.Real(3);
  r.last_modified_time = s.Real(4);
  r.status = s.Text(5);
  r.doc = s.Text(6);
  return r;
}

constexpr const char* kColumns =
    "region, name, arn, creation_time, last_modified_time, status, doc, name_key ";

// Page tokens: base64 of "<sort key>\x1f<name_key>", the last item of the previous page.
std::string MakeToken(const std::string& sort_key, const std::string& name_key) {
  return Base64Encode(sort_key + '\x1f' + name_key);
}

Result<std::pair<std::string, std::string>> ParseToken(const std::string& token) {
  auto raw = Base64Decode(token);
  if (raw) {
    auto sep = raw->find('\x1f');
    if (sep != std::string::npos) return std::make_pair(raw->substr(0, sep), raw->substr(sep + 1));
  }
  return Error(Errc::kValidation, "The pagination token is not valid: it was not issued by this "
                                  "service or belongs to another query.");
}

std::string SortKeyText(const Resource& r, SortBy by) {
  switch (by) {
    case SortBy::kName: return Lower(r.name);
    case SortBy::kStatus: return r.status;
    case SortBy::kCreationTime: {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", r.creation_time);
      return buf;
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<CatalogStore>> CatalogStore::Open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error(Errc::kUnavailable, "cannot open catalog database " + path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<CatalogStore> store(new CatalogStore(db));
  INFERD_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  INFERD_RETURN_IF_ERROR(store->Exec(kSchema));
  return store;
}

CatalogStore::~CatalogStore() { sqlite3_close(db_); }

Status CatalogStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Error(Errc::kInternal, std::string("catalog database: ") + msg);
  }
  return OkStatus();
}

Status CatalogStore::Insert(const Resource& r, const std::vector<Tag>& tags) {
  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Stmt s(db_,
         "INSERT INTO resources (kind, region, name_key, name, arn, creation_time, "
         "last_modified_time, status, doc) VALUES (?,?,?,?,?,?,?,?,?)");
  s.Bind(static_cast<int>(r.kind)).Bind(r.region).Bind(Lower(r.name)).Bind(r.name).Bind(r.arn);
  s.Bind(r.creation_time).Bind(r.last_modified_time).Bind(r.status).Bind(r.doc);
  int rc = s.Step();
  if (rc != SQLITE_DONE) {
    Rollback();
    if (rc == SQLITE_CONSTRAINT) return Error(Errc::kAlreadyExists, r.arn);
    return s.Fail("insert");
  }
  if (!tags.empty()) {
    if (auto st = AddTagsLocked(r.arn, tags); !st.ok()) {
      Rollback();
      return st;
    }
  }
  return Exec("COMMIT");
}

Result<Resource> CatalogStore::Get(Kind kind, const std::string& region, const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kColumns +
               "FROM resources WHERE kind=? AND region=? AND name_key=?")
                  .c_str());
  s.Bind(static_cast<int>(kind)).Bind(region).Bind(Lower(name));
  int rc = s.Step();
  if (rc == SQLITE_ROW) return ReadResource(s, kind);
  if (rc == SQLITE_DONE) return Error(Errc::kNotFound, name);
  return s.Fail("get");
}

Status CatalogStore::Update(const Resource& r) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "UPDATE resources SET status=?, last_modified_time=?, doc=? "
         "WHERE kind=? AND region=? AND name_key=?");
  s.Bind(r.status).Bind(r.last_modified_time).Bind(r.doc);
  s.Bind(static_cast<int>(r.kind)).Bind(r.region).Bind(Lower(r.name));
  if (s.Step() != SQLITE_DONE) return s.Fail("update");
  if (sqlite3_changes(db_) == 0) return Error(Errc::kNotFound, r.name);
  return OkStatus();
}

Status CatalogStore::Remove(Kind kind, const std::string& region, const std::string& name) {
  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Stmt s(db_,
         "DELETE FROM resources WHERE kind=? AND region=? AND name_key=? RETURNING arn");
  s.Bind(static_cast<int>(kind)).Bind(region).Bind(Lower(name));
  int rc = s.Step();
  if (rc != SQLITE_ROW) {
    Rollback();
    if (rc == SQLITE_DONE) return Error(Errc::kNotFound, name);
    return s.Fail("remove");
  }
  std::string arn = s.Text(0);
  while (s.Step() == SQLITE_ROW) {
  }
  Stmt t(db_, "DELETE FROM tags WHERE arn=?");
  t.Bind(arn);
  if (t.Step() != SQLITE_DONE) {
    Rollback();
    return t.Fail("remove tags");
  }
  return Exec("COMMIT");
}

Result<Page> CatalogStore::List(Kind kind, const std::string& region, const ListQuery& q) {
  std::string sort_col = q.sort_by == SortBy::kName           ? "name_key"
                         : q.sort_by == SortBy::kStatus       ? "status"
                                                              : "creation_time";
  std::string sql = std::string("SELECT ") + kColumns + "FROM resources WHERE kind=? AND region=?";
  std::string after_key, after_name;
  if (!q.next_token.empty()) {
    auto tok = ParseToken(q.next_token);
    if (!tok.ok()) return std::move(tok).error();
    std::tie(after_key, after_name) = *tok;
  }
  if (!q.name_contains.empty()) sql += " AND instr(name_key, ?) > 0";
  if (q.creation_before) sql += " AND creation_time < ?";
  if (q.creation_after) sql += " AND creation_time > ?";
  if (q.modified_before) sql += " AND last_modified_time < ?";
  if (q.modified_after) sql += " AND last_modified_time > ?";
  if (!q.status_equals.empty()) sql += " AND status = ?";
  const char* cmp = q.descending ? "<" : ">";
  if (!q.next_token.empty()) sql += " AND (" + sort_col + ", name_key) " + cmp + " (?, ?)";
  const char* dir = q.descending ? " DESC" : " ASC";
  sql += " ORDER BY " + sort_col + dir + ", name_key" + dir + " LIMIT ?";

  std::lock_guard lock(mu_);
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return s.Fail("list");
  s.Bind(static_cast<int>(kind)).Bind(region);
  if (!q.name_contains.empty()) s.Bind(Lower(q.name_contains));
  if (q.creation_before) s.Bind(*q.creation_before);
  if (q.creation_after) s.Bind(*q.creation_after);
  if (q.modified_before) s.Bind(*q.modified_before);
  if (q.modified_after) s.Bind(*q.modified_after);
  if (!q.status_equals.empty()) s.Bind(q.status_equals);
  if (!q.next_token.empty()) {
    if (q.sort_by == SortBy::kCreationTime) {
      s.Bind(std::strtod(after_key.c_str(), nullptr));
    } else {
      s.Bind(after_key);
    }
    s.Bind(after_name);
  }
  s.Bind(q.limit + 1);  // one more tells whether a next page exists
  Page page;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) page.items.push_back(ReadResource(s, kind));
  if (rc != SQLITE_DONE) return s.Fail("list");
  if (static_cast<int>(page.items.size()) > q.limit) {
    page.items.resize(q.limit);
    const Resource& last = page.items.back();
    page.next_token = MakeToken(SortKeyText(last, q.sort_by), Lower(last.name));
  }
  return page;
}

Result<std::vector<Resource>> CatalogStore::All(Kind kind) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kColumns + "FROM resources WHERE kind=? ORDER BY "
                                                   "creation_time")
                  .c_str());
  s.Bind(static_cast<int>(kind));
  std::vector<Resource> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadResource(s, kind));
  if (rc != SQLITE_DONE) return s.Fail("all");
  return out;
}

bool CatalogStore::ArnExists(const std::string& arn) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT 1 FROM resources WHERE arn=?");
  s.Bind(arn);
  return s.Step() == SQLITE_ROW;
}

Status CatalogStore::AddTagsLocked(const std::string& arn, const std::vector<Tag>& tags) {
  for (const auto& tag : tags) {
    Stmt s(db_, "INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?,?,?)");
    s.Bind(arn).Bind(tag.key).Bind(tag.value);
    if (s.Step() != SQLITE_DONE) return s.Fail("add tags");
  }
  Stmt c(db_, "SELECT count(*) FROM tags WHERE arn=?");
  c.Bind(arn);
  if (c.Step() != SQLITE_ROW) return c.Fail("count tags");
  if (c.Real(0) > kMaxTagsPerResource) {
    return Error(Errc::kResourceLimit, "You can't have more than " +
                                           std::to_string(kMaxTagsPerResource) +
                                           " tags on a resource; " + arn + " would have " +
                                           std::to_string(static_cast<int>(c.Real(0))) + ".");
  }
  return OkStatus();
}

Status CatalogStore::AddTags(const std::string& arn, const std::vector<Tag>& tags) {
  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  if (auto st = AddTagsLocked(arn, tags); !st.ok()) {
    Rollback();
    return st;
  }
  return Exec("COMMIT");
}

Status CatalogStore::DeleteTags(const std::string& arn, const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  INFERD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const auto& key : keys) {
    Stmt s(db_, "DELETE FROM tags WHERE arn=? AND key=?");
    s.Bind(arn).Bind(key);
    if (s.Step() != SQLITE_DONE) {
      Rollback();
      return s.Fail("delete tags");
    }
  }
  return Exec("COMMIT");
}

Result<std::pair<std::vector<Tag>, std::string>> CatalogStore::ListTags(
    const std::string& arn, int limit, const std::string& next_token) {
  std::string after;
  if (!next_token.empty()) {
    auto tok = ParseToken(next_token);
    if (!tok.ok()) return std::move(tok).error();
    after = tok->second;
  }
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT key, value FROM tags WHERE arn=? AND key > ? ORDER BY key LIMIT ?");
  s.Bind(arn).Bind(after).Bind(limit + 1);
  std::vector<Tag> tags;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) tags.push_back({s.Text(0), s.Text(1)});
  if (rc != SQLITE_DONE) return s.Fail("list tags");
  std::string token;
  if (static_cast<int>(tags.size()) > limit) {
    tags.resize(limit);
    token = MakeToken("tag", tags.back().key);
  }
  return std::make_pair(std::move(tags), std::move(token));
}

}  // namespace inferd::catalog
