// Test helpers for queue/ unit tests: sample records, blocking wrappers around the asynchronous
// writes, and the StoreTest fixture (TempDir is the shared one of common/testing).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/testing/test_support.h"
#include "db/sqlite.h"
#include "queue/invocation_store.h"

namespace inferd::queue::testing {

using test_support::TempDir;

// A record whose every field derives from `i` (so a reader can check all of them).
inline Invocation Sample(int64_t i, const std::string& endpoint = "My-Endpoint") {
  Invocation v;
  v.region = i % 2 ? "us-east-1" : "eu-west-1";
  v.endpoint = endpoint;
  v.inference_id = "id-" + std::to_string(i);
  v.output_id = "out-" + std::to_string(i);
  v.received_ms = 1'700'000'000'000 + i;
  v.ttl_seconds = static_cast<int32_t>(60 + i % 1000);
  v.invocation_timeout_seconds = static_cast<int32_t>(10 + i % 100);
  if (i % 3 == 0) {
    // Some bodies span overflow pages; some hold NUL bytes.
    v.inline_body = std::string(static_cast<size_t>(i % 5000), 'b') + std::string(1, '\0') + "z";
  } else {
    v.input_location = "s3://in/key-" + std::to_string(i);
  }
  v.content_type = "text/csv";
  v.accept = i % 2 ? "application/json" : "";
  v.custom_attributes = "attr=" + std::to_string(i);
  v.output_location = "s3://out/" + v.output_id + ".out";
  v.failure_location = i % 2 ? "s3://fail/" + v.output_id + "-error.out" : "";
  return v;
}

// The acceptance fields Insert stores (not seq, not progress).
inline void ExpectSameRecord(const Invocation& want, const Invocation& got) {
  EXPECT_EQ(got.region, want.region);
  EXPECT_EQ(got.endpoint, want.endpoint);
  EXPECT_EQ(got.inference_id, want.inference_id);
  EXPECT_EQ(got.output_id, want.output_id);
  EXPECT_EQ(got.received_ms, want.received_ms);
  EXPECT_EQ(got.ttl_seconds, want.ttl_seconds);
  EXPECT_EQ(got.invocation_timeout_seconds, want.invocation_timeout_seconds);
  EXPECT_EQ(got.input_location, want.input_location);
  EXPECT_EQ(got.inline_body, want.inline_body);
  EXPECT_EQ(got.content_type, want.content_type);
  EXPECT_EQ(got.accept, want.accept);
  EXPECT_EQ(got.custom_attributes, want.custom_attributes);
  EXPECT_EQ(got.output_location, want.output_location);
  EXPECT_EQ(got.failure_location, want.failure_location);
}

// Runs `sql` on a connection of its own to the database at `path`: how a test shapes the file
// as an older inferd (or a failing disk) would have left it. Wrap in ASSERT_NO_FATAL_FAILURE.
inline void ExecOnOwnConnection(const std::filesystem::path& path, const std::string& sql) {
  auto db = db::Database::Open(path, "test", nullptr);
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE((*db)->Exec(sql.c_str()).ok()) << sql;
}

// The first column of the first row `sql` returns, read on a connection of its own.
inline int64_t QueryInt(const std::filesystem::path& path, const std::string& sql) {
  auto db = db::Database::Open(path, "test reader", nullptr);
  EXPECT_TRUE(db.ok());
  if (!db.ok()) return -1;
  db::Stmt s(**db, sql);
  EXPECT_EQ(s.Step(), db::Stmt::kRow) << sql;
  return s.Int(0);
}

inline Result<int64_t> InsertSync(InvocationStore& store, Invocation v) {
  std::promise<Result<int64_t>> p;
  store.Insert(std::move(v), [&p](Result<int64_t> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

// Runs one status-returning write and waits for its callback.
template <typename F>
Status Wait(F&& submit) {
  std::promise<Status> p;
  submit([&p](Status s) { p.set_value(std::move(s)); });
  return p.get_future().get();
}

// Holds the writer thread inside a callback, so that the writes submitted meanwhile are
// committed together in the next transaction.
class WriterGate {
 public:
  explicit WriterGate(InvocationStore& store) {
    auto released = release_.get_future().share();
    store.Insert(Sample(999'999), [this, released](Result<int64_t>) {
      entered_.set_value();
      released.wait();
    });
    entered_.get_future().wait();
  }
  void Open() { release_.set_value(); }

 private:
  std::promise<void> entered_, release_;
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen(int max_batch = 4096) { Reopen({.max_batch = max_batch}); }
  // Reopens with `options` (their path replaced by the test's queue.db).
  void Reopen(InvocationStoreOptions options) {
    store_.reset();
    options.path = dir_.path() / "queue.db";
    auto s = InvocationStore::Open(options);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  int64_t Insert(const Invocation& v) {
    auto r = InsertSync(*store_, v);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -1;
  }
  Invocation Load(int64_t seq) {
    auto r = store_->GetBySeq(seq);
    EXPECT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r.ok() && r->has_value()) << "no invocation " << seq;
    return r.ok() && r->has_value() ? **r : Invocation{};
  }
  Status Start(int64_t seq, int attempts = 1) {
    return Wait([&](auto done) {
      store_->MarkStarted(seq, attempts, "AllTraffic", "127.0.0.1:9000", 5000 + attempts, done);
    });
  }
  Status Requeue(int64_t seq) {
    return Wait([&](auto done) { store_->Requeue(seq, done); });
  }
  Status Finish(int64_t seq, InvocationState state, bool notified = false,
                int64_t finished_ms = 9000) {
    Invocation f;
    f.seq = seq;
    f.state = state;
    f.finished_ms = finished_ms;
    f.failure_reason = state == InvocationState::kFailed ? "expired" : "";
    f.response_content_type = state == InvocationState::kCompleted ? "application/json" : "";
    f.notified = notified;
    return Wait([&](auto done) { store_->Finish(f, done); });
  }
  // MarkNotified has no callback; a later write's callback means it was committed.
  void MarkNotifiedSync(int64_t seq) {
    store_->MarkNotified(seq);
    (void)Requeue(-1);
  }
  std::vector<PendingRef> Pending() {
    std::vector<PendingRef> out;
    auto st = store_->LoadPending([&](PendingRef&& p) { out.push_back(std::move(p)); });
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }
  std::vector<int64_t> ListSeqs(const InvocationStore::ListQuery& q) {
    auto r = store_->List(q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> out;
    if (r.ok()) {
      for (const auto& v : *r) out.push_back(v.seq);
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<InvocationStore> store_;
};

}  // namespace inferd::queue::testing
