// One coroutine per connection, on its own strand: wait for the first byte (idle timeout), read the
// header and body (request timeout), hand the request to the Handler, wait for its Responder (which
// may fire on any thread), write the response, repeat. Requests on a connection are therefore
// answered strictly in order.
//
// Lifetimes: Core (options, acceptor, session registry) is shared by the Server, the accept loop and
// every session; a Session is shared by its coroutine and the Responder of its current request. So
// a Responder called after the Server is gone only posts to a strand and finds nobody waiting.
#include "http/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "http/io_threads.h"

namespace inferd::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kFirstReadBytes = 16 * 1024;
// How long a closing connection keeps discarding what the peer still sends (see LingeringClose).
constexpr auto kLingerTime = std::chrono::seconds(1);
// After the Stop() deadline sockets are force-closed; this is how long Stop() then waits for the
// sessions to notice.
constexpr auto kForceCloseMargin = std::chrono::seconds(2);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct Session;

// State shared by the Server, its accept loop and its sessions.
struct Core {
  Core(ServerOptions o, asio::io_context& c, Handler& h)
      : options(std::move(o)), ioc(c), handler(h), acceptor(asio::make_strand(c)) {}

  // Adds a session unless the server is stopping.
  bool Register(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(mu);
    if (stopping) return false;
    sessions.emplace(s.get(), s);
    ++live;
    return true;
  }
  void Release(Session* s) {
    std::lock_guard lock(mu);
    if (s != nullptr) sessions.erase(s);
    --live;
    cv.notify_all();
  }
  std::vector<std::shared_ptr<Session>> Snapshot() {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<Session>> out;
    for (auto& [key, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }
  bool WaitIdle(Clock::time_point until) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, until, [&] { return live == 0; });
  }

  const ServerOptions options;
  asio::io_context& ioc;
  Handler& handler;
  tcp::acceptor acceptor;  // on its own strand once the accept loop runs
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
  int live = 0;  // guarded by mu: running coroutines (the accept loop and sessions)
};

// Releases a coroutine's registration when the coroutine frame goes away. Passed by value into the
// coroutine, so the frame owns it even if the coroutine never gets to run.
class Ticket {
 public:
  Ticket(std::shared_ptr<Core> core, Session* session)
      : core_(std::move(core)), session_(session) {}
  Ticket(Ticket&& other) noexcept
      : core_(std::move(other.core_)), session_(other.session_) {}
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  Ticket& operator=(Ticket&&) = delete;
  ~Ticket() {
    if (core_) core_->Release(session_);
  }

 private:
  std::shared_ptr<Core> core_;
  Session* session_;
};

std::string FormatEndpoint(const tcp::endpoint& ep) {
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  if (a.is_v6()) return fmt::format("[{}]:{}", a.to_string(), ep.port());
  return fmt::format("{}:{}", a.to_string(), ep.port());
}

struct Session {
  Session(std::shared_ptr<Core> c, tcp::socket socket) : core(std::move(c)) {
    beast::error_code ec;
    tcp::endpoint peer = socket.remote_endpoint(ec);
    remote = ec ? "unknown" : FormatEndpoint(peer);
    socket.set_option(tcp::no_delay(true), ec);
    stream.emplace(std::move(socket));
  }
  beast::tcp_stream& s() { return *stream; }
  asio::any_io_executor executor() { return stream->get_executor(); }

  // Strand only. Closes the socket (pending reads/writes complete with an error) and abandons the
  // request being handled, if any.
  void Close() {
    if (closed) return;
    closed = true;
    stream->close();
    if (waiter) {
      auto w = std::move(waiter);
      waiter = nullptr;
      w(std::nullopt);
    }
  }

  std::shared_ptr<Core> core;
  std::optional<beast::tcp_stream> stream;
  std::string remote;
  // Touched only on the session's strand.
  bool busy = false;    // from the first byte of a request until its response is written
  bool closed = false;  // Close() was called
  // Resumes the coroutine waiting for the handler's response; nullopt = no response will come.
  std::function<void(std::optional<Response>)> waiter;
};

// Hands a response (or its absence) to the session's strand.
void Deliver(std::shared_ptr<Session> s, std::optional<Response> response) {
  auto ex = s->executor();
  asio::post(ex, [s = std::move(s), response = std::move(response)]() mutable {
    if (!s->waiter) return;  // the session gave up on this request (e.g. Stop closed it)
    auto w = std::move(s->waiter);
    s->waiter = nullptr;
    w(std::move(response));
  });
}

// Shared by every copy of one request's Responder. If the last copy goes away uncalled, the
// session is told, so a handler that drops its responder cannot hang the connection.
struct ResponderState {
  explicit ResponderState(std::shared_ptr<Session> s) : session(std::move(s)) {}
  ~ResponderState() {
    if (!called.load()) Deliver(std::move(session), std::nullopt);
  }
  std::shared_ptr<Session> session;
  std::atomic<bool> called{false};
};

Responder MakeResponder(std::shared_ptr<Session> s) {
  auto state = std::make_shared<ResponderState>(std::move(s));
  return [state](Response response) {
    if (state->called.exchange(true)) {
      spdlog::error("A request handler responded twice; the second response was dropped.");
      return;
    }
    Deliver(state->session, std::move(response));
  };
}

// Calls the handler and completes with its response (nullopt if the connection was closed or the
// handler dropped the responder). Runs on the session's strand.
template <typename Token>
auto AsyncHandle(std::shared_ptr<Session> session, Request request, Token&& token) {
  return asio::async_initiate<Token, void(std::optional<Response>)>(
      [](auto handler, std::shared_ptr<Session> s, Request req) {
        // std::function needs a copyable target; the completion handler is move-only.
        auto shared = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        s->waiter = [shared](std::optional<Response> r) { (*shared)(std::move(r)); };
        Handler& h = s->core->handler;
        try {
          h.Handle(std::move(req), MakeResponder(std::move(s)));
        } catch (const std::exception& e) {
          // The responder, if the handler did not keep it, reports the missing response.
          spdlog::error("Request handler threw: {}", e.what());
        }
      },
      token, std::move(session), std::move(request));
}

Response SafeErrorResponse(Handler& handler, const Request& request, const Error& error) {
  try {
    return handler.ErrorResponse(request, error);
  } catch (const std::exception& e) {
    spdlog::error("Handler::ErrorResponse threw: {}", e.what());
    Response r;
    r.status = 500;
    return r;
  }
}

std::string HttpDate() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

using BeastRequest = bhttp::request<bhttp::string_body>;

// The request as the handler sees it, without the body.
Request MakeRequest(const BeastRequest& msg, const Session& s) {
  Request r;
  r.method = std::string(msg.method_string());
  r.target = std::string(msg.target());
  std::string_view target = r.target;
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  for (const auto& field : msg) {
    r.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  r.request_id = NewUuid();
  r.remote = s.remote;
  r.received = Clock::now();
  return r;
}

bool Expects100Continue(const BeastRequest& msg) {
  auto it = msg.find(bhttp::field::expect);
  return msg.version() >= 11 && it != msg.end() && EqualsIgnoreCase(Trim(it->value()), "100-continue");
}

bool IsParseError(const beast::error_code& ec) {
  static const auto& category = bhttp::make_error_code(bhttp::error::bad_method).category();
  return ec.category() == category && ec != bhttp::error::end_of_stream &&
         ec != bhttp::error::partial_message;
}

// Writes `response` to `request` and logs the access line. Returns whether the connection may
// carry another request.
asio::awaitable<bool> WriteResponse(std::shared_ptr<Session> s, const Request& request,
                                    Response response, unsigned version, bool keep_alive) {
  const int status = (response.status >= 100 && response.status <= 999) ? response.status : 500;
  bhttp::response<bhttp::string_body> res;
  res.version(version == 10 ? 10 : 11);
  res.result(static_cast<unsigned>(status));
  std::optional<std::string> declared_length;
  for (const Header& h : response.headers.all()) {
    if (EqualsIgnoreCase(h.name, "Content-Length")) {
      declared_length = h.value;  // used for HEAD and 304 only; otherwise we count the body
    } else if (EqualsIgnoreCase(h.name, "Connection")) {
      if (EqualsIgnoreCase(Trim(h.value), "close")) keep_alive = false;
    } else if (!EqualsIgnoreCase(h.name, "Transfer-Encoding")) {
      res.insert(h.name, h.value);
    }
  }
  if (!response.headers.Has("x-amzn-RequestId")) res.insert("x-amzn-RequestId", request.request_id);
  if (!response.headers.Has("Server")) res.set(bhttp::field::server, "inferd");
  if (!response.headers.Has("Date")) res.set(bhttp::field::date, HttpDate());
  if (s->core->stopping) keep_alive = false;
  res.keep_alive(keep_alive);

  const bool head = request.method == "HEAD";
  if (status / 100 == 1 || status == 204) {
    // RFC 9110 §8.6: these responses carry neither a body nor Content-Length.
  } else if (head || status == 304) {
    res.set(bhttp::field::content_length,
            declared_length ? *declared_length : std::to_string(response.body.size()));
  } else {
    res.set(bhttp::field::content_length, std::to_string(response.body.size()));
    res.body() = std::move(response.body);
  }
  const size_t body_bytes = res.body().size();

  s->s().expires_after(s->core->options.request_timeout);
  auto [ec, n] = co_await bhttp::async_write(s->s(), res, kUseTuple);
  const double latency_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - request.received).count();
  spdlog::info("{} \"{} {}\" {} {} {} {:.1f}{}", request.remote, request.method, request.target,
               response.operation.empty() ? "-" : response.operation, status,
               ec ? 0 : body_bytes, latency_ms, ec ? " (write failed: " + ec.message() + ")" : "");
  co_return !ec && keep_alive;
}

// Answers a request that could not be read completely: too large or malformed requests get the
// handler's error response; a peer that went away, a timeout or a closed socket just end.
asio::awaitable<bool> RejectRequest(std::shared_ptr<Session> s, BeastRequest& msg,
                                    const beast::error_code& ec) {
  const ServerOptions& options = s->core->options;
  Error error;
  if (ec == bhttp::error::body_limit) {
    error = Error(Errc::kPayloadTooLarge,
                  fmt::format("The request body is larger than the limit of {} bytes.",
                              options.max_body_bytes));
  } else if (ec == bhttp::error::header_limit) {
    error = Error(Errc::kValidation,
                  fmt::format("The request header is larger than the limit of {} bytes.",
                              options.max_header_bytes));
  } else if (IsParseError(ec)) {
    error = Error(Errc::kValidation, fmt::format("Malformed HTTP request: {}.", ec.message()));
  } else {
    co_return false;
  }
  if (s->closed) co_return false;
  Request request = MakeRequest(msg, *s);
  Response response = SafeErrorResponse(s->core->handler, request, error);
  co_await WriteResponse(s, request, std::move(response), msg.version(), /*keep_alive=*/false);
  co_return false;
}

// Reads one request (the first byte is already in `buffer`), has the handler answer it and writes
// the answer. Returns whether the connection may carry another request.
asio::awaitable<bool> ServeRequest(std::shared_ptr<Session> s, beast::flat_buffer& buffer) {
  const ServerOptions& options = s->core->options;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(options.max_body_bytes);

  s->s().expires_after(options.request_timeout);
  beast::error_code ec;
  std::tie(ec, std::ignore) = co_await bhttp::async_read_header(s->s(), buffer, parser, kUseTuple);
  if (!ec && !parser.is_done()) {
    if (Expects100Continue(parser.get())) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(s->s(), asio::buffer(kContinue), kUseTuple);
      if (ec) co_return false;
    }
    std::tie(ec, std::ignore) = co_await bhttp::async_read(s->s(), buffer, parser, kUseTuple);
  }
  if (ec) co_return co_await RejectRequest(s, parser.get(), ec);

  BeastRequest& msg = parser.get();
  const bool keep_alive = msg.keep_alive();
  const unsigned version = msg.version();
  // `meta` (the request without its body) outlives the handler call: the access log and a
  // fallback error response need it.
  Request meta = MakeRequest(msg, *s);
  Request request = meta;
  request.body = std::move(msg.body());
  std::optional<Response> response =
      co_await AsyncHandle(s, std::move(request), asio::use_awaitable);
  if (s->closed) co_return false;  // Stop() gave up waiting
  if (!response) {
    response = SafeErrorResponse(
        s->core->handler, meta,
        Error(Errc::kInternal, "The request handler finished without producing a response."));
  }
  co_return co_await WriteResponse(s, meta, std::move(*response), version, keep_alive);
}

// Half-closes, then discards what the peer still sends for a short while, so that the peer reads
// our last response instead of a reset caused by request bytes we never read (e.g. after 413).
asio::awaitable<void> LingeringClose(std::shared_ptr<Session> s) {
  if (s->closed) co_return;
  beast::error_code ec;
  s->s().socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    s->s().expires_after(kLingerTime);
    std::vector<char> scratch(4096);
    for (;;) {
      auto [rec, n] = co_await s->s().async_read_some(asio::buffer(scratch), kUseTuple);
      if (rec) break;
    }
  }
  s->Close();
}

asio::awaitable<void> RunSession(std::shared_ptr<Session> s, Ticket ticket) {
  try {
    const ServerOptions& options = s->core->options;
    beast::flat_buffer buffer;
    while (!s->closed && !s->core->stopping) {
      if (buffer.size() == 0) {
        // Idle between requests: wait for the first byte of the next one.
        s->s().expires_after(options.idle_timeout);
        auto [ec, n] = co_await s->s().async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
        if (ec || s->closed) break;
        buffer.commit(n);
      }
      s->busy = true;
      const bool again = co_await ServeRequest(s, buffer);
      s->busy = false;
      if (!again) break;
    }
    s->busy = false;
    co_await LingeringClose(s);
  } catch (const std::exception& e) {
    spdlog::error("Connection from {} failed: {}", s->remote, e.what());
  }
  s->Close();
}

asio::awaitable<void> AcceptLoop(std::shared_ptr<Core> core, Ticket ticket) {
  for (;;) {
    auto [ec, socket] =
        co_await core->acceptor.async_accept(asio::make_strand(core->ioc), kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || core->stopping || !core->acceptor.is_open()) {
        break;
      }
      // E.g. out of file descriptors: back off instead of spinning.
      spdlog::warn("Accepting a connection failed: {}", ec.message());
      asio::steady_timer timer(core->acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await timer.async_wait(kUseTuple);
      continue;
    }
    auto session = std::make_shared<Session>(core, tcp::socket(std::move(socket)));
    if (!core->Register(session)) {
      session->stream->close();
      break;
    }
    auto ex = session->executor();
    Ticket session_ticket(core, session.get());
    asio::co_spawn(ex, RunSession(std::move(session), std::move(session_ticket)),
                   [](std::exception_ptr e) {
                     if (e) spdlog::error("A connection coroutine ended with an exception.");
                   });
  }
}

bool Listen(tcp::acceptor& a, const tcp::endpoint& ep, beast::error_code& ec) {
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  return !ec;
}

}  // namespace

Status ServerOptions::Validate() const {
  if (host.empty()) return Error(Errc::kValidation, "The server host must not be empty.");
  if (max_header_bytes == 0) {
    return Error(Errc::kValidation, "The server's max_header_bytes must be greater than 0.");
  }
  if (max_body_bytes == 0) {
    return Error(Errc::kValidation, "The server's max_body_bytes must be greater than 0.");
  }
  if (idle_timeout.count() <= 0) {
    return Error(Errc::kValidation, "The server's idle_timeout must be greater than 0 seconds.");
  }
  if (request_timeout.count() <= 0) {
    return Error(Errc::kValidation,
                 "The server's request_timeout must be greater than 0 seconds.");
  }
  return OkStatus();
}

struct Server::Impl {
  std::shared_ptr<Core> core;
  bool started = false;
  bool stopped = false;
  uint16_t port = 0;
};

Server::Server(ServerOptions options, IoThreads& io, Handler& handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<Core>(std::move(options), io.context(), handler);
}

Server::~Server() { Stop(std::chrono::milliseconds(0)); }

Status Server::Start() {
  Core& core = *impl_->core;
  const ServerOptions& options = core.options;
  if (impl_->started) return Error(Errc::kInvalidState, "The server was already started.");
  INFERD_RETURN_IF_ERROR(options.Validate());

  beast::error_code ec;
  tcp::resolver resolver(core.ioc);
  auto results = resolver.resolve(options.host, std::to_string(options.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) {
    return Error(Errc::kUnavailable, fmt::format("Could not resolve the listen address \"{}\": {}.",
                                                 options.host, ec.message()));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  // "localhost" may resolve to both; IPv4 first is what most clients try.
  std::stable_partition(endpoints.begin(), endpoints.end(),
                        [](const tcp::endpoint& e) { return e.address().is_v4(); });
  std::string failure = "no address";
  for (const auto& ep : endpoints) {
    if (Listen(core.acceptor, ep, ec)) break;
    failure = ec.message();
    beast::error_code ignored;
    core.acceptor.close(ignored);
  }
  if (!core.acceptor.is_open()) {
    return Error(Errc::kUnavailable, fmt::format("Could not listen on {}:{}: {}.", options.host,
                                                 options.port, failure));
  }
  const tcp::endpoint bound = core.acceptor.local_endpoint(ec);
  impl_->port = bound.port();
  impl_->started = true;
  {
    std::lock_guard lock(core.mu);
    ++core.live;
  }
  asio::co_spawn(core.acceptor.get_executor(), AcceptLoop(impl_->core, Ticket(impl_->core, nullptr)),
                 [](std::exception_ptr e) {
                   if (e) spdlog::error("The accept loop ended with an exception.");
                 });
  spdlog::info("HTTP server listening on {}", FormatEndpoint(bound));
  return OkStatus();
}

uint16_t Server::port() const { return impl_->port; }

void Server::Stop(std::chrono::milliseconds deadline) {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  const auto until = Clock::now() + deadline;
  std::shared_ptr<Core> core = impl_->core;
  {
    std::lock_guard lock(core->mu);  // orders with Register(): no session slips in after this
    core->stopping = true;
  }
  asio::post(core->acceptor.get_executor(), [core] {
    beast::error_code ec;
    core->acceptor.close(ec);
  });
  // Idle connections close now; busy ones see `stopping` once their response is written.
  for (auto& s : core->Snapshot()) {
    asio::post(s->executor(), [s] {
      if (!s->busy) s->Close();
    });
  }
  if (core->WaitIdle(until)) return;

  auto remaining = core->Snapshot();
  spdlog::warn("Stop deadline passed; closing {} connection(s) with requests in flight.",
               remaining.size());
  for (auto& s : remaining) asio::post(s->executor(), [s] { s->Close(); });
  remaining.clear();
  if (!core->WaitIdle(Clock::now() + kForceCloseMargin)) {
    spdlog::error("HTTP server stop: some connections did not close in time.");
  }
}

}  // namespace inferd::http
