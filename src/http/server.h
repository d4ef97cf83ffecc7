// Server: the one HTTP/1.1 listener. Accepts connections, reads requests with header/body limits
// and deadlines, hands each complete request to the Handler, writes its response, and keeps the
// connection alive (requests on one connection are answered strictly in order, so pipelining is
// safe). Logs one line per request: method, target, operation, status, latency.
//
// Lifecycle: construct → Start() (binds; port() is then valid) → Stop(deadline) (stops accepting,
// lets in-flight requests finish until the deadline, then closes every connection). Start/Stop are
// called from one control thread; the sessions run on the IoThreads' context.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"

namespace inferd::http {

class IoThreads;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8600;  // 0 = any free port
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 8 * 1024 * 1024;  // buffered bodies (control plane, SNS, small S3 bodies)
  std::chrono::seconds idle_timeout{60};    // keep-alive connection with no request
  // Reading one request, and writing its response; the handler's own time is not bounded.
  std::chrono::seconds request_timeout{300};

  Status Validate() const;
};

// The status line and header block the server writes before `response`'s body: the handler's
// headers (repeated names kept together, values trimmed; Content-Length, Connection and
// Transfer-Encoding left out), then x-amzn-RequestId, Server and Date unless the handler set them,
// Content-Length when `has_length`, and Connection as `keep_alive` needs it for `version` (10 or
// 11). The same bytes Beast's serializer writes for those fields. Appends to `out`.
void FormatResponseHead(const Response& response, std::string_view request_id, unsigned version,
                        bool has_length, std::string_view content_length, bool keep_alive,
                        std::string_view date, std::string& out);

class Server {
 public:
  Server(ServerOptions options, IoThreads& io, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();
  // The bound port (after Start).
  uint16_t port() const;
  // Graceful stop: no new connections; idle keep-alive connections are closed; requests being
  // handled get until `deadline` to finish, then their connections are closed.
  void Stop(std::chrono::milliseconds deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::http
