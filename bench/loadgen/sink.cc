// GCC 12 destroys lambda temporaries inside co_await expressions twice: none are written there.
#include "sink.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <mutex>
#include <thread>

#include "http/client.h"

namespace inferd::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
constexpr std::string_view kOkClose =
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr uint64_t kMaxBody = 4 << 20;

std::string_view StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  const json::string& s = v->get_string();
  return std::string_view(s.data(), s.size());
}

}  // namespace

struct Sink::Impl {
  static constexpr size_t kMaxThreads = 64;

  Impl(const LoadOptions& o, std::vector<RecordTable*> t, RunState& s)
      : options(o), tables(std::move(t)), state(s), ioc(1), acceptor(ioc) {
    if (tables.empty()) {
      std::string_view rest = options.id_prefix;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        prefixes.emplace_back(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      seen_by_key.resize(prefixes.size() * kMaxThreads);
    }
  }

  void Count(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }
  bool Reject(std::atomic<uint64_t>& counter) {
    Count(counter);
    return false;
  }

  // An InferenceResult of `id` that arrived at `now` (its request read whole, before it was
  // parsed); returns false when it does not count (foreign or duplicate).
  bool Complete(std::string_view id, std::string_view status, std::string_view event_time,
                int64_t now) {
    if (tables.empty()) {
      // --sink-only: (prefix, thread, seq) seen before?
      std::optional<IdParts> parts;
      size_t which = 0;
      for (; which < prefixes.size() && !parts; ++which) {
        parts = ParseInferenceId(id, prefixes[which]);
      }
      if (!parts || parts->thread < 0 || static_cast<size_t>(parts->thread) >= kMaxThreads) {
        return Reject(foreign);
      }
      auto& seen = seen_by_key[(which - 1) * kMaxThreads + static_cast<size_t>(parts->thread)];
      if (seen.size() <= parts->seq) seen.resize(std::max<size_t>(parts->seq + 1, seen.size() * 2));
      if (seen[parts->seq]) return Reject(duplicates);
      seen[parts->seq] = 1;
    } else {
      auto parts = ParseInferenceId(id, options.id_prefix);
      if (!parts) return Reject(foreign);
      if (parts->thread < 0 || static_cast<size_t>(parts->thread) >= tables.size()) {
        return Reject(foreign);
      }
      Record* r = tables[static_cast<size_t>(parts->thread)]->Find(parts->seq);
      if (r == nullptr) return Reject(foreign);
      if (r->notifications.fetch_add(1) > 0) return Reject(duplicates);
      r->completed_ns.store(now, std::memory_order_relaxed);
      if (auto ms = ParseEventTimeMs(event_time)) r->event_ms.store(*ms, std::memory_order_relaxed);
      r->failed.store(status != "Completed", std::memory_order_relaxed);
      state.Release(*r);
    }
    if (status != "Completed") Count(failed);
    {
      std::lock_guard lock(times_mu);
      if (first_ns == 0) {
        first_ns = now;
        first_wall_ms = WallMs();
      }
      last_ns = now;
      last_wall_ms = WallMs();
      const auto second =
          static_cast<size_t>(std::max<int64_t>(0, now - started_ns) / 1'000'000'000);
      if (per_second.size() <= second) per_second.resize(second + 1);
      ++per_second[second];
    }
    Count(completed);
    return true;
  }

  void HandleMessage(std::string_view text, int64_t arrived_ns) {
    boost::system::error_code ec;
    json::value message = json::parse(text, ec);
    if (ec || !message.is_object()) return Count(malformed);
    const json::object& m = message.get_object();
    const std::string_view event = StringAt(m, "eventName");
    if (event == "TestNotification") return Count(test_notifications);
    if (event != "InferenceResult") return Count(malformed);
    Complete(StringAt(m, "inferenceId"), StringAt(m, "invocationStatus"), StringAt(m, "eventTime"),
             arrived_ns);
  }

  void Handle(const bhttp::request<bhttp::string_body>& request, int64_t arrived_ns) {
    Count(requests);
    boost::system::error_code ec;
    json::value body = json::parse(request.body(), ec);
    if (ec || !body.is_object()) return Count(malformed);
    const json::object& o = body.get_object();
    if (o.contains("eventName")) return HandleMessage(request.body(), arrived_ns);  // raw
    const std::string_view type = StringAt(o, "Type");
    if (type == "Notification") return HandleMessage(StringAt(o, "Message"), arrived_ns);
    if (type == "SubscriptionConfirmation") {
      auto url = http::ParseUrl(StringAt(o, "SubscribeURL"));
      if (!url.ok() || url->scheme != "http") {
        std::cerr << "inferd-loadgen: cannot visit SubscribeURL " << StringAt(o, "SubscribeURL")
                  << " (only http:// is supported)\n";
        return Count(confirm_failures);
      }
      asio::co_spawn(ioc, Confirm(std::move(*url)), asio::detached);
      return;
    }
    if (type == "UnsubscribeConfirmation") return;
    Count(malformed);
  }

  asio::awaitable<void> Confirm(http::Url url) {
    const std::string port = std::to_string(url.port);
    tcp::resolver resolver(ioc);
    auto [rec, results] = co_await resolver.async_resolve(url.host, port, kUseTuple);
    tcp::socket socket(ioc);
    if (!rec) {
      auto [cec, peer] = co_await asio::async_connect(socket, results, kUseTuple);
      rec = cec;
    }
    int status = 0;
    if (!rec) {
      std::string request = "GET " + url.target + " HTTP/1.1\r\nHost: " + url.host + ":" + port +
                            "\r\nConnection: close\r\n\r\n";
      auto [wec, written] = co_await asio::async_write(socket, asio::buffer(request), kUseTuple);
      if (!wec) {
        beast::flat_buffer buffer;
        bhttp::response<bhttp::string_body> response;
        auto [ec, read] = co_await bhttp::async_read(socket, buffer, response, kUseTuple);
        if (!ec) status = static_cast<int>(response.result_int());
      }
    }
    if (status >= 200 && status < 300) {
      Count(confirmations);
    } else {
      std::cerr << "inferd-loadgen: visiting SubscribeURL failed (status " << status << ")\n";
      Count(confirm_failures);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(kMaxBody);
      auto [ec, read] = co_await bhttp::async_read(socket, buffer, parser, kUseTuple);
      if (ec) break;
      const int64_t arrived_ns = NowNs();  // the notification's arrival, not its parse
      const auto& request = parser.get();
      Handle(request, arrived_ns);
      const bool keep = request.keep_alive();
      const std::string_view answer = keep ? kOk : kOkClose;
      auto [wec, written] = co_await asio::async_write(socket, asio::buffer(answer), kUseTuple);
      if (wec || !keep) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(ioc, Session(std::move(socket)), asio::detached);
    }
  }

  const LoadOptions& options;
  std::vector<RecordTable*> tables;
  RunState& state;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::thread thread;
  // --sink-only: the prefixes counted, and which (prefix, thread, seq) completed.
  std::vector<std::string> prefixes;
  std::vector<std::vector<uint8_t>> seen_by_key;
  std::atomic<uint64_t> requests{0}, completed{0}, failed{0}, duplicates{0}, foreign{0},
      test_notifications{0}, confirmations{0}, confirm_failures{0}, malformed{0};
  mutable std::mutex times_mu;
  int64_t first_ns = 0, last_ns = 0, first_wall_ms = 0, last_wall_ms = 0;
  int64_t started_ns = 0;
  std::vector<uint32_t> per_second;
};

Sink::Sink(const LoadOptions& options, std::vector<RecordTable*> tables, RunState& state)
    : impl_(std::make_unique<Impl>(options, std::move(tables), state)) {}

Sink::~Sink() { Stop(); }

Status Sink::Start() {
  auto hp = ParseHostPort(impl_->options.sink_listen, "--sink");
  if (!hp.ok()) return hp.error();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp->host, ec);
  if (ec) return Error(Errc::kValidation, "--sink: \"" + hp->host + "\" is not an IP address");
  tcp::endpoint where(address, hp->port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(where.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error(Errc::kUnavailable, "the notification sink cannot listen on " +
                                         impl_->options.sink_listen + ": " + ec.message());
  }
  impl_->started_ns = NowNs();
  asio::co_spawn(impl_->ioc, impl_->AcceptLoop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  return OkStatus();
}

uint16_t Sink::port() const {
  boost::system::error_code ec;
  auto local = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : local.port();
}

void Sink::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->ioc.stop();
  impl_->thread.join();
}

SinkStats Sink::stats() const {
  const Impl& i = *impl_;
  SinkStats s;
  s.requests = i.requests.load();
  s.completed = i.completed.load();
  s.failed = i.failed.load();
  s.duplicates = i.duplicates.load();
  s.foreign = i.foreign.load();
  s.test_notifications = i.test_notifications.load();
  s.confirmations = i.confirmations.load();
  s.confirm_failures = i.confirm_failures.load();
  s.malformed = i.malformed.load();
  std::lock_guard lock(i.times_mu);
  s.first_ns = i.first_ns;
  s.last_ns = i.last_ns;
  s.first_wall_ms = i.first_wall_ms;
  s.last_wall_ms = i.last_wall_ms;
  s.per_second = i.per_second;
  return s;
}

uint64_t Sink::completed() const { return impl_->completed.load(); }
uint64_t Sink::confirmations() const { return impl_->confirmations.load(); }

}  // namespace inferd::bench
