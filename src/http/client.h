// Client: a blocking HTTP/1.1 client with keep-alive connection pooling, for http:// and https://
// (TLS via OpenSSL, peer verified against the system CAs unless told otherwise). Used for SNS
// deliveries, the remote S3 store, and anything else inferd calls out to.
//
// Blocking: call from the blocking pool or a component's own threads, never an I/O thread.
// Thread-safe: many threads may call Do() at once; each call uses its own pooled connection.
//
// Connections: idle keep-alive connections are pooled per (scheme, host, port) and reused (most
// recently used first; ones the server has closed, or idle for over 30 s, are dropped). If a reused
// connection fails before any byte of the response arrived (reset or EOF) and no byte of a
// streamed body was taken from its source yet (a body of up to 64 KiB with a Content-Length is
// read whole before it is sent, and kept: it can always be sent again), the request is sent once
// more on a fresh connection, whatever its method: that failure means the server closed the idle
// connection, not that it processed the request.
#pragma once

#include <atomic>
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
// The Host header for `url`: the host (an IPv6 address in brackets), ":port" unless the scheme's
// default. What Do() sends when the request has none, and what a signer must sign.
std::string HostHeader(const Url& url);

// Whether a failed Do() ran out of the request's whole time (ClientRequest::timeout, else
// ClientOptions::timeout) — the server accepted the request and did not answer in time — rather
// than failing to connect, being refused or losing the connection.
bool IsRequestTimeout(const Error& error);

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect + TLS handshake
  // The whole exchange, per Do() unless the request overrides it (the socket is closed when it
  // expires; time spent inside body_source/body_sink counts too).
  std::chrono::milliseconds timeout{30000};
  size_t max_idle_per_host = 16;
  size_t max_response_body = 64 * 1024 * 1024;  // buffered responses only
  bool verify_tls = true;  // against the system CAs, with the URL's host name (or IP) and SNI
};

struct ClientResponse;

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // absolute http(s) URL
  Headers headers;  // Host is added when absent
  std::string body;
  // When set, the body is read from here instead, in 64 KiB pieces, and never held whole (one of
  // at most 64 KiB with a Content-Length is read whole and sent with the head in one write). Give
  // its Content-Length in `headers` (the source must then produce exactly that many bytes, else
  // kValidation); without one the body is sent chunked, which not every server accepts.
  ByteSource* body_source = nullptr;
  std::optional<std::chrono::milliseconds> timeout;
  // Called once with the final response's status and headers (`body` empty), after the head was
  // read and before any body byte is read or handed to body_sink: a caller streaming the body
  // can decide where it goes (and with which Content-Type). An error from it aborts the
  // exchange (the connection is not reused) and is what Do() returns.
  std::function<Status(const ClientResponse& head)> on_head;
  // When set, the exchange is abandoned soon (within ~50 ms) after *cancel becomes true, in any
  // phase (connect, send, wait, body): Do() returns kUnavailable "... was cancelled" and never
  // retries. For owners that must stop long calls (shutdown).
  const std::atomic<bool>* cancel = nullptr;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;  // empty when streamed to a sink, and for HEAD
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and reads the response. With `body_sink`, the response body is passed to it
  // in pieces (at most 64 KiB) as it arrives, decoded if chunked, instead of being buffered; an
  // error from the sink aborts the exchange and is returned. Errors: kUnavailable (connect, reset,
  // timeout, TLS, with what happened: "connection refused connecting to 127.0.0.1:9"),
  // kValidation (bad URL, method or header), kPayloadTooLarge (buffered body over
  // max_response_body). An HTTP error status is not an Error: it is returned in the response.
  Result<ClientResponse> Do(const ClientRequest& request,
                            const std::function<Status(std::string_view)>& body_sink = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::http
