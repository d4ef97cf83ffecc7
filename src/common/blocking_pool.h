// BlockingPool: a fixed set of threads for blocking work (SQLite, file I/O, fork/exec) so the
// I/O threads never block. Post() is thread-safe; tasks run in FIFO order on any pool thread.
// Stop() finishes the queued tasks and joins the threads; Post() after Stop() is ignored.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace inferd {

class BlockingPool {
 public:
  // Threads are named `name` (see SetThreadName).
  explicit BlockingPool(int threads, std::string name = "pool");
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void Post(std::function<void()> task);
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace inferd
