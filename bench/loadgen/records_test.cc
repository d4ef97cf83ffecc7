#include "records.h"

#include <gtest/gtest.h>

#include <thread>

namespace inferd::bench {
namespace {

TEST(InferenceIdTest, RoundTripsThreadAndSeq) {
  const std::string id = MakeInferenceId("ab12", 3, 123456789);
  EXPECT_EQ(id, "ab12-3-123456789");
  auto parts = ParseInferenceId(id, "ab12");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->thread, 3);
  EXPECT_EQ(parts->seq, 123456789u);
}

TEST(InferenceIdTest, RefusesOtherPrefixesAndShapes) {
  EXPECT_FALSE(ParseInferenceId("ab123-0-1", "ab12"));
  EXPECT_FALSE(ParseInferenceId("ab12-0", "ab12"));
  EXPECT_FALSE(ParseInferenceId("ab12-x-1", "ab12"));
  EXPECT_FALSE(ParseInferenceId("ab12-0-1x", "ab12"));
  EXPECT_FALSE(ParseInferenceId("11111111-2222-3333-4444-555555555555", "ab12"));
}

TEST(EventTimeTest, ParsesSageMakerTimestamps) {
  EXPECT_EQ(ParseEventTimeMs("1970-01-01T00:00:01.250Z"), 1250);
  EXPECT_EQ(ParseEventTimeMs("2022-01-25T22:46:00.608Z"), 1643150760608);
  EXPECT_EQ(ParseEventTimeMs("2022-01-25T22:46:00Z"), 1643150760000);
  EXPECT_FALSE(ParseEventTimeMs("2022-01-25 22:46:00.608Z"));
  EXPECT_FALSE(ParseEventTimeMs("2022-01-25T22:46:00.608+01:00"));
}

TEST(SummaryTest, NearestRankPercentiles) {
  std::vector<int64_t> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i * 1'000'000);  // 1..1000 ms
  Summary s = Summarize(v);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 500);
  EXPECT_DOUBLE_EQ(s.p99_ms, 990);
  EXPECT_DOUBLE_EQ(s.p999_ms, 999);
  EXPECT_DOUBLE_EQ(s.max_ms, 1000);
  EXPECT_DOUBLE_EQ(s.mean_ms, 500.5);
  EXPECT_EQ(Summarize({}).count, 0u);
}

TEST(RecordTableTest, ReaderSeesRecordsTheWriterAdded) {
  RecordTable table;
  constexpr uint64_t kN = 3 * RecordTable::kChunk + 7;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      const uint64_t n = table.size();
      if (n > 0) {
        Record* r = table.Find(n - 1);
        ASSERT_NE(r, nullptr);
      }
    }
  });
  for (uint64_t i = 0; i < kN; ++i) table.Add(i)->intended_ns = static_cast<int64_t>(i);
  done = true;
  reader.join();
  EXPECT_EQ(table.size(), kN);
  EXPECT_EQ(table.Find(kN - 1)->intended_ns.load(), static_cast<int64_t>(kN - 1));
  EXPECT_EQ(table.Find(kN), nullptr);
}

}  // namespace
}  // namespace inferd::bench
