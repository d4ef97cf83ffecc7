// Crash durability: a child process inserts as fast as it can and reports every insert whose
// callback ran (= committed) through a pipe; the parent SIGKILLs it at a random moment and
// checks that every reported insert survived, whole.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>

#include "db/sqlite.h"
#include "queue/invocation_store.h"
#include "queue/testing.h"

namespace inferd::queue {
namespace {

struct Report {
  int64_t i;    // Sample(i) was inserted
  int64_t seq;  // with this seq
};

// The child: never returns.
[[noreturn]] void InsertUntilKilled(const std::filesystem::path& db, int fd, int64_t first) {
  auto opened = InvocationStore::Open({.path = db});
  if (!opened.ok()) _exit(2);
  auto store = std::move(opened).value();
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  for (int64_t i = first;; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < 256; });
      ++in_flight;
    }
    store->Insert(testing::Sample(i), [&, i](Result<int64_t> r) {
      if (!r.ok()) _exit(3);
      Report rep{i, *r};
      // ≤ PIPE_BUF bytes: written whole.
      if (write(fd, &rep, sizeof rep) != sizeof rep) _exit(4);
      {
        std::lock_guard lock(mu);
        --in_flight;
      }
      cv.notify_one();
    });
  }
}

// Reads whole reports from `fd` until `deadline` (or EOF when deadline is max).
void ReadReports(int fd, std::string& carry, std::vector<Report>& out,
                 std::chrono::steady_clock::time_point deadline) {
  char buf[1 << 16];
  for (;;) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (deadline != std::chrono::steady_clock::time_point::max() && left.count() <= 0) return;
    int timeout_ms =
        deadline == std::chrono::steady_clock::time_point::max()
            ? -1
            : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count() +
                               1);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) == 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF: every writer is gone
    carry.append(buf, static_cast<size_t>(n));
    size_t whole = carry.size() / sizeof(Report);
    for (size_t k = 0; k < whole; ++k) {
      Report r;
      std::memcpy(&r, carry.data() + k * sizeof(Report), sizeof r);
      out.push_back(r);
    }
    carry.erase(0, whole * sizeof(Report));
  }
}

TEST(InvocationStoreDurabilityTest, EveryReportedInsertSurvivesSigkill) {
  testing::TempDir dir;
  const auto db_path = dir.path() / "queue.db";
  std::random_device rd;
  unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  int64_t last_seq = 0;
  size_t total_reported = 0;

  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const int64_t first = (round + 1) * 1'000'000;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      InsertUntilKilled(db_path, fds[1], first);
    }
    close(fds[1]);

    std::vector<Report> reports;
    std::string carry;
    // Wait for the first durable insert (the child is up and writing), then kill it at a random
    // moment of its run.
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (reports.empty() && std::chrono::steady_clock::now() < give_up) {
      ReadReports(fds[0], carry, reports,
                  std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
    }
    auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng));
    ReadReports(fds[0], carry, reports, std::chrono::steady_clock::now() + delay);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ReadReports(fds[0], carry, reports, std::chrono::steady_clock::time_point::max());
    close(fds[0]);
    ASSERT_FALSE(reports.empty());
    total_reported += reports.size();

    {
      // The file is a consistent database.
      auto db = db::Database::Open(db_path, "check", nullptr);
      ASSERT_TRUE(db.ok()) << db.error().message;
      db::Stmt check(**db, "PRAGMA integrity_check");
      ASSERT_EQ(check.Step(), db::Stmt::kRow);
      EXPECT_EQ(check.Text(0), "ok");
    }
    auto opened = InvocationStore::Open({.path = db_path});
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto store = std::move(opened).value();
    int64_t prev_i = first - 1;
    for (const Report& r : reports) {
      ASSERT_GT(r.seq, last_seq) << "seqs must strictly increase";
      ASSERT_GT(r.i, prev_i);
      last_seq = r.seq;
      prev_i = r.i;
      auto got = store->GetBySeq(r.seq);
      ASSERT_TRUE(got.ok()) << got.error().message;
      ASSERT_TRUE(got->has_value()) << "reported durable but lost: seq " << r.seq;
      Invocation v = **got;
      EXPECT_EQ(v.state, InvocationState::kQueued);
      testing::ExpectSameRecord(testing::Sample(r.i), v);
      if (::testing::Test::HasFailure()) return;
    }
    // Rows committed but not yet reported may exist too; later rounds' seqs start above them.
    int64_t stored_max = 0;
    auto st = store->LoadPending([&](PendingRef&& p) { stored_max = std::max(stored_max, p.seq); });
    ASSERT_TRUE(st.ok());
    EXPECT_GE(stored_max, last_seq);
    last_seq = stored_max;
  }
  RecordProperty("reported_inserts", static_cast<int>(total_reported));
}

}  // namespace
}  // namespace inferd::queue
