// IoThreads: the process's one io_context for network I/O and the threads that run it.
// Components that do network I/O (server, later the HTTP client and dispatch) share it.
// Start() spawns the threads; Stop() stops the context and joins them.
#pragma once

#include <boost/asio/io_context.hpp>

#include <thread>
#include <vector>

namespace inferd::http {

class IoThreads {
 public:
  explicit IoThreads(int threads);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  boost::asio::io_context& context() { return ioc_; }
  void Start();
  void Stop();

 private:
  boost::asio::io_context ioc_;
  int count_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace inferd::http
