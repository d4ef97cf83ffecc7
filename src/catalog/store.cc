#include "catalog/store.h"

#include <algorithm>
#include <cctype>

#include "common/base64.h"
#include "db/sqlite.h"

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

Resource ReadResource(db::Stmt& s, Kind kind) {
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
  return Error(Errc::kValidation,
               "The pagination token is not valid: it was not issued by this "
               "service or belongs to another query.");
}

std::string SortKeyText(const Resource& r, SortBy by) {
  switch (by) {
    case SortBy::kName:
      return Lower(r.name);
    case SortBy::kStatus:
      return r.status;
    case SortBy::kCreationTime: {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", r.creation_time);
      return buf;
    }
  }
  return {};
}

}  // namespace

CatalogStore::CatalogStore(std::unique_ptr<db::Database> db) : db_(std::move(db)) {}

CatalogStore::~CatalogStore() = default;

Result<std::unique_ptr<CatalogStore>> CatalogStore::Open(const std::filesystem::path& path) {
  auto db = db::Database::Open(path, "catalog database", kSchema, {}, db::Sharing::kAnyProcess);
  if (!db.ok()) return std::move(db).error();
  return std::unique_ptr<CatalogStore>(new CatalogStore(std::move(db).value()));
}

Status CatalogStore::Insert(const Resource& r, const std::vector<Tag>& tags) {
  std::lock_guard lock(mu_);
  db::Transaction tx(*db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  db::Stmt s(*db_,
             "INSERT INTO resources (kind, region, name_key, name, arn, creation_time, "
             "last_modified_time, status, doc) VALUES (?,?,?,?,?,?,?,?,?)");
  s.Bind(static_cast<int>(r.kind)).Bind(r.region).Bind(Lower(r.name)).Bind(r.name).Bind(r.arn);
  s.Bind(r.creation_time).Bind(r.last_modified_time).Bind(r.status).Bind(r.doc);
  int rc = s.Step();
  if (rc == db::Stmt::kConstraint) return Error(Errc::kAlreadyExists, r.arn);
  if (rc != db::Stmt::kDone) return s.Fail("insert");
  if (!tags.empty()) INFERD_RETURN_IF_ERROR(AddTagsLocked(r.arn, tags));
  return tx.Commit();
}

Result<Resource> CatalogStore::Get(Kind kind, const std::string& region, const std::string& name) {
  std::lock_guard lock(mu_);
  db::Stmt s(*db_, std::string("SELECT ") + kColumns +
                       "FROM resources WHERE kind=? AND region=? AND name_key=?");
  s.Bind(static_cast<int>(kind)).Bind(region).Bind(Lower(name));
  int rc = s.Step();
  if (rc == db::Stmt::kRow) return ReadResource(s, kind);
  if (rc == db::Stmt::kDone) return Error(Errc::kNotFound, name);
  return s.Fail("get");
}

Status CatalogStore::Update(const Resource& r) {
  std::lock_guard lock(mu_);
  db::Stmt s(*db_,
             "UPDATE resources SET status=?, last_modified_time=?, doc=? "
             "WHERE kind=? AND region=? AND name_key=?");
  s.Bind(r.status).Bind(r.last_modified_time).Bind(r.doc);
  s.Bind(static_cast<int>(r.kind)).Bind(r.region).Bind(Lower(r.name));
  if (s.Step() != db::Stmt::kDone) return s.Fail("update");
  if (db_->Changes() == 0) return Error(Errc::kNotFound, r.name);
  return OkStatus();
}

Status CatalogStore::Remove(Kind kind, const std::string& region, const std::string& name) {
  std::lock_guard lock(mu_);
  db::Transaction tx(*db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  std::string arn;
  {
    db::Stmt s(*db_, "SELECT arn FROM resources WHERE kind=? AND region=? AND name_key=?");
    s.Bind(static_cast<int>(kind)).Bind(region).Bind(Lower(name));
    int rc = s.Step();
    if (rc == db::Stmt::kDone) return Error(Errc::kNotFound, name);
    if (rc != db::Stmt::kRow) return s.Fail("remove");
    arn = s.Text(0);
  }
  db::Stmt d(*db_, "DELETE FROM resources WHERE kind=? AND region=? AND name_key=?");
  d.Bind(static_cast<int>(kind)).Bind(region).Bind(Lower(name));
  INFERD_RETURN_IF_ERROR(d.Run("remove"));
  db::Stmt t(*db_, "DELETE FROM tags WHERE arn=?");
  t.Bind(arn);
  INFERD_RETURN_IF_ERROR(t.Run("remove tags"));
  return tx.Commit();
}

Result<Page> CatalogStore::List(Kind kind, const std::string& region, const ListQuery& q) {
  std::string sort_col = q.sort_by == SortBy::kName     ? "name_key"
                         : q.sort_by == SortBy::kStatus ? "status"
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
  db::Stmt s(*db_, sql);
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
  while ((rc = s.Step()) == db::Stmt::kRow) page.items.push_back(ReadResource(s, kind));
  if (rc != db::Stmt::kDone) return s.Fail("list");
  if (static_cast<int>(page.items.size()) > q.limit) {
    page.items.resize(q.limit);
    const Resource& last = page.items.back();
    page.next_token = MakeToken(SortKeyText(last, q.sort_by), Lower(last.name));
  }
  return page;
}

Result<std::vector<Resource>> CatalogStore::All(Kind kind) {
  std::lock_guard lock(mu_);
  db::Stmt s(*db_, std::string("SELECT ") + kColumns +
                       "FROM resources WHERE kind=? ORDER BY creation_time");
  s.Bind(static_cast<int>(kind));
  std::vector<Resource> out;
  int rc;
  while ((rc = s.Step()) == db::Stmt::kRow) out.push_back(ReadResource(s, kind));
  if (rc != db::Stmt::kDone) return s.Fail("all");
  return out;
}

bool CatalogStore::ArnExists(const std::string& arn) {
  std::lock_guard lock(mu_);
  db::Stmt s(*db_, "SELECT 1 FROM resources WHERE arn=?");
  s.Bind(arn);
  return s.Step() == db::Stmt::kRow;
}

Status CatalogStore::AddTagsLocked(const std::string& arn, const std::vector<Tag>& tags) {
  for (const auto& tag : tags) {
    db::Stmt s(*db_, "INSERT OR REPLACE INTO tags (arn, key, value) VALUES (?,?,?)");
    s.Bind(arn).Bind(tag.key).Bind(tag.value);
    if (s.Step() != db::Stmt::kDone) return s.Fail("add tags");
  }
  db::Stmt c(*db_, "SELECT count(*) FROM tags WHERE arn=?");
  c.Bind(arn);
  if (c.Step() != db::Stmt::kRow) return c.Fail("count tags");
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
  db::Transaction tx(*db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  INFERD_RETURN_IF_ERROR(AddTagsLocked(arn, tags));
  return tx.Commit();
}

Status CatalogStore::DeleteTags(const std::string& arn, const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  db::Transaction tx(*db_);
  INFERD_RETURN_IF_ERROR(tx.status());
  for (const auto& key : keys) {
    db::Stmt s(*db_, "DELETE FROM tags WHERE arn=? AND key=?");
    s.Bind(arn).Bind(key);
    INFERD_RETURN_IF_ERROR(s.Run("delete tags"));
  }
  return tx.Commit();
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
  db::Stmt s(*db_, "SELECT key, value FROM tags WHERE arn=? AND key > ? ORDER BY key LIMIT ?");
  s.Bind(arn).Bind(after).Bind(limit + 1);
  std::vector<Tag> tags;
  int rc;
  while ((rc = s.Step()) == db::Stmt::kRow) tags.push_back({s.Text(0), s.Text(1)});
  if (rc != db::Stmt::kDone) return s.Fail("list tags");
  std::string token;
  if (static_cast<int>(tags.size()) > limit) {
    tags.resize(limit);
    token = MakeToken("tag", tags.back().key);
  }
  return std::make_pair(std::move(tags), std::move(token));
}

}  // namespace inferd::catalog
