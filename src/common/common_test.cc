#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "common/base64.h"
#include "common/blocking_pool.h"
#include "common/clock.h"
#include "common/futex_word.h"
#include "common/ids.h"
#include "common/process_load.h"
#include "common/result.h"
#include "common/strings.h"
#include "common/thread_name.h"

namespace inferd {
namespace {

TEST(Ids, UuidIsVersion4AndUnique) {
  std::set<std::string> seen;
  std::regex re("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 1000; ++i) {
    auto id = NewUuid();
    EXPECT_TRUE(std::regex_match(id, re)) << id;
    EXPECT_TRUE(seen.insert(id).second);
  }
}

TEST(Ids, TimeOrderedUuidIsVersion7UniqueAndSortsByTime) {
  std::regex re("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string first = NewTimeOrderedUuid();
  for (int i = 0; i < 1000; ++i) {
    auto id = NewTimeOrderedUuid();
    EXPECT_TRUE(std::regex_match(id, re)) << id;
    EXPECT_TRUE(seen.insert(id).second);
  }
  // The first 48 bits are the time in milliseconds.
  const std::string hex = first.substr(0, 8) + first.substr(9, 4);
  const int64_t ms = std::stoll(hex, nullptr, 16);
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, before + 5000);
  // Made in a later millisecond: sorts after.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_LT(first, NewTimeOrderedUuid());
}

TEST(Result, CarriesValueOrError) {
  Result<int> ok = 3;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  Result<int> bad = Error(Errc::kNotFound, "nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kNotFound);
  EXPECT_EQ(bad.error().message, "nope");
}

TEST(Clock, FormatsIso8601WithMillis) {
  auto t = FromEpochSeconds(1643150760.608);
  EXPECT_EQ(FormatIso8601Millis(t), "2022-01-25T22:46:00.608Z");
}

TEST(Clock, FakeClockAdvances) {
  FakeClock clock(FromEpochSeconds(100));
  auto m0 = clock.Monotonic();
  clock.Advance(std::chrono::seconds(5));
  EXPECT_DOUBLE_EQ(ToEpochSeconds(clock.Now()), 105.0);
  EXPECT_EQ(clock.Monotonic() - m0, std::chrono::seconds(5));
}

TEST(BlockingPool, RunsEveryPostedTaskBeforeStop) {
  std::atomic<int> n{0};
  {
    BlockingPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Post([&] { n++; });
    pool.Stop();
  }
  EXPECT_EQ(n.load(), 100);
}

TEST(Base64, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode("Zm9vYg==").value(), "foob");
  EXPECT_EQ(Base64Decode("Zm8=").value(), "fo");
  EXPECT_FALSE(Base64Decode("Zm8").has_value());
  EXPECT_FALSE(Base64Decode("Z=8=").has_value());
  EXPECT_FALSE(Base64Decode("Zm!=").has_value());
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(Base64Decode(Base64Encode(bytes)).value(), bytes);
}

TEST(Strings, LowerTrimHex) {
  EXPECT_EQ(AsciiLower("AbC-Ä"), "abc-Ä");
  EXPECT_EQ(TrimSpaces(" \t a b \t"), "a b");
  EXPECT_EQ(TrimSpaces("   "), "");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  char into[6];
  HexEncodeTo(std::string_view("\xab\x01\x9f", 3), into);
  EXPECT_EQ(std::string_view(into, sizeof into), "ab019f");
}

TEST(ThreadName, NamesTheCallingThreadCutTo15Characters) {
  std::string seen;
  std::thread t([&] {
    SetThreadName("a-rather-long-thread-name");
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    seen = buf;
  });
  t.join();
  EXPECT_EQ(seen, "a-rather-long-t");
}

TEST(ThreadName, BlockingPoolThreadsCarryThePoolsName) {
  BlockingPool pool(1, "my-pool");
  std::promise<std::string> name;
  pool.Post([&] {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    name.set_value(buf);
  });
  EXPECT_EQ(name.get_future().get(), "my-pool");
}

TEST(ProcessLoad, TellsASpinningProcessFromAnIdleOne) {
  using namespace std::chrono_literals;
  ProcessLoad load(40ms);
  EXPECT_TRUE(load.Below(0.5));  // nothing measured yet
  // Busy: this thread spins through more than one interval, then a sample is taken.
  auto spin = [](std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    volatile uint64_t x = 0;
    while (std::chrono::steady_clock::now() < end) x = x + 1;
  };
  spin(60ms);
  EXPECT_FALSE(load.Below(0.2));  // ≈ 1 core, less if the machine is shared
  EXPECT_TRUE(load.Below(100.0));
  // Idle for more than an interval: the next sample says so.
  std::this_thread::sleep_for(120ms);
  EXPECT_TRUE(load.Below(0.2));
  // Within an interval the last sample stands, whatever happens meanwhile.
  spin(10ms);
  EXPECT_TRUE(load.Below(0.5));
}

// A sleeper wakes with the value that was set, not before it.
TEST(FutexWord, SleeperWakesWithTheValueSet) {
  FutexWord word(0);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    EXPECT_EQ(word.WaitWhile(0), 7u);
    woke = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(woke.load());
  word.Set(7);
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(word.WaitWhile(0), 7u);  // already changed: returns at once
}

// The pattern GroupCommit relies on: each sleeper's word lives on its own stack and is gone as
// soon as it sees the value, while its waker may still be in Set. Many rounds, every sleeper
// wakes exactly once with its own value.
TEST(FutexWord, WordsOnSleepersStacksMayGoAwayRightAfterSet) {
  constexpr int kSleepers = 8, kRounds = 500;
  std::atomic<FutexWord*> slots[kSleepers] = {};
  std::atomic<int> woken{0};
  std::vector<std::thread> sleepers;
  for (int i = 0; i < kSleepers; ++i) {
    sleepers.emplace_back([&, i] {
      for (int r = 1; r <= kRounds; ++r) {
        FutexWord mine(0);
        slots[i].store(&mine);
        EXPECT_EQ(mine.WaitWhile(0), static_cast<uint32_t>(r));
        ++woken;
      }
    });
  }
  for (int r = 1; r <= kRounds; ++r) {
    for (int i = 0; i < kSleepers; ++i) {
      FutexWord* w;
      while ((w = slots[i].exchange(nullptr)) == nullptr) std::this_thread::yield();
      w->Set(static_cast<uint32_t>(r));
    }
  }
  for (auto& t : sleepers) t.join();
  EXPECT_EQ(woken.load(), kSleepers * kRounds);
}

}  // namespace
}  // namespace inferd
