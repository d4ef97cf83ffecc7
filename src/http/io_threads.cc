#include "http/io_threads.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <exception>

#include "common/thread_name.h"

namespace inferd::http {

IoThreads::IoThreads(int threads) {
  const int n = std::max(1, threads);
  contexts_.reserve(n);
  // Concurrency hint 1: each context is run by exactly one thread.
  for (int i = 0; i < n; ++i) contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
}

IoThreads::~IoThreads() { Stop(); }

void IoThreads::Start() {
  if (started_) return;
  started_ = true;
  threads_.reserve(contexts_.size());
  for (auto& context : contexts_) {
    boost::asio::io_context& ioc = *context;
    if (ioc.stopped()) ioc.restart();  // started again after Stop()
    threads_.emplace_back([&ioc] {
      SetThreadName("io");
      // Each thread holds a work guard, so run() returns only when Stop() stops the context,
      // not whenever there happens to be nothing to do.
      auto guard = boost::asio::make_work_guard(ioc);
      for (;;) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {
          // Sessions catch their own exceptions; anything reaching here is a bug, but one bad
          // handler must not take the whole network layer down.
          spdlog::error("Unhandled exception on an I/O thread: {}", e.what());
        }
      }
    });
  }
}

void IoThreads::Stop() {
  if (!started_) return;
  started_ = false;
  for (auto& context : contexts_) context->stop();
  for (auto& t : threads_) {
    if (!t.joinable()) continue;
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();  // Stop() from an I/O thread: it returns from run() once this handler ends
    } else {
      t.join();
    }
  }
  threads_.clear();
}

}  // namespace inferd::http
