#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "db/sqlite.h"
#include "queue/invocation_store.h"
#include "queue/testing.h"

namespace inferd::queue {
namespace {

using testing::Sample;
using InvocationStoreTest = testing::StoreTest;

TEST_F(InvocationStoreTest, GetFindsTheNewestWithThatInferenceIdCaseInsensitively) {
  Invocation a = Sample(1, "My-Endpoint");
  a.inference_id = "same";
  Invocation other_endpoint = a;
  other_endpoint.endpoint = "Other";
  Invocation other_region = a;
  other_region.region = "eu-west-1";
  Invocation b = a;
  b.endpoint = "MY-ENDPOINT";  // the same endpoint, as another caller wrote it
  b.output_id = "second";
  int64_t sa = Insert(a);
  int64_t sb = Insert(b);
  Insert(other_endpoint);
  Insert(other_region);

  auto got = store_->Get("us-east-1", "my-endpoint", "same");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->seq, sb);
  EXPECT_EQ((*got)->output_id, "second");
  EXPECT_EQ((*got)->endpoint, "MY-ENDPOINT");  // as written
  EXPECT_GT(sb, sa);

  auto none = store_->Get("us-east-1", "My-Endpoint", "nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto wrong_region = store_->Get("ap-south-1", "My-Endpoint", "same");
  ASSERT_TRUE(wrong_region.ok());
  EXPECT_FALSE(wrong_region->has_value());
}

TEST_F(InvocationStoreTest, GetComparesTheIdsNotJustTheirHash) {
  Invocation older = Sample(1);
  older.inference_id = "y";
  Invocation newer = Sample(1);
  newer.inference_id = "x";
  int64_t y = Insert(older);
  int64_t x = Insert(newer);
  {
    // Forge a hash collision: the newer row now hashes like the older one.
    auto db = db::Database::Open(dir_.path() / "queue.db", "test", nullptr);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec(("UPDATE invocations SET id_hash = (SELECT id_hash FROM invocations "
                            "WHERE seq = " +
                            std::to_string(y) + ") WHERE seq = " + std::to_string(x))
                               .c_str())
                    .ok());
  }
  // Reopened, the rows after the id watermark are read back into memory by their id_hash column:
  // both are now candidates for "y", the newer first.
  Reopen();
  auto got = store_->Get(older.region, older.endpoint, "y");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->seq, y);
}

TEST_F(InvocationStoreTest, ListFiltersByStateAndPagesBySeq) {
  std::vector<int64_t> seqs;
  for (int i = 0; i < 10; ++i) {
    Invocation v = Sample(2 * i + 1, i % 2 ? "ep" : "EP");  // odd: us-east-1
    seqs.push_back(Insert(v));
    Insert(Sample(2 * i + 1, "other"));
    Insert(Sample(2 * i, "ep"));  // eu-west-1
  }
  ASSERT_TRUE(Start(seqs[1]).ok());
  ASSERT_TRUE(Finish(seqs[2], InvocationState::kCompleted).ok());
  ASSERT_TRUE(Finish(seqs[3], InvocationState::kFailed).ok());

  EXPECT_EQ(ListSeqs({.region = "us-east-1", .endpoint = "Ep"}), seqs);
  EXPECT_EQ(ListSeqs({.region = "us-east-1",
                      .endpoint = "ep",
                      .states = {InvocationState::kCompleted, InvocationState::kFailed}}),
            (std::vector<int64_t>{seqs[2], seqs[3]}));
  EXPECT_EQ(
      ListSeqs({.region = "us-east-1", .endpoint = "ep", .states = {InvocationState::kStarted}}),
      (std::vector<int64_t>{seqs[1]}));
  auto queued =
      ListSeqs({.region = "us-east-1", .endpoint = "ep", .states = {InvocationState::kQueued}});
  EXPECT_EQ(queued.size(), 7u);

  // Keyset pagination: pages of 3 after the last seen seq.
  std::vector<int64_t> paged;
  int64_t after = 0;
  for (int page = 0; page < 10; ++page) {
    auto got = ListSeqs({.region = "us-east-1", .endpoint = "EP", .after_seq = after, .limit = 3});
    if (got.empty()) break;
    EXPECT_LE(got.size(), 3u);
    paged.insert(paged.end(), got.begin(), got.end());
    after = got.back();
  }
  EXPECT_EQ(paged, seqs);

  auto full = store_->List({.region = "us-east-1", .endpoint = "ep", .limit = 1});
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  testing::ExpectSameRecord(Sample(1, "EP"), full->front());
  EXPECT_TRUE(ListSeqs({.region = "us-east-1", .endpoint = "ep", .limit = 0}).empty());
  EXPECT_TRUE(ListSeqs({.region = "us-east-1", .endpoint = "nothing"}).empty());
}

TEST_F(InvocationStoreTest, LoadPendingAfterRestart) {
  int64_t queued = Insert(Sample(1, "Ep-A"));
  int64_t started = Insert(Sample(2, "Ep-B"));
  int64_t owed = Insert(Sample(3, "Ep-A"));      // finished, notification still owed
  int64_t notified = Insert(Sample(4, "Ep-A"));  // finished and notified
  int64_t failed_notified = Insert(Sample(5, "Ep-A"));
  int64_t requeued = Insert(Sample(6, "Ep-A"));
  ASSERT_TRUE(Start(started).ok());
  ASSERT_TRUE(Finish(owed, InvocationState::kFailed).ok());
  ASSERT_TRUE(Finish(notified, InvocationState::kCompleted).ok());
  MarkNotifiedSync(notified);
  ASSERT_TRUE(Finish(failed_notified, InvocationState::kFailed, /*notified=*/true).ok());
  ASSERT_TRUE(Start(requeued).ok());
  ASSERT_TRUE(Requeue(requeued).ok());

  Reopen();
  auto pending = Pending();
  ASSERT_EQ(pending.size(), 4u);
  EXPECT_EQ(pending[0].seq, queued);
  EXPECT_EQ(pending[0].state, InvocationState::kQueued);
  EXPECT_EQ(pending[0].region, "us-east-1");
  EXPECT_EQ(pending[0].endpoint_key, "ep-a");
  EXPECT_EQ(pending[0].received_ms, Sample(1).received_ms);
  EXPECT_EQ(pending[0].ttl_seconds, Sample(1).ttl_seconds);
  EXPECT_FALSE(pending[0].notified);
  EXPECT_EQ(pending[1].seq, started);
  EXPECT_EQ(pending[1].state, InvocationState::kStarted);
  EXPECT_EQ(pending[1].endpoint_key, "ep-b");
  EXPECT_EQ(pending[1].region, "eu-west-1");
  EXPECT_EQ(pending[2].seq, owed);
  EXPECT_EQ(pending[2].state, InvocationState::kFailed);
  EXPECT_FALSE(pending[2].notified);
  EXPECT_EQ(pending[3].seq, requeued);
  EXPECT_EQ(pending[3].state, InvocationState::kQueued);

  MarkNotifiedSync(owed);
  pending = Pending();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[2].seq, requeued);
}

TEST_F(InvocationStoreTest, LoadPendingStreamsInSeqOrder) {
  constexpr int kRows = 20000;
  std::atomic<int> left = kRows;
  std::promise<void> all;
  for (int i = 0; i < kRows; ++i) {
    store_->Insert(Sample(i, "ep-" + std::to_string(i % 7)), [&](Result<int64_t> r) {
      EXPECT_TRUE(r.ok());
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  Reopen();
  int64_t last = 0;
  int n = 0;
  auto st = store_->LoadPending([&](PendingRef&& p) {
    EXPECT_GT(p.seq, last);
    last = p.seq;
    ++n;
  });
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(n, kRows);
}

TEST_F(InvocationStoreTest, PruneFinishedRemovesOnlyOldNotifiedOnes) {
  int64_t old_done = Insert(Sample(1));
  int64_t old_unnotified = Insert(Sample(2));
  int64_t recent_done = Insert(Sample(3));
  int64_t queued = Insert(Sample(4));
  int64_t old_failed = Insert(Sample(5));
  int64_t newest = Insert(Sample(6));
  ASSERT_TRUE(Finish(old_done, InvocationState::kCompleted, true, 100).ok());
  ASSERT_TRUE(Finish(old_unnotified, InvocationState::kCompleted, false, 100).ok());
  ASSERT_TRUE(Finish(recent_done, InvocationState::kCompleted, true, 1000).ok());
  ASSERT_TRUE(Finish(old_failed, InvocationState::kFailed, true, 100).ok());
  ASSERT_TRUE(Finish(newest, InvocationState::kFailed, true, 100).ok());

  auto n = store_->PruneFinished(500);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 2);
  EXPECT_FALSE(store_->GetBySeq(old_done)->has_value());
  EXPECT_FALSE(store_->GetBySeq(old_failed)->has_value());
  for (int64_t kept : {old_unnotified, recent_done, queued, newest}) {
    EXPECT_TRUE(store_->GetBySeq(kept)->has_value()) << kept;
  }
  // The newest row is kept, so its seq is never handed out again.
  EXPECT_GT(Insert(Sample(7)), newest);
  EXPECT_EQ(*store_->PruneFinished(500), 1);  // `newest` is no longer the newest
}

TEST_F(InvocationStoreTest, PruneFinishedWorksInChunks) {
  constexpr int kRows = 4500;  // more than two chunks
  std::vector<int64_t> seqs(kRows);
  std::atomic<int> left = kRows;
  std::promise<void> all;
  for (int i = 0; i < kRows; ++i) {
    store_->Insert(Sample(i), [&, i](Result<int64_t> r) {
      seqs[i] = r.ok() ? *r : -1;
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  left = kRows;
  std::promise<void> finished;
  for (int i = 0; i < kRows; ++i) {
    Invocation f;
    f.seq = seqs[i];
    f.state = InvocationState::kCompleted;
    f.finished_ms = 10;
    f.notified = i % 100 != 0;  // every 100th still owes its notification
    store_->Finish(f, [&](Status s) {
      EXPECT_TRUE(s.ok());
      if (--left == 0) finished.set_value();
    });
  }
  finished.get_future().wait();
  auto n = store_->PruneFinished(11);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, kRows - kRows / 100 - 1);  // all but the owed ones and the newest
  EXPECT_EQ(Pending().size(), static_cast<size_t>(kRows / 100));
}

TEST_F(InvocationStoreTest, PruneFinishedFromAWriteCallbackIsRefused) {
  // It would wait for the writer thread it runs on.
  std::promise<Result<int64_t>> pruned;
  store_->Insert(Sample(1), [&](Result<int64_t>) { pruned.set_value(store_->PruneFinished(1)); });
  auto r = pruned.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInternal);
}

}  // namespace
}  // namespace inferd::queue
