#include "queue/invocation_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "queue/testing.h"

namespace inferd::queue {
namespace {

using testing::Sample;
using testing::WriterGate;
using InvocationStoreTest = testing::StoreTest;

TEST(InvocationStateTest, NamesAreTheApiNames) {
  EXPECT_EQ(ToString(InvocationState::kQueued), "Queued");
  EXPECT_EQ(ToString(InvocationState::kStarted), "InProgress");
  EXPECT_EQ(ToString(InvocationState::kCompleted), "Completed");
  EXPECT_EQ(ToString(InvocationState::kFailed), "Failed");
  for (auto s : {InvocationState::kQueued, InvocationState::kStarted, InvocationState::kCompleted,
                 InvocationState::kFailed}) {
    EXPECT_EQ(ParseInvocationState(ToString(s)), s);
  }
  EXPECT_FALSE(ParseInvocationState("Started").has_value());
  EXPECT_FALSE(ParseInvocationState("queued").has_value());
  EXPECT_FALSE(ParseInvocationState("").has_value());
}

TEST_F(InvocationStoreTest, OpenRejectsAnEmptyBatch) {
  auto s = InvocationStore::Open({.path = dir_.path() / "other.db", .max_batch = 0});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kValidation);
  struct Bad {
    int flush, chunk, ranges;
    const char* named;
  };
  for (const Bad& bad : {Bad{0, 1, 1, "id_flush_rows"}, Bad{16, -1, 1, "id_chunk_rows"},
                         Bad{16, 1, 0, "id_key_ranges"}}) {
    auto ids = InvocationStore::Open({.path = dir_.path() / "other.db",
                                      .id_flush_rows = bad.flush,
                                      .id_chunk_rows = bad.chunk,
                                      .id_key_ranges = bad.ranges});
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.error().code, Errc::kValidation);
    EXPECT_NE(ids.error().message.find(bad.named), std::string::npos) << ids.error().message;
  }
}

TEST_F(InvocationStoreTest, InsertStoresEveryFieldAsQueuedAndSurvivesReopen) {
  Invocation v = Sample(3);
  // Progress fields of a Queued invocation are not taken over.
  v.state = InvocationState::kQueued;
  v.attempts = 7;
  v.notified = true;
  v.variant = "x";
  v.finished_ms = 1;
  int64_t a = Insert(v);
  int64_t b = Insert(Sample(4));
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);

  Reopen();
  Invocation got = Load(a);
  EXPECT_EQ(got.seq, a);
  testing::ExpectSameRecord(v, got);
  EXPECT_EQ(got.state, InvocationState::kQueued);
  EXPECT_EQ(got.attempts, 0);
  EXPECT_FALSE(got.notified);
  EXPECT_EQ(got.variant, "");
  EXPECT_EQ(got.finished_ms, 0);
  testing::ExpectSameRecord(Sample(4), Load(b));
  EXPECT_GT(Insert(Sample(5)), b);  // seqs keep growing after a restart
}

// The dispatcher's hand-off at acceptance: one write records the invocation as Started.
TEST_F(InvocationStoreTest, InsertStartedRecordsItsStartInTheSameWrite) {
  Invocation v = Sample(6);
  v.state = InvocationState::kStarted;
  v.attempts = 1;
  v.variant = "AllTraffic";
  v.instance = "127.0.0.1:9001";
  v.started_ms = v.received_ms;
  v.notified = true;  // ignored
  v.finished_ms = 9;  // ignored
  const int64_t writes = store_->Stats().writes;
  int64_t seq = Insert(v);
  EXPECT_EQ(store_->Stats().writes, writes + 1);
  Reopen();
  Invocation got = Load(seq);
  testing::ExpectSameRecord(v, got);
  EXPECT_EQ(got.state, InvocationState::kStarted);
  EXPECT_EQ(got.attempts, 1);
  EXPECT_EQ(got.variant, "AllTraffic");
  EXPECT_EQ(got.instance, "127.0.0.1:9001");
  EXPECT_EQ(got.started_ms, v.received_ms);
  EXPECT_FALSE(got.notified);
  EXPECT_EQ(got.finished_ms, 0);
  // A restart sees it Started; it moves on like any Started invocation.
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].state, InvocationState::kStarted);
  EXPECT_EQ(Start(seq, 2).error().code, Errc::kInvalidState);
  ASSERT_TRUE(Finish(seq, InvocationState::kCompleted).ok());
  EXPECT_EQ(Load(seq).state, InvocationState::kCompleted);

  // A finished invocation cannot be inserted: refused, nothing stored.
  const size_t pending_before = Pending().size();
  Invocation done = Sample(7);
  done.state = InvocationState::kCompleted;
  auto refused = testing::InsertSync(*store_, done);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kInternal);
  EXPECT_EQ(Pending().size(), pending_before);
}

TEST_F(InvocationStoreTest, QueuedStartedCompleted) {
  int64_t seq = Insert(Sample(1));
  ASSERT_TRUE(Start(seq).ok());
  Invocation v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kStarted);
  EXPECT_EQ(v.attempts, 1);
  EXPECT_EQ(v.variant, "AllTraffic");
  EXPECT_EQ(v.instance, "127.0.0.1:9000");
  EXPECT_EQ(v.started_ms, 5001);

  // Only a Queued invocation can start.
  Status again = Start(seq, 2);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kInvalidState);

  ASSERT_TRUE(Finish(seq, InvocationState::kCompleted).ok());
  v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kCompleted);
  EXPECT_EQ(v.finished_ms, 9000);
  EXPECT_EQ(v.response_content_type, "application/json");
  EXPECT_EQ(v.failure_reason, "");
  EXPECT_FALSE(v.notified);
  EXPECT_EQ(v.attempts, 1);
  testing::ExpectSameRecord(Sample(1), v);
}

TEST_F(InvocationStoreTest, FinishTwiceIsInvalidStateAndChangesNothing) {
  int64_t seq = Insert(Sample(1));
  ASSERT_TRUE(Start(seq).ok());
  ASSERT_TRUE(Finish(seq, InvocationState::kCompleted, false, 100).ok());
  Status second = Finish(seq, InvocationState::kFailed, true, 200);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, Errc::kInvalidState);
  EXPECT_NE(second.error().message.find("Completed"), std::string::npos) << second.error().message;
  Invocation v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kCompleted);
  EXPECT_EQ(v.finished_ms, 100);
  EXPECT_FALSE(v.notified);
  // No way back from a final state.
  EXPECT_EQ(Requeue(seq).error().code, Errc::kInvalidState);
  EXPECT_EQ(Start(seq).error().code, Errc::kInvalidState);
}

TEST_F(InvocationStoreTest, QueuedCanFailWithoutStarting) {
  int64_t seq = Insert(Sample(2));
  ASSERT_TRUE(Finish(seq, InvocationState::kFailed, true, 42).ok());
  Invocation v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kFailed);
  EXPECT_EQ(v.failure_reason, "expired");
  EXPECT_EQ(v.finished_ms, 42);
  EXPECT_TRUE(v.notified);
  EXPECT_EQ(v.attempts, 0);
}

TEST_F(InvocationStoreTest, FinishNeedsAFinalState) {
  int64_t seq = Insert(Sample(2));
  Status st = Finish(seq, InvocationState::kStarted);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(Load(seq).state, InvocationState::kQueued);
}

TEST_F(InvocationStoreTest, RequeueKeepsAttempts) {
  int64_t seq = Insert(Sample(1));
  EXPECT_EQ(Requeue(seq).error().code, Errc::kInvalidState);  // not started
  ASSERT_TRUE(Start(seq, 1).ok());
  ASSERT_TRUE(Requeue(seq).ok());
  Invocation v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kQueued);
  EXPECT_EQ(v.attempts, 1);
  ASSERT_TRUE(Start(seq, 2).ok());
  v = Load(seq);
  EXPECT_EQ(v.state, InvocationState::kStarted);
  EXPECT_EQ(v.attempts, 2);
  EXPECT_EQ(v.started_ms, 5002);
}

TEST_F(InvocationStoreTest, UnknownSeqIsNotFound) {
  Insert(Sample(1));
  EXPECT_EQ(Start(12345).error().code, Errc::kNotFound);
  EXPECT_EQ(Requeue(12345).error().code, Errc::kNotFound);
  EXPECT_EQ(Finish(12345, InvocationState::kCompleted).error().code, Errc::kNotFound);
  auto got = store_->GetBySeq(12345);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(InvocationStoreTest, MarkNotified) {
  int64_t queued = Insert(Sample(1));
  int64_t done = Insert(Sample(2));
  ASSERT_TRUE(Finish(done, InvocationState::kCompleted).ok());
  MarkNotifiedSync(done);
  MarkNotifiedSync(queued);  // not finished: ignored
  EXPECT_TRUE(Load(done).notified);
  EXPECT_FALSE(Load(queued).notified);
  EXPECT_EQ(Load(queued).state, InvocationState::kQueued);
}

TEST_F(InvocationStoreTest, OneBadWriteDoesNotFailTheRestOfItsBatch) {
  int64_t finished = Insert(Sample(1));
  ASSERT_TRUE(Finish(finished, InvocationState::kCompleted).ok());
  int64_t queued = Insert(Sample(2));
  auto before = store_->Stats();

  WriterGate gate(*store_);
  std::promise<Result<int64_t>> ins1, ins2;
  std::promise<Status> twice, unknown, start;
  store_->Insert(Sample(10), [&](Result<int64_t> r) { ins1.set_value(std::move(r)); });
  Invocation f;
  f.seq = finished;
  f.state = InvocationState::kFailed;
  store_->Finish(f, [&](Status s) { twice.set_value(std::move(s)); });
  store_->Requeue(777777, [&](Status s) { unknown.set_value(std::move(s)); });
  store_->MarkStarted(queued, 1, "v", "i", 1, [&](Status s) { start.set_value(std::move(s)); });
  store_->Insert(Sample(11), [&](Result<int64_t> r) { ins2.set_value(std::move(r)); });
  gate.Open();

  auto r1 = ins1.get_future().get();
  auto r2 = ins2.get_future().get();
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_GT(*r2, *r1);
  EXPECT_EQ(twice.get_future().get().error().code, Errc::kInvalidState);
  EXPECT_EQ(unknown.get_future().get().error().code, Errc::kNotFound);
  EXPECT_TRUE(start.get_future().get().ok());
  // The gate's insert and the five writes: two transactions.
  EXPECT_EQ(store_->Stats().commits - before.commits, 2);
  testing::ExpectSameRecord(Sample(10), Load(*r1));
  EXPECT_EQ(Load(queued).state, InvocationState::kStarted);
  EXPECT_EQ(Load(finished).state, InvocationState::kCompleted);
}

TEST_F(InvocationStoreTest, AFailedTransactionFailsEveryWriteInItAndNothingSticks) {
  int64_t seq = Insert(Sample(1));
  // Another connection installs a trigger that makes one insert fail inside SQLite.
  ASSERT_NO_FATAL_FAILURE(testing::ExecOnOwnConnection(
      dir_.path() / "queue.db",
      "CREATE TRIGGER boom BEFORE INSERT ON invocations WHEN NEW.inference_id = 'boom' BEGIN "
      "SELECT RAISE(ABORT, 'disk on fire'); END;"));
  auto before = store_->Stats();
  WriterGate gate(*store_);
  std::promise<Result<int64_t>> good, bad;
  std::promise<Status> start;
  store_->Insert(Sample(2), [&](Result<int64_t> r) { good.set_value(std::move(r)); });
  store_->MarkStarted(seq, 1, "v", "i", 1, [&](Status s) { start.set_value(std::move(s)); });
  Invocation boom = Sample(3);
  boom.inference_id = "boom";
  store_->Insert(boom, [&](Result<int64_t> r) { bad.set_value(std::move(r)); });
  gate.Open();

  auto g = good.get_future().get();
  auto b = bad.get_future().get();
  auto s = start.get_future().get();
  ASSERT_FALSE(g.ok());
  ASSERT_FALSE(b.ok());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(g.error().message.find("disk on fire"), std::string::npos) << g.error().message;
  EXPECT_EQ(store_->Stats().failed_batches - before.failed_batches, 1);
  EXPECT_EQ(Load(seq).state, InvocationState::kQueued);  // rolled back
  auto lost = store_->Get(Sample(2).region, "My-Endpoint", Sample(2).inference_id);
  ASSERT_TRUE(lost.ok());
  EXPECT_FALSE(lost->has_value());

  // The store keeps working.
  EXPECT_TRUE(Start(seq).ok());
  EXPECT_GT(Insert(Sample(4)), seq);
}

TEST_F(InvocationStoreTest, ConcurrentInsertsShareTransactions) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 125;
  auto before = store_->Stats();
  std::mutex mu;
  std::vector<int64_t> committed_order;  // seqs in callback order
  std::vector<std::vector<int64_t>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::promise<Result<int64_t>> p;
        store_->Insert(Sample(t * 1000 + i), [&](Result<int64_t> r) {
          if (r.ok()) {
            std::lock_guard lock(mu);
            committed_order.push_back(*r);
          }
          p.set_value(std::move(r));
        });
        auto r = p.get_future().get();
        ASSERT_TRUE(r.ok()) << r.error().message;
        per_thread[t].push_back(*r);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto after = store_->Stats();
  int64_t commits = after.commits - before.commits;
  EXPECT_EQ(after.writes - before.writes, kThreads * kPerThread);
  EXPECT_LE(commits, kThreads * kPerThread / 4) << "inserts are not group-committed";
  // Seqs follow commit order, and each thread sees its own inserts in order.
  ASSERT_EQ(committed_order.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 1; i < committed_order.size(); ++i) {
    ASSERT_LT(committed_order[i - 1], committed_order[i]);
  }
  std::set<int64_t> distinct(committed_order.begin(), committed_order.end());
  EXPECT_EQ(distinct.size(), committed_order.size());
  for (const auto& seqs : per_thread) EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  testing::ExpectSameRecord(Sample(3 * 1000 + 7), Load(per_thread[3][7]));
}

TEST_F(InvocationStoreTest, MaxBatchBoundsATransaction) {
  Reopen(/*max_batch=*/10);
  auto before = store_->Stats();
  {
    WriterGate gate(*store_);
    std::atomic<int> left = 95;
    std::promise<void> all;
    for (int i = 0; i < 95; ++i) {
      store_->Insert(Sample(i), [&](Result<int64_t> r) {
        EXPECT_TRUE(r.ok());
        if (--left == 0) all.set_value();
      });
    }
    gate.Open();
    all.get_future().wait();
  }
  EXPECT_EQ(store_->Stats().commits - before.commits, 1 + 10);
}

// Submits `n` inserts `spacing` apart without waiting for them; returns once all are durable.
void InsertSpaced(InvocationStore& store, int n, std::chrono::milliseconds spacing) {
  std::atomic<int> left = n;
  std::promise<void> all;
  for (int i = 0; i < n; ++i) {
    if (i > 0) std::this_thread::sleep_for(spacing);
    store.Insert(Sample(i), [&](Result<int64_t> r) {
      EXPECT_TRUE(r.ok());
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
}

TEST_F(InvocationStoreTest, PacedCommitsGatherWritesArrivingWithinTheInterval) {
  using std::chrono::milliseconds;
  Reopen({.commit_interval = milliseconds(400), .commit_burst = 1});
  Insert(Sample(100));  // the first commit spends the burst
  auto before = store_->Stats();
  // Ten writes 5 ms apart: the next commit waits out the interval, so they share it.
  InsertSpaced(*store_, 10, milliseconds(5));
  EXPECT_EQ(store_->Stats().commits - before.commits, 1);
  EXPECT_EQ(store_->Stats().writes - before.writes, 10);
  // After a pause as long as the interval, a lone write commits at once.
  std::this_thread::sleep_for(milliseconds(450));
  auto start = std::chrono::steady_clock::now();
  Insert(Sample(101));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(300));
}

TEST_F(InvocationStoreTest, ZeroIntervalCommitsEachWriteAsItComes) {
  Reopen({.commit_interval = std::chrono::microseconds(0)});
  auto before = store_->Stats();
  // 20 ms apart, each write finds the previous one committed and commits alone.
  InsertSpaced(*store_, 10, std::chrono::milliseconds(20));
  EXPECT_GE(store_->Stats().commits - before.commits, 5);
}

// Checkpoints are handed to the writer (db/checkpointer.h): it copies the last frames between
// two transactions and its next commit starts the WAL over. Without that the WAL would hold
// every page written (about 5,000 here); with only the checkpointer's own fallback, 4 × the
// threshold.
TEST_F(InvocationStoreTest, TheWriterFinishesCheckpointsAndTheWalStaysSmall) {
  constexpr int kRows = 8000;     // inline bodies of 0–5,000 bytes: about 20 MB
  constexpr int kPerCommit = 20;  // small transactions, as under load (a big one fills the WAL)
  for (int i = 0; i < kRows; i += kPerCommit) {
    std::atomic<int> left{kPerCommit};
    std::promise<void> all;
    for (int j = i; j < i + kPerCommit; ++j) {
      store_->Insert(Sample(j), [&](Result<int64_t> r) {
        EXPECT_TRUE(r.ok());
        if (--left == 0) all.set_value();
      });
    }
    all.get_future().wait();
  }
  const auto wal = std::filesystem::file_size(dir_.path() / "queue.db-wal");
  const uint64_t frames = InvocationStoreOptions{}.checkpoint_frames;
  EXPECT_LT(wal, frames * 5 / 2 * 4120) << "bytes in the WAL";  // 2.5 × the threshold
  ASSERT_EQ(store_->Stats().failed_batches, 0);
}

TEST_F(InvocationStoreTest, OpenRejectsNoCheckpointThreshold) {
  auto opened = InvocationStore::Open({.path = dir_.path() / "other.db", .checkpoint_frames = 0});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, Errc::kValidation);
  EXPECT_NE(opened.error().message.find("checkpoint_frames"), std::string::npos);
}

TEST_F(InvocationStoreTest, OpenRejectsABadCommitPace) {
  auto burst = InvocationStore::Open({.path = dir_.path() / "other.db", .commit_burst = 0});
  ASSERT_FALSE(burst.ok());
  EXPECT_EQ(burst.error().code, Errc::kValidation);
  auto interval = InvocationStore::Open(
      {.path = dir_.path() / "other.db", .commit_interval = std::chrono::microseconds(-1)});
  ASSERT_FALSE(interval.ok());
  EXPECT_EQ(interval.error().code, Errc::kValidation);
}

TEST_F(InvocationStoreTest, DestructionCommitsWhatWasSubmitted) {
  std::atomic<int> ok = 0;
  for (int i = 0; i < 1000; ++i) {
    store_->Insert(Sample(i, "ep"), [&](Result<int64_t> r) { ok += r.ok() ? 1 : 0; });
  }
  store_.reset();
  EXPECT_EQ(ok.load(), 1000);
  Reopen();
  EXPECT_EQ(Pending().size(), 1000u);
}

}  // namespace
}  // namespace inferd::queue
