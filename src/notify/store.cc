#include "notify/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <limits>

#include "db/group_commit.h"
#include "db/sqlite.h"
#include "notify/store_internal.h"

namespace inferd::notify {

namespace json = boost::json;
using db::Stmt;
using internal::kSubscriptionColumns;
using internal::MapFromJson;
using internal::MapToJson;
using internal::ReadSubscription;

namespace internal {

std::string MapToJson(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return json::serialize(o);
}

std::map<std::string, std::string> MapFromJson(const std::string& text) {
  std::map<std::string, std::string> out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return out;
  for (const auto& [k, val] : v.get_object()) {
    if (val.is_string()) out[std::string(k)] = std::string(val.get_string());
  }
  return out;
}

const char* const kSubscriptionColumns =
    "arn, topic_arn, protocol, endpoint, owner, status, token, token_expires, authenticated, "
    "attributes, changed";

Subscription ReadSubscription(Stmt& s) {
  Subscription sub;
  sub.arn = s.Text(0);
  sub.topic_arn = s.Text(1);
  sub.protocol = s.Text(2);
  sub.endpoint = s.Text(3);
  sub.owner = s.Text(4);
  sub.status = ParseStatus(s.Text(5)).value_or(SubscriptionStatus::kDeleted);
  sub.token = s.Text(6);
  sub.token_expires = s.Real(7);
  sub.authenticated = s.Int(8) != 0;
  sub.attributes = MapFromJson(s.Text(9));
  sub.changed = s.Real(10);
  return sub;
}

}  // namespace internal

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS topics (
  arn TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  name TEXT NOT NULL,
  attributes TEXT NOT NULL,
  tags TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS topics_region ON topics(region, arn);
CREATE TABLE IF NOT EXISTS subscriptions (
  arn TEXT PRIMARY KEY,
  topic_arn TEXT NOT NULL,
  protocol TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  owner TEXT NOT NULL,
  status TEXT NOT NULL,
  token TEXT NOT NULL,
  token_expires REAL NOT NULL,
  authenticated INTEGER NOT NULL,
  attributes TEXT NOT NULL,
  changed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions(topic_arn, status);
CREATE INDEX IF NOT EXISTS subscriptions_token ON subscriptions(token);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL,
  type TEXT NOT NULL,
  topic_arn TEXT NOT NULL,
  subject TEXT,
  message TEXT NOT NULL,
  json_structure INTEGER NOT NULL,
  attributes TEXT NOT NULL,
  token TEXT NOT NULL,
  timestamp TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY,
  message INTEGER NOT NULL,
  subscription_arn TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt REAL NOT NULL,
  held INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message);
CREATE TABLE IF NOT EXISTS published (
  dedup_id TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  created REAL NOT NULL,
  hold INTEGER NOT NULL DEFAULT 0,
  message INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS published_created ON published(created);
)sql";

// deliveries.held, published.hold and published.message came with held publishes (PublishOnce's
// OnceOptions); a database written before them gets the columns, then the index that finds a
// subscription's due deliveries among those not held.
Status UpgradeSchema(db::Database& db) {
  INFERD_RETURN_IF_ERROR(db.AddColumnIfMissing("deliveries", "held", "INTEGER NOT NULL DEFAULT 0"));
  INFERD_RETURN_IF_ERROR(db.AddColumnIfMissing("published", "hold", "INTEGER NOT NULL DEFAULT 0"));
  INFERD_RETURN_IF_ERROR(
      db.AddColumnIfMissing("published", "message", "INTEGER NOT NULL DEFAULT 0"));
  // deliveries_held: the few held rows, for the dedup housekeeping's once-a-second delete.
  return db.Exec(
      "CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries(subscription_arn, held, "
      "next_attempt, id); DROP INDEX IF EXISTS deliveries_due; CREATE INDEX IF NOT EXISTS "
      "deliveries_held ON deliveries(next_attempt) WHERE held=1;");
}

constexpr const char* kTopicColumns = "arn, region, name, attributes, tags, created";

Topic ReadTopic(Stmt& s) {
  Topic t;
  t.arn = s.Text(0);
  t.region = s.Text(1);
  t.name = s.Text(2);
  t.attributes = MapFromJson(s.Text(3));
  t.tags = MapFromJson(s.Text(4));
  t.created = s.Real(5);
  return t;
}

}  // namespace

std::string_view StatusName(SubscriptionStatus status) {
  switch (status) {
    case SubscriptionStatus::kPending:
      return "pending";
    case SubscriptionStatus::kConfirmed:
      return "confirmed";
    case SubscriptionStatus::kDeleted:
      return "deleted";
  }
  return "deleted";
}

std::optional<SubscriptionStatus> ParseStatus(std::string_view name) {
  if (name == "pending") return SubscriptionStatus::kPending;
  if (name == "confirmed") return SubscriptionStatus::kConfirmed;
  if (name == "deleted") return SubscriptionStatus::kDeleted;
  return std::nullopt;
}

std::string_view TypeName(MessageType type) {
  switch (type) {
    case MessageType::kNotification:
      return "Notification";
    case MessageType::kSubscriptionConfirmation:
      return "SubscriptionConfirmation";
    case MessageType::kUnsubscribeConfirmation:
      return "UnsubscribeConfirmation";
  }
  return "Notification";
}

std::optional<MessageType> ParseType(std::string_view name) {
  if (name == "Notification") return MessageType::kNotification;
  if (name == "SubscriptionConfirmation") return MessageType::kSubscriptionConfirmation;
  if (name == "UnsubscribeConfirmation") return MessageType::kUnsubscribeConfirmation;
  return std::nullopt;
}

namespace internal {

Result<std::unique_ptr<ReaderPool>> ReaderPool::Open(const std::filesystem::path& path, int count) {
  std::unique_ptr<ReaderPool> pool(new ReaderPool());
  for (int i = 0; i < std::max(count, 1); ++i) {
    auto db = db::Database::Open(path, "notify database", nullptr);
    if (!db.ok()) return std::move(db).error();
    INFERD_RETURN_IF_ERROR((*db)->Exec("PRAGMA query_only=1"));
    pool->idle_.push_back(db->get());
    pool->all_.push_back(std::move(db).value());
  }
  return pool;
}

ReaderPool::Lease ReaderPool::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty(); });
  db::Database* db = idle_.back();
  idle_.pop_back();
  return Lease(*this, *db);
}

void ReaderPool::Return(db::Database* db) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(db);
  }
  cv_.notify_one();
}

}  // namespace internal

Result<std::unique_ptr<NotifyStore>> NotifyStore::Open(const std::filesystem::path& path,
                                                       int read_connections) {
  // Writes go through one GroupCommit, whose leaders finish the checkpoints (db/checkpointer.h).
  db::CheckpointOptions checkpoints;
  checkpoints.writer_finishes = true;
  auto db = db::Database::Open(path, "notify database", kSchema, checkpoints);
  if (!db.ok()) return std::move(db).error();
  INFERD_RETURN_IF_ERROR(UpgradeSchema(**db));
  int64_t last_delivery_id = 0;
  {
    Stmt max_id(**db, "SELECT coalesce(max(id), 0) FROM deliveries");
    if (max_id.Step() != Stmt::kRow) return max_id.Fail("read delivery ids");
    last_delivery_id = max_id.Int(0);
  }
  // The readers open after the writer has made the schema (and the file's WAL mode).
  auto readers = internal::ReaderPool::Open(path, read_connections);
  if (!readers.ok()) return std::move(readers).error();
  auto store = std::unique_ptr<NotifyStore>(
      new NotifyStore(std::move(db).value(), std::move(readers).value()));
  store->last_delivery_id_ = last_delivery_id;
  return store;
}

NotifyStore::NotifyStore(std::unique_ptr<db::Database> db,
                         std::unique_ptr<internal::ReaderPool> readers)
    : db_(std::move(db)),
      group_(std::make_unique<db::GroupCommit>(*db_, write_mu_)),
      readers_(std::move(readers)),
      forgot_at_(-std::numeric_limits<double>::infinity()) {
  sqlite3_commit_hook(db_->handle(), &NotifyStore::OnCommit, this);
}

NotifyStore::~NotifyStore() = default;

// Counts every commit of the write connection, so commits() also catches a write that bypassed
// the group commit.
int NotifyStore::OnCommit(void* self) {
  auto* store = static_cast<NotifyStore*>(self);
  store->commits_.fetch_add(1);
  if (store->before_commit_for_testing_) store->before_commit_for_testing_();
  return 0;  // go ahead with the commit
}

Status NotifyStore::Write(const std::function<Status()>& work) {
  ++writes_waiting_;
  Status st = group_->Run(work);
  --writes_waiting_;
  return st;
}

Status NotifyStore::ConfigWrite(const std::function<Status()>& work) {
  bool changed = false;
  Status st = Write([&]() -> Status {
    const int64_t before = db_->TotalChanges();
    Status s = work();
    changed = db_->TotalChanges() != before;  // counted even if rolled back: bumps too often
    return s;
  });
  // After the commit: whoever reads the new version reads the change too. A write that changed
  // no row (a purge with nothing to purge: the delivery worker's first one runs as it starts,
  // while the first publishes are offered) leaves the copies made at this version valid.
  if (changed) config_version_.fetch_add(1, std::memory_order_acq_rel);
  return st;
}

// ---- topics ----

Result<Topic> NotifyStore::InsertTopicIfAbsent(const Topic& t) {
  Topic stored;
  Status st = Write([&]() -> Status {
    Stmt ins(*db_,
             "INSERT OR IGNORE INTO topics (arn, region, name, attributes, tags, created) "
             "VALUES (?,?,?,?,?,?)");
    ins.Bind(t.arn).Bind(t.region).Bind(t.name).Bind(MapToJson(t.attributes));
    ins.Bind(MapToJson(t.tags)).Bind(t.created);
    if (ins.Step() != Stmt::kDone) return ins.Fail("insert topic");
    Stmt s(*db_, (std::string("SELECT ") + kTopicColumns + " FROM topics WHERE arn=?").c_str());
    s.Bind(t.arn);
    if (s.Step() != Stmt::kRow) return s.Fail("read topic");
    stored = ReadTopic(s);
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).error();
  return stored;
}

Result<Topic> NotifyStore::GetTopic(const std::string& arn) {
  auto reader = readers_->Acquire();
  Stmt s(*reader, (std::string("SELECT ") + kTopicColumns + " FROM topics WHERE arn=?").c_str());
  s.Bind(arn);
  int rc = s.Step();
  if (rc == Stmt::kRow) return ReadTopic(s);
  if (rc == Stmt::kDone) return Error(Errc::kNotFound, "Topic does not exist");
  return s.Fail("get topic");
}

Status NotifyStore::SetTopicAttributes(const std::string& arn, const AttributeMap& attributes) {
  return ConfigWrite([&]() -> Status {
    Stmt s(*db_, "UPDATE topics SET attributes=? WHERE arn=?");
    s.Bind(MapToJson(attributes)).Bind(arn);
    if (s.Step() != Stmt::kDone) return s.Fail("set topic attributes");
    if (db_->Changes() == 0) return Error(Errc::kNotFound, "Topic does not exist");
    return OkStatus();
  });
}

Status NotifyStore::SetTopicTags(const std::string& arn, const TagMap& tags) {
  return Write([&]() -> Status {
    Stmt s(*db_, "UPDATE topics SET tags=? WHERE arn=?");
    s.Bind(MapToJson(tags)).Bind(arn);
    if (s.Step() != Stmt::kDone) return s.Fail("set topic tags");
    if (db_->Changes() == 0) return Error(Errc::kNotFound, "Resource does not exist");
    return OkStatus();
  });
}

Result<bool> NotifyStore::DeleteTopic(const std::string& arn) {
  bool existed = false;
  Status st = ConfigWrite([&]() -> Status {
    Stmt t(*db_, "DELETE FROM topics WHERE arn=?");
    t.Bind(arn);
    if (t.Step() != Stmt::kDone) return t.Fail("delete topic");
    existed = db_->Changes() > 0;
    INFERD_RETURN_IF_ERROR(DropDeliveriesLocked(
        "subscription_arn IN (SELECT arn FROM subscriptions WHERE topic_arn=?)", arn));
    Stmt s(*db_, "DELETE FROM subscriptions WHERE topic_arn=?");
    s.Bind(arn);
    if (s.Step() != Stmt::kDone) return s.Fail("delete subscriptions");
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).error();
  return existed;
}

Result<std::vector<std::string>> NotifyStore::ListTopics(const std::string& region,
                                                         const std::string& after_arn, int limit) {
  auto reader = readers_->Acquire();
  Stmt s(*reader, "SELECT arn FROM topics WHERE region=? AND arn>? ORDER BY arn LIMIT ?");
  s.Bind(region).Bind(after_arn).Bind(limit + 1);
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == Stmt::kRow) out.push_back(s.Text(0));
  if (rc != Stmt::kDone) return s.Fail("list topics");
  return out;
}

Result<SubscriptionCounts> NotifyStore::CountSubscriptions(const std::string& topic_arn) {
  auto reader = readers_->Acquire();
  Stmt s(*reader, "SELECT status, count(*) FROM subscriptions WHERE topic_arn=? GROUP BY status");
  s.Bind(topic_arn);
  SubscriptionCounts counts;
  int rc;
  while ((rc = s.Step()) == Stmt::kRow) {
    auto status = ParseStatus(s.Text(0));
    int n = static_cast<int>(s.Int(1));
    if (status == SubscriptionStatus::kConfirmed) counts.confirmed = n;
    if (status == SubscriptionStatus::kPending) counts.pending = n;
    if (status == SubscriptionStatus::kDeleted) counts.deleted = n;
  }
  if (rc != Stmt::kDone) return s.Fail("count subscriptions");
  return counts;
}

// ---- subscriptions ----

Result<std::optional<Subscription>> NotifyStore::FindSubscription(const std::string& topic_arn,
                                                                  const std::string& protocol,
                                                                  const std::string& endpoint) {
  auto reader = readers_->Acquire();
  Stmt s(*reader, (std::string("SELECT ") + kSubscriptionColumns +
                   " FROM subscriptions WHERE topic_arn=? AND protocol=? AND endpoint=? AND "
                   "status!='deleted' LIMIT 1")
                      .c_str());
  s.Bind(topic_arn).Bind(protocol).Bind(endpoint);
  int rc = s.Step();
  if (rc == Stmt::kRow) return std::optional<Subscription>(ReadSubscription(s));
  if (rc == Stmt::kDone) return std::optional<Subscription>();
  return s.Fail("find subscription");
}

Result<Subscription> NotifyStore::GetSubscription(const std::string& arn) {
  auto reader = readers_->Acquire();
  Stmt s(
      *reader,
      (std::string("SELECT ") + kSubscriptionColumns + " FROM subscriptions WHERE arn=?").c_str());
  s.Bind(arn);
  int rc = s.Step();
  if (rc == Stmt::kRow) return ReadSubscription(s);
  if (rc == Stmt::kDone) return Error(Errc::kNotFound, "Subscription does not exist");
  return s.Fail("get subscription");
}

Result<Subscription> NotifyStore::FindByToken(const std::string& topic_arn,
                                              const std::string& token) {
  auto reader = readers_->Acquire();
  Stmt s(*reader, (std::string("SELECT ") + kSubscriptionColumns +
                   " FROM subscriptions WHERE token=? AND topic_arn=? AND token!=''")
                      .c_str());
  s.Bind(token).Bind(topic_arn);
  int rc = s.Step();
  if (rc == Stmt::kRow) return ReadSubscription(s);
  if (rc == Stmt::kDone) return Error(Errc::kNotFound, "Invalid token");
  return s.Fail("find token");
}

Status NotifyStore::PutSubscription(const Subscription& sub, const OutboxMessage* enqueue,
                                    bool drop_deliveries, double now) {
  return ConfigWrite([&]() -> Status {
    Stmt s(*db_, (std::string("INSERT OR REPLACE INTO subscriptions (") + kSubscriptionColumns +
                  ") VALUES (?,?,?,?,?,?,?,?,?,?,?)")
                     .c_str());
    s.Bind(sub.arn).Bind(sub.topic_arn).Bind(sub.protocol).Bind(sub.endpoint).Bind(sub.owner);
    s.Bind(StatusName(sub.status)).Bind(sub.token).Bind(sub.token_expires);
    s.Bind(sub.authenticated ? 1 : 0).Bind(MapToJson(sub.attributes)).Bind(sub.changed);
    if (s.Step() != Stmt::kDone) return s.Fail("put subscription");
    if (drop_deliveries)
      INFERD_RETURN_IF_ERROR(DropDeliveriesLocked("subscription_arn=?", sub.arn));
    if (enqueue) {
      auto id = InsertMessageLocked(*enqueue);
      if (!id.ok()) return std::move(id).error();
      Stmt d(*db_,
             "INSERT INTO deliveries (id, message, subscription_arn, attempts, next_attempt) "
             "VALUES (?,?,?,0,?)");
      d.Bind(++last_delivery_id_).Bind(*id).Bind(sub.arn).Bind(now);
      if (d.Step() != Stmt::kDone) return d.Fail("enqueue");
    }
    return OkStatus();
  });
}

Result<std::vector<Subscription>> NotifyStore::ListSubscriptions(const std::string& region,
                                                                 const std::string& topic_arn,
                                                                 const std::string& after_arn,
                                                                 int limit) {
  std::string cols;
  for (std::string_view c : {"arn", "topic_arn", "protocol", "endpoint", "owner", "status", "token",
                             "token_expires", "authenticated", "attributes", "changed"}) {
    cols += (cols.empty() ? "s." : ", s.") + std::string(c);
  }
  std::string sql = "SELECT " + cols + " FROM subscriptions s ";
  sql += topic_arn.empty() ? "JOIN topics t ON t.arn = s.topic_arn WHERE t.region=?"
                           : "WHERE s.topic_arn=?";
  sql += " AND s.status!='deleted' AND s.arn>? ORDER BY s.arn LIMIT ?";
  auto reader = readers_->Acquire();
  Stmt s(*reader, sql.c_str());
  s.Bind(topic_arn.empty() ? region : topic_arn).Bind(after_arn).Bind(limit + 1);
  std::vector<Subscription> out;
  int rc;
  while ((rc = s.Step()) == Stmt::kRow) out.push_back(ReadSubscription(s));
  if (rc != Stmt::kDone) return s.Fail("list subscriptions");
  return out;
}

Result<int> NotifyStore::PurgeSubscriptions(double deleted_before, double now) {
  int purged = 0;
  Status st = ConfigWrite([&]() -> Status {
    Stmt s(*db_,
           "DELETE FROM subscriptions WHERE ((status='deleted' AND changed<?) OR "
           "(status='pending' AND token_expires<?)) AND NOT EXISTS "
           "(SELECT 1 FROM deliveries d WHERE d.subscription_arn = subscriptions.arn)");
    s.Bind(deleted_before).Bind(now);
    if (s.Step() != Stmt::kDone) return s.Fail("purge subscriptions");
    purged = db_->Changes();
    return OkStatus();
  });
  if (!st.ok()) return std::move(st).error();
  return purged;
}

}  // namespace inferd::notify
