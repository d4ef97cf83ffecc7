// Checkpointer: moves WAL checkpoints off the commit path. SQLite's default checkpoints a WAL
// that reached 1000 pages inside the COMMIT that crossed the line: that writer copies every
// page back into the database file and fsyncs it while the transactions queued behind it wait
// (tens of milliseconds under load). A Database hands the work to its Checkpointer instead
// (sqlite3_wal_hook replaces the automatic checkpoint): the commit only signals, and a thread
// with its own connection checkpoints in two steps:
//   1. PASSIVE: copies the frames written so far and fsyncs the database file without blocking
//      anyone — the bulk of the work;
//   2. RESTART: waits (10 ms at most, else it gives up until the next signal) for the writer
//      in progress and for readers to leave the WAL, holding the next writer while it copies
//      the few frames committed during step 1 and fsyncs again, so that the next writer starts
//      the WAL over from its beginning (overwriting frames
//      in place: no file growth, cheaper syncs). Under continuous writes a passive checkpoint
//      alone never lets the WAL start over (it is never fully copied when a writer begins).
//
// Handoff (CheckpointOptions::writer_finishes: the queue's writer, and GroupCommit's leaders): step
// 2 holds the writer for as long as it copies, fsyncs the database file and waits for the lock
// — 3.5 ms at the median, up to 28 ms, once the queue held 450,000 rows, with 6–7 checkpoints a
// second at 10,000 accepts/s, and nine in ten of the slowest 1 % of accepts overlapped one
// (docs/performance-rounds.md, twelfth round). A database whose writes come from one place at a
// time hands step 2 to its writer instead: the writer copies the last frames itself between two
// transactions (Database::FinishCheckpointIfDue, a PASSIVE checkpoint that no commit can overtake),
// without a lock to wait for, and its next transaction starts the WAL over (SQLite does that for a
// writer that finds the WAL fully copied and no reader in it).
//
// States:
//   idle ──Signal(frames ≥ threshold)──► passive ──(no handoff)──► restart ──► idle
//                                               └──(handoff)──► handed_off
//   handed_off ──Signal(frames < threshold: the WAL started over)──► idle
//   handed_off ──Signal(frames ≥ 4 × threshold)──► passive, then restart (the fallback)
// Stop (destruction) from any state ends the thread (the last connection's close checkpoints
// the rest, as SQLite does).
#pragma once

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace inferd::db {

class Checkpointer {
 public:
  // Checkpoints once a commit left `threshold` frames in the WAL (CheckpointOptions::frames).
  // `handoff`, when set (CheckpointOptions::writer_finishes), tells the database's writer that
  // the last step is its own; called on the checkpointer's thread. `vfs`: the one the
  // database's connections use (VfsFor; nullptr: SQLite's default).
  Checkpointer(std::filesystem::path path, std::string label, const char* vfs, int threshold,
               std::function<void()> handoff = {});
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // A commit left `frames` frames in the WAL (called inside the commit: only records and
  // wakes the thread).
  void Signal(int frames);
  // Checkpoints run so far (for tests and logs).
  int runs() const;
  // No checkpoint running, and none due for the WAL size last signalled (tests).
  bool idle() const;

 private:
  void Run();

  const std::filesystem::path path_;
  const std::string label_;
  const char* const vfs_;
  const int threshold_;
  const std::function<void()> handoff_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Whether a checkpoint is due now (mu_ held).
  bool Due() const;

  int frames_ = 0;           // the latest WAL size signalled
  bool handed_off_ = false;  // the writer has the last step and has not restarted the WAL yet
  bool stopping_ = false;
  bool running_ = false;
  int runs_ = 0;
  std::thread thread_;
};

}  // namespace inferd::db
