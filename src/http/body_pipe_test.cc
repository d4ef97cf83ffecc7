// BodyPipe tests: an I/O side on a real io_context thread against a blocking side on another
// thread, moving 100 MB in random chunk sizes; plus the end-of-stream, failure and abandon paths.
#include "http/body_pipe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace inferd::http {
namespace {

namespace asio = boost::asio;

constexpr size_t kTotalBytes = 100 * 1024 * 1024;
constexpr size_t kCapacity = 64 * 1024;
constexpr size_t kMaxChunk = 128 * 1024;  // larger than the capacity on purpose

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void Add(std::string_view data) {
    for (unsigned char c : data) {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
};

// Deterministic pseudo-random bytes (splitmix64).
class Bytes {
 public:
  explicit Bytes(uint64_t seed) : state_(seed) {}
  std::string Next(size_t n) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
      uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      std::memcpy(out.data() + i, &z, std::min<size_t>(8, n - i));
    }
    return out;
  }

 private:
  uint64_t state_;
};

// An io_context on its own thread, like the server's I/O threads.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    thread_.join();
  }
  asio::io_context& ioc() { return ioc_; }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

TEST(BodyPipeTest, BlockingProducerAsyncConsumer) {
  BodyPipe pipe(kCapacity);
  IoThread io;

  // The consumer: AsyncPop, bridged back to the I/O thread like the server does.
  struct Consumer {
    Consumer(BodyPipe& p, asio::io_context& c) : pipe(p), ioc(c) {}
    BodyPipe& pipe;
    asio::io_context& ioc;
    Fnv hash;
    size_t total = 0;
    size_t max_buffered = 0;
    int pops = 0;
    std::promise<Status> done;

    void Next() {
      pipe.AsyncPop([this](Status s, std::string chunk) {
        asio::post(ioc, [this, s = std::move(s), chunk = std::move(chunk)]() mutable {
          ++pops;
          if (!s.ok()) return done.set_value(std::move(s));
          if (chunk.empty()) return done.set_value(OkStatus());
          total += chunk.size();
          hash.Add(chunk);
          max_buffered = std::max(max_buffered, pipe.buffered() + chunk.size());
          Next();
        });
      });
    }
  } consumer(pipe, io.ioc());
  std::future<Status> finished = consumer.done.get_future();
  asio::post(io.ioc(), [&] { consumer.Next(); });

  std::mt19937 rng(1);
  std::uniform_int_distribution<size_t> size(1, kMaxChunk);
  Bytes bytes(7);
  Fnv sent;
  size_t max_buffered = 0;
  for (size_t left = kTotalBytes; left > 0;) {
    std::string chunk = bytes.Next(std::min(left, size(rng)));
    left -= chunk.size();
    sent.Add(chunk);
    ASSERT_TRUE(pipe.Write(chunk).ok());
    max_buffered = std::max(max_buffered, pipe.buffered());
  }
  pipe.Close();

  Status status = finished.get();
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(consumer.total, kTotalBytes);
  EXPECT_EQ(consumer.hash.h, sent.h);
  EXPECT_LE(max_buffered, kCapacity);  // Write splits its data to fit
  EXPECT_LE(consumer.max_buffered, kCapacity + kMaxChunk);
  EXPECT_EQ(pipe.buffered(), 0u);
}

TEST(BodyPipeTest, AsyncProducerBlockingConsumer) {
  BodyPipe pipe(kCapacity);
  IoThread io;

  struct Producer {
    Producer(BodyPipe& p, asio::io_context& c) : pipe(p), ioc(c) {}
    BodyPipe& pipe;
    asio::io_context& ioc;
    std::mt19937 rng{2};
    std::uniform_int_distribution<size_t> size{1, kMaxChunk};
    Bytes bytes{11};
    Fnv hash;
    size_t left = kTotalBytes;
    std::atomic<int> failures{0};

    void Next() {
      if (left == 0) return pipe.Close();
      std::string chunk = bytes.Next(std::min(left, size(rng)));
      left -= chunk.size();
      hash.Add(chunk);
      pipe.AsyncPush(std::move(chunk), [this](Status s) {
        asio::post(ioc, [this, ok = s.ok()] {
          if (!ok) return void(++failures);
          Next();
        });
      });
    }
  } producer(pipe, io.ioc());
  asio::post(io.ioc(), [&] { producer.Next(); });

  std::mt19937 rng(3);
  std::uniform_int_distribution<size_t> size(1, 96 * 1024);
  std::vector<char> buf(96 * 1024);
  Fnv received;
  size_t total = 0;
  size_t max_buffered = 0;
  for (;;) {
    max_buffered = std::max(max_buffered, pipe.buffered());
    Result<size_t> n = pipe.Read(buf.data(), size(rng));
    ASSERT_TRUE(n.ok()) << n.error().message;
    if (*n == 0) break;
    total += *n;
    received.Add(std::string_view(buf.data(), *n));
  }
  EXPECT_EQ(total, kTotalBytes);
  EXPECT_EQ(received.h, producer.hash.h);  // Close() ran after the last hash update
  EXPECT_EQ(producer.failures.load(), 0);
  EXPECT_LE(max_buffered, kCapacity + kMaxChunk);
}

TEST(BodyPipeTest, WriteLargerThanCapacityIsSplit) {
  BodyPipe pipe(10);
  const std::string data = Bytes(5).Next(1000);
  std::thread writer([&] {
    EXPECT_TRUE(pipe.Write(data).ok());
    pipe.Close();
  });
  std::string got;
  char buf[64];
  for (;;) {
    EXPECT_LE(pipe.buffered(), 10u);
    Result<size_t> n = pipe.Read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  writer.join();
  EXPECT_EQ(got, data);
}

TEST(BodyPipeTest, CloseAfterDataThenEnd) {
  BodyPipe pipe(1024);
  ASSERT_TRUE(pipe.Write("hello").ok());
  pipe.Close();
  pipe.Close();  // idempotent
  char buf[3];
  ASSERT_EQ(*pipe.Read(buf, 3), 3u);
  EXPECT_EQ(std::string(buf, 3), "hel");
  std::string rest = "unset";
  pipe.AsyncPop([&](Status s, std::string chunk) {
    EXPECT_TRUE(s.ok());
    rest = std::move(chunk);
  });
  EXPECT_EQ(rest, "lo");  // the unread rest of the chunk
  EXPECT_EQ(*pipe.Read(buf, 3), 0u);
  EXPECT_EQ(*pipe.Read(buf, 3), 0u);
  int ends = 0;
  pipe.AsyncPop([&](Status s, std::string chunk) {
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(chunk.empty());
    ++ends;
  });
  EXPECT_EQ(ends, 1);
  Status late = pipe.Write("x");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::kInvalidState);
}

TEST(BodyPipeTest, PendingPopCompletesOnClose) {
  BodyPipe pipe(1024);
  int calls = 0;
  pipe.AsyncPop([&](Status s, std::string chunk) {
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(chunk.empty());
    ++calls;
  });
  EXPECT_EQ(calls, 0);
  pipe.Close();
  EXPECT_EQ(calls, 1);
}

TEST(BodyPipeTest, CloseDoesNotOvertakePendingPush) {
  BodyPipe pipe(4);
  int first = 0, second = 0;
  pipe.AsyncPush("abcd", [&](Status s) { first += s.ok() ? 1 : 100; });
  pipe.AsyncPush("efgh", [&](Status s) { second += s.ok() ? 1 : 100; });
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);  // the pipe is full
  pipe.Close();
  char buf[16];
  ASSERT_EQ(*pipe.Read(buf, sizeof buf), 4u);
  EXPECT_EQ(std::string(buf, 4), "abcd");
  EXPECT_EQ(second, 1);  // taken once room was made
  ASSERT_EQ(*pipe.Read(buf, sizeof buf), 4u);
  EXPECT_EQ(std::string(buf, 4), "efgh");
  EXPECT_EQ(*pipe.Read(buf, sizeof buf), 0u);
}

TEST(BodyPipeTest, CallbacksMayReenterThePipe) {
  // A pop callback that pops again inline, and a push callback that pushes again: would deadlock
  // if callbacks ran under the lock.
  BodyPipe pipe(8);
  std::string got;
  std::function<void(Status, std::string)> on_pop = [&](Status s, std::string chunk) {
    ASSERT_TRUE(s.ok());
    if (chunk.empty()) return;
    got += chunk;
    pipe.AsyncPop(on_pop);
  };
  pipe.AsyncPop(on_pop);
  int pushes = 0;
  std::function<void(Status)> on_push = [&](Status s) {
    ASSERT_TRUE(s.ok());
    if (++pushes < 5) {
      pipe.AsyncPush(std::string(3, static_cast<char>('a' + pushes)), on_push);
    } else {
      pipe.Close();
    }
  };
  pipe.AsyncPush("aaa", on_push);
  EXPECT_EQ(got, "aaabbbcccdddeee");
}

TEST(BodyPipeTest, AbandonWakesBlockedWriter) {
  BodyPipe pipe(16);
  std::promise<Status> result;
  std::thread writer([&] { result.set_value(pipe.Write(std::string(64, 'x'))); });
  char buf[4];
  ASSERT_EQ(*pipe.Read(buf, 4), 4u);  // the writer is running (and, soon, blocked: 64 > 16)
  pipe.Abandon();
  Status s = result.get_future().get();
  writer.join();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kUnavailable);
  EXPECT_EQ(pipe.buffered(), 0u);

  Status again = pipe.Write("more");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kUnavailable);
  int calls = 0;
  pipe.AsyncPush("more", [&](Status st) {
    EXPECT_EQ(st.error().code, Errc::kUnavailable);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(pipe.Read(buf, 4).error().code, Errc::kUnavailable);
}

TEST(BodyPipeTest, AbandonFailsPendingPushAndPop) {
  BodyPipe pipe(16);
  int ok = 0, failed = 0;
  auto count = [&](Status s) { s.ok() ? ++ok : ++failed; };
  pipe.AsyncPush(std::string(16, 'a'), count);
  pipe.AsyncPush(std::string(8, 'b'), count);
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(failed, 0);
  pipe.Abandon();
  EXPECT_EQ(failed, 1);
  pipe.Abandon();  // idempotent: nothing runs twice
  EXPECT_EQ(ok + failed, 2);

  BodyPipe pipe2(16);
  int pops = 0;
  pipe2.AsyncPop([&](Status s, std::string chunk) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, Errc::kUnavailable);
    ++pops;
  });
  pipe2.Abandon();
  EXPECT_EQ(pops, 1);
}

TEST(BodyPipeTest, FailReachesConsumerAtOnce) {
  BodyPipe pipe(1024);
  ASSERT_TRUE(pipe.Write("abc").ok());
  pipe.Fail(Error(Errc::kUnavailable, "The client went away."));
  pipe.Close();  // ignored: the failure stands
  char buf[8];
  Result<size_t> r = pipe.Read(buf, sizeof buf);
  ASSERT_FALSE(r.ok());  // buffered bytes are discarded
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_EQ(r.error().message, "The client went away.");
  EXPECT_EQ(pipe.buffered(), 0u);
  std::string message;
  pipe.AsyncPop([&](Status s, std::string) { message = s.ok() ? "ok" : s.error().message; });
  EXPECT_EQ(message, "The client went away.");
  EXPECT_EQ(pipe.Write("x").error().code, Errc::kInvalidState);
}

TEST(BodyPipeTest, FailWakesBlockedReaderAndPendingPop) {
  BodyPipe pipe(1024);
  std::promise<Result<size_t>> result;
  std::thread reader([&] {
    char buf[8];
    result.set_value(pipe.Read(buf, sizeof buf));
  });
  pipe.Fail(Error(Errc::kModelError, "boom"));
  Result<size_t> r = result.get_future().get();
  reader.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kModelError);

  BodyPipe pipe2(4);
  int push_calls = 0, pop_calls = 0;
  pipe2.AsyncPush("abcd", [&](Status) { ++push_calls; });
  pipe2.AsyncPush("efgh", [&](Status s) {
    EXPECT_EQ(s.error().message, "boom");
    ++push_calls;
  });
  pipe2.Fail(Error(Errc::kModelError, "boom"));
  EXPECT_EQ(push_calls, 2);
  pipe2.AsyncPop([&](Status s, std::string chunk) {
    EXPECT_EQ(s.error().code, Errc::kModelError);
    EXPECT_TRUE(chunk.empty());
    ++pop_calls;
  });
  EXPECT_EQ(pop_calls, 1);
}

}  // namespace
}  // namespace inferd::http
