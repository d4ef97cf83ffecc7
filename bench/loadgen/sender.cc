// GCC 12 destroys lambda temporaries inside co_await expressions twice: none are written there.
#include "sender.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <limits>
#include <random>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/sigv4.h"

namespace inferd::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kReconnectDelay = std::chrono::milliseconds(10);
constexpr auto kOutstandingPoll = std::chrono::microseconds(200);
// As long as boto3's (1.43 on Linux): header bytes are part of the cost of a request.
constexpr std::string_view kUserAgent =
    "Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.2 "
    "md/pyimpl#CPython m/Z,b cfg/retry-mode#legacy Botocore/1.43.11 inferd-loadgen";

asio::steady_timer::time_point SteadyAt(int64_t ns) {
  return asio::steady_timer::time_point(std::chrono::nanoseconds(ns));
}

std::string Trimmed(std::string s, size_t n = 300) {
  if (s.size() > n) s = s.substr(0, n) + "…";
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

struct Sender::Impl {
  Impl(const LoadOptions& o, int t, RecordTable& tbl, RunState& st,
       std::shared_ptr<const std::string> body)
      : options(o),
        thread(t),
        table(tbl),
        state(st),
        ioc(1),
        direct_body(std::move(body)),
        signer(o.access_key_id, o.secret_access_key, o.region, "sagemaker") {
    const int threads = options.threads;
    connections = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    if (options.max_requests > 0) {
      max_requests = options.max_requests / threads +
                     (static_cast<uint64_t>(t) < options.max_requests % threads ? 1 : 0);
    }
    deadline_ns = options.duration_seconds > 0
                      ? state.start_ns + static_cast<int64_t>(options.duration_seconds * 1e9)
                      : std::numeric_limits<int64_t>::max();
    expected_status = options.mode == Mode::kDirect ? 200 : 202;
    host_header = options.target.host + ":" + std::to_string(options.target.port);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options.target.host, ec);
    if (!ec) {
      peer = tcp::endpoint(address, options.target.port);
    } else {
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(options.target.host, std::to_string(options.target.port));
      peer = *results.begin();
    }
    if (options.mode == Mode::kDirect) {
      direct_head = "POST /invocations HTTP/1.1\r\nHost: " + host_header +
                    "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                    std::to_string(direct_body ? direct_body->size() : 0) +
                    "\r\nUser-Agent: inferd-loadgen\r\n\r\n";
    } else {
      path = "/endpoints/" + options.endpoint + "/async-invocations";
    }
  }

  // The request head of InvokeEndpointAsync `seq`, signed now (botocore's headers).
  std::string InvokeHead(uint64_t seq) {
    http::Request r;
    r.method = "POST";
    r.path = path;
    r.target = path;
    r.headers.Add("Host", host_header);
    if (!options.accept.empty()) r.headers.Add("X-Amzn-SageMaker-Accept", options.accept);
    if (!options.content_type.empty()) {
      r.headers.Add("X-Amzn-SageMaker-Content-Type", options.content_type);
    }
    r.headers.Add("X-Amzn-SageMaker-Inference-Id", MakeInferenceId(options.id_prefix, thread, seq));
    r.headers.Add("X-Amzn-SageMaker-InputLocation", options.input_location);
    if (options.ttl_seconds > 0) {
      r.headers.Add("X-Amzn-SageMaker-RequestTTLSeconds", std::to_string(options.ttl_seconds));
    }
    signer.Sign(r, std::chrono::system_clock::now());
    std::string head;
    head.reserve(1024);
    head += "POST ";
    head += path;
    head += " HTTP/1.1\r\n";
    for (const auto& h : r.headers.all()) {
      head += h.name;
      head += ": ";
      head += h.value;
      head += "\r\n";
    }
    // botocore's unsigned extras, so the server parses what it would parse from boto3.
    head += "User-Agent: ";
    head += kUserAgent;
    head += "\r\namz-sdk-invocation-id: ";
    head += InvocationId();
    head += "\r\namz-sdk-request: attempt=1\r\nContent-Length: 0\r\n\r\n";
    return head;
  }

  // A random UUID-shaped id, like botocore's amz-sdk-invocation-id.
  std::string InvocationId() {
    static constexpr char kHex[] = "0123456789abcdef";
    const uint64_t a = random(), b = random();
    std::string id(36, '-');
    for (int i = 0, bit = 0; i < 36; ++i) {
      if (i == 8 || i == 13 || i == 18 || i == 23) continue;
      const uint64_t word = bit < 64 ? a : b;
      id[static_cast<size_t>(i)] = kHex[(word >> (bit % 64)) & 15];
      bit += 4;
    }
    return id;
  }

  // The next request for a connection (its seq), or nullopt when the load is over.
  asio::awaitable<std::optional<uint64_t>> NextJob(asio::steady_timer& wake) {
    for (;;) {
      if (state.stop.load(std::memory_order_relaxed)) co_return std::nullopt;
      if (options.rate > 0) {
        if (!due.empty()) {
          const uint64_t seq = due.front();
          due.pop_front();
          co_return seq;
        }
        if (schedule_done) co_return std::nullopt;
        idle.push_back(&wake);
        wake.expires_at(asio::steady_timer::time_point::max());
        co_await wake.async_wait(kUseTuple);
        continue;
      }
      const int64_t now = NowNs();
      if (now >= deadline_ns || (max_requests > 0 && next_seq >= max_requests)) {
        co_return std::nullopt;
      }
      if (WindowFull()) {
        // Parked until the gate sees room (completions arrive on the sink's thread).
        idle.push_back(&wake);
        wake.expires_at(asio::steady_timer::time_point::max());
        if (!gate_running) {
          gate_running = true;
          asio::co_spawn(ioc, Gate(), asio::detached);
        }
        co_await wake.async_wait(kUseTuple);
        continue;
      }
      const uint64_t seq = next_seq++;
      Record* r = table.Add(seq);
      if (r == nullptr) co_return std::nullopt;
      r->intended_ns.store(now, std::memory_order_relaxed);
      state.outstanding.fetch_add(1, std::memory_order_relaxed);
      co_return seq;
    }
  }

  bool WindowFull() const {
    return options.max_outstanding > 0 && state.outstanding.load(std::memory_order_relaxed) >=
                                              static_cast<int64_t>(options.max_outstanding);
  }

  // Closed loop with --max-outstanding: one timer polls the window for every parked connection
  // and wakes as many as there is room for (or all of them once the load is over).
  asio::awaitable<void> Gate() {
    asio::steady_timer timer(ioc);
    while (!idle.empty()) {
      timer.expires_after(kOutstandingPoll);
      co_await timer.async_wait(kUseTuple);
      if (NowNs() >= deadline_ns || state.stop.load(std::memory_order_relaxed)) {
        while (!idle.empty()) WakeOne();
        break;
      }
      int64_t room = static_cast<int64_t>(options.max_outstanding) -
                     state.outstanding.load(std::memory_order_relaxed);
      for (; room > 0 && !idle.empty(); --room) WakeOne();
    }
    gate_running = false;
  }

  void WakeOne() {
    if (idle.empty()) return;
    asio::steady_timer* t = idle.back();
    idle.pop_back();
    t->cancel();
  }

  // Open loop: makes requests due at their times.
  asio::awaitable<void> Schedule() {
    asio::steady_timer timer(ioc);
    const double period_ns = 1e9 / options.rate;
    const int threads = options.threads;
    for (uint64_t i = 0;; ++i) {
      const int64_t intended =
          state.start_ns +
          static_cast<int64_t>((static_cast<double>(i) * threads + thread) * period_ns);
      if (intended >= deadline_ns || (max_requests > 0 && i >= max_requests) ||
          state.stop.load(std::memory_order_relaxed)) {
        break;
      }
      if (intended > NowNs()) {
        timer.expires_at(SteadyAt(intended));
        co_await timer.async_wait(kUseTuple);
      }
      Record* r = table.Add(i);
      if (r == nullptr) break;
      r->intended_ns.store(intended, std::memory_order_relaxed);
      state.outstanding.fetch_add(1, std::memory_order_relaxed);
      due.push_back(i);
      WakeOne();
    }
    schedule_done = true;
    while (!idle.empty()) WakeOne();
  }

  void Failed(Record& r, int status, std::string detail) {
    r.status.store(status, std::memory_order_relaxed);
    r.answered_ns.store(NowNs(), std::memory_order_release);
    if (status < 0) {
      ++stats.transport_errors;
    } else {
      ++stats.status_errors[status];
    }
    if (stats.first_error.empty()) stats.first_error = Trimmed(std::move(detail));
    state.Release(r);
  }

  asio::awaitable<void> Connection() {
    tcp::socket socket(ioc);
    beast::flat_buffer buffer;
    // Beast reads as much as the buffer holds (at least 512 bytes): without room, a 1 MiB answer
    // would be read 512 bytes at a time.
    buffer.reserve(64 * 1024);
    asio::steady_timer wake(ioc);
    bool connected = false;
    for (;;) {
      std::optional<uint64_t> seq = co_await NextJob(wake);
      if (!seq) break;
      Record& r = *table.Find(*seq);
      if (!connected) {
        boost::system::error_code ignored;
        socket.close(ignored);
        auto [ec] = co_await socket.async_connect(peer, kUseTuple);
        if (ec) {
          Failed(r, -1, "connect to " + host_header + ": " + ec.message());
          wake.expires_after(kReconnectDelay);
          co_await wake.async_wait(kUseTuple);
          continue;
        }
        socket.set_option(tcp::no_delay(true), ignored);
        connected = true;
        buffer.clear();
        ++stats.connects;
      }
      std::string head = options.mode == Mode::kDirect ? direct_head : InvokeHead(*seq);
      std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(*direct_body)};
      ++stats.sent;
      auto [wec, written] = co_await asio::async_write(socket, out, kUseTuple);
      if (wec) {
        Failed(r, -1, "write: " + wec.message());
        connected = false;
        continue;
      }
      stats.bytes_out += written;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(boost::none);
      auto [rec, read] = co_await bhttp::async_read(socket, buffer, parser, kUseTuple);
      if (rec) {
        Failed(r, -1, "read: " + rec.message());
        connected = false;
        continue;
      }
      stats.bytes_in += read;
      auto& response = parser.get();
      const int status = static_cast<int>(response.result_int());
      if (status == expected_status) {
        r.status.store(status, std::memory_order_relaxed);
        r.answered_ns.store(NowNs(), std::memory_order_release);
        ++stats.ok;
        if (options.mode == Mode::kDirect) state.Release(r);
      } else {
        Failed(r, status, std::to_string(status) + " " + response.body());
      }
      if (!response.keep_alive()) connected = false;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  void Run() {
    if (!direct_body) direct_body = std::make_shared<const std::string>();
    for (int i = 0; i < connections; ++i) {
      asio::co_spawn(ioc, Connection(), asio::detached);
    }
    if (options.rate > 0) asio::co_spawn(ioc, Schedule(), asio::detached);
    ioc.run();
  }

  const LoadOptions& options;
  const int thread;
  RecordTable& table;
  RunState& state;
  asio::io_context ioc;
  std::shared_ptr<const std::string> direct_body;
  // Signs as botocore does, with the signing key derived once a day rather than per request (the
  // load generator's CPU is taken from the server it measures).
  const http::sigv4::RequestSigner signer;
  int connections = 1;
  uint64_t max_requests = 0;
  int64_t deadline_ns = 0;
  int expected_status = 202;
  std::string host_header, path, direct_head;
  tcp::endpoint peer;
  // Closed loop.
  uint64_t next_seq = 0;
  bool gate_running = false;  // Gate() is polling for parked connections
  // Open loop.
  std::deque<uint64_t> due;
  bool schedule_done = false;
  // Connections waiting for work (open loop) or for room in the window (closed loop).
  std::vector<asio::steady_timer*> idle;
  std::mt19937_64 random{std::random_device{}()};
  SenderStats stats;
};

Sender::Sender(const LoadOptions& options, int thread_index, RecordTable& table, RunState& state,
               std::shared_ptr<const std::string> shared_body)
    : impl_(std::make_unique<Impl>(options, thread_index, table, state, std::move(shared_body))) {}
Sender::~Sender() = default;
void Sender::Run() { impl_->Run(); }
const SenderStats& Sender::stats() const { return impl_->stats; }

}  // namespace inferd::bench
