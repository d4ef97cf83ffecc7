// queue_bench: group-commit insert throughput and LoadPending time of InvocationStore.
//
//   queue_bench [DIR] [THREADS...]     (defaults: a temp dir; 16 64 256 inserting threads)
//
// 1. For each THREADS: that many threads insert in a closed loop (each waits for its insert to be
//    durable before the next, like a client waiting for its 202) for 3 s; prints inserts/s and
//    rows per commit.
// 2. Two threads each keep 512 inserts in flight (as I/O threads would) for 3 s.
// 3. Fills the store to QUEUE_BENCH_ROWS (default 1,000,000; 0 skips) Queued rows from one
//    thread, reopens it and times LoadPending.
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "queue/invocation_store.h"

using inferd::Result;
using inferd::queue::Invocation;
using inferd::queue::InvocationStore;
using inferd::queue::PendingRef;
using Clock = std::chrono::steady_clock;

namespace {

Invocation Realistic(int endpoint) {
  Invocation v;
  v.region = "us-east-1";
  v.endpoint = "bench-endpoint-" + std::to_string(endpoint);
  v.inference_id = inferd::NewUuid();
  v.output_id = inferd::NewUuid();
  v.received_ms = 1'700'000'000'000;
  v.input_location = "s3://bench-in/requests/" + v.inference_id + ".json";
  v.content_type = "application/json";
  v.output_location = "s3://bench-out/results/" + v.output_id + ".out";
  v.failure_location = "s3://bench-out/failures/" + v.output_id + "-error.out";
  return v;
}

std::unique_ptr<InvocationStore> OpenOrDie(const std::filesystem::path& path) {
  auto s = InvocationStore::Open({.path = path});
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.error().message.c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

// Runs `insert(store, t, stop, done)` on THREADS threads (t = 0..THREADS-1) for 3 s against a
// fresh store at `path`; each counts its durable inserts in `done` until `stop`. Prints the rate
// and the rows per commit after `label`.
template <typename Inserter>
void Measure(const std::filesystem::path& path, int threads, const std::string& label,
             Inserter insert) {
  std::filesystem::remove(path);
  auto store = OpenOrDie(path);
  std::atomic<bool> stop = false;
  std::atomic<int64_t> done = 0;
  auto before = store->Stats();
  auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { insert(*store, t, stop, done); });
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  stop = true;
  for (auto& w : workers) w.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  auto after = store->Stats();
  std::printf("%s: %8.0f inserts/s, %6.1f rows per commit\n", label.c_str(),
              static_cast<double>(done) / secs,
              static_cast<double>(after.writes - before.writes) /
                  static_cast<double>(std::max<int64_t>(1, after.commits - before.commits)));
}

// `format` (printf, one %d) with `threads`: the label Measure prints.
std::string Label(const char* format, int threads) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, threads);
  return buf;
}

void ClosedLoop(const std::filesystem::path& dir, int threads) {
  Measure(dir / "closed.db", threads, Label("%4d inserting threads", threads),
          [](InvocationStore& store, int t, std::atomic<bool>& stop, std::atomic<int64_t>& done) {
            while (!stop) {
              std::promise<Result<int64_t>> p;
              store.Insert(Realistic(t % 8),
                           [&p](Result<int64_t> r) { p.set_value(std::move(r)); });
              if (!p.get_future().get().ok()) std::abort();
              ++done;
            }
          });
}

// THREADS submitting threads (I/O threads, in the server) each keep up to 512 inserts in flight
// without blocking on any one of them, for 3 s.
void Windowed(const std::filesystem::path& dir, int threads) {
  Measure(dir / "windowed.db", threads, Label("%4d threads x 512 in flight", threads),
          [](InvocationStore& store, int t, std::atomic<bool>& stop, std::atomic<int64_t>& done) {
            std::mutex mu;
            std::condition_variable cv;
            int in_flight = 0;
            while (!stop) {
              {
                std::unique_lock lock(mu);
                cv.wait(lock, [&] { return in_flight < 512; });
                ++in_flight;
              }
              store.Insert(Realistic(t % 8), [&](Result<int64_t> r) {
                if (!r.ok()) std::abort();
                ++done;
                std::lock_guard lock(mu);
                --in_flight;
                if (in_flight == 256 || in_flight == 0) cv.notify_one();
              });
            }
            std::unique_lock lock(mu);  // `mu` and `cv` must outlive the callbacks
            cv.wait(lock, [&] { return in_flight == 0; });
          });
}

void LoadPending(const std::filesystem::path& dir, int64_t rows) {
  auto path = dir / "pending.db";
  std::filesystem::remove(path);
  {
    auto store = OpenOrDie(path);
    std::mutex mu;
    std::condition_variable cv;
    int64_t in_flight = 0;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < rows; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < 8192; });
        ++in_flight;
      }
      store->Insert(Realistic(static_cast<int>(i % 50)), [&](Result<int64_t> r) {
        if (!r.ok()) std::abort();
        std::lock_guard lock(mu);
        if (--in_flight == 4096) cv.notify_one();
      });
    }
    store.reset();  // drains
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("filled %lld rows in %.1f s (%.0f inserts/s, one submitting thread)\n",
                static_cast<long long>(rows), secs, static_cast<double>(rows) / secs);
  }
  auto store = OpenOrDie(path);
  int64_t n = 0, bytes = 0;
  auto t0 = Clock::now();
  auto st = store->LoadPending([&](PendingRef&& p) {
    ++n;
    bytes += static_cast<int64_t>(p.endpoint_key.size());
  });
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!st.ok()) std::abort();
  std::printf("LoadPending: %lld rows in %.2f s\n", static_cast<long long>(n), secs);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir;
  std::vector<int> threads;
  for (int i = 1; i < argc; ++i) {
    if (std::isdigit(static_cast<unsigned char>(argv[i][0]))) {
      threads.push_back(std::atoi(argv[i]));
    } else {
      dir = argv[i];
    }
  }
  bool temp = dir.empty();
  if (temp) {
    dir = std::filesystem::temp_directory_path() / ("queue_bench_" + std::to_string(getpid()));
  }
  std::filesystem::create_directories(dir);
  if (threads.empty()) threads = {16, 64, 256};
  for (int t : threads) ClosedLoop(dir, t);
  Windowed(dir, 2);
  const char* rows = std::getenv("QUEUE_BENCH_ROWS");
  int64_t n = rows ? std::atoll(rows) : 1'000'000;
  if (n > 0) LoadPending(dir, n);
  if (temp) std::filesystem::remove_all(dir);
  return 0;
}
