// One coroutine per connection, on the io_context of one I/O thread (IoThreads runs each context on
// exactly one thread, so a session's handlers never run concurrently and need no strand): wait for
// the first byte (idle timeout), read the header and body (request timeout), hand the request to
// the Handler, wait for its Responder (which may fire on any thread), write the response, repeat.
// Requests on a connection are therefore answered strictly in order.
//
// GCC 12.2 destroys a lambda temporary written inside a co_await expression twice (so a captured
// shared_ptr is released twice): lambdas passed to awaited calls are always named locals first.
//
// Timeouts: a session has one deadline for the socket operations it is waiting on (idle, request,
// lingering close), lifted while it waits on the handler or a body pipe instead of the peer, and
// one timer that enforces it lazily: it sleeps until the deadline it last saw and, woken, closes
// the socket if the deadline has passed or sleeps again until the new one. Moving a deadline later
// — every request, with the default timeouts — touches no timer (beast::tcp_stream armed and
// cancelled one around every read and write, and ran each cancellation's handler).
//
// Lifetimes: Core (options, acceptor, session registry) is shared by the Server, the accept loop
// and every session; a Session is shared by its coroutine and the Responder of its current request.
// So a Responder called after the Server is gone only posts to an I/O thread and finds nobody
// waiting.
#include "http/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "http/body_pipe.h"
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
constexpr size_t kBodyChunkBytes = 64 * 1024;  // streamed request bodies
// How long a closing connection keeps discarding what the peer still sends (see LingeringClose).
constexpr auto kLingerTime = std::chrono::seconds(1);
// After the Stop() deadline sockets are force-closed; this is how long Stop() then waits for the
// sessions to notice.
constexpr auto kForceCloseMargin = std::chrono::seconds(2);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct Session;

// State shared by the Server, its accept loop and its sessions.
struct Core {
  Core(ServerOptions o, IoThreads& io, Handler& h)
      : options(std::move(o)), io(io), handler(h), acceptor(io.context(0)) {}

  // The context the next accepted connection runs on: each in turn.
  asio::io_context& NextContext() {
    return io.context(static_cast<int>(next_context++ % static_cast<unsigned>(io.size())));
  }

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
  IoThreads& io;
  Handler& handler;
  tcp::acceptor acceptor;     // on the first context
  unsigned next_context = 0;  // the accept loop's only
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
  Ticket(Ticket&& other) noexcept : core_(std::move(other.core_)), session_(other.session_) {}
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
  Session(std::shared_ptr<Core> c, tcp::socket sock)
      : core(std::move(c)), socket(std::move(sock)), watchdog(socket.get_executor()) {
    beast::error_code ec;
    tcp::endpoint peer = socket.remote_endpoint(ec);
    remote = ec ? "unknown" : FormatEndpoint(peer);
    socket.set_option(tcp::no_delay(true), ec);
    ec = {};
    socket.non_blocking(true, ec);  // WriteAll's direct writes (never a blocking one)
    direct_writes = !ec;
  }
  asio::any_io_executor executor() { return socket.get_executor(); }

  // The socket operations from now on must be done within `d`, or the socket is closed (they then
  // fail). Session's I/O thread only.
  void ExpiresAfter(Clock::duration d) { SetDeadline(Clock::now() + d); }
  // No deadline: the session waits on something other than the peer.
  void NoDeadline() { SetDeadline(Clock::time_point::max()); }
  void SetDeadline(Clock::time_point t) {
    deadline = t;
    if (t < watched) watchdog.cancel();  // wakes the watchdog to sleep until the earlier time
  }

  // Session's I/O thread only. Closes the socket (pending reads and writes fail), breaks the
  // body streams, and abandons the request being handled, if any.
  void Close() {
    if (closed) return;
    closed = true;
    beast::error_code ec;
    socket.close(ec);
    watchdog.cancel();
    if (request_pipe) {
      request_pipe->Fail(
          Error(Errc::kUnavailable, "The connection closed before the request body was read."));
    }
    if (response_pipe) response_pipe->Abandon();
    if (waiter) std::exchange(waiter, nullptr)(std::nullopt);
  }

  std::shared_ptr<Core> core;
  tcp::socket socket;
  asio::steady_timer watchdog;  // enforces `deadline` (Watch)
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point watched = Clock::time_point::max();  // the time the watchdog sleeps until
  bool timed_out = false;                                // the watchdog closed the socket
  bool direct_writes = false;                            // the socket is non-blocking
  std::string remote;
  // Touched only on the session's I/O thread.
  bool busy = false;          // from the first byte of a request until its response is written
  bool closed = false;        // Close() was called
  bool unread_input = false;  // closing with part of a request unread (see LingeringClose)
  uint64_t exchange = 0;      // numbers the requests, so a late Responder cannot answer a newer one
  bool answered = false;      // the current exchange got its response (or lost its responder)
  std::optional<std::optional<Response>> ready;  // the response, until the session awaits it
  // Resumes the coroutine waiting for the handler's response; nullopt = no response will come.
  std::function<void(std::optional<Response>)> waiter;
  std::shared_ptr<BodyPipe> request_pipe;   // while a streamed request body is being fed
  std::shared_ptr<BodyPipe> response_pipe;  // while a streamed response body is being sent
  std::string head;                         // the response head being written (reused)
};

// The session's watchdog (see the top): until the session closes, sleeps until the deadline and
// closes the socket once it has passed. Started once per session.
void Watch(std::shared_ptr<Session> s) {
  if (s->closed) return;  // Close() has cancelled the timer already: nothing would wake it
  s->watched = s->deadline;
  s->watchdog.expires_at(s->watched);
  s->watchdog.async_wait([s = std::move(s)](const beast::error_code&) mutable {
    if (s->closed) return;
    if (Clock::now() >= s->deadline) {
      s->timed_out = true;
      beast::error_code ec;
      s->socket.close(ec);  // what waits on it fails; the session then ends as after any error
      return;
    }
    Watch(std::move(s));
  });
}

// `ec` of a socket operation as the peer should hear of it: a timeout, not a cancellation, when
// the watchdog closed the socket.
beast::error_code Reason(const Session& s, beast::error_code ec) {
  if (ec && s.timed_out) return beast::error::timeout;
  return ec;
}

// Parses into `parser` what `buffer` already holds, without reading: Beast's async_read_header and
// async_read complete through a post when they need no read, which costs one more pass through
// the reactor (an epoll_wait) per request. True when `done(parser)` holds afterwards; false with
// `ec` clear when more must be read (an async read then goes on from the parser's state), or with
// `ec` set when the bytes are malformed.
template <typename Parser, typename Done>
bool ParseBuffered(Parser& parser, beast::flat_buffer& buffer, Done done, beast::error_code& ec) {
  while (!done(parser) && buffer.size() > 0) {
    const size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      return false;
    }
    if (ec || used == 0) return false;
  }
  return done(parser);
}

// Writes `buffers` whole: directly while the socket takes them (a response head and a small body
// nearly always fit), the rest asynchronously. async_write alone completes through a post even when
// its first attempt wrote everything, one more pass through the reactor per response.
template <typename Buffers>
asio::awaitable<beast::error_code> WriteAll(Session& s, const Buffers& buffers) {
  beast::buffers_suffix<Buffers> rest(buffers);
  beast::error_code ec;
  if (!s.direct_writes) {
    std::tie(ec, std::ignore) = co_await asio::async_write(s.socket, rest, kUseTuple);
    co_return ec;
  }
  while (beast::buffer_bytes(rest) > 0) {
    const size_t n = s.socket.write_some(rest, ec);  // the socket is non-blocking
    rest.consume(n);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      std::tie(ec, std::ignore) = co_await asio::async_write(s.socket, rest, kUseTuple);
      break;
    }
    if (ec) break;
  }
  co_return ec;
}

// Gives exchange `id` its response (nullopt: the responder was dropped). Session's I/O thread only.
void Complete(Session& s, uint64_t id, std::optional<Response> response) {
  if (id != s.exchange || s.answered || s.closed) return;
  s.answered = true;
  if (s.request_pipe) {
    // Answered before the whole body arrived: stop feeding it (the connection then closes).
    s.request_pipe->Fail(
        Error(Errc::kUnavailable, "The request was answered before its body was read."));
    beast::error_code ec;
    s.socket.cancel(ec);
  }
  if (s.waiter) {
    std::exchange(s.waiter, nullptr)(std::move(response));
  } else {
    s.ready.emplace(std::move(response));
  }
}

// Hands exchange `id`'s response (nullopt: the responder was dropped) to the session's I/O thread.
void Deliver(std::shared_ptr<Session> s, uint64_t id, std::optional<Response> response) {
  auto ex = s->executor();
  asio::post(ex, [s = std::move(s), id, response = std::move(response)]() mutable {
    Complete(*s, id, std::move(response));
  });
}

// Shared by every copy of one request's Responder. If the last copy goes away uncalled, the
// session is told, so a handler that drops its responder cannot hang the connection.
struct ResponderState {
  ResponderState(std::shared_ptr<Session> s, uint64_t i) : session(std::move(s)), id(i) {}
  ~ResponderState() {
    if (!called.load()) Deliver(std::move(session), id, std::nullopt);
  }
  std::shared_ptr<Session> session;
  const uint64_t id;
  std::atomic<bool> called{false};
};

// Starts a new exchange and calls the handler. Session's I/O thread only.
void StartHandle(const std::shared_ptr<Session>& s, Request request) {
  s->answered = false;
  s->ready.reset();
  auto state = std::make_shared<ResponderState>(s, ++s->exchange);
  Responder responder = [state](Response response) {
    if (state->called.exchange(true)) {
      spdlog::error("A request handler responded twice; the second response was dropped.");
      return;
    }
    Deliver(state->session, state->id, std::move(response));
  };
  state.reset();
  try {
    s->core->handler.Handle(std::move(request), std::move(responder));
  } catch (const std::exception& e) {
    // The responder, if the handler did not keep it, reports the missing response.
    spdlog::error("Request handler threw: {}", e.what());
  }
}

// Completes with the current exchange's response; nullopt if the handler dropped its responder or
// the connection was closed. Session's I/O thread only.
template <typename Token>
auto AsyncAwaitResponse(std::shared_ptr<Session> session, Token&& token) {
  return asio::async_initiate<Token, void(std::optional<Response>)>(
      [](auto handler, std::shared_ptr<Session> s) {
        if (s->ready || s->closed) {
          std::optional<Response> r = s->ready ? std::move(*s->ready) : std::nullopt;
          s->ready.reset();
          asio::post(s->executor(), [h = std::move(handler), r = std::move(r)]() mutable {
            std::move(h)(std::move(r));
          });
          return;
        }
        // std::function needs a copyable target; the completion handler is move-only.
        auto shared = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        s->waiter = [shared](std::optional<Response> r) { (*shared)(std::move(r)); };
      },
      token, std::move(session));
}

// Awaits a BodyPipe operation, whose callback may run on any thread, on the session's I/O thread.
// `start(callback)` begins the operation.
template <typename Signature, typename Start>
auto OnStrand(asio::any_io_executor ex, Start start) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, Signature>(
      [](auto handler, asio::any_io_executor ex, Start start) {
        auto h = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        start([ex, h](auto... args) {
          asio::post(ex, [h, ... a = std::move(args)]() mutable { (*h)(std::move(a)...); });
        });
      },
      asio::use_awaitable, std::move(ex), std::move(start));
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

bool SafeStreamBody(Handler& handler, const Request& head) {
  try {
    return handler.StreamBody(head);
  } catch (const std::exception& e) {
    spdlog::error("Handler::StreamBody threw: {}", e.what());
    return false;
  }
}

// The Date header of responses: formatted once per second per thread.
const std::string& CachedHttpDate() {
  struct Cache {
    std::time_t second = -1;
    std::string text;
  };
  thread_local Cache cache;
  const auto now = std::chrono::system_clock::now();
  const std::time_t second = std::chrono::system_clock::to_time_t(now);
  if (second != cache.second) {
    cache.second = second;
    cache.text = FormatHttpDate(now);
  }
  return cache.text;
}

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// The request as the handler sees it, without the body.
Request MakeRequest(const bhttp::request_header<>& msg, const Session& s) {
  Request r;
  r.method = std::string(msg.method_string());
  r.target = std::string(msg.target());
  std::string_view target = r.target;
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.headers.Reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& field : msg) {
    r.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  r.request_id = NewUuid();
  r.remote = s.remote;
  r.received = Clock::now();
  return r;
}

bool Expects100Continue(const bhttp::request_header<>& msg) {
  auto it = msg.find(bhttp::field::expect);
  return msg.version() >= 11 && it != msg.end() &&
         EqualsIgnoreCase(Trim(it->value()), "100-continue");
}

// What to tell the client about a request that could not be read; nullopt when there is nobody
// to tell (the peer went away, a timeout, or Stop() closed the socket).
std::optional<Error> ReadFailure(const beast::error_code& ec, const ServerOptions& options) {
  static const auto& category = bhttp::make_error_code(bhttp::error::bad_method).category();
  if (ec == bhttp::error::body_limit) {
    return Error(Errc::kPayloadTooLarge,
                 fmt::format("The request body is larger than the limit of {} bytes.",
                             options.max_body_bytes));
  }
  if (ec == bhttp::error::header_limit) {
    return Error(Errc::kValidation,
                 fmt::format("The request header is larger than the limit of {} bytes.",
                             options.max_header_bytes));
  }
  if (ec.category() == category && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    return Error(Errc::kValidation, fmt::format("Malformed HTTP request: {}.", ec.message()));
  }
  return std::nullopt;
}

// Appends one header line as Beast's serializer writes it (value trimmed of spaces and tabs; a
// name or value Beast could not store is refused the same way).
void AppendField(std::string& out, std::string_view name, std::string_view value) {
  if (name.size() + 2 > std::numeric_limits<std::uint16_t>::max()) {
    throw std::length_error("field name too large");
  }
  if (value.size() + 2 > std::numeric_limits<std::uint16_t>::max()) {
    throw std::length_error("field value too large");
  }
  out.append(name).append(": ").append(Trim(value)).append("\r\n");
}

}  // namespace

void FormatResponseHead(const Response& response, std::string_view request_id, unsigned version,
                        bool has_length, std::string_view content_length, bool keep_alive,
                        std::string_view date, std::string& out) {
  const int status = (response.status >= 100 && response.status <= 999) ? response.status : 500;
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char digits[3] = {static_cast<char>('0' + status / 100),
                    static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10)};
  out.append(digits, sizeof digits).push_back(' ');
  out.append(bhttp::obsolete_reason(static_cast<bhttp::status>(status))).append("\r\n");
  // The handler's headers in order, repeated names kept together (as Beast's fields list them);
  // framing headers are the server's.
  const std::vector<Header>& headers = response.headers.all();
  auto is_ours = [](const Header& h) {
    return EqualsIgnoreCase(h.name, "Content-Length") || EqualsIgnoreCase(h.name, "Connection") ||
           EqualsIgnoreCase(h.name, "Transfer-Encoding");
  };
  bool has_request_id = false, has_server = false, has_date = false;
  for (size_t i = 0; i < headers.size(); ++i) {
    const Header& h = headers[i];
    has_request_id = has_request_id || EqualsIgnoreCase(h.name, "x-amzn-RequestId");
    has_server = has_server || EqualsIgnoreCase(h.name, "Server");
    has_date = has_date || EqualsIgnoreCase(h.name, "Date");
    if (is_ours(h)) continue;
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = EqualsIgnoreCase(headers[j].name, h.name);
    if (seen) continue;  // written with its first occurrence
    AppendField(out, h.name, h.value);
    for (size_t j = i + 1; j < headers.size(); ++j) {
      if (EqualsIgnoreCase(headers[j].name, h.name)) {
        AppendField(out, headers[j].name, headers[j].value);
      }
    }
  }
  if (!has_request_id) AppendField(out, "x-amzn-RequestId", request_id);
  if (!has_server) AppendField(out, "Server", "inferd");
  if (!has_date) AppendField(out, "Date", date);
  if (has_length) AppendField(out, "Content-Length", content_length);
  if (version == 10 && keep_alive) AppendField(out, "Connection", "keep-alive");
  if (version != 10 && !keep_alive) AppendField(out, "Connection", "close");
  out.append("\r\n");
}

namespace {

// Writes `response` to `request` and logs the access line. Returns whether the connection may
// carry another request.
asio::awaitable<bool> WriteResponse(std::shared_ptr<Session> s, const Request& request,
                                    Response response, unsigned version, bool keep_alive) {
  const int status = (response.status >= 100 && response.status <= 999) ? response.status : 500;
  std::optional<std::string_view> declared_length;
  for (const Header& h : response.headers.all()) {
    if (EqualsIgnoreCase(h.name, "Content-Length")) {
      declared_length = h.value;  // for HEAD, 304 and streamed bodies; otherwise we count
    } else if (EqualsIgnoreCase(h.name, "Connection")) {
      if (EqualsIgnoreCase(Trim(h.value), "close")) keep_alive = false;
    }
  }

  const bool no_content = status / 100 == 1 || status == 204;  // RFC 9110 §8.6: no length either
  const bool no_body = no_content || status == 304 || request.method == "HEAD";
  std::shared_ptr<BodyPipe> pipe = std::move(response.body_stream);
  if (pipe && no_body) std::exchange(pipe, nullptr)->Abandon();
  bool has_length = false;
  std::string_view content_length;
  char length_digits[24];
  if (no_content) {
  } else if ((no_body || pipe) && declared_length) {
    has_length = true;
    content_length = *declared_length;
  } else if (pipe) {
    keep_alive = false;  // a stream of unknown length ends when the connection closes
  } else {
    has_length = true;
    auto [end, ec] =
        std::to_chars(std::begin(length_digits), std::end(length_digits), response.body.size());
    content_length = std::string_view(length_digits, static_cast<size_t>(end - length_digits));
  }
  if (s->core->stopping) keep_alive = false;
  std::string& head = s->head;
  head.clear();
  FormatResponseHead(response, request.request_id, version, has_length, content_length, keep_alive,
                     CachedHttpDate(), head);
  // The declared length of a streamed body, checked against what the handler sends.
  std::optional<std::string> streamed_length;
  if (pipe && declared_length) streamed_length = std::string(*declared_length);

  const auto timeout = s->core->options.request_timeout;
  s->ExpiresAfter(timeout);
  beast::error_code ec;
  size_t body_bytes = 0;
  std::string stream_failure;
  if (pipe) {
    s->response_pipe = pipe;
    ec = co_await WriteAll(*s, asio::buffer(head));
    while (!ec) {
      auto pop = [pipe](auto done) { pipe->AsyncPop(std::move(done)); };  // named: see top
      s->NoDeadline();  // waiting on the handler, not the peer
      auto [st, chunk] = co_await OnStrand<void(Status, std::string)>(s->executor(), pop);
      if (!st.ok()) {
        stream_failure = st.error().message;
        break;
      }
      if (chunk.empty()) break;
      s->ExpiresAfter(timeout);
      ec = co_await WriteAll(*s, asio::buffer(chunk));
      if (!ec) body_bytes += chunk.size();
    }
    s->response_pipe.reset();
    if (ec) pipe->Abandon();  // unblocks the handler's writer
    if (!stream_failure.empty() || !streamed_length ||
        *streamed_length != std::to_string(body_bytes)) {
      keep_alive = false;  // the framing is broken (or was close-delimited)
    }
  } else if (no_body) {
    ec = co_await WriteAll(*s, asio::buffer(head));
  } else {
    body_bytes = response.body.size();
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head),
                                                    asio::buffer(response.body)};
    ec = co_await WriteAll(*s, buffers);
  }
  ec = Reason(*s, ec);
  if (spdlog::should_log(spdlog::level::info)) {
    const double latency_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - request.received).count();
    std::string note = ec                       ? " (write failed: " + ec.message() + ")"
                       : stream_failure.empty() ? ""
                                                : " (body stream failed: " + stream_failure + ")";
    spdlog::info(
        "{} \"{} {}\" {} {} {} {:.1f}{}", request.remote, request.method, request.target,
        response.operation.empty() ? std::string_view("-") : std::string_view(response.operation),
        status, body_bytes, latency_ms, note);
  }
  co_return !ec && keep_alive && stream_failure.empty();
}

// Sends the handler's rendering of `error` and asks for the connection to be closed.
asio::awaitable<bool> SendError(std::shared_ptr<Session> s, const Request& request,
                                unsigned version, const Error& error) {
  if (s->closed) co_return false;
  s->unread_input = true;
  Response response = SafeErrorResponse(s->core->handler, request, error);
  co_await WriteResponse(s, request, std::move(response), version, /*keep_alive=*/false);
  co_return false;
}

// Feeds the rest of a request body into `pipe` (already in s->request_pipe) while the handler reads
// it. Returns whether the whole body was read (so the connection can carry another request).
asio::awaitable<bool> PumpBody(std::shared_ptr<Session> s, beast::flat_buffer& buffer,
                               bhttp::request_parser<bhttp::buffer_body>& parser,
                               std::shared_ptr<BodyPipe> pipe) {
  std::string chunk;
  bool complete = true;
  while (!parser.is_done()) {
    chunk.resize(kBodyChunkBytes);
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // A streamed body may be large: the timeout limits each read, not the whole body.
    s->ExpiresAfter(s->core->options.request_timeout);
    auto [read_ec, n] = co_await bhttp::async_read(s->socket, buffer, parser, kUseTuple);
    beast::error_code ec = Reason(*s, read_ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    chunk.resize(kBodyChunkBytes - parser.get().body().size);
    if (ec) {
      std::optional<Error> failure = ReadFailure(ec, s->core->options);
      pipe->Fail(failure
                     ? *failure
                     : Error(Errc::kUnavailable,
                             fmt::format("Reading the request body failed: {}.", ec.message())));
      complete = false;
      break;
    }
    if (chunk.empty()) continue;
    auto push = [&pipe, &chunk](auto done) { pipe->AsyncPush(std::move(chunk), done); };
    s->NoDeadline();  // waiting on the handler to take it, not on the peer
    Status pushed = co_await OnStrand<void(Status)>(s->executor(), push);  // named: see top
    if (!pushed.ok()) {  // the handler stopped reading, or answered already
      complete = false;
      break;
    }
  }
  if (complete) pipe->Close();
  s->request_pipe.reset();
  co_return complete;
}

// Reads one request (its first byte is already in `buffer`), has the handler answer it and writes
// the answer. Returns whether the connection may carry another request.
asio::awaitable<bool> ServeRequest(std::shared_ptr<Session> s, beast::flat_buffer& buffer) {
  const ServerOptions& options = s->core->options;
  // The header is read on its own; the body parser is chosen once the handler has seen the head.
  bhttp::request_parser<bhttp::empty_body> head_parser;
  head_parser.header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  head_parser.body_limit(boost::none);  // checked below: streamed bodies have no limit

  s->ExpiresAfter(options.request_timeout);
  beast::error_code ec;
  auto header_done = [](const auto& p) { return p.is_header_done(); };
  if (!ParseBuffered(head_parser, buffer, header_done, ec) && !ec) {
    std::tie(ec, std::ignore) =
        co_await bhttp::async_read_header(s->socket, buffer, head_parser, kUseTuple);
    ec = Reason(*s, ec);
  }
  const bhttp::request_header<>& head_msg = head_parser.get();
  const unsigned version = head_msg.version();
  const bool keep_alive = !ec && head_parser.get().keep_alive();
  Request request = MakeRequest(head_msg, *s);
  if (ec) {
    std::optional<Error> failure = ReadFailure(ec, options);
    if (!failure) co_return false;
    co_return co_await SendError(s, request, version, *failure);
  }

  const bool has_body = !head_parser.is_done();
  const bool stream = has_body && SafeStreamBody(s->core->handler, request);
  if (has_body && !stream && head_parser.content_length().value_or(0) > options.max_body_bytes) {
    // Refused before 100 Continue, so a polite client never sends the body.
    const Error too_large = *ReadFailure(bhttp::error::body_limit, options);
    co_return co_await SendError(s, request, version, too_large);
  }
  if (has_body && Expects100Continue(head_msg)) {
    ec = co_await WriteAll(*s, asio::buffer(kContinue));
    if (ec) co_return false;
  }

  bool body_complete = true;
  if (stream) {
    bhttp::request_parser<bhttp::buffer_body> parser{std::move(head_parser)};
    auto pipe = std::make_shared<BodyPipe>();
    request.body_stream = pipe;
    Request meta = request;
    s->request_pipe = pipe;  // before Handle(): an early response must find it to stop the feed
    StartHandle(s, std::move(request));
    body_complete = co_await PumpBody(s, buffer, parser, pipe);
    request = std::move(meta);
    request.body_stream.reset();
  } else if (has_body) {
    bhttp::request_parser<bhttp::string_body> parser{std::move(head_parser)};
    parser.body_limit(options.max_body_bytes);  // chunked bodies
    parser.eager(true);  // as async_read sets it: put() takes the whole body it is given
    auto message_done = [](const auto& p) { return p.is_done(); };
    if (!ParseBuffered(parser, buffer, message_done, ec) && !ec) {
      std::tie(ec, std::ignore) = co_await bhttp::async_read(s->socket, buffer, parser, kUseTuple);
      ec = Reason(*s, ec);
    }
    if (ec) {
      std::optional<Error> failure = ReadFailure(ec, options);
      if (!failure) co_return false;
      co_return co_await SendError(s, request, version, *failure);
    }
    Request full = request;
    full.body = std::move(parser.get().body());
    StartHandle(s, std::move(full));
  } else {
    StartHandle(s, request);
  }
  // `request` (without its body) outlives the handler call: the log and fallbacks need it.
  s->NoDeadline();  // the handler's time is its own (it may call a model for minutes)
  std::optional<Response> response = co_await AsyncAwaitResponse(s, asio::use_awaitable);
  if (s->closed) co_return false;  // Stop() gave up waiting
  if (!body_complete) s->unread_input = true;
  if (!response) {
    response = SafeErrorResponse(
        s->core->handler, request,
        Error(Errc::kInternal, "The request handler finished without producing a response."));
  }
  co_return co_await WriteResponse(s, request, std::move(*response), version,
                                   keep_alive && body_complete);
}

// Closing a socket with unread input makes the kernel send a reset, which can destroy our last
// response before the peer reads it (e.g. a 413 while the client is still sending). So if input
// may be pending, half-close and discard what the peer still sends for a short while first.
asio::awaitable<void> LingeringClose(std::shared_ptr<Session> s) {
  if (s->closed) co_return;
  beast::error_code ec;
  if (!s->unread_input && s->socket.available(ec) == 0) {
    s->Close();
    co_return;
  }
  s->socket.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    s->ExpiresAfter(kLingerTime);
    std::vector<char> scratch(4096);
    for (;;) {
      auto [rec, n] = co_await s->socket.async_read_some(asio::buffer(scratch), kUseTuple);
      if (rec) break;
    }
  }
  s->Close();
}

asio::awaitable<void> RunSession(std::shared_ptr<Session> s, Ticket ticket) {
  try {
    const ServerOptions& options = s->core->options;
    beast::flat_buffer buffer;
    Watch(s);
    while (!s->closed && !s->core->stopping) {
      if (buffer.size() == 0) {
        // Idle between requests: wait for the first byte of the next one.
        s->ExpiresAfter(options.idle_timeout);
        auto [ec, n] =
            co_await s->socket.async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
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
    asio::io_context& context = core->NextContext();
    auto [ec, socket] = co_await core->acceptor.async_accept(context, kUseTuple);
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
      session->Close();
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
    return Error(Errc::kValidation, "The server's request_timeout must be greater than 0 seconds.");
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
  impl_->core = std::make_shared<Core>(std::move(options), io, handler);
}

Server::~Server() { Stop(std::chrono::milliseconds(0)); }

Status Server::Start() {
  Core& core = *impl_->core;
  const ServerOptions& options = core.options;
  if (impl_->started) return Error(Errc::kInvalidState, "The server was already started.");
  INFERD_RETURN_IF_ERROR(options.Validate());

  beast::error_code ec;
  tcp::resolver resolver(core.io.context(0));
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
  asio::co_spawn(core.acceptor.get_executor(),
                 AcceptLoop(impl_->core, Ticket(impl_->core, nullptr)), [](std::exception_ptr e) {
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
