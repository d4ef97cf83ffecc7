// Server tests over real loopback sockets: a tiny blocking-style client (Beast, with every read
// bounded by a timeout so a broken server fails the test instead of hanging it).
#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/blocking_pool.h"
#include "http/body_pipe.h"
#include "http/io_threads.h"

namespace inferd::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using ClientResponse = bhttp::response<bhttp::string_body>;

// Echoes the request; a few paths behave differently:
//   /later  — answers from a pool thread after 50 ms;
//   /hold   — keeps the responder until the test calls Release();
//   /head   — declares Content-Length 1234 (for HEAD);
//   /stream-in  — streams the request body; answers with its size and a checksum;
//   /early      — streams the request body but answers 400 at once without reading it;
//   /stream-out?N, /stream-fail?N — streams an N-byte response body (failing half-way).
class TestHandler : public Handler {
 public:
  bool StreamBody(const Request& head) override {
    return head.path == "/stream-in" || head.path == "/early";
  }

  void Handle(Request req, Responder respond) override {
    {
      std::lock_guard lock(mu_);
      seen_ids_.push_back(req.request_id);
      last_ = req;
      threads_.push_back(std::this_thread::get_id());
    }
    Response r;
    r.operation = "Test.Echo";
    r.headers.Add("X-Method", req.method);
    r.headers.Add("X-Path", req.path);
    r.headers.Add("X-Query", req.query);
    r.headers.Add("X-Remote", req.remote);
    r.body = req.body;
    if (req.path == "/later") {
      pool_.Post([respond, r] {
        std::this_thread::sleep_for(50ms);  // simulated work, not synchronisation
        respond(r);
      });
      return;
    }
    if (req.path == "/hold") {
      std::lock_guard lock(mu_);
      held_ = respond;
      held_promise_.set_value();
      return;
    }
    if (req.path == "/hold-many") {
      std::lock_guard lock(mu_);
      held_many_.push_back({respond, req.body});
      held_cv_.notify_all();
      return;
    }
    if (req.path == "/stream-in") {
      pool_.Post([respond, pipe = req.body_stream] {
        std::string buf(10000, '\0');
        uint64_t total = 0, sum = 0;
        for (;;) {
          Result<size_t> n = pipe->Read(buf.data(), buf.size());
          if (!n.ok()) {
            Response r;
            r.status = 500;
            r.body = n.error().message;
            respond(std::move(r));
            return;
          }
          if (*n == 0) break;
          for (size_t i = 0; i < *n; ++i) sum += static_cast<unsigned char>(buf[i]);
          total += *n;
        }
        Response r;
        r.body = std::to_string(total) + ":" + std::to_string(sum);
        respond(std::move(r));
      });
      return;
    }
    if (req.path == "/early") {
      Response r;
      r.status = 400;
      r.body = "rejected early";
      respond(std::move(r));
      return;
    }
    if (req.path == "/stream-out" || req.path == "/stream-fail") {
      const size_t n = std::stoul(req.query);
      auto pipe = std::make_shared<BodyPipe>(4096);
      r.body.clear();
      r.body_stream = pipe;
      r.headers.Add("Content-Length", std::to_string(n));
      respond(std::move(r));
      pool_.Post([pipe, n, fail = req.path == "/stream-fail"] {
        for (size_t sent = 0; sent < n;) {
          if (fail && sent >= n / 2) {
            pipe->Fail(Error(Errc::kInternal, "disk on fire"));
            return;
          }
          const size_t k = std::min<size_t>(1000, n - sent);
          std::string chunk(k, static_cast<char>('a' + (sent / 1000) % 26));
          if (!pipe->Write(chunk).ok()) return;
          sent += k;
        }
        pipe->Close();
      });
      return;
    }
    if (req.path == "/own-id") r.headers.Add("x-amzn-RequestId", "handler-chosen");
    if (req.path == "/head") r.headers.Add("Content-Length", "1234");
    respond(std::move(r));
  }

  Response ErrorResponse(const Request& req, const Error& error) override {
    Response r;
    r.status = error.code == Errc::kPayloadTooLarge ? 413
               : error.code == Errc::kValidation    ? 400
                                                    : 500;
    r.body = std::string(ErrcName(error.code)) + ": " + error.message;
    r.operation = "Test.Error";
    std::lock_guard lock(mu_);
    errors_.push_back(error);
    return r;
  }

  // Resolves once a /hold request reached the handler.
  std::future<void> HoldArrived() { return held_promise_.get_future(); }
  void Release(std::string body) {
    Responder r;
    {
      std::lock_guard lock(mu_);
      r = std::move(held_);
    }
    Response resp;
    resp.body = std::move(body);
    r(std::move(resp));
  }
  // Waits until `n` /hold-many requests are held, then hands their responders (and bodies) over.
  std::vector<std::pair<Responder, std::string>> TakeHeld(size_t n) {
    std::unique_lock lock(mu_);
    held_cv_.wait_for(lock, 10s, [&] { return held_many_.size() >= n; });
    return std::exchange(held_many_, {});
  }
  std::vector<Error> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }
  // The thread each request's Handle ran on, in arrival order.
  std::vector<std::thread::id> threads() {
    std::lock_guard lock(mu_);
    return threads_;
  }
  std::vector<std::string> seen_ids() {
    std::lock_guard lock(mu_);
    return seen_ids_;
  }
  Request last() {
    std::lock_guard lock(mu_);
    return last_;
  }
  void StopPool() { pool_.Stop(); }

 private:
  std::mutex mu_;
  std::vector<Error> errors_;
  std::vector<std::string> seen_ids_;
  std::vector<std::thread::id> threads_;
  Request last_;
  Responder held_;
  std::promise<void> held_promise_;
  std::condition_variable held_cv_;
  std::vector<std::pair<Responder, std::string>> held_many_;
  BlockingPool pool_{2};
};

// A synchronous-looking client whose reads give up after a timeout.
class Client {
 public:
  explicit Client(uint16_t port, const char* ip = "127.0.0.1") : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address(ip), port));
  }

  void Send(std::string_view raw) { asio::write(socket_, asio::buffer(raw)); }

  // Reads one response; nullopt on EOF, error or timeout.
  std::optional<ClientResponse> Read(bool head = false, std::chrono::seconds timeout = 10s) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(head);
    parser.body_limit(boost::none);
    beast::error_code ec =
        Run(timeout, [&](auto done) { bhttp::async_read(socket_, buffer_, parser, done); });
    if (ec) return std::nullopt;
    return parser.release();
  }

  // Reads raw bytes up to and including "\r\n\r\n" (e.g. an interim 100 Continue).
  std::string ReadHeaderBlock() {
    std::string out;
    beast::error_code ec = Run(10s, [&](auto done) {
      asio::async_read_until(socket_, asio::dynamic_buffer(raw_), "\r\n\r\n", done);
    });
    if (ec) return "";
    size_t end = raw_.find("\r\n\r\n") + 4;
    out = raw_.substr(0, end);
    raw_.erase(0, end);
    return out;
  }

  // True if the server closed the connection (EOF or reset) within the timeout, with no data.
  bool ReadsEof(std::chrono::seconds timeout = 10s) {
    if (buffer_.size() > 0 || !raw_.empty()) return false;
    char byte;
    size_t got = 0;
    beast::error_code ec = Run(timeout, [&](auto done) {
      socket_.async_read_some(asio::buffer(&byte, 1), [&, done](beast::error_code e, size_t n) {
        got = n;
        done(e, n);
      });
    });
    return got == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
  }

  ClientResponse RoundTrip(std::string method, std::string target, std::string body = "") {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "localhost");
    req.body() = std::move(body);
    req.prepare_payload();
    bhttp::write(socket_, req);
    auto res = Read(method == "HEAD");
    EXPECT_TRUE(res.has_value()) << method << " " << target;
    return res.value_or(ClientResponse{});
  }

  void Close() {
    beast::error_code ec;
    socket_.close(ec);
  }

 private:
  // Runs one async operation on the private context, closing the socket if it takes too long.
  template <typename Start>
  beast::error_code Run(std::chrono::seconds timeout, Start start) {
    std::optional<beast::error_code> result;
    start([&](beast::error_code ec, size_t) { result = ec; });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!result) {
      ADD_FAILURE() << "client read timed out";
      beast::error_code ignored;
      socket_.cancel(ignored);
      ioc_.restart();
      ioc_.run();
    }
    return result.value_or(asio::error::timed_out);
  }

  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string raw_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { io_.Start(); }
  void TearDown() override {
    if (server_) server_->Stop(2000ms);
    server_.reset();
    handler_.StopPool();
    io_.Stop();
  }

  void StartServer(ServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<Server>(options, io_, handler_);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.error().message;
    ASSERT_NE(server_->port(), 0);
  }

  IoThreads io_{2};
  TestHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, EchoRoundTrip) {
  StartServer();
  Client c(server_->port());
  ClientResponse res = c.RoundTrip("POST", "/a/b%20c?x=1&y=2", "hello");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello");
  EXPECT_EQ(res["X-Method"], "POST");
  EXPECT_EQ(res["X-Path"], "/a/b%20c");
  EXPECT_EQ(res["X-Query"], "x=1&y=2");
  EXPECT_EQ(res["Content-Length"], "5");
  EXPECT_EQ(res["Server"], "inferd");
  EXPECT_TRUE(res["Date"].ends_with(" GMT"));
  EXPECT_TRUE(res["X-Remote"].starts_with("127.0.0.1:"));
  EXPECT_TRUE(res.keep_alive());

  Request seen = handler_.last();
  EXPECT_EQ(seen.target, "/a/b%20c?x=1&y=2");
  ASSERT_FALSE(seen.headers.all().empty());
  EXPECT_EQ(seen.headers.all()[0].name, "Host");  // order and case as sent
  EXPECT_EQ(seen.headers.Get("content-length"), "5");
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client c(server_->port());
  for (int i = 0; i < 5; ++i) {
    ClientResponse res = c.RoundTrip("PUT", "/k", "body" + std::to_string(i));
    EXPECT_EQ(res.body(), "body" + std::to_string(i));
  }
  EXPECT_EQ(handler_.seen_ids().size(), 5u);
}

TEST_F(ServerTest, EachConnectionStaysOnOneIoThreadAndConnectionsTakeTurns) {
  StartServer();
  Client a(server_->port());
  Client b(server_->port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.RoundTrip("POST", "/a", "x").result_int(), 200);
    EXPECT_EQ(b.RoundTrip("POST", "/b", "y").result_int(), 200);
  }
  std::vector<std::thread::id> t = handler_.threads();
  ASSERT_EQ(t.size(), 6u);
  for (int i = 2; i < 6; ++i) EXPECT_EQ(t[i], t[i % 2]) << "request " << i;
  EXPECT_NE(t[0], t[1]);  // two I/O threads: consecutive connections go to different ones
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  Client c(server_->port());
  std::string all;
  for (std::string path : {"/later", "/second", "/third"}) {  // the first one answers slowest
    all += "POST " + path +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(path.size()) + "\r\n\r\n" +
           path;
  }
  c.Send(all);
  for (std::string path : {"/later", "/second", "/third"}) {
    auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body(), path);
  }
}

TEST_F(ServerTest, PipelinedChunkedAndSplitRequestsAreParsedWhole) {
  // Requests already in the server's buffer are parsed without a read; a chunked body, a body
  // split from its header and a header split mid-line still come out whole and in order.
  StartServer();
  Client c(server_->port());
  c.Send(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfg");
  std::this_thread::sleep_for(50ms);  // the rest of /b's body in a later segment
  c.Send(
      "hij"
      "GET /c HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(50ms);
  c.Send("st: x\r\n\r\n");
  for (auto [path, body] : {std::pair{"/a", "abcde"}, {"/b", "fghij"}, {"/c", ""}}) {
    auto res = c.Read();
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->result_int(), 200);
    EXPECT_EQ((*res)["X-Path"], path);
    EXPECT_EQ(res->body(), body);
  }
}

TEST_F(ServerTest, ResponseLargerThanTheSocketBufferIsWrittenWhole) {
  // The server writes what the socket takes directly and the rest asynchronously: a 6 MiB echo to
  // a client that does not read for a while fills the socket buffers first.
  StartServer();
  Client c(server_->port());
  std::string body(6 * 1024 * 1024, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body);
  std::this_thread::sleep_for(200ms);
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body().size(), body.size());
  EXPECT_TRUE(res->body() == body);
  EXPECT_EQ(c.RoundTrip("GET", "/after").result_int(), 200);  // the connection is still in step
}

TEST_F(ServerTest, HandlerMayRespondFromAnotherThread) {
  StartServer();
  Client c(server_->port());
  ClientResponse res = c.RoundTrip("POST", "/later", "late");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "late");
  EXPECT_EQ(c.RoundTrip("GET", "/again").result_int(), 200);
}

TEST_F(ServerTest, BodyOverLimitGetsHandlersErrorAndCloses) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  StartServer(o);
  Client c(server_->port());
  c.Send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + std::string(4096, 'a'));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_NE(res->body().find("1024 bytes"), std::string::npos) << res->body();
  EXPECT_TRUE(c.ReadsEof());
  ASSERT_EQ(handler_.errors().size(), 1u);
  EXPECT_EQ(handler_.errors()[0].code, Errc::kPayloadTooLarge);
  EXPECT_TRUE(handler_.seen_ids().empty());  // Handle() was never called
}

TEST_F(ServerTest, ChunkedBodyOverLimitIsRejected) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  StartServer(o);
  Client c(server_->port());
  c.Send("POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
         std::string(0x800, 'a') + "\r\n0\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(ServerTest, HeaderOverLimitIsRejected) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  StartServer(o);
  Client c(server_->port());
  c.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'h') + "\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400);
  EXPECT_TRUE(c.ReadsEof());
  ASSERT_EQ(handler_.errors().size(), 1u);
  EXPECT_EQ(handler_.errors()[0].code, Errc::kValidation);
}

TEST_F(ServerTest, MalformedRequestGets400AndCloses) {
  StartServer();
  Client c(server_->port());
  c.Send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(ServerTest, Expect100ContinueGetsInterimResponse) {
  StartServer();
  Client c(server_->port());
  c.Send("PUT /obj HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(c.ReadHeaderBlock(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("data");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "data");
}

TEST_F(ServerTest, Expect100ContinueWithTooLargeBodyIsRefusedUpFront) {
  ServerOptions o;
  o.max_body_bytes = 10;
  StartServer(o);
  Client c(server_->port());
  c.Send("PUT /obj HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
  auto res = c.Read();  // the final status, not 100 Continue
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413);
}

TEST_F(ServerTest, IdleTimeoutClosesConnection) {
  ServerOptions o;
  o.idle_timeout = 1s;
  StartServer(o);
  Client c(server_->port());
  EXPECT_EQ(c.RoundTrip("GET", "/").result_int(), 200);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ReadsEof(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ServerTest, RequestTimeoutClosesAStalledRequest) {
  ServerOptions o;
  o.request_timeout = 1s;  // idle_timeout stays 60 s: the deadline moves earlier mid-connection
  StartServer(o);
  Client c(server_->port());
  EXPECT_EQ(c.RoundTrip("GET", "/").result_int(), 200);
  c.Send("GET / HTTP/1.1\r\nHost: x\r\n");  // the header never ends
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ReadsEof(10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ServerTest, HandlerMayTakeLongerThanTheRequestTimeout) {
  // The timeouts bound the peer's reads and writes, not the handler's work (a model call).
  ServerOptions o;
  o.request_timeout = 1s;
  o.idle_timeout = 1s;
  StartServer(o);
  Client c(server_->port());
  auto arrived = handler_.HoldArrived();
  c.Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(arrived.wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(2500ms);  // past both timeouts while the handler works
  handler_.Release("late but whole");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "late but whole");
  // Then the idle timeout applies again.
  EXPECT_TRUE(c.ReadsEof(10s));
}

TEST_F(ServerTest, RequestIdIsPresentAndUnique) {
  StartServer();
  Client c(server_->port());
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ClientResponse res = c.RoundTrip("GET", "/");
    std::string id(res["x-amzn-RequestId"]);
    EXPECT_EQ(id.size(), 36u) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 3u);
  std::vector<std::string> seen = handler_.seen_ids();
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), ids);
  // A handler that sets its own id keeps it, and it is not duplicated.
  ClientResponse own = c.RoundTrip("GET", "/own-id");
  EXPECT_EQ(own["x-amzn-RequestId"], "handler-chosen");
  EXPECT_EQ(own.count("x-amzn-RequestId"), 1u);
}

TEST_F(ServerTest, HeadSendsDeclaredLengthWithoutBody) {
  StartServer();
  Client c(server_->port());
  ClientResponse res = c.RoundTrip("HEAD", "/head");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res["Content-Length"], "1234");
  EXPECT_TRUE(res.body().empty());
  // No stray body bytes: the next response parses cleanly.
  EXPECT_EQ(c.RoundTrip("POST", "/next", "n").body(), "n");
}

TEST_F(ServerTest, ConnectionCloseAndHttp10CloseAfterResponse) {
  StartServer();
  {
    Client c(server_->port());
    c.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->keep_alive());
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    Client c(server_->port());
    c.Send("GET / HTTP/1.0\r\n\r\n");
    auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->version(), 10);
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    Client c(server_->port());
    c.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_TRUE(res->keep_alive());
    c.Send("GET /two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    res = c.Read();
    ASSERT_TRUE(res);
    EXPECT_EQ((*res)["X-Path"], "/two");
  }
}

TEST_F(ServerTest, StreamedRequestBodyIsFedToHandlerWithoutBodyLimit) {
  ServerOptions o;
  o.max_body_bytes = 1024;  // applies to buffered bodies only
  StartServer(o);
  Client c(server_->port());
  std::string body(3 * 1024 * 1024 + 17, '\0');
  uint64_t sum = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>(i * 7);
    sum += static_cast<unsigned char>(body[i]);
  }
  const std::string expected = std::to_string(body.size()) + ":" + std::to_string(sum);
  EXPECT_EQ(c.RoundTrip("PUT", "/stream-in", body).body(), expected);
  // Chunked, on the same connection.
  c.Send(
      "PUT /stream-in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "5:" + std::to_string('a' + 'b' + 'c' + 'd' + 'e'));
  EXPECT_TRUE(res->keep_alive());
}

TEST_F(ServerTest, EarlyAnswerToStreamedRequestClosesConnection) {
  StartServer();
  Client c(server_->port());
  c.Send("PUT /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" +
         std::string(100000, 'x'));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(ServerTest, StreamedResponseBody) {
  StartServer();
  Client c(server_->port());
  ClientResponse res = c.RoundTrip("GET", "/stream-out?100500");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res["Content-Length"], "100500");
  ASSERT_EQ(res.body().size(), 100500u);
  EXPECT_EQ(res.body()[0], 'a');
  EXPECT_EQ(res.body()[100499], static_cast<char>('a' + 100 % 26));
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(c.RoundTrip("GET", "/after").result_int(), 200);  // the connection is reusable
  // HEAD: the declared length, no body, and the pipe is abandoned.
  ClientResponse head = c.RoundTrip("HEAD", "/stream-out?777");
  EXPECT_EQ(head["Content-Length"], "777");
  EXPECT_EQ(c.RoundTrip("GET", "/after").result_int(), 200);
}

TEST_F(ServerTest, FailedResponseStreamCutsTheConnection) {
  StartServer();
  Client c(server_->port());
  c.Send("GET /stream-fail?10000 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(c.Read().has_value());  // the body ends early: the client sees a short message
}

TEST_F(ServerTest, StopLetsInFlightRequestFinish) {
  StartServer();
  Client idle(server_->port());
  EXPECT_EQ(idle.RoundTrip("GET", "/").result_int(), 200);
  Client busy(server_->port());
  auto arrived = handler_.HoldArrived();
  busy.Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(arrived.wait_for(10s), std::future_status::ready);

  auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->Stop(10000ms); });
  // The idle connection closing shows that Stop() is under way.
  EXPECT_TRUE(idle.ReadsEof());
  handler_.Release("finished");
  auto res = busy.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "finished");
  EXPECT_FALSE(res->keep_alive());  // the server says it is closing
  EXPECT_TRUE(busy.ReadsEof());
  busy.Close();
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // No new connections after Stop.
  EXPECT_THROW(Client late(server_->port()), boost::system::system_error);
}

TEST_F(ServerTest, StopClosesIdleConnectionsPromptly) {
  StartServer();
  Client c(server_->port());
  EXPECT_EQ(c.RoundTrip("GET", "/").result_int(), 200);
  Client never_sent(server_->port());
  auto start = std::chrono::steady_clock::now();
  server_->Stop(10000ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_TRUE(never_sent.ReadsEof());
}

TEST_F(ServerTest, StopForceClosesAfterDeadlineAndLateResponderIsHarmless) {
  StartServer();
  Client busy(server_->port());
  auto arrived = handler_.HoldArrived();
  busy.Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(arrived.wait_for(10s), std::future_status::ready);
  auto start = std::chrono::steady_clock::now();
  server_->Stop(200ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(busy.ReadsEof());
  server_.reset();
  handler_.Release("too late");  // must not touch the destroyed server
}

TEST_F(ServerTest, DroppedResponderGivesInternalError) {
  class DroppingHandler : public TestHandler {
   public:
    void Handle(Request, Responder) override {}
  } dropping;
  Server server(ServerOptions{.port = 0}, io_, dropping);
  ASSERT_TRUE(server.Start().ok());
  Client c(server.port());
  ClientResponse res = c.RoundTrip("GET", "/");
  EXPECT_EQ(res.result_int(), 500);
  server.Stop(1000ms);
  dropping.StopPool();
}

TEST_F(ServerTest, StartFailsWhenPortIsTaken) {
  StartServer();
  ServerOptions o;
  o.port = server_->port();
  Server second(o, io_, handler_);
  Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_NE(st.error().message.find(std::to_string(o.port)), std::string::npos);
}

TEST_F(ServerTest, StartFailsOnUnresolvableHost) {
  ServerOptions o;
  o.host = "no-such-host.invalid";
  o.port = 0;
  Server server(o, io_, handler_);
  Status st = server.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
}

TEST_F(ServerTest, ListensOnLocalhostAndWildcard) {
  for (const char* host : {"localhost", "0.0.0.0"}) {
    ServerOptions o;
    o.host = host;
    o.port = 0;
    Server server(o, io_, handler_);
    ASSERT_TRUE(server.Start().ok()) << host;
    Client c(server.port());
    EXPECT_EQ(c.RoundTrip("GET", "/").result_int(), 200) << host;
    server.Stop(1000ms);
  }
}

TEST_F(ServerTest, ListensOnIpv6Loopback) {
  ServerOptions o;
  o.host = "::1";
  o.port = 0;
  Server server(o, io_, handler_);
  Status st = server.Start();
  if (!st.ok()) GTEST_SKIP() << "no IPv6 loopback: " << st.error().message;
  Client c(server.port(), "::1");
  ClientResponse res = c.RoundTrip("GET", "/");
  EXPECT_TRUE(res["X-Remote"].starts_with("[::1]:"));
  server.Stop(1000ms);
}

TEST_F(ServerTest, DateHeaderIsTheCurrentHttpDate) {
  StartServer();
  Client c(server_->port());
  for (int i = 0; i < 2; ++i) {
    if (i == 1)
      std::this_thread::sleep_for(1100ms);  // the next second: a new date, not a stale one
    const auto before = std::chrono::system_clock::now();
    ClientResponse res = c.RoundTrip("GET", "/x");
    const auto after = std::chrono::system_clock::now();
    const std::string date(res["Date"]);
    EXPECT_TRUE(date == FormatHttpDate(before) || date == FormatHttpDate(after))
        << date << " is not the time of the request (" << FormatHttpDate(before) << ")";
  }
}

// What the server wrote with Beast's serializer before it formatted heads itself.
std::string BeastHead(const Response& response, std::string_view request_id, unsigned version,
                      bool has_length, std::string_view length, bool keep_alive,
                      std::string_view date) {
  bhttp::response<bhttp::empty_body> res;
  res.version(version == 10 ? 10 : 11);
  res.result(static_cast<unsigned>(response.status));
  for (const Header& h : response.headers.all()) {
    if (!EqualsIgnoreCase(h.name, "Content-Length") && !EqualsIgnoreCase(h.name, "Connection") &&
        !EqualsIgnoreCase(h.name, "Transfer-Encoding")) {
      res.insert(h.name, h.value);
    }
  }
  if (!response.headers.Has("x-amzn-RequestId")) res.insert("x-amzn-RequestId", request_id);
  if (!response.headers.Has("Server")) res.set(bhttp::field::server, "inferd");
  if (!response.headers.Has("Date")) res.set(bhttp::field::date, date);
  if (has_length) res.set(bhttp::field::content_length, length);
  res.keep_alive(keep_alive);
  std::ostringstream os;
  os << res.base();
  return os.str();
}

TEST(FormatResponseHeadTest, SameBytesAsBeast) {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  std::vector<Response> responses;
  {
    Response r;  // an InvokeEndpointAsync answer
    r.status = 202;
    r.headers.Add("Content-Type", "application/json");
    r.headers.Add("X-Amzn-SageMaker-OutputLocation", "s3://b/out/9f3c.out");
    responses.push_back(r);
  }
  {
    Response r;  // repeated names apart, padded values, framing headers of the handler's
    r.status = 200;
    r.headers.Add("x-amz-meta-a", "1");
    r.headers.Add("ETag", " \"abc\"\t");
    r.headers.Add("X-AMZ-META-A", "2");
    r.headers.Add("Connection", "close");
    r.headers.Add("Transfer-Encoding", "chunked");
    r.headers.Add("Content-Length", "7");
    r.headers.Add("Empty", "");
    r.headers.Add("x-amz-meta-a", "3");
    responses.push_back(r);
  }
  {
    Response r;  // the handler's own request id, server and date (other case)
    r.status = 404;
    r.headers.Add("X-AMZN-REQUESTID", "mine");
    r.headers.Add("server", "AmazonS3");
    r.headers.Add("date", "Mon, 07 Nov 1994 08:49:37 GMT");
    responses.push_back(r);
  }
  for (int status : {100, 204, 304, 413, 503, 599}) {
    Response r;
    r.status = status;
    responses.push_back(r);
  }
  for (const Response& r : responses) {
    for (unsigned version : {10u, 11u}) {
      for (bool keep_alive : {false, true}) {
        for (bool has_length : {false, true}) {
          std::string mine;
          FormatResponseHead(r, "req-1", version, has_length, "42", keep_alive, date, mine);
          EXPECT_EQ(mine, BeastHead(r, "req-1", version, has_length, "42", keep_alive, date))
              << "status " << r.status << " version " << version << " keep_alive " << keep_alive;
        }
      }
    }
  }
}

TEST(ServerOptionsTest, Validate) {
  EXPECT_TRUE(ServerOptions{}.Validate().ok());
  auto invalid = [](auto mutate) {
    ServerOptions o;
    mutate(o);
    Status st = o.Validate();
    return !st.ok() && st.error().code == Errc::kValidation && !st.error().message.empty();
  };
  EXPECT_TRUE(invalid([](ServerOptions& o) { o.host = ""; }));
  EXPECT_TRUE(invalid([](ServerOptions& o) { o.max_header_bytes = 0; }));
  EXPECT_TRUE(invalid([](ServerOptions& o) { o.max_body_bytes = 0; }));
  EXPECT_TRUE(invalid([](ServerOptions& o) { o.idle_timeout = 0s; }));
  EXPECT_TRUE(invalid([](ServerOptions& o) { o.request_timeout = 0s; }));
}

TEST(IoThreadsTest, EachContextRunsOnItsOwnSingleThread) {
  IoThreads io(2);
  ASSERT_EQ(io.size(), 2);
  io.Start();
  std::mutex mu;
  std::vector<std::set<std::thread::id>> seen(2);
  std::atomic<int> left{200};
  std::promise<void> done;
  std::vector<std::thread> posters;
  for (int p = 0; p < 4; ++p) {
    posters.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        const int c = i % 2;
        asio::post(io.context(c), [&, c] {
          {
            std::lock_guard lock(mu);
            seen[c].insert(std::this_thread::get_id());
          }
          if (--left == 0) done.set_value();
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  io.Stop();
  ASSERT_EQ(seen[0].size(), 1u);
  ASSERT_EQ(seen[1].size(), 1u);
  EXPECT_NE(*seen[0].begin(), *seen[1].begin());
}

TEST(IoThreadsTest, StopIsIdempotentAndRestartable) {
  IoThreads io(2);
  io.Start();
  std::promise<void> ran;
  asio::post(io.context(), [&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  io.Stop();
  io.Stop();
  io.Start();
  std::promise<void> again;
  asio::post(io.context(), [&] { again.set_value(); });
  EXPECT_EQ(again.get_future().wait_for(10s), std::future_status::ready);
}

}  // namespace
}  // namespace inferd::http
