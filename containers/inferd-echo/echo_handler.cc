#include "inferd-echo/echo_handler.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>
#include <utility>

#include "model_server/model_server.h"

extern char** environ;

namespace inferd::echo {
namespace {

using containers::TextResponse;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A whole number in [min, max] from a header; nullopt when malformed.
std::optional<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max) {
  text = Trim(text);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

bool Truthy(std::optional<std::string_view> v) {
  if (!v) return false;
  std::string_view t = Trim(*v);
  return !t.empty() && t != "0" && !http::EqualsIgnoreCase(t, "false") &&
         !http::EqualsIgnoreCase(t, "no");
}

[[noreturn]] void Crash(const std::string& why) {
  std::string line = "inferd-echo: " + why + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  _exit(3);
}

std::string EnvironmentJson() {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    vars.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  boost::json::object o;
  for (auto& [k, v] : vars) o[k] = v;
  return boost::json::serialize(o);
}

// {"dir": D, "files": {relative path: first KiB of content}, "writable": bool}: what the server
// sees of its model directory, and whether it could create a file there.
std::string ModelDirJson(const std::string& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> sorted;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string content(1024, '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(in.gcount()));
    sorted[fs::relative(it->path(), dir, ec).string()] = content;
  }
  boost::json::object files;
  for (auto& [path, content] : sorted) files[path] = content;
  std::string probe = dir + "/.inferd-echo-write-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  bool writable = fd >= 0;
  if (writable) {
    ::close(fd);
    ::unlink(probe.c_str());
  }
  return boost::json::serialize(
      boost::json::object{{"dir", dir}, {"files", std::move(files)}, {"writable", writable}});
}

}  // namespace

EchoHandler::EchoHandler(EchoOptions options, BlockingPool& pool,
                         std::chrono::steady_clock::time_point started, DurableLog* durable)
    : options_(options), pool_(pool), started_(started), durable_(durable) {}

void EchoHandler::Handle(http::Request request, http::Responder respond) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  http::Response r;
  if (request.path == "/ping" && get) {
    if (options_.fail_ping) {
      r = TextResponse(503, "echo: failing /ping as asked (ECHO_FAIL_PING)\n");
    } else if (std::chrono::steady_clock::now() < started_ + options_.startup_delay) {
      r = TextResponse(503, "echo: still starting (ECHO_STARTUP_DELAY_MS)\n");
    } else {
      r = TextResponse(200, "");
    }
    r.operation = "Ping";
  } else if (request.path == "/stats" && get) {
    r = TextResponse(
        200,
        "{\"requests\":" + std::to_string(requests_.load()) +
            ",\"in_flight\":" + std::to_string(in_flight_.load()) +
            ",\"max_in_flight\":" + std::to_string(max_in_flight_.load()) +
            (durable_ ? ",\"durable_syncs\":" + std::to_string(durable_->syncs()) : std::string()) +
            "}",
        "application/json");
    r.operation = "Stats";
  } else if (request.path == "/invocations" && request.method == "POST") {
    Invoke(request, std::move(respond));
    return;
  } else {
    r = TextResponse(404, "inferd-echo serves GET /ping, POST /invocations and GET /stats.\n");
  }
  respond(std::move(r));
}

void EchoHandler::Invoke(const http::Request& request, http::Responder respond) {
  const uint64_t n = ++requests_;
  if (options_.crash_after > 0 && n > options_.crash_after) {
    Crash("crashing on request " + std::to_string(n) +
          " as asked (ECHO_CRASH_AFTER=" + std::to_string(options_.crash_after) + ")");
  }
  if (Truthy(request.headers.Get("X-Echo-Crash"))) Crash("crashing as asked (X-Echo-Crash)");

  int status = options_.status;
  if (auto h = request.headers.Get("X-Echo-Status")) {
    auto v = ParseInt(*h, 200, 599);
    if (!v) {
      respond(TextResponse(400, "echo: X-Echo-Status must be a status code from 200 to 599\n"));
      return;
    }
    status = static_cast<int>(*v);
  }
  std::chrono::milliseconds delay = options_.delay;
  if (auto h = request.headers.Get("X-Echo-Delay-Ms")) {
    auto v = ParseInt(*h, 0, 24LL * 3600 * 1000);
    if (!v) {
      respond(TextResponse(400, "echo: X-Echo-Delay-Ms must be a whole number of milliseconds\n"));
      return;
    }
    delay = std::chrono::milliseconds(*v);
  }

  const int64_t now = ++in_flight_;
  int64_t seen = max_in_flight_.load();
  while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
  }
  if (delay.count() == 0) {
    Finish(request.body, Answer(request, status), std::move(respond));
    return;
  }
  auto shared = std::make_shared<http::Request>(request);
  pool_.Post([this, shared, status, delay, respond = std::move(respond)]() mutable {
    Sleep(delay);
    Finish(shared->body, Answer(*shared, status), std::move(respond));
  });
}

void EchoHandler::Finish(std::string_view body, http::Response r, http::Responder respond) {
  if (durable_ == nullptr) {
    --in_flight_;
    respond(std::move(r));
    return;
  }
  durable_->Append(body, [this, r = std::move(r), respond = std::move(respond)](Status st) mutable {
    --in_flight_;
    if (st.ok()) {
      respond(std::move(r));
    } else {
      respond(TextResponse(500, "echo: " + st.error().message + "\n"));
    }
  });
}

http::Response EchoHandler::Answer(const http::Request& request, int status) const {
  http::Response r;
  r.operation = "Invocations";
  if (status < 200 || status > 299) {
    r = TextResponse(status, "echo: failing with " + std::to_string(status) + " as asked");
  } else if (Truthy(request.headers.Get("X-Echo-Env"))) {
    r = TextResponse(status, EnvironmentJson(), "application/json");
  } else if (Truthy(request.headers.Get("X-Echo-Model"))) {
    r = TextResponse(status, ModelDirJson(options_.model_dir), "application/json");
  } else {
    r.status = status;
    r.body = request.body;
    r.headers.Set(
        "Content-Type",
        std::string(request.headers.Get("Content-Type").value_or("application/octet-stream")));
  }
  if (status == 204) r.body.clear();
  if (auto attrs = request.headers.Get("X-Amzn-SageMaker-Custom-Attributes")) {
    r.headers.Set("X-Amzn-SageMaker-Custom-Attributes", std::string(*attrs));
  }
  r.operation = "Invocations";
  return r;
}

void EchoHandler::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
}

void EchoHandler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

http::Response EchoHandler::ErrorResponse(const http::Request& request, const Error& error) {
  int status = error.code == Errc::kPayloadTooLarge ? 413
               : error.code == Errc::kInternal      ? 500
                                                    : 400;
  return TextResponse(status, "echo: " + error.message + "\n");
}

}  // namespace inferd::echo
