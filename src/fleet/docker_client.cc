// Each call owns a private io_context and runs its asynchronous Beast operations inline on the
// calling thread until they finish or the deadline passes (then the socket is closed, which
// completes them with operation_aborted): a blocking API with real deadlines.
#include "fleet/docker_client.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>

namespace inferd::fleet {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using local = asio::local::stream_protocol;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxBody = 64 << 20;

}  // namespace

struct DockerClient::Pending::Impl {
  asio::io_context ioc{1};
  local::socket socket{ioc};
  beast::flat_buffer buffer;
  std::string what;  // "POST /containers/x/stop" for messages
  std::string socket_path;

  // Runs `start` (an async operation taking a completion handler) until done or `deadline`.
  template <typename Start>
  beast::error_code Run(SteadyClock::time_point deadline, Start&& start) {
    beast::error_code result = asio::error::timed_out;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    ioc.run_until(deadline);
    if (!done) {
      beast::error_code ignored;
      socket.close(ignored);
      ioc.restart();
      ioc.run();
      return asio::error::timed_out;
    }
    return result;
  }

  Error Failed(const std::string& phase, const beast::error_code& ec) const {
    std::string why = ec == asio::error::timed_out ? "no answer in time" : ec.message();
    return Error(Errc::kUnavailable, "the container engine at unix://" + socket_path + " " + phase +
                                         " " + what + ": " + why);
  }
};

std::string DockerResponse::Message() const {
  if (status >= 200 && status < 300) return "";
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto* m = v.as_object().if_contains("message"); m && m->is_string()) {
      return std::string(m->get_string());
    }
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "HTTP " + std::to_string(status) : text;
}

DockerClient::DockerClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}
DockerClient::~DockerClient() = default;

DockerClient::Pending::Pending() = default;
DockerClient::Pending::Pending(Pending&&) noexcept = default;
DockerClient::Pending& DockerClient::Pending::operator=(Pending&&) noexcept = default;
DockerClient::Pending::~Pending() = default;

Result<DockerClient::Pending> DockerClient::Begin(std::string_view method,
                                                  const std::string& target,
                                                  const std::string& body) const {
  Pending p;
  p.impl_ = std::make_unique<Pending::Impl>();
  Pending::Impl& c = *p.impl_;
  c.what = std::string(method) + " " + target;
  c.socket_path = socket_path_;
  auto deadline =
      SteadyClock::now() + std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(10));
  local::endpoint ep(socket_path_);
  beast::error_code ec =
      c.Run(deadline, [&](auto handler) { c.socket.async_connect(ep, handler); });
  if (ec) {
    return Error(Errc::kUnavailable,
                 "cannot reach the container engine at unix://" + socket_path_ + ": " +
                     (ec == asio::error::timed_out ? "no answer in time" : ec.message()) +
                     " (is Docker or `podman system service` running? see docker_host in inferd "
                     "config-reference)");
  }
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "inferd");
  req.set(bhttp::field::connection, "close");
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  ec = c.Run(deadline, [&](auto handler) { bhttp::async_write(c.socket, req, handler); });
  if (ec) return c.Failed("did not take", ec);
  return p;
}

Result<DockerResponse> DockerClient::Pending::Finish(std::chrono::milliseconds timeout) {
  Impl& c = *impl_;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxBody);
  parser.header_limit(64 * 1024);
  beast::error_code ec = c.Run(SteadyClock::now() + timeout, [&](auto handler) {
    bhttp::async_read(c.socket, c.buffer, parser, handler);
  });
  if (ec) return c.Failed("did not answer", ec);
  DockerResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  beast::error_code ignored;
  c.socket.close(ignored);
  return out;
}

Result<DockerResponse> DockerClient::Call(std::string_view method, const std::string& target,
                                          const std::string& body,
                                          std::chrono::milliseconds timeout) const {
  auto pending = Begin(method, target, body);
  if (!pending.ok()) return std::move(pending).error();
  return pending->Finish(timeout.count() > 0 ? timeout : timeout_);
}

Result<std::string> DockerSocketPath(std::string_view host) {
  std::string_view path = host;
  if (path.rfind("unix://", 0) == 0) path.remove_prefix(7);
  if (path.empty() || path.front() != '/') {
    return Error(Errc::kValidation,
                 "docker_host must be unix:///path/to/socket (got \"" + std::string(host) +
                     "\"): the engine must run on this machine to mount model directories");
  }
  return std::string(path);
}

std::string QueryEscape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace inferd::fleet
