// Each Connection owns a private io_context, and Do() runs that connection's asynchronous Beast
// operations inline on the calling thread (start one operation, run the context until it is done,
// or until the deadline, when the socket is closed). That is what lets a blocking API have real
// deadlines without a timer per operation (beast::tcp_stream's timeouts arm and cancel one for
// every read and write: two timerfd_settime calls each). A connection is used by one Do() at a
// time; the pool hands it from one thread to the next under its mutex. Name resolution is
// synchronous (getaddrinfo): Asio's async resolver would start a thread per io_context.
#include "http/client.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace inferd::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kPieceBytes = 64 * 1024;
// What one read of a response asks for (the connection buffer's capacity): Beast reads as much
// as the buffer holds, at least 512 bytes, so an empty buffer would read 512 bytes at a time.
constexpr size_t kReadBytes = 64 * 1024;
// How often a cancellable exchange looks at its cancel flag.
constexpr auto kCancelPoll = std::chrono::milliseconds(50);
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;
// Idle connections older than this are not reused: servers close idle connections after a while
// (often 60 s), and reusing one just as the server closes it costs a retry or, for a request that
// cannot be resent, a failure.
constexpr auto kMaxIdleAge = std::chrono::seconds(30);

bool IsIpAddress(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

uint16_t DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// "host:port", with brackets around an IPv6 address.
std::string HostPort(const Url& url) {
  if (url.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", url.host, url.port);
  return fmt::format("{}:{}", url.host, url.port);
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// One keep-alive connection (see the file comment).
struct Connection {
  explicit Connection(std::string k) : key(std::move(k)) { buffer.reserve(kReadBytes); }

  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

  // Runs one asynchronous operation to completion on this thread; returns its error, or
  // beast::error::timeout when `deadline` passed first. Closing the socket (at the deadline, or
  // when *cancel became true) completes the pending operation with operation_aborted.
  template <typename Start>
  beast::error_code Run(Start&& start) {
    beast::error_code result = asio::error::operation_aborted;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    bool timed_out = false;
    bool closed = false;
    while (!done) {
      const auto now = SteadyClock::now();
      if (!closed && now >= deadline) {
        timed_out = closed = true;
        tcp().close();
      }
      auto until = closed ? SteadyClock::time_point::max() : deadline;
      if (cancel != nullptr && !closed) until = std::min(until, now + kCancelPoll);
      ioc.run_until(until);
      if (!done && !closed && cancel != nullptr && cancel->load()) {
        closed = true;
        tcp().close();
      }
    }
    return timed_out ? beast::error_code(beast::error::timeout) : result;
  }

  // An idle connection is stale when the peer closed it (EOF is readable) or sent something
  // unsolicited (a TLS close_notify, a 408): either way it cannot carry another request.
  bool LooksStale() {
    char byte;
    ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  const std::string key;
  asio::io_context ioc{1};  // declared before the streams, which must be destroyed first
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> tls;
  // Bytes read past the last response (empty when pooled). Reserved to kReadBytes: a small
  // response arrives in one read, a large one in 64 KiB reads.
  beast::flat_buffer buffer;
  bool reused = false;  // taken from the pool: may have been closed by the peer meanwhile
  const std::atomic<bool>* cancel = nullptr;  // the current Do()'s ClientRequest::cancel
  // When Run gives up: the current Do()'s deadline (during a connect, the connect's).
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  std::chrono::steady_clock::time_point idle_since;  // when it went back to the pool
};

// One Do() call.
struct Call {
  Call(const ClientRequest& r, const Url& u, const std::function<Status(std::string_view)>& s,
       std::chrono::milliseconds t)
      : request(r),
        url(u),
        sink(s),
        key(u.scheme + "://" + HostPort(u)),
        host_port(HostPort(u)),
        timeout(t),
        deadline(SteadyClock::now() + t) {}

  const ClientRequest& request;
  const Url& url;
  const std::function<Status(std::string_view)>& sink;
  const std::string key;        // pool key: scheme://host:port
  const std::string host_port;  // for messages
  const std::chrono::milliseconds timeout;
  const SteadyClock::time_point deadline;
  bool source_touched = false;  // bytes were taken from body_source: the request cannot be resent
  // A streamed body of at most kPieceBytes, read whole by the first attempt (see Exchange).
  std::optional<std::string> small_body;
};

// The outcome of one attempt on one connection.
struct Attempt {
  Status status;
  bool retryable = false;   // failed before anything was received: a fresh connection may retry
  bool keep_alive = false;  // on success: the connection may go back to the pool
};

// The request's whole time ran out: "timed out after <ms> ms waiting for <url>" (a connect
// timeout says "timed out after <ms> ms connecting to ..."). IsRequestTimeout recognises it.
constexpr std::string_view kTimedOutPrefix = "timed out after ";
constexpr std::string_view kTimedOutWaiting = " ms waiting for ";

Error TimedOut(const Call& call) {
  const std::string_view target = call.url.target;
  const std::string_view path = target.substr(0, target.find('?'));
  return Error(Errc::kUnavailable,
               fmt::format("{}{}{}{}://{}{}", kTimedOutPrefix, call.timeout.count(),
                           kTimedOutWaiting, call.url.scheme, HostPort(call.url), path));
}

bool IsReset(const beast::error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

bool IsClosed(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated;
}

// "connection reset by 127.0.0.1:8080 while reading the response".
Error NetworkError(const beast::error_code& ec, const Call& call, std::string_view doing) {
  if (ec == beast::error::timeout) return TimedOut(call);
  if (IsReset(ec)) {
    return Error(Errc::kUnavailable,
                 fmt::format("connection reset by {} while {}", call.host_port, doing));
  }
  if (IsClosed(ec)) {
    return Error(Errc::kUnavailable,
                 fmt::format("connection closed by {} while {}", call.host_port, doing));
  }
  return Error(Errc::kUnavailable,
               fmt::format("{} while {} ({})", ec.message(), doing, call.host_port));
}

Error TooLarge(const Call& call, size_t limit) {
  return Error(Errc::kPayloadTooLarge,
               fmt::format("The response body from {} is larger than the limit of {} bytes.",
                           call.host_port, limit));
}

using RequestMessage = bhttp::request<bhttp::buffer_body>;

Error BodyLengthMismatch(uint64_t declared, uint64_t read) {
  return Error(
      Errc::kValidation,
      fmt::format("The request body source {} Content-Length {} ({} bytes read).",
                  read > declared ? "produced more than" : "ended before", declared, read));
}

// Reads a body of `declared` bytes whole; kValidation when the source ends elsewhere.
Result<std::string> ReadWhole(ByteSource& source, uint64_t declared) {
  std::string body(declared + 1, '\0');  // one more: a source producing too much is caught
  uint64_t got = 0;
  while (got <= declared) {
    Result<size_t> n = source.Read(body.data() + got, body.size() - got);
    if (!n.ok()) return std::move(n).error();
    if (*n == 0) break;
    got += *n;
  }
  if (got != declared) return BodyLengthMismatch(declared, got);
  body.resize(declared);
  return body;
}

// Streams request.body_source into the serializer in kPieceBytes pieces. `declared` is the
// Content-Length, if any (otherwise the body is sent chunked).
template <typename Stream>
Attempt SendSource(Stream& stream, Connection& c, Call& call, RequestMessage& msg,
                   bhttp::request_serializer<bhttp::buffer_body>& sr,
                   std::optional<uint64_t> declared) {
  std::vector<char> piece(kPieceBytes);
  uint64_t sent = 0;
  for (;;) {
    Result<size_t> n = call.request.body_source->Read(piece.data(), piece.size());
    call.source_touched = true;
    if (!n.ok()) return {std::move(n).error()};
    sent += *n;
    if (declared && (sent > *declared || (*n == 0 && sent < *declared))) {
      return {BodyLengthMismatch(*declared, sent)};
    }
    msg.body().data = *n == 0 ? nullptr : piece.data();
    msg.body().size = *n;
    msg.body().more = *n != 0;
    beast::error_code ec =
        c.Run([&](auto handler) { bhttp::async_write(stream, sr, std::move(handler)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return {NetworkError(ec, call, "sending the request body")};
    if (*n == 0) return {};
  }
}

// Writes the request and reads the response on an established connection.
template <typename Stream>
Attempt Exchange(Stream& stream, Connection& c, Call& call, size_t max_body, ClientResponse& out) {
  const ClientRequest& req = call.request;
  const bool streamed = req.body_source != nullptr;
  c.deadline = call.deadline;

  RequestMessage msg;
  msg.version(11);
  msg.method_string(req.method);
  msg.target(call.url.target);
  std::optional<uint64_t> declared;
  for (const Header& h : req.headers.all()) {
    if (EqualsIgnoreCase(h.name, "Content-Length")) {
      if (!streamed) continue;  // we count the buffered body ourselves
      uint64_t v = 0;
      auto [p, e] = std::from_chars(h.value.data(), h.value.data() + h.value.size(), v);
      if (e != std::errc() || p != h.value.data() + h.value.size()) {
        return {Error(Errc::kValidation, fmt::format("Invalid Content-Length \"{}\".", h.value))};
      }
      declared = v;
    } else if (EqualsIgnoreCase(h.name, "Transfer-Encoding")) {
      continue;  // we choose the framing
    }
    msg.insert(h.name, h.value);
  }
  if (!req.headers.Has("Host")) msg.set(bhttp::field::host, HostHeader(call.url));
  if (!req.headers.Has("User-Agent")) msg.set(bhttp::field::user_agent, "inferd");
  const bool wants_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (streamed && !declared) msg.chunked(true);
  if (!streamed && (!req.body.empty() || wants_body)) msg.content_length(req.body.size());

  // ---- request ----
  // A streamed body of known length up to kPieceBytes is read whole first: head and body then
  // leave in one write (the server gets the request in one piece, not the head and then the
  // body), and a retry on a fresh connection can send the bytes again.
  if (streamed && declared && *declared <= kPieceBytes && !call.small_body) {
    Result<std::string> whole = ReadWhole(*req.body_source, *declared);
    if (!whole.ok()) {
      call.source_touched = true;
      return {std::move(whole).error()};
    }
    call.small_body = std::move(whole).value();
  }
  const std::string* whole = streamed ? (call.small_body ? &*call.small_body : nullptr) : &req.body;
  bhttp::request_serializer<bhttp::buffer_body> sr(msg);
  beast::error_code ec;
  if (whole) {
    msg.body().data = const_cast<char*>(whole->data());
    msg.body().size = whole->size();
    msg.body().more = false;
    ec = c.Run([&](auto handler) { bhttp::async_write(stream, sr, std::move(handler)); });
  } else {
    msg.body().data = nullptr;
    msg.body().more = true;
    ec = c.Run([&](auto handler) { bhttp::async_write_header(stream, sr, std::move(handler)); });
  }
  // A stale connection shows up here (reset) or as EOF before the response: nothing of the
  // request can have been processed, so it may be resent on a fresh connection.
  if (ec) {
    return {NetworkError(ec, call, "sending the request"),
            ec != beast::error::timeout && !call.source_touched};
  }
  if (!whole) {
    Attempt sent = SendSource(stream, c, call, msg, sr, declared);
    if (!sent.status.ok()) return sent;
  }

  // ---- response head (interim 1xx responses are skipped) ----
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  for (;;) {
    parser.emplace();
    parser->header_limit(kMaxResponseHeaderBytes);
    parser->body_limit(boost::none);
    parser->skip(req.method == "HEAD");
    ec = c.Run([&](auto handler) {
      bhttp::async_read_header(stream, c.buffer, *parser, std::move(handler));
    });
    if (ec) {
      const bool nothing_received = !parser->got_some() && c.buffer.size() == 0;
      return {NetworkError(ec, call, "reading the response"),
              nothing_received && !call.source_touched && ec != beast::error::timeout &&
                  (IsClosed(ec) || IsReset(ec))};
    }
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
  }
  auto& res = parser->get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  if (req.on_head) {
    Status s = req.on_head(out);
    if (!s.ok()) return {std::move(s)};
  }

  // ---- response body ----
  const bool buffered = !call.sink;
  if (buffered && !parser->is_done() && parser->content_length() &&
      *parser->content_length() > max_body) {
    return {TooLarge(call, max_body)};
  }
  std::vector<char> piece(parser->is_done() ? 0 : kPieceBytes);
  while (!parser->is_done()) {
    res.body().data = piece.data();
    res.body().size = piece.size();
    ec = c.Run(
        [&](auto handler) { bhttp::async_read(stream, c.buffer, *parser, std::move(handler)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return {NetworkError(ec, call, "reading the response body")};
    const size_t n = piece.size() - res.body().size;
    if (n == 0) continue;
    if (!buffered) {
      Status s = call.sink(std::string_view(piece.data(), n));
      if (!s.ok()) return {std::move(s)};
    } else {
      if (out.body.size() + n > max_body) return {TooLarge(call, max_body)};
      out.body.append(piece.data(), n);
    }
  }
  Attempt done;
  done.keep_alive = res.keep_alive() && msg.keep_alive() && !parser->need_eof() &&
                    c.buffer.size() == 0 && res.result_int() != 101;
  return done;
}

}  // namespace

bool IsRequestTimeout(const Error& e) {
  return e.code == Errc::kUnavailable && e.message.starts_with(kTimedOutPrefix) &&
         e.message.find(kTimedOutWaiting) != std::string::npos;
}

std::string HostHeader(const Url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != DefaultPort(url.scheme)) host += ":" + std::to_string(url.port);
  return host;
}

Result<Url> ParseUrl(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return Error(Errc::kValidation, fmt::format("Invalid URL \"{}\": {}.", text, why));
  };
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      return invalid("it contains a space or a control character");
    }
  }
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos) return invalid("expected http://host[:port]/path");
  Url url;
  for (char ch : text.substr(0, sep)) {
    url.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (url.scheme != "http" && url.scheme != "https") {
    return invalid("only http and https are supported");
  }
  std::string_view rest = text.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (authority.find('@') != std::string_view::npos) {
    return invalid("user information (user:password@) is not supported");
  }
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid("unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    beast::error_code ec;
    asio::ip::make_address_v6(url.host, ec);
    if (ec) return invalid("bad IPv6 address");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("unexpected characters after the IPv6 address");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != authority.rfind(':')) return invalid("IPv6 addresses must be in brackets");
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (url.host.empty()) return invalid("missing host");
  url.port = DefaultPort(url.scheme);
  if (has_port && !port.empty()) {
    unsigned value = 0;
    auto [p, e] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (e != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return invalid("bad port");
    }
    url.port = static_cast<uint16_t>(value);
  }
  url.target = target.empty()          ? "/"
               : target.front() == '?' ? "/" + std::string(target)
                                       : std::string(target);
  return url;
}

struct Client::Impl {
  explicit Impl(ClientOptions o) : options(std::move(o)) {}

  // Made on first use: with OpenSSL 3, loading the system CAs costs tens of milliseconds, which
  // clients that only speak http:// should not pay.
  ssl::context& TlsContext() {
    std::call_once(tls_once, [this] {
      tls.emplace(ssl::context::tls_client);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      beast::error_code ec;
      if (options.verify_tls) tls->set_default_verify_paths(ec);
      if (ec) spdlog::warn("Could not load the system CA certificates: {}", ec.message());
    });
    return *tls;
  }

  // A pooled connection to `key` that still looks alive, or null.
  std::unique_ptr<Connection> TakeIdle(const std::string& key) {
    for (;;) {
      std::unique_ptr<Connection> c;
      {
        std::lock_guard lock(mu);
        auto it = idle.find(key);
        if (it == idle.end() || it->second.empty()) return nullptr;
        c = std::move(it->second.back());
        it->second.pop_back();
      }
      if (SteadyClock::now() - c->idle_since < kMaxIdleAge && !c->LooksStale()) {
        c->reused = true;
        return c;
      }
    }
  }

  void Release(std::unique_ptr<Connection> c) {
    c->idle_since = SteadyClock::now();
    c->cancel = nullptr;
    std::unique_ptr<Connection> evicted;  // closed outside the lock
    std::lock_guard lock(mu);
    auto& list = idle[c->key];
    if (list.size() >= options.max_idle_per_host) {
      if (list.empty()) return;
      evicted = std::move(list.front());
      list.erase(list.begin());
    }
    list.push_back(std::move(c));
  }

  Result<std::unique_ptr<Connection>> Connect(const Call& call) {
    const Url& url = call.url;
    auto c = std::make_unique<Connection>(call.key);
    c->cancel = call.request.cancel;
    beast::error_code ec;
    tcp::resolver resolver(c->ioc);
    auto endpoints =
        resolver.resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service, ec);
    if (ec) {
      return Error(Errc::kUnavailable,
                   fmt::format("could not resolve \"{}\": {}", url.host, ec.message()));
    }
    if (url.scheme == "https") {
      c->tls.emplace(c->ioc, TlsContext());
    } else {
      c->plain.emplace(c->ioc);
    }
    // The TLS handshake is part of connecting: both share connect_timeout.
    const auto connect_deadline =
        std::min(SteadyClock::now() + options.connect_timeout, call.deadline);
    auto timed_out = [&](std::string_view doing) {
      if (connect_deadline == call.deadline) return TimedOut(call);
      return Error(Errc::kUnavailable,
                   fmt::format("timed out after {} ms {} {}", options.connect_timeout.count(),
                               doing, call.host_port));
    };
    c->deadline = connect_deadline;
    ec = c->Run([&](auto handler) { c->tcp().async_connect(endpoints, std::move(handler)); });
    if (ec == beast::error::timeout) return timed_out("connecting to");
    if (ec) {
      const std::string what = ec == asio::error::connection_refused ? "connection refused"
                               : IsReset(ec)                         ? "connection reset"
                                                                     : ec.message();
      return Error(Errc::kUnavailable, fmt::format("{} connecting to {}", what, call.host_port));
    }
    c->tcp().socket().set_option(tcp::no_delay(true), ec);
    if (!c->tls) return c;

    SSL* handle = c->tls->native_handle();
    const bool ip = IsIpAddress(url.host);
    if (!ip) SSL_set_tlsext_host_name(handle, url.host.c_str());  // SNI
    if (options.verify_tls) {
      c->tls->set_verify_mode(ssl::verify_peer);
      if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url.host.c_str());
      } else {
        SSL_set1_host(handle, url.host.c_str());
      }
    } else {
      c->tls->set_verify_mode(ssl::verify_none);
    }
    ec = c->Run([&](auto handler) {
      c->tls->async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec == beast::error::timeout) return timed_out("in the TLS handshake with");
    if (ec) {
      const long verify = SSL_get_verify_result(handle);
      std::string detail = options.verify_tls && verify != X509_V_OK
                               ? fmt::format("certificate verification failed: {}",
                                             X509_verify_cert_error_string(verify))
                               : ec.message();
      return Error(Errc::kUnavailable,
                   fmt::format("TLS handshake with {} failed: {}", call.host_port, detail));
    }
    return c;
  }

  const ClientOptions options;
  std::once_flag tls_once;
  std::optional<ssl::context> tls;  // set once by TlsContext()
  std::mutex mu;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;  // guarded by mu
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() = default;

Result<ClientResponse> Client::Do(const ClientRequest& request,
                                  const std::function<Status(std::string_view)>& body_sink) {
  Result<Url> url = ParseUrl(request.url);
  if (!url.ok()) return std::move(url).error();
  if (!IsToken(request.method)) {
    return Error(Errc::kValidation, fmt::format("Invalid HTTP method \"{}\".", request.method));
  }
  for (const Header& h : request.headers.all()) {
    if (!IsToken(h.name) || h.value.find_first_of("\r\n") != std::string::npos) {
      return Error(Errc::kValidation, fmt::format("Invalid request header \"{}\".", h.name));
    }
  }
  Call call(request, *url, body_sink, request.timeout.value_or(impl_->options.timeout));

  // A cancelled request stops at the next step (an exchange in progress is abandoned by
  // Connection::Run) and is never retried.
  auto cancelled = [&] { return request.cancel != nullptr && request.cancel->load(); };
  auto cancelled_error = [&] {
    return Error(Errc::kUnavailable,
                 fmt::format("the request to {} was cancelled", call.host_port));
  };
  for (int attempt = 0;; ++attempt) {
    if (cancelled()) return cancelled_error();
    // The retry always uses a fresh connection: other idle ones may be just as stale.
    std::unique_ptr<Connection> c = attempt == 0 ? impl_->TakeIdle(call.key) : nullptr;
    if (c) {
      c->cancel = request.cancel;
    } else {
      Result<std::unique_ptr<Connection>> fresh = impl_->Connect(call);  // watches request.cancel
      if (!fresh.ok()) return cancelled() ? cancelled_error() : std::move(fresh).error();
      c = std::move(*fresh);
    }
    ClientResponse response;
    const size_t max_body = impl_->options.max_response_body;
    Attempt a = c->tls ? Exchange(*c->tls, *c, call, max_body, response)
                       : Exchange(*c->plain, *c, call, max_body, response);
    if (a.status.ok()) {
      if (a.keep_alive) impl_->Release(std::move(c));
      return response;
    }
    if (cancelled()) return cancelled_error();
    if (attempt == 0 && c->reused && a.retryable) {
      spdlog::debug("Retrying {} {} on a fresh connection: {}", request.method, call.key,
                    a.status.error().message);
      continue;
    }
    return std::move(a.status).error();
  }
}

}  // namespace inferd::http
