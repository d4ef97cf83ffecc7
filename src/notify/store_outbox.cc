// NotifyStore: the outbox (messages and their pending deliveries).
#include <boost/json.hpp>

#include "db/sqlite.h"
#include "notify/store.h"
#include "notify/store_internal.h"

namespace inferd::notify {

namespace json = boost::json;
using db::Stmt;
using internal::MapFromJson;

namespace {

// Old dedup keys are deleted at most this often (seconds of the callers' `now`).
constexpr double kForgetInterval = 1.0;

std::string AttributesToJson(const MessageAttributes& attributes) {
  if (attributes.empty()) return "";
  json::object o;
  for (const auto& [name, a] : attributes) {
    o[name] = json::object{{"Type", a.data_type}, {"Value", a.value}};
  }
  return json::serialize(o);
}

MessageAttributes AttributesFromJson(const std::string& text) {
  MessageAttributes out;
  if (text.empty()) return out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return out;
  for (const auto& [name, a] : v.get_object()) {
    const auto* o = a.if_object();
    if (!o) continue;
    const auto* type = o->if_contains("Type");
    const auto* value = o->if_contains("Value");
    if (type && value && type->is_string() && value->is_string()) {
      out[std::string(name)] = {std::string(type->get_string()), std::string(value->get_string())};
    }
  }
  return out;
}

}  // namespace

Result<int64_t> NotifyStore::InsertMessageLocked(const OutboxMessage& m) {
  Stmt s(*db_,
         "INSERT INTO messages (message_id, type, topic_arn, subject, message, json_structure, "
         "attributes, token, timestamp) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id");
  s.Bind(m.message_id).Bind(TypeName(m.type)).Bind(m.topic_arn);
  if (m.subject) {
    s.Bind(*m.subject);
  } else {
    s.BindNull();
  }
  s.Bind(m.message).Bind(m.json_structure ? 1 : 0).Bind(AttributesToJson(m.attributes));
  s.Bind(m.token).Bind(m.timestamp);
  if (s.Step() != Stmt::kRow) return s.Fail("insert message");
  int64_t id = s.Int(0);
  if (s.Step() != Stmt::kDone) return s.Fail("insert message");
  return id;
}

Status NotifyStore::DropDeliveriesLocked(const std::string& where, const std::string& arg) {
  Stmt s(*db_, ("DELETE FROM deliveries WHERE " + where).c_str());
  s.Bind(arg);
  if (s.Step() != Stmt::kDone) return s.Fail("drop deliveries");
  return DropOrphanMessagesLocked();
}

Status NotifyStore::DropOrphanMessagesLocked() {
  Stmt s(*db_,
         "DELETE FROM messages WHERE NOT EXISTS "
         "(SELECT 1 FROM deliveries d WHERE d.message = messages.id)");
  if (s.Step() != Stmt::kDone) return s.Fail("drop messages");
  return OkStatus();
}

Result<int> NotifyStore::PublishLocked(const OutboxMessage& m, double now, size_t index,
                                       std::vector<FannedOut>* fanned_out, bool held, int64_t* row,
                                       const std::function<void()>& before_insert) {
  if (row) *row = 0;
  // The subscribers in ARN order: their deliveries get consecutive ids in that order.
  Stmt c(*db_, (std::string("SELECT ") + internal::kSubscriptionColumns +
                " FROM subscriptions WHERE topic_arn=? AND status='confirmed' ORDER BY arn")
                   .c_str());
  c.Bind(m.topic_arn);
  std::vector<FannedOut> local;
  std::vector<FannedOut>& out = fanned_out ? *fanned_out : local;
  const size_t first = out.size();
  int rc;
  while ((rc = c.Step()) == Stmt::kRow) {
    out.push_back({index, ++last_delivery_id_, internal::ReadSubscription(c)});
  }
  if (rc != Stmt::kDone) return c.Fail("find subscribers");
  const size_t count = out.size() - first;
  if (count == 0) return 0;
  if (before_insert) before_insert();
  auto id = InsertMessageLocked(m);
  if (!id.ok()) {
    return std::move(id).error();
  }
  if (row) *row = *id;
  Stmt d(*db_,
         "INSERT INTO deliveries (id, message, subscription_arn, attempts, next_attempt, held) "
         "VALUES (?,?,?,0,?,?)");
  for (size_t i = first; i < out.size(); ++i) {
    d.Bind(out[i].id).Bind(*id).Bind(out[i].subscription.arn).Bind(now).Bind(held ? 1 : 0);
    if (d.Step() != Stmt::kDone) return d.Fail("fan out");
    d.Reset();
  }
  return static_cast<int>(count);
}

Result<int> NotifyStore::Publish(const std::vector<OutboxMessage>& messages, double now,
                                 std::vector<FannedOut>* fanned_out) {
  int total = 0;
  Status st = Write([&]() -> Status {
    total = 0;
    if (fanned_out) fanned_out->clear();
    for (size_t i = 0; i < messages.size(); ++i) {
      auto n = PublishLocked(messages[i], now, i, fanned_out);
      if (!n.ok()) return std::move(n).error();
      total += *n;
    }
    return OkStatus();
  });
  if (!st.ok()) {
    if (fanned_out) fanned_out->clear();
    return std::move(st).error();
  }
  return total;
}

Status NotifyStore::ForgetLocked(double now, double forget_before) {
  // Housekeeping, so once a second is enough: PublishOnce's lookup ignores keys older than
  // `forget_before` whether or not their rows are gone yet.
  if (now - forgot_at_ < kForgetInterval && now >= forgot_at_) return OkStatus();
  Stmt forget(*db_, "DELETE FROM published WHERE created < ?");
  INFERD_RETURN_IF_ERROR(forget.Bind(forget_before).Run("forget dedup ids"));
  // A held delivery is due from its publish (next_attempt), so this finds every one whose key
  // is forgotten, even one whose key row a later publish replaced.
  Stmt held(*db_, "DELETE FROM deliveries WHERE held=1 AND next_attempt < ?");
  INFERD_RETURN_IF_ERROR(held.Bind(forget_before).Run("forget held deliveries"));
  if (db_->Changes() > 0) INFERD_RETURN_IF_ERROR(DropOrphanMessagesLocked());
  forgot_at_ = now;
  return OkStatus();
}

Result<OnceOutcome> NotifyStore::PublishOnce(
    const OutboxMessage& m, const std::string& dedup_id, double now, double forget_before,
    const OnceOptions& once, const std::function<void(const OnceOutcome&)>& before_insert) {
  OnceOutcome out;
  // Runs after any earlier call of the same batch (in its own savepoint of the same
  // transaction), so a key published a moment ago by another thread is seen here.
  const std::function<Status()> work = [&]() -> Status {
    out = OnceOutcome{};
    INFERD_RETURN_IF_ERROR(ForgetLocked(now, forget_before));
    Stmt known(*db_,
               "SELECT message_id, hold, message FROM published WHERE dedup_id=? AND created>=?");
    known.Bind(dedup_id).Bind(forget_before);
    int rc = known.Step();
    if (rc != Stmt::kRow && rc != Stmt::kDone) return known.Fail("find dedup id");
    if (rc == Stmt::kRow) {
      const int64_t tag = known.Int(1);
      const int64_t row = known.Int(2);
      std::string earlier = known.Text(0);
      known.Reset();  // done reading: the key's row may change below
      if (tag == 0 || tag == once.release) {
        out.message_id = std::move(earlier);
        if (tag == 0) return OkStatus();  // published before: nothing to write
        out.released = true;
        return ReleaseLocked(dedup_id, row);
      }
      // Held and not ours to release: the held message goes, this one takes its place.
      Stmt drop(*db_, "DELETE FROM deliveries WHERE message=?");
      INFERD_RETURN_IF_ERROR(drop.Bind(row).Run("replace held message"));
      Stmt gone(*db_, "DELETE FROM messages WHERE id=?");
      INFERD_RETURN_IF_ERROR(gone.Bind(row).Run("replace held message"));
    }
    int64_t row = 0;
    out.message_id = m.message_id;
    out.written = true;
    // Not held: the caller learns of the deliveries before their rows are inserted.
    std::function<void()> offer;
    if (before_insert && once.hold == 0) offer = [&] { before_insert(out); };
    auto n = PublishLocked(m, now, 0, &out.fanned_out, once.hold > 0, &row, offer);
    if (!n.ok()) return std::move(n).error();
    // OR REPLACE: a forgotten (or held) key whose row is still there is published anew.
    Stmt remember(*db_,
                  "INSERT OR REPLACE INTO published (dedup_id, message_id, created, hold, message) "
                  "VALUES (?,?,?,?,?)");
    remember.Bind(dedup_id).Bind(m.message_id).Bind(now).Bind(once.hold).Bind(row);
    if (remember.Step() != Stmt::kDone) return remember.Fail("remember dedup id");
    return OkStatus();
  };
  Status st = Write(work);
  if (!st.ok()) return std::move(st).error();
  return out;
}

Status NotifyStore::ReleaseLocked(const std::string& dedup_id, int64_t row) {
  Stmt key(*db_, "UPDATE published SET hold=0 WHERE dedup_id=?");
  INFERD_RETURN_IF_ERROR(key.Bind(dedup_id).Run("release"));
  Stmt d(*db_, "UPDATE deliveries SET held=0 WHERE message=? AND held=1");
  return d.Bind(row).Run("release");
}

Result<std::vector<DeliveryHead>> NotifyStore::DeliveryHeads() {
  auto reader = readers_->Acquire();
  // One index probe per subscription (deliveries_ready), not a scan of the outbox.
  Stmt s(*reader,
         "SELECT arn, (SELECT min(next_attempt) FROM deliveries d WHERE d.subscription_arn = "
         "subscriptions.arn AND d.held = 0) AS due FROM subscriptions WHERE due IS NOT NULL");
  std::vector<DeliveryHead> out;
  int rc;
  while ((rc = s.Step()) == Stmt::kRow) out.push_back({s.Text(0), s.Real(1)});
  if (rc != Stmt::kDone) return s.Fail("delivery heads");
  // Every delivery has its subscription row: they are removed together (DeleteTopic), and a
  // subscription is purged only once it has no deliveries.
  return out;
}

Result<std::vector<int64_t>> NotifyStore::DueDeliveries(const std::string& subscription_arn,
                                                        double now, int limit) {
  auto reader = readers_->Acquire();
  Stmt s(*reader,
         "SELECT id FROM deliveries WHERE subscription_arn=? AND held=0 AND next_attempt<=? "
         "ORDER BY next_attempt, id LIMIT ?");
  s.Bind(subscription_arn).Bind(now).Bind(limit);
  std::vector<int64_t> out;
  int rc;
  while ((rc = s.Step()) == Stmt::kRow) out.push_back(s.Int(0));
  if (rc != Stmt::kDone) return s.Fail("due deliveries");
  return out;
}

Result<std::optional<double>> NotifyStore::NextAttemptAfter(const std::string& subscription_arn,
                                                            double now) {
  auto reader = readers_->Acquire();
  Stmt s(*reader,
         "SELECT min(next_attempt) FROM deliveries WHERE subscription_arn=? AND held=0 AND "
         "next_attempt>?");
  s.Bind(subscription_arn).Bind(now);
  if (s.Step() != Stmt::kRow) return s.Fail("next attempt");
  if (s.IsNull(0)) return std::optional<double>();
  return std::optional<double>(s.Real(0));
}

Result<Delivery> NotifyStore::LoadDelivery(int64_t id) {
  auto reader = readers_->Acquire();
  // One snapshot for the three reads: the delivery, its subscription and its topic.
  db::ReadTransaction snapshot(*reader);
  INFERD_RETURN_IF_ERROR(snapshot.status());
  Stmt s(*reader,
         "SELECT d.id, d.subscription_arn, d.attempts, d.next_attempt, m.id, m.message_id, "
         "m.type, m.topic_arn, m.subject, m.message, m.json_structure, m.attributes, m.token, "
         "m.timestamp FROM deliveries d JOIN messages m ON m.id = d.message WHERE d.id=?");
  s.Bind(id);
  int rc = s.Step();
  if (rc == Stmt::kDone) return Error(Errc::kNotFound, "delivery " + std::to_string(id));
  if (rc != Stmt::kRow) return s.Fail("load delivery");
  Delivery d;
  d.id = s.Int(0);
  d.subscription_arn = s.Text(1);
  d.attempts = static_cast<int>(s.Int(2));
  d.next_attempt = s.Real(3);
  OutboxMessage& m = d.message;
  m.id = s.Int(4);
  m.message_id = s.Text(5);
  m.type = ParseType(s.Text(6)).value_or(MessageType::kNotification);
  m.topic_arn = s.Text(7);
  if (!s.IsNull(8)) m.subject = s.Text(8);
  m.message = s.Text(9);
  m.json_structure = s.Int(10) != 0;
  m.attributes = AttributesFromJson(s.Text(11));
  m.token = s.Text(12);
  m.timestamp = s.Text(13);

  Stmt sub(*reader, (std::string("SELECT ") + internal::kSubscriptionColumns +
                     " FROM subscriptions WHERE arn=?")
                        .c_str());
  sub.Bind(d.subscription_arn);
  if ((rc = sub.Step()) == Stmt::kRow) {
    d.subscription = internal::ReadSubscription(sub);
  } else if (rc != Stmt::kDone) {
    return sub.Fail("load subscription");
  }
  Stmt t(*reader, "SELECT attributes FROM topics WHERE arn=?");
  t.Bind(m.topic_arn);
  if ((rc = t.Step()) == Stmt::kRow) {
    d.topic_attributes = MapFromJson(t.Text(0));
  } else if (rc != Stmt::kDone) {
    return t.Fail("load topic");
  }
  return d;
}

Status NotifyStore::FinishLocked(int64_t id) {
  Stmt s(*db_, "DELETE FROM deliveries WHERE id=? RETURNING message");
  s.Bind(id);
  int rc = s.Step();
  if (rc == Stmt::kDone) return OkStatus();  // already gone (topic deleted meanwhile)
  if (rc != Stmt::kRow) return s.Fail("finish delivery");
  int64_t message = s.Int(0);
  while ((rc = s.Step()) == Stmt::kRow) {
  }
  if (rc != Stmt::kDone) return s.Fail("finish delivery");
  Stmt m(*db_,
         "DELETE FROM messages WHERE id=? AND NOT EXISTS "
         "(SELECT 1 FROM deliveries WHERE message=?)");
  m.Bind(message).Bind(message);
  if (m.Step() != Stmt::kDone) return m.Fail("finish message");
  return OkStatus();
}

Status NotifyStore::RescheduleLocked(int64_t id, int attempts, double next_attempt) {
  Stmt s(*db_, "UPDATE deliveries SET attempts=?, next_attempt=? WHERE id=?");
  s.Bind(attempts).Bind(next_attempt).Bind(id);
  if (s.Step() != Stmt::kDone) return s.Fail("reschedule delivery");
  return OkStatus();
}

Status NotifyStore::FinishDelivery(int64_t id) {
  return Write([&] { return FinishLocked(id); });
}

Status NotifyStore::RescheduleDelivery(int64_t id, int attempts, double next_attempt) {
  return Write([&] { return RescheduleLocked(id, attempts, next_attempt); });
}

Status NotifyStore::RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) {
  if (outcomes.empty()) return OkStatus();
  return Write([&]() -> Status {
    for (const auto& o : outcomes) {
      INFERD_RETURN_IF_ERROR(o.finished ? FinishLocked(o.id)
                                        : RescheduleLocked(o.id, o.attempts, o.next_attempt));
    }
    return OkStatus();
  });
}

Result<int64_t> NotifyStore::CountDeliveries() {
  auto reader = readers_->Acquire();
  Stmt s(*reader, "SELECT count(*) FROM deliveries");
  if (s.Step() != Stmt::kRow) return s.Fail("count deliveries");
  return s.Int(0);
}

}  // namespace inferd::notify
