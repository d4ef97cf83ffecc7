// Client: a blocking HTTP/1.1 client with keep-alive connection pooling, for http:// and https://
// (TLS via OpenSSL, peer verified against the system CAs unless told otherwise). Used for SNS
// deliveries, the remote S3 store, and anything else inferd calls out to.
//
// Blocking: call from the blocking pool or a component's own threads, never an I/O thread.
// Thread-safe: many threads may call Do() at once; each call uses its own pooled connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/body_pipe.h"
#include "http/message.h"

namespace inferd::http {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  uint16_t port = 0;   // defaulted from the scheme when absent
  std::string target;  // path + query, at least "/"
};
// Parses an absolute http(s) URL. kValidation when malformed.
Result<Url> ParseUrl(std::string_view url);

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};  // whole exchange, per Do() unless overridden
  size_t max_idle_per_host = 16;
  size_t max_response_body = 64 * 1024 * 1024;  // buffered responses only
  bool verify_tls = true;
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // absolute http(s) URL
  Headers headers;  // Host is added when absent
  std::string body;
  // When set, the body is read from here instead (Content-Length must then be in `headers`).
  ByteSource* body_source = nullptr;
  std::optional<std::chrono::milliseconds> timeout;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty when streamed to a sink
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and reads the response. With `body_sink`, the response body is passed to it
  // in pieces as it arrives (an error from the sink aborts the exchange) instead of being
  // buffered. Errors: kUnavailable (connect/reset/timeout, with what happened), kValidation (bad
  // URL), kPayloadTooLarge (buffered body over max_response_body). An HTTP error status is not an
  // Error: it is returned in the response.
  Result<ClientResponse> Do(const ClientRequest& request,
                            const std::function<Status(std::string_view)>& body_sink = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::http
