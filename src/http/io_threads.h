// IoThreads: the process's network I/O threads, each running its own io_context.
//
// One io_context per thread (rather than one shared by all): a connection's handlers, and the
// responses other threads post to it, run on the thread that owns its context, so no I/O thread
// hands work to another (one shared context woke a second thread through a futex for nearly every
// request, measured) and each context's queue lock is uncontended. The server spreads accepted
// connections over the contexts in turn.
// Start() spawns the threads; Stop() stops the contexts and joins them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace inferd::http {

class IoThreads {
 public:
  explicit IoThreads(int threads);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  // The context run by thread `i` (0 ≤ i < size()).
  boost::asio::io_context& context(int i = 0) { return *contexts_[i]; }
  void Start();
  void Stop();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace inferd::http
