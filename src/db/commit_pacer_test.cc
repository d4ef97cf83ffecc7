#include "db/commit_pacer.h"

#include <gtest/gtest.h>

namespace inferd::db {
namespace {

using std::chrono::microseconds;
using Clock = CommitPacer::Clock;

TEST(CommitPacerTest, ZeroIntervalNeverWaits) {
  CommitPacer pacer(microseconds(0), 4);
  Clock::time_point t{std::chrono::seconds(100)};
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(pacer.Wait(t), Clock::duration::zero());
    pacer.Started(t);
  }
}

TEST(CommitPacerTest, ABurstStartsAtOnceThenCommitsAreSpaced) {
  CommitPacer pacer(microseconds(1000), 4);
  Clock::time_point t{std::chrono::seconds(100)};
  for (int i = 0; i < 4; ++i) {  // the burst: no wait
    EXPECT_EQ(pacer.Wait(t), Clock::duration::zero()) << i;
    pacer.Started(t);
  }
  EXPECT_EQ(pacer.Wait(t), microseconds(1000));  // the fifth waits a whole interval
  t += microseconds(400);
  EXPECT_EQ(pacer.Wait(t), microseconds(600));  // … less what has passed
  t += microseconds(600);
  EXPECT_EQ(pacer.Wait(t), Clock::duration::zero());
  pacer.Started(t);
  // Sustained: one commit per interval.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(pacer.Wait(t), microseconds(1000)) << i;
    t += microseconds(1000);
    pacer.Started(t);
  }
}

TEST(CommitPacerTest, CommitsBelowTheRateNeverWait) {
  CommitPacer pacer(microseconds(1000), 2);
  Clock::time_point t{std::chrono::seconds(100)};
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(pacer.Wait(t), Clock::duration::zero()) << i;
    pacer.Started(t);
    // Two commits 100 µs apart, then a pause: 2 per 3 ms on average.
    t += (i % 2 == 0) ? microseconds(100) : microseconds(2900);
  }
}

TEST(CommitPacerTest, AnIdleWriterRefillsOnlyUpToTheBurst) {
  CommitPacer pacer(microseconds(1000), 3);
  Clock::time_point t{std::chrono::seconds(100)};
  pacer.Started(t);
  t += std::chrono::seconds(60);  // idle for a minute: still only 3 at once
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pacer.Wait(t), Clock::duration::zero()) << i;
    pacer.Started(t);
  }
  EXPECT_GT(pacer.Wait(t), Clock::duration::zero());
}

}  // namespace
}  // namespace inferd::db
