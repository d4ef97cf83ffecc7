// Get by InferenceId through the bulk-written id index (id_index.h): ids in memory, being written,
// written; across reopen, an interrupted set, pruning, and databases from before the index.
#include "queue/id_index.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "queue/invocation_store.h"
#include "queue/testing.h"

namespace inferd::queue {
namespace {

using testing::InsertSync;
using testing::Sample;
using testing::TempDir;

class IdIndexTest : public ::testing::Test {
 protected:
  void Open(int flush_rows = 10, int chunk_rows = 3, int key_ranges = 256) {
    store_.reset();
    InvocationStoreOptions options;
    options.path = path_;
    options.id_flush_rows = flush_rows;
    options.id_chunk_rows = chunk_rows;
    options.id_key_ranges = key_ranges;
    auto s = InvocationStore::Open(options);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  int64_t Insert(int64_t i, const std::string& id = "") {
    Invocation v = Sample(i);
    if (!id.empty()) v.inference_id = id;
    auto r = InsertSync(*store_, v);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -1;
  }
  // The seq Get finds for Sample(i)'s id (or `id`), -1 when none.
  int64_t Find(int64_t i, const std::string& id = "") {
    Invocation v = Sample(i);
    auto r = store_->Get(v.region, "MY-endpoint", id.empty() ? v.inference_id : id);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && r->has_value() ? (*r)->seq : -1;
  }
  int64_t Query(const std::string& sql) { return testing::QueryInt(path_, sql); }
  int64_t Written() { return Query("SELECT count(*) FROM invocation_ids"); }
  // Completed and notified at 1000 ms: prunable by PruneFinished(2000).
  void FinishNotified(int64_t seq) {
    Invocation f;
    f.seq = seq;
    f.state = InvocationState::kCompleted;
    f.finished_ms = 1000;
    f.notified = true;
    ASSERT_TRUE(testing::Wait([&](auto done) { store_->Finish(f, done); }).ok());
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_.path() / "queue.db";
  std::unique_ptr<InvocationStore> store_;
};

TEST_F(IdIndexTest, GetFindsEveryRowWhereverItsIdIsAndAfterReopening) {
  Open();
  std::vector<int64_t> seqs;
  for (int i = 0; i < 60; ++i) {
    seqs.push_back(Insert(i));  // one transaction each: a chunk rides along with most of them
    for (int j = 0; j <= i; j += 7) ASSERT_EQ(Find(j), seqs[j]) << "after insert " << i;
  }
  const int64_t written = Written();
  EXPECT_GE(written, 30) << "ids are not written to the table";
  EXPECT_LT(written, 60) << "the newest ids should still be in memory";
  EXPECT_EQ(Find(1000), -1);

  Open();  // the ids not yet written come back from the rows after the watermark
  for (int i = 0; i < 60; ++i) EXPECT_EQ(Find(i), seqs[i]) << i;
  // With the rest written later, still found, each once.
  for (int i = 60; i < 100; ++i) seqs.push_back(Insert(i));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Find(i), seqs[i]) << i;
  EXPECT_LE(Written(), 100);
  EXPECT_EQ(Query("SELECT count(*) FROM (SELECT DISTINCT seq FROM invocation_ids)"), Written());
}

TEST_F(IdIndexTest, TheNewestRowWithAnIdWinsWhetherWrittenOrInMemory) {
  Open(/*flush_rows=*/4, /*chunk_rows=*/100);
  const int64_t first = Insert(1, "same-id");
  for (int i = 2; i < 10; ++i) Insert(i);  // "same-id" now written to the table
  ASSERT_EQ(Query("SELECT count(*) FROM invocation_ids WHERE seq = " + std::to_string(first)), 1)
      << "the first row's id should be written to the table by now";
  EXPECT_EQ(Find(1, "same-id"), first);
  const int64_t second = Insert(3, "same-id");  // Sample(3): the same region as Sample(1)
  EXPECT_EQ(Find(1, "same-id"), second);
  for (int i = 10; i < 20; ++i) Insert(i);  // both written now
  EXPECT_EQ(Find(1, "same-id"), second);
}

TEST_F(IdIndexTest, ASetInterruptedByAStopIsWrittenAgainWithoutDuplicates) {
  Open(/*flush_rows=*/10, /*chunk_rows=*/3);
  std::vector<int64_t> seqs;
  for (int i = 0; i < 12; ++i) seqs.push_back(Insert(i));  // the set of 10: two chunks written
  ASSERT_GT(Written(), 0);
  ASSERT_LT(Written(), 10);
  EXPECT_EQ(Query("SELECT seq FROM invocation_ids_through"), 0);
  Open(/*flush_rows=*/10, /*chunk_rows=*/3);  // all 12 after the watermark: written again
  for (int i = 12; i < 40; ++i) seqs.push_back(Insert(i));
  for (int i = 0; i < 40; ++i) EXPECT_EQ(Find(i), seqs[i]) << i;
  EXPECT_GE(Query("SELECT seq FROM invocation_ids_through"), seqs[11]);
  EXPECT_EQ(Query("SELECT count(*) FROM invocation_ids WHERE seq <= 12"), 12);
}

TEST_F(IdIndexTest, PruningRemovesTheIdsOfTheRowsItDeletes) {
  Open(/*flush_rows=*/5, /*chunk_rows=*/100);
  std::vector<int64_t> seqs;
  for (int i = 0; i < 30; ++i) seqs.push_back(Insert(i));
  for (int i = 0; i < 20; ++i) FinishNotified(seqs[i]);
  const int64_t before = Written();
  ASSERT_GE(before, 20);
  auto pruned = store_->PruneFinished(2000);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 20);
  EXPECT_EQ(Written(), before - 20);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Find(i), -1) << i;
  for (int i = 20; i < 30; ++i) EXPECT_EQ(Find(i), seqs[i]) << i;
}

TEST_F(IdIndexTest, RowsPrunedBeforeTheirIdsAreWrittenLeaveNoEntryBehind) {
  // The first rows' ids stay in memory a while; the set is written in chunks of 50.
  Open(/*flush_rows=*/100, /*chunk_rows=*/50, /*key_ranges=*/1);
  std::vector<int64_t> seqs;
  for (int i = 0; i < 10; ++i) seqs.push_back(Insert(i));
  for (int i = 0; i < 10; i += 2) FinishNotified(seqs[i]);
  auto pruned = store_->PruneFinished(2000);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  ASSERT_EQ(*pruned, 5);
  ASSERT_EQ(Written(), 0);
  for (int i = 10; i < 120; ++i) seqs.push_back(Insert(i));  // the set of 105 gets written
  ASSERT_GE(Written(), 100);
  EXPECT_EQ(Query("SELECT count(*) FROM invocation_ids WHERE seq NOT IN (SELECT seq FROM "
                  "invocations)"),
            0);
  for (int i = 0; i < 120; ++i) EXPECT_EQ(Find(i), i < 10 && i % 2 == 0 ? -1 : seqs[i]) << i;
}

// The set being written, directly: a forgotten entry not yet written never is; one forgotten
// after it was written is the prune's to delete (it deletes table entries in its transaction).
TEST(IdIndexClassTest, ForgetDropsEntriesNotYetWrittenAndStillWritesTheWatermark) {
  using internal::IdIndex;
  IdIndex index(/*flush_rows=*/4, /*chunk_rows=*/1, /*key_ranges=*/1);
  std::vector<IdIndex::Entry> rows = {{40, 1}, {10, 2}, {30, 3}, {20, 4}};
  index.Add(rows);
  IdIndex::Chunk c = index.NextChunk();  // sorted by hash: {10, 2} first
  ASSERT_TRUE(c.due);
  ASSERT_EQ(c.entries.size(), 1u);
  EXPECT_EQ(c.entries[0].seq, 2);
  index.ChunkDone(true);
  std::vector<IdIndex::Entry> gone = {{30, 3}, {10, 2}};
  index.Forget(gone);
  std::vector<int64_t> found;
  index.Lookup(30, found);
  EXPECT_TRUE(found.empty());
  std::vector<int64_t> written;
  for (;;) {
    c = index.NextChunk();
    ASSERT_TRUE(c.due);
    for (const auto& e : c.entries) written.push_back(e.seq);
    const bool last = c.last;
    EXPECT_EQ(c.through, 4);
    index.ChunkDone(true);
    if (last) break;
  }
  EXPECT_EQ(written, (std::vector<int64_t>{4, 1}));  // hashes 20, 40; 30 forgotten
  EXPECT_FALSE(index.NextChunk().due);               // the set is done, nothing pending

  // Everything left forgotten: the set still ends with a chunk that writes only the watermark.
  index.Add(rows);
  ASSERT_EQ(index.NextChunk().entries.size(), 1u);
  index.ChunkDone(true);
  index.Forget(rows);
  c = index.NextChunk();
  ASSERT_TRUE(c.due);
  EXPECT_TRUE(c.entries.empty());
  EXPECT_TRUE(c.last);
  EXPECT_EQ(c.through, 4);
  index.ChunkDone(true);
  EXPECT_FALSE(index.NextChunk().due);
}

// A chunk stays within one slice of the hash space (so it touches about 1/key_ranges of the
// table's pages however large the table is), and within chunk_rows; every entry is written once,
// in order.
TEST(IdIndexClassTest, AChunkNeverCrossesAKeyRangeNorHoldsMoreThanChunkRows) {
  using internal::IdIndex;
  constexpr int64_t kQuarter = int64_t{1} << 62;  // 4 ranges: [min, -2^62), [-2^62, 0), ...
  std::vector<IdIndex::Entry> rows = {{kQuarter, 1},
                                      {-kQuarter - 1, 2},
                                      {0, 3},
                                      {INT64_MIN, 4},
                                      {-1, 5},
                                      {kQuarter - 1, 6},
                                      {INT64_MAX, 7},
                                      {1, 8},
                                      {2, 9},
                                      {3, 10},
                                      {-kQuarter - 2, 11},
                                      {4, 12}};
  auto chunks = [&](size_t chunk_rows, size_t key_ranges) {
    IdIndex index(rows.size(), chunk_rows, key_ranges);
    index.Add(rows);
    std::vector<std::vector<int64_t>> out;
    for (;;) {
      IdIndex::Chunk c = index.NextChunk();
      EXPECT_TRUE(c.due);
      if (!c.due) break;
      EXPECT_EQ(c.through, 12);
      std::vector<int64_t> seqs;
      for (const auto& e : c.entries) seqs.push_back(e.seq);
      out.push_back(seqs);
      const bool last = c.last;
      index.ChunkDone(true);
      if (last) break;
    }
    EXPECT_FALSE(index.NextChunk().due);
    return out;
  };
  using Chunks = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(chunks(100, 4), (Chunks{{4, 11, 2}, {5}, {3, 8, 9, 10, 12, 6}, {1, 7}}));
  EXPECT_EQ(chunks(4, 4), (Chunks{{4, 11, 2}, {5}, {3, 8, 9, 10}, {12, 6}, {1, 7}}));
  EXPECT_EQ(chunks(100, 1), (Chunks{{4, 11, 2, 5, 3, 8, 9, 10, 12, 6, 1, 7}}));
  // A chunk that was not committed is offered again, the same.
  IdIndex index(rows.size(), 100, 4);
  index.Add(rows);
  ASSERT_EQ(index.NextChunk().entries.size(), 3u);
  index.ChunkDone(false);
  IdIndex::Chunk again = index.NextChunk();
  ASSERT_EQ(again.entries.size(), 3u);
  EXPECT_EQ(again.entries[0].seq, 4);
}

TEST_F(IdIndexTest, ADatabaseWithTheOldSqlIndexMovesItsIdsOnce) {
  Open();
  std::vector<int64_t> seqs;
  for (int i = 0; i < 25; ++i) seqs.push_back(Insert(i));
  store_.reset();
  // As written before the id index: an SQL index on id_hash, no id tables.
  ASSERT_NO_FATAL_FAILURE(testing::ExecOnOwnConnection(
      path_,
      "DROP TABLE invocation_ids; DROP TABLE invocation_ids_through; CREATE INDEX "
      "invocations_by_id ON invocations(id_hash);"));
  Open();
  EXPECT_EQ(Query("SELECT count(*) FROM sqlite_master WHERE name = 'invocations_by_id'"), 0);
  EXPECT_EQ(Written(), 25);
  EXPECT_EQ(Query("SELECT seq FROM invocation_ids_through"), seqs.back());
  for (int i = 0; i < 25; ++i) EXPECT_EQ(Find(i), seqs[i]) << i;
  seqs.push_back(Insert(25));
  EXPECT_EQ(Find(25), seqs.back());
}

}  // namespace
}  // namespace inferd::queue
