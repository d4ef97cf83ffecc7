// DurableLog in-process: each body is in the file when its `done` runs, syncs are paced and
// shared, the ring wraps in place, and a path that cannot be created is an error.
#include "inferd-echo/durable_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/test_support.h"

namespace inferd::echo {
namespace {

std::string Contents(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DurableLogTest, EachBodyIsInTheFileWhenItsDoneRuns) {
  test_support::TempDir dir;
  const auto path = dir.path() / "ring";
  auto log = DurableLog::Open(path.string(), {.ring_bytes = 64 << 10});
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(std::filesystem::file_size(path), 64u << 10);  // zero-filled up front

  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> ok{0}, found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string body = "<" + std::to_string(t) + ":" + std::to_string(i) + ">";
        std::promise<void> answered;
        (*log)->Append(body, [&](Status st) {
          if (st.ok()) ++ok;
          if (Contents(path).find(body) != std::string::npos) ++found;
          answered.set_value();
        });
        answered.get_future().wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(found.load(), kThreads * kEach);
  // Bodies that waited together shared a sync: never more syncs than bodies.
  EXPECT_GE((*log)->syncs(), 1u);
  EXPECT_LE((*log)->syncs(), static_cast<uint64_t>(kThreads * kEach));
}

// As inferd's queue writer: under sustained load a sync waits for the pacer, and the bodies that
// arrive meanwhile share it.
TEST(DurableLogTest, SyncsAreSpacedAndSharedUnderLoad) {
  test_support::TempDir dir;
  auto log = DurableLog::Open(
      (dir.path() / "ring").string(),
      {.ring_bytes = 1 << 16, .interval = std::chrono::milliseconds(200), .burst = 1});
  ASSERT_TRUE(log.ok());
  std::promise<void> first;
  (*log)->Append("first", [&](Status) { first.set_value(); });
  first.get_future().wait();  // a full bucket: synced at once
  const auto start = std::chrono::steady_clock::now();
  constexpr int kBodies = 10;
  std::atomic<int> left{kBodies};
  std::promise<void> all;
  for (int i = 0; i < kBodies; ++i) {
    (*log)->Append("next", [&](Status) {
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().wait();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  EXPECT_EQ((*log)->syncs(), 2u);  // the ten together
}

TEST(DurableLogTest, TheRingWrapsInPlace) {
  test_support::TempDir dir;
  const auto path = dir.path() / "ring";
  auto log = DurableLog::Open(path.string(), {.ring_bytes = 10});
  ASSERT_TRUE(log.ok());
  for (std::string body : {"abcdefgh", "ijklmnop", "qrstuvwxy"}) {
    std::promise<Status> done;
    (*log)->Append(body, [&](Status st) { done.set_value(st); });
    EXPECT_TRUE(done.get_future().get().ok());
  }
  // 25 bytes through a 10-byte ring, the file never longer: "uvwxy" begins the third lap,
  // the second lap's "pqrst" behind it.
  EXPECT_EQ(Contents(path), std::string("uvwxypqrst"));
}

TEST(DurableLogTest, AFileThatCannotBeCreatedIsAnError) {
  auto log = DurableLog::Open("/nonexistent-dir/ring", {.ring_bytes = 10});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.error().message.find("ECHO_DURABLE_FILE /nonexistent-dir/ring"), std::string::npos)
      << log.error().message;
}

}  // namespace
}  // namespace inferd::echo
