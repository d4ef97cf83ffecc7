// HTTP request/response values exchanged between the server and the API front ends, and the
// Handler contract. Deliberately free of Beast/Asio so every API can include it cheaply.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace inferd::http {

class BodyPipe;  // body_pipe.h

struct Header {
  std::string name;
  std::string value;
};

// Ordered header list with case-insensitive lookup (names keep the case the peer sent).
// Copies share the list until one of them changes it (copy on write), so copying a request for
// the access log or an error fallback costs no allocation per header.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // Replaces every header of that name with one value.
  void Set(std::string_view name, std::string value);
  void Remove(std::string_view name);
  // Room for `n` headers in all (before a series of Add).
  void Reserve(size_t n);
  // First value of that name, if any.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  const std::vector<Header>& all() const;
  bool empty() const { return items_ == nullptr || items_->empty(); }

 private:
  // The list, unshared (cloned first if another copy still refers to it).
  std::vector<Header>& Mutable();

  std::shared_ptr<std::vector<Header>> items_;  // null = no headers
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// An HTTP date (RFC 7231 IMF-fixdate, always GMT): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string FormatHttpDate(std::chrono::system_clock::time_point t);

struct Request {
  std::string method;  // "GET", "POST", ... (upper case as sent)
  std::string target;  // raw request-target, e.g. "/b/k%20x?list-type=2"
  std::string path;    // the target's path, still percent-encoded
  std::string query;   // the target's query without '?', still percent-encoded ("" if none)
  Headers headers;
  std::string body;  // the whole body, unless it is streamed
  // Set instead of `body` when the handler chose to stream it (Handler::StreamBody): the server
  // feeds it while Handle() runs; the handler reads it (blocking, from the pool) to the end.
  std::shared_ptr<BodyPipe> body_stream;
  std::string request_id;  // generated per request; the server echoes it as x-amzn-RequestId
  std::string remote;      // peer "ip:port"
  std::chrono::steady_clock::time_point received;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is streamed from it instead of `body`: the handler must set Content-Length,
  // call the Responder, then write exactly that many bytes into the pipe and Close() it (or Fail()
  // it, which makes the server close the connection mid-body).
  std::shared_ptr<BodyPipe> body_stream;
  // What the access log names this request as, e.g. "SageMaker.CreateModel" (set by the API).
  std::string operation;
};

// Completes a request. Must be called exactly once, from any thread.
using Responder = std::function<void(Response)>;

// The server's only view of the APIs. Called on an I/O thread: implementations must not block
// (post blocking work elsewhere and call `respond` when done).
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void Handle(Request request, Responder respond) = 0;
  // Called with the request head before any body byte is read. true: the body is streamed through
  // request.body_stream (no max_body_bytes limit) and Handle() is called right away; false: the
  // body is buffered into request.body (up to max_body_bytes) before Handle().
  virtual bool StreamBody(const Request& head) { return false; }
  // Formats a transport-level failure (body too large, malformed request) in the protocol the
  // request was aimed at. `request` has headers but possibly no body.
  virtual Response ErrorResponse(const Request& request, const Error& error) = 0;
};

}  // namespace inferd::http
