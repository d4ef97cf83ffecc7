#include "common/completion_batch.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace inferd {
namespace {

TEST(CompletionBatchTest, OutsideABatchFlushesRunAtOnce) {
  EXPECT_FALSE(CompletionBatch::Active());
  int runs = 0;
  CompletionBatch::OnEnd(&runs, [&] { ++runs; });
  CompletionBatch::OnEnd(&runs, [&] { ++runs; });
  EXPECT_EQ(runs, 2);
}

TEST(CompletionBatchTest, FlushesRunOncePerKeyWhenTheOutermostBatchEnds) {
  std::vector<std::string> log;
  int a = 0, b = 0;
  {
    CompletionBatch outer;
    EXPECT_TRUE(CompletionBatch::Active());
    CompletionBatch::OnEnd(&a, [&] { log.push_back("a"); });
    {
      CompletionBatch inner;
      CompletionBatch::OnEnd(&b, [&] { log.push_back("b"); });
      CompletionBatch::OnEnd(&a, [&] { log.push_back("a again"); });  // same key: ignored
    }
    EXPECT_TRUE(log.empty()) << "the inner batch must not flush";
  }
  EXPECT_FALSE(CompletionBatch::Active());
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  {
    CompletionBatch again;  // a key can register again in the next batch
    CompletionBatch::OnEnd(&a, [&] { log.push_back("a"); });
  }
  EXPECT_EQ(log.size(), 3u);
}

TEST(CompletionBatchTest, BatchesArePerThread) {
  CompletionBatch mine;
  bool other_active = true;
  int ran_on_other = 0;
  std::thread([&] {
    other_active = CompletionBatch::Active();
    CompletionBatch::OnEnd(&ran_on_other, [&] { ++ran_on_other; });
  }).join();
  EXPECT_FALSE(other_active);
  EXPECT_EQ(ran_on_other, 1);  // no batch there: at once
}

TEST(CompletionBatchTest, AFlushMayUseBatchesItself) {
  int key = 0, inner_key = 0;
  int inner_runs = 0;
  {
    CompletionBatch batch;
    CompletionBatch::OnEnd(&key, [&] {
      EXPECT_FALSE(CompletionBatch::Active());
      CompletionBatch nested;
      CompletionBatch::OnEnd(&inner_key, [&] { ++inner_runs; });
    });
  }
  EXPECT_EQ(inner_runs, 1);
}

}  // namespace
}  // namespace inferd
