// List through the bulk-written endpoint index (store_internal.h): rows up to the watermark are
// read from invocation_endpoints, the rows after it from the table's tail; across reopen,
// pruning, databases from before the index, and the plans that keep both parts off a full scan.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "db/sqlite.h"
#include "queue/invocation_store.h"
#include "queue/store_internal.h"
#include "queue/testing.h"

namespace inferd::queue {
namespace {

using testing::Sample;

class EndpointIndexTest : public testing::StoreTest {
 protected:
  void SetUp() override { Reopen({.endpoint_index_rows = 4}); }

  int64_t Query(const std::string& sql) { return testing::QueryInt(dir_.path() / "queue.db", sql); }
  int64_t Watermark() { return Query("SELECT seq FROM invocation_endpoints_through"); }
  int64_t Entries() { return Query("SELECT count(*) FROM invocation_endpoints"); }

  // Inserts `n` rows spread over three endpoints (two share a name in different regions) and
  // returns the seqs of Sample-odd "Ep-A" rows in us-east-1, the ones the tests list.
  std::vector<int64_t> Fill(int n, int first = 0) {
    std::vector<int64_t> listed;
    for (int i = first; i < first + n; ++i) {
      const char* endpoint = i % 3 == 0 ? "Ep-B" : "Ep-A";
      int64_t seq = Insert(Sample(i, i % 4 == 0 ? "ep-a" : endpoint));
      if (i % 2 == 1 && i % 3 != 0) listed.push_back(seq);  // us-east-1, Ep-A
    }
    return listed;
  }
  std::vector<int64_t> Pages(int64_t page, std::vector<InvocationState> states = {}) {
    std::vector<int64_t> all;
    int64_t after = 0;
    for (;;) {
      auto got = ListSeqs({.region = "us-east-1",
                           .endpoint = "EP-a",
                           .states = states,
                           .after_seq = after,
                           .limit = static_cast<int>(page)});
      if (got.empty()) return all;
      EXPECT_LE(static_cast<int64_t>(got.size()), page);
      all.insert(all.end(), got.begin(), got.end());
      after = got.back();
    }
  }
};

TEST_F(EndpointIndexTest, ListReadsTheWrittenEntriesAndTheRowsAfterThemInSeqOrder) {
  std::vector<int64_t> listed = Fill(41);
  // Written in bulk: every row up to the watermark has its entry, and fewer than
  // endpoint_index_rows rows are after it.
  const int64_t through = Watermark();
  EXPECT_GE(through, 41 - 4);
  EXPECT_LT(through, 41);
  EXPECT_EQ(Entries(), through);
  EXPECT_EQ(Query("SELECT count(*) FROM invocation_endpoints LEFT JOIN invocations ON seq = "
                  "ep_seq WHERE region IS NOT ep_region OR endpoint_key IS NOT ep_key"),
            0);

  // Pages of every size cross the watermark in order, without a gap or a repeat.
  for (int64_t page : {1, 2, 3, 5, 100}) EXPECT_EQ(Pages(page), listed) << page;
  // The state filter applies to both parts.
  ASSERT_TRUE(Finish(listed.front(), InvocationState::kCompleted).ok());
  ASSERT_TRUE(Finish(listed.back(), InvocationState::kFailed).ok());
  EXPECT_EQ(Pages(1, {InvocationState::kCompleted, InvocationState::kFailed}),
            (std::vector<int64_t>{listed.front(), listed.back()}));
  EXPECT_EQ(Pages(2, {InvocationState::kQueued}).size(), listed.size() - 2);

  // Reopened the same way, and with a watermark far behind (all of it read from the tail).
  Reopen({.endpoint_index_rows = 4});
  EXPECT_EQ(Pages(3), listed);
  Reopen({.endpoint_index_rows = 1000});
  std::vector<int64_t> more = Fill(10, 41);
  listed.insert(listed.end(), more.begin(), more.end());
  EXPECT_EQ(Watermark(), through);  // 10 new rows: none written
  EXPECT_EQ(Pages(4), listed);
}

TEST_F(EndpointIndexTest, PruningRemovesTheEntriesOfTheRowsItDeletes) {
  std::vector<int64_t> listed = Fill(30);
  ASSERT_GT(Entries(), 20);
  // The oldest listed rows finish and are notified long ago: pruned, entries and all.
  std::vector<int64_t> kept(listed.begin() + 4, listed.end());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(Finish(listed[i], InvocationState::kCompleted, true, 1000).ok());
  }
  auto pruned = store_->PruneFinished(2000);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(*pruned, 4);
  EXPECT_EQ(Query("SELECT count(*) FROM invocation_endpoints LEFT JOIN invocations ON seq = "
                  "ep_seq WHERE seq IS NULL"),
            0);
  EXPECT_EQ(Pages(2), kept);
  // Rows inserted after the prune get their entries as before.
  std::vector<int64_t> more = Fill(12, 30);
  kept.insert(kept.end(), more.begin(), more.end());
  EXPECT_EQ(Pages(3), kept);
  EXPECT_EQ(Entries(), Query("SELECT count(*) FROM invocations WHERE seq <= (SELECT seq FROM "
                             "invocation_endpoints_through)"));
}

TEST_F(EndpointIndexTest, ADatabaseWithTheOldSqlIndexMovesItsEntriesOnce) {
  std::vector<int64_t> listed = Fill(25);
  store_.reset();
  // As written before the endpoint index: an SQL index, no endpoint tables.
  ASSERT_NO_FATAL_FAILURE(testing::ExecOnOwnConnection(
      dir_.path() / "queue.db",
      "DROP TABLE invocation_endpoints; DROP TABLE invocation_endpoints_through; CREATE INDEX "
      "invocations_by_endpoint ON invocations(region, endpoint_key);"));
  Reopen({.endpoint_index_rows = 4});
  EXPECT_EQ(Query("SELECT count(*) FROM sqlite_master WHERE name = 'invocations_by_endpoint'"), 0);
  EXPECT_EQ(Entries(), 25);
  EXPECT_EQ(Watermark(), Query("SELECT max(seq) FROM invocations"));
  EXPECT_EQ(Pages(4), listed);
  std::vector<int64_t> more = Fill(9, 25);
  listed.insert(listed.end(), more.begin(), more.end());
  EXPECT_EQ(Pages(4), listed);
}

// Neither part of List scans the invocations table: the first seeks the endpoint's entries by
// primary key, the second the rows after the watermark by rowid.
TEST_F(EndpointIndexTest, NeitherPartOfListScansTheTable) {
  Fill(10);
  auto db = db::Database::Open(dir_.path() / "queue.db", "test reader", nullptr);
  ASSERT_TRUE(db.ok());
  for (const char* from : {internal::kListIndexedFrom, internal::kListTailFrom}) {
    db::Stmt plan(**db, std::string("EXPLAIN QUERY PLAN SELECT ") + internal::kColumns + from);
    ASSERT_TRUE(plan.ok());
    std::vector<std::string> steps;
    while (plan.Step() == db::Stmt::kRow) steps.push_back(plan.Text(3));
    std::string all;
    for (const std::string& s : steps) all += s + "\n";
    for (const std::string& s : steps) {
      EXPECT_EQ(s.rfind("SCAN invocations", 0), std::string::npos) << all;
      EXPECT_EQ(s.find("TEMP B-TREE"), std::string::npos) << all;  // no sort
    }
    EXPECT_NE(all.find("SEARCH invocations USING INTEGER PRIMARY KEY"), std::string::npos) << all;
    if (from == internal::kListIndexedFrom) {
      EXPECT_NE(all.find("SEARCH invocation_endpoints USING PRIMARY KEY"), std::string::npos)
          << all;
    }
  }
}

}  // namespace
}  // namespace inferd::queue
