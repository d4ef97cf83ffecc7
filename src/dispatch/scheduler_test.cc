#include "dispatch/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/clock.h"
#include "store/store_test_util.h"

namespace inferd::dispatch {
namespace {

using namespace std::chrono_literals;

const std::string kKey = "us-east-1\nep";

InstanceRef Inst(const std::string& variant, uint16_t port) {
  return InstanceRef{variant, "127.0.0.1", port};
}

Capacity Cap(std::vector<InstanceRef> instances, int max, std::map<std::string, double> w = {}) {
  return Capacity{std::move(instances), max, std::move(w)};
}

class SchedulerTest : public ::testing::Test {
 protected:
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
        .count();
  }
  // Queues `n` entries received now with a TTL of `ttl` seconds, seqs from `first`.
  void Queue(int n, int64_t first = 1, int ttl = 600) {
    for (int i = 0; i < n; ++i) sched_.Push(kKey, {first + i, Now(), ttl});
  }
  FakeClock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  Scheduler sched_;
};

TEST_F(SchedulerTest, FirstInFirstOutWithinTheCap) {
  Queue(3);
  sched_.SetCapacity(kKey, Cap({Inst("v", 1)}, 1));
  auto a = sched_.Assign(kKey, Now());
  ASSERT_EQ(a.kind, Scheduler::Next::kRun);
  EXPECT_EQ(a.entry.seq, 1);
  EXPECT_EQ(a.instance.port, 1);
  EXPECT_TRUE(a.lease.held());
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);  // at the cap
  EXPECT_EQ(sched_.StatsOf(kKey).queued, 2u);
  EXPECT_EQ(sched_.StatsOf(kKey).running, 1);
  a.lease.Release();
  EXPECT_EQ(sched_.StatsOf(kKey).running, 0);
  auto b = sched_.Assign(kKey, Now());
  ASSERT_EQ(b.kind, Scheduler::Next::kRun);
  EXPECT_EQ(b.entry.seq, 2);
}

// An accept gets a slot only when nothing is queued or arriving for its endpoint; otherwise it
// counts as arriving until its Push (or Arrived when its accept failed).
TEST_F(SchedulerTest, AnAcceptGetsASlotOnlyWhenNothingIsAheadOfIt) {
  const Capacity one = Cap({Inst("v", 1)}, 2);
  EXPECT_TRUE(sched_.Idle(kKey));
  auto direct = sched_.AssignOnAccept(kKey, &one, Now());
  ASSERT_TRUE(direct.has_value());
  EXPECT_EQ(direct->first.port, 1);
  EXPECT_EQ(sched_.StatsOf(kKey).running, 1);  // the endpoint's work in progress
  EXPECT_TRUE(sched_.Idle(kKey));

  // No worker free: arriving, and the next accept (with a free slot) does not pass it.
  EXPECT_FALSE(sched_.AssignOnAccept(kKey, nullptr, Now()).has_value());
  EXPECT_FALSE(sched_.Idle(kKey));
  EXPECT_FALSE(sched_.AssignOnAccept(kKey, &one, Now()).has_value());  // arriving too
  // The first arrives: queued, so the second still waits; the queue runs on the capacity the
  // accepts brought.
  EXPECT_TRUE(sched_.Push(kKey, {1, Now(), 600}, /*arrived=*/true));
  EXPECT_FALSE(sched_.AssignOnAccept(kKey, &one, Now()).has_value());  // a third, arriving
  auto queued = sched_.Assign(kKey, Now());
  ASSERT_EQ(queued.kind, Scheduler::Next::kRun);
  EXPECT_EQ(queued.entry.seq, 1);
  // The second's accept failed; the third arrives and waits for a slot (two are in use).
  sched_.Arrived(kKey);
  sched_.Push(kKey, {3, Now(), 600}, /*arrived=*/true);
  EXPECT_FALSE(sched_.Idle(kKey));
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);
  direct->second.Release();
  auto third = sched_.Assign(kKey, Now());
  ASSERT_EQ(third.kind, Scheduler::Next::kRun);
  EXPECT_EQ(third.entry.seq, 3);
  // Nothing queued or arriving: the next accept gets the slot... when one is free.
  EXPECT_TRUE(sched_.Idle(kKey));
  EXPECT_FALSE(sched_.AssignOnAccept(kKey, &one, Now()).has_value());  // both slots in use
  sched_.Arrived(kKey);
  queued.lease.Release();
  EXPECT_TRUE(sched_.AssignOnAccept(kKey, &one, Now()).has_value());
}

TEST_F(SchedulerTest, RequeuedEntriesGoBackToTheirPlace) {
  EXPECT_TRUE(sched_.Push(kKey, {5, Now(), 600}));  // the first of an empty queue
  EXPECT_FALSE(sched_.Push(kKey, {7, Now(), 600}));
  EXPECT_FALSE(sched_.Push(kKey, {3, Now(), 600}));
  EXPECT_FALSE(sched_.Push(kKey, {5, Now(), 600}));  // already queued: ignored
  EXPECT_EQ(sched_.Position(kKey, 3), 0);
  EXPECT_EQ(sched_.Position(kKey, 5), 1);
  EXPECT_EQ(sched_.Position(kKey, 7), 2);
  EXPECT_EQ(sched_.Position(kKey, 4), std::nullopt);
  EXPECT_TRUE(sched_.Remove(kKey, 5));
  EXPECT_FALSE(sched_.Remove(kKey, 5));
  EXPECT_EQ(sched_.Position(kKey, 7), 1);
  auto all = sched_.TakeAll(kKey);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].seq, 3);
  EXPECT_EQ(all[1].seq, 7);
  EXPECT_TRUE(sched_.KeysWithBacklog().empty());
  EXPECT_TRUE(sched_.Push(kKey, {9, Now(), 600}));  // empty again
}

TEST_F(SchedulerTest, VariantsGetWorkInProportionToTheirWeights) {
  Queue(400);
  sched_.SetCapacity(kKey, Cap({Inst("a", 1), Inst("b", 2)}, 1000, {{"a", 3}, {"b", 1}}));
  std::map<std::string, int> count;
  std::vector<SlotLease> leases;
  int run = 0, longest_run = 0;
  std::string previous;
  for (int i = 0; i < 400; ++i) {
    auto n = sched_.Assign(kKey, Now());
    ASSERT_EQ(n.kind, Scheduler::Next::kRun);
    ++count[n.instance.variant];
    run = n.instance.variant == previous ? run + 1 : 1;
    longest_run = std::max(longest_run, run);
    previous = n.instance.variant;
    leases.push_back(std::move(n.lease));
  }
  EXPECT_EQ(count["a"], 300);
  EXPECT_EQ(count["b"], 100);
  EXPECT_LE(longest_run, 3);  // interleaved, not in blocks
}

TEST_F(SchedulerTest, WeightsOnlyAmongVariantsWithFreeSlots) {
  Queue(10);
  sched_.SetCapacity(kKey, Cap({Inst("a", 1), Inst("b", 2)}, 2, {{"a", 100}, {"b", 1}}));
  std::map<std::string, int> count;
  std::vector<SlotLease> leases;
  for (int i = 0; i < 4; ++i) {
    auto n = sched_.Assign(kKey, Now());
    ASSERT_EQ(n.kind, Scheduler::Next::kRun);
    ++count[n.instance.variant];
    leases.push_back(std::move(n.lease));
  }
  // a is full after two: b takes the rest although its weight is tiny.
  EXPECT_EQ(count["a"], 2);
  EXPECT_EQ(count["b"], 2);
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);
}

TEST_F(SchedulerTest, ZeroWeightVariantsGetNothingUnlessAllAreZero) {
  Queue(6);
  sched_.SetCapacity(kKey, Cap({Inst("a", 1), Inst("b", 2)}, 1, {{"a", 1}, {"b", 0}}));
  auto first = sched_.Assign(kKey, Now());
  ASSERT_EQ(first.kind, Scheduler::Next::kRun);
  EXPECT_EQ(first.instance.variant, "a");
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);  // b is free but 0
  first.lease.Release();

  sched_.SetCapacity(kKey, Cap({Inst("a", 1), Inst("b", 2)}, 1, {{"a", 0}, {"b", 0}}));
  auto x = sched_.Assign(kKey, Now());
  auto y = sched_.Assign(kKey, Now());
  ASSERT_EQ(x.kind, Scheduler::Next::kRun);
  ASSERT_EQ(y.kind, Scheduler::Next::kRun);
  EXPECT_NE(x.instance.variant, y.instance.variant);  // equal shares
}

TEST_F(SchedulerTest, InstanceWithTheLeastOutstandingWork) {
  Queue(10);
  sched_.SetCapacity(kKey, Cap({Inst("v", 1), Inst("v", 2), Inst("v", 3)}, 10));
  std::vector<Scheduler::Next> taken;
  for (int i = 0; i < 3; ++i) taken.push_back(sched_.Assign(kKey, Now()));
  std::set<int> ports;
  for (auto& t : taken) ports.insert(t.instance.port);
  EXPECT_EQ(ports, (std::set<int>{1, 2, 3}));  // spread, not piled on the first
  // Port 2 finishes: it has the least outstanding work now.
  for (auto& t : taken) {
    if (t.instance.port == 2) t.lease.Release();
  }
  EXPECT_EQ(sched_.Outstanding("127.0.0.1:2"), 0);
  EXPECT_EQ(sched_.Assign(kKey, Now()).instance.port, 2);
}

TEST_F(SchedulerTest, TheCapIsNeverExceeded) {
  Queue(5000);
  const std::vector<InstanceRef> instances{Inst("a", 1), Inst("a", 2), Inst("b", 3)};
  sched_.SetCapacity(kKey, Cap(instances, 2, {{"a", 1}, {"b", 2}}));
  std::mt19937 rng(7);
  std::vector<SlotLease> leases;
  int assigned = 0;
  while (sched_.StatsOf(kKey).queued > 0) {
    auto n = sched_.Assign(kKey, Now());
    if (n.kind == Scheduler::Next::kRun) {
      ++assigned;
      leases.push_back(std::move(n.lease));
    }
    for (const auto& i : instances) ASSERT_LE(sched_.Outstanding(InstanceKey(i)), 2);
    ASSERT_LE(leases.size(), 6u);
    if (n.kind == Scheduler::Next::kNothing || rng() % 3 == 0) {
      ASSERT_FALSE(leases.empty());
      leases.erase(leases.begin() + static_cast<long>(rng() % leases.size()));
    }
  }
  EXPECT_EQ(assigned, 5000);
  leases.clear();
  for (const auto& i : instances) EXPECT_EQ(sched_.Outstanding(InstanceKey(i)), 0);
}

TEST_F(SchedulerTest, NoCapacityWaitsThenDrainsInOrder) {
  Queue(5);
  sched_.SetCapacity(kKey, Cap({}, 4));
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);
  clock_.Advance(30s);
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);
  Scheduler::Stats stats = sched_.StatsOf(kKey);
  EXPECT_EQ(stats.queued, 5u);
  EXPECT_EQ(stats.instances, 0);
  EXPECT_EQ(Now() - *stats.oldest_received_ms, 30'000);
  EXPECT_EQ(sched_.KeysWithBacklog(), std::vector<std::string>{kKey});

  sched_.SetCapacity(kKey, Cap({Inst("v", 9)}, 4));
  std::vector<int64_t> order;
  std::vector<SlotLease> leases;
  for (;;) {
    auto n = sched_.Assign(kKey, Now());
    if (n.kind == Scheduler::Next::kNothing) break;
    order.push_back(n.entry.seq);
    leases.push_back(std::move(n.lease));
  }
  EXPECT_EQ(order, (std::vector<int64_t>{1, 2, 3, 4}));  // the cap of 4, in order
  leases.clear();
  EXPECT_EQ(sched_.Assign(kKey, Now()).entry.seq, 5);
}

TEST_F(SchedulerTest, ExpiredEntriesAreSweptWithoutCapacity) {
  sched_.Push(kKey, {1, Now(), 60});
  clock_.Advance(30s);
  sched_.Push(kKey, {2, Now(), 60});
  sched_.Push(kKey, {3, Now(), 600});
  clock_.Advance(30s);  // #1 is exactly 60 s old: not yet expired
  EXPECT_TRUE(sched_.TakeExpired(Now()).empty());
  clock_.Advance(1ms);
  auto expired = sched_.TakeExpired(Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].first, kKey);
  ASSERT_EQ(expired[0].second.size(), 1u);
  EXPECT_EQ(expired[0].second[0].seq, 1);
  clock_.Advance(30s);
  expired = sched_.TakeExpired(Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].second[0].seq, 2);
  EXPECT_EQ(sched_.StatsOf(kKey).queued, 1u);  // #3 has a longer TTL
}

// The sweep runs every second under the lock accepts take: it scans a queue only once the
// earliest expiry among its entries may have passed.
TEST_F(SchedulerTest, TheExpirySweepScansOnlyQueuesWithSomethingDue) {
  for (int i = 1; i <= 1000; ++i) sched_.Push(kKey, {i, Now(), 3600});
  sched_.Push(kKey, {1001, Now(), 60});  // the earliest expiry, pushed last
  const uint64_t before = sched_.expiry_scanned();
  for (int s = 0; s < 30; ++s) {
    clock_.Advance(1s);
    EXPECT_TRUE(sched_.TakeExpired(Now()).empty());
  }
  EXPECT_EQ(sched_.expiry_scanned(), before);  // thirty sweeps, nothing scanned
  clock_.Advance(31s);
  auto expired = sched_.TakeExpired(Now());
  ASSERT_EQ(expired.size(), 1u);
  ASSERT_EQ(expired[0].second.size(), 1u);
  EXPECT_EQ(expired[0].second[0].seq, 1001);
  const uint64_t scanned = sched_.expiry_scanned();
  EXPECT_EQ(scanned - before, 1001u);
  // The scan made the bound exact: nothing more is scanned until the hour is up.
  clock_.Advance(60s);
  EXPECT_TRUE(sched_.TakeExpired(Now()).empty());
  EXPECT_EQ(sched_.expiry_scanned(), scanned);
  clock_.Advance(3600s);
  expired = sched_.TakeExpired(Now());
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].second.size(), 1000u);
  EXPECT_EQ(sched_.StatsOf(kKey).queued, 0u);
}

TEST_F(SchedulerTest, AnExpiredHeadIsHandedOutWithoutASlot) {
  sched_.Push(kKey, {1, Now(), 60});
  sched_.Push(kKey, {2, Now() + 50'000, 60});
  clock_.Advance(61s);
  auto n = sched_.Assign(kKey, Now());  // no capacity at all
  ASSERT_EQ(n.kind, Scheduler::Next::kExpired);
  EXPECT_EQ(n.entry.seq, 1);
  EXPECT_FALSE(n.lease.held());
  EXPECT_EQ(sched_.Assign(kKey, Now()).kind, Scheduler::Next::kNothing);
}

TEST_F(SchedulerTest, CooledDownInstancesGetNoWork) {
  Queue(3);
  sched_.SetCapacity(kKey, Cap({Inst("v", 1), Inst("v", 2)}, 5));
  sched_.CoolDown("127.0.0.1:1", Now() + 1000);
  auto a = sched_.Assign(kKey, Now());
  auto b = sched_.Assign(kKey, Now());
  EXPECT_EQ(a.instance.port, 2);
  EXPECT_EQ(b.instance.port, 2);
  clock_.Advance(1001ms);
  EXPECT_EQ(sched_.Assign(kKey, Now()).instance.port, 1);
}

TEST_F(SchedulerTest, LeasesAreMoveOnlyAndReleaseOnce) {
  int releases = 0;
  sched_.SetOnRelease([&] { ++releases; });
  Queue(1);
  sched_.SetCapacity(kKey, Cap({Inst("v", 1)}, 1));
  {
    SlotLease outer;
    {
      auto n = sched_.Assign(kKey, Now());
      outer = std::move(n.lease);
      EXPECT_FALSE(n.lease.held());
    }
    EXPECT_EQ(releases, 0);
    EXPECT_EQ(sched_.Outstanding("127.0.0.1:1"), 1);
    SlotLease moved(std::move(outer));
    EXPECT_EQ(moved.instance(), "127.0.0.1:1");
  }
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(sched_.Outstanding("127.0.0.1:1"), 0);
}

TEST_F(SchedulerTest, DirectSlotsHonourTheTargetVariantAndTheCap) {
  Capacity cap = Cap({Inst("a", 1), Inst("b", 2)}, 1, {{"a", 1}, {"b", 0}});
  auto b = sched_.AcquireDirect(kKey, cap, "b", Now());  // named: used whatever its weight
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first.variant, "b");
  EXPECT_FALSE(sched_.AcquireDirect(kKey, cap, "b", Now()));  // its only slot is taken
  auto any = sched_.AcquireDirect(kKey, cap, "", Now());
  ASSERT_TRUE(any);
  EXPECT_EQ(any->first.variant, "a");
  EXPECT_FALSE(sched_.AcquireDirect(kKey, cap, "", Now()));
  EXPECT_EQ(sched_.StatsOf(kKey).running, 0);  // not queued work: not backlog
}

size_t RssBytes() { return static_cast<size_t>(store::testing::RssKiB()) * 1024; }

TEST_F(SchedulerTest, AMillionQueuedCostsFewBytesEach) {
  static_assert(sizeof(QueueEntry) <= 24);
  const size_t before = RssBytes();
  constexpr int kCount = 1'000'000;
  for (int i = 1; i <= kCount; ++i) sched_.Push(i % 2 ? kKey : "eu-west-1\nother", {i, i, 600});
  const size_t grown = RssBytes() - before;
  EXPECT_EQ(sched_.TotalQueued(), static_cast<size_t>(kCount));
  EXPECT_LT(grown, 64u * kCount) << "bytes per queued invocation: " << grown / kCount;
  EXPECT_EQ(sched_.Position(kKey, 999'999), 499'999);
}

}  // namespace
}  // namespace inferd::dispatch
