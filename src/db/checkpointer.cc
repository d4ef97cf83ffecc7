#include "db/checkpointer.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>

#include "common/thread_name.h"
#include "db/sqlite.h"

namespace inferd::db {

namespace {

// A RESTART checkpoint, tried again a few times while busy (leaving writers room in between).
int Restart(sqlite3* db) {
  int rc = SQLITE_BUSY;
  for (int attempt = 0; attempt < 5 && rc == SQLITE_BUSY; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  }
  return rc;
}

// Handed off: PASSIVE again while a pass took long enough for the writer to commit much
// meanwhile, so that what is left for the writer (the frames committed during the last pass)
// is one or two commits' worth.
constexpr int kCatchUpPasses = 3;
constexpr auto kShortPass = std::chrono::milliseconds(1);

int Passive(sqlite3* db, int passes) {
  int rc = SQLITE_OK;
  for (int pass = 0; pass < passes && rc == SQLITE_OK; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (std::chrono::steady_clock::now() - start < kShortPass) break;
  }
  return rc;
}

}  // namespace

Checkpointer::Checkpointer(std::filesystem::path path, std::string label, const char* vfs,
                           int threshold, std::function<void()> handoff)
    : path_(std::move(path)),
      label_(std::move(label)),
      vfs_(vfs),
      threshold_(threshold),
      handoff_(std::move(handoff)) {
  thread_ = std::thread([this] {
    SetThreadName("checkpoint");
    Run();
  });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

// A WAL that grew to this many times the threshold while handed off: the writer did not get it
// started over (readers in it, or the writer too busy), and the checkpointer RESTARTs it.
constexpr int kHandoffLimit = 4;

void Checkpointer::Signal(int frames) {
  {
    std::lock_guard lock(mu_);
    frames_ = frames;
    if (frames < threshold_) handed_off_ = false;
    if (!Due()) return;
  }
  cv_.notify_one();
}

bool Checkpointer::Due() const {
  return frames_ >= threshold_ && (!handed_off_ || frames_ >= kHandoffLimit * threshold_);
}

int Checkpointer::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

bool Checkpointer::idle() const {
  std::lock_guard lock(mu_);
  return !running_ && !Due();
}

void Checkpointer::Run() {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs_) !=
      SQLITE_OK) {
    spdlog::error(
        "{}: cannot open a connection for checkpoints ({}); the WAL is checkpointed "
        "when inferd stops",
        label_, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return;
  }
  // The RESTART step holds new writers while it waits for the writer in progress and for
  // readers: it gives up (SQLITE_BUSY, tried again at the next signal) after 10 ms rather than
  // stall writers behind a long read. PASSIVE never waits. Polled finely (WaitWhileBusy): it
  // takes the write lock in the gap between two of the writer's commits, not 1–8 ms later.
  WaitWhileBusy(db, 10);
  // Reading the journal mode opens the database in WAL mode (a fresh connection knows nothing of
  // the WAL until it reads, and its checkpoints would do nothing).
  sqlite3_exec(db, "PRAGMA journal_mode", nullptr, nullptr, nullptr);
  // This connection never writes: its own automatic checkpoint would never fire anyway.
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || Due(); });
    if (stopping_) break;
    const bool restart = !handoff_ || handed_off_;  // handed off: the fallback
    frames_ = 0;
    running_ = true;
    lock.unlock();
    // (What PASSIVE reports copied is measured against the WAL as it was when it began: it
    // cannot tell whether the writer committed meanwhile, so a handoff is always made.)
    int rc = Passive(db, restart ? 1 : kCatchUpPasses);
    if (rc == SQLITE_OK && restart) rc = Restart(db);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("{}: checkpoint failed: {}", label_, sqlite3_errmsg(db));
    }
    const bool hand_off = rc == SQLITE_OK && !restart;
    lock.lock();
    // Recorded before the writer hears of it: its next commit may start the WAL over at once,
    // and that Signal must find the state it ends.
    handed_off_ = hand_off;
    ++runs_;
    if (hand_off) {
      lock.unlock();
      handoff_();
      lock.lock();
    }
    running_ = false;
  }
  lock.unlock();
  sqlite3_close(db);
}

}  // namespace inferd::db
