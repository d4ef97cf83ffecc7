// DockerClient: the Docker Engine API (Docker itself, or Podman's compatible service) over a
// unix socket: HTTP/1.1, one connection per call, unversioned paths (the engine's own API
// version), JSON bodies. Boost.Beast stays inside docker_client.cc.
//
// Blocking, with deadlines: call from the reconciler's thread. A DockerClient is immutable and
// may be shared; each call uses its own connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace inferd::fleet {

struct DockerResponse {
  int status = 0;
  std::string body;
  // The engine's error message ({"message": "..."}), else the body itself; "" on success.
  std::string Message() const;
};

class DockerClient {
 public:
  // `socket_path`: the unix socket (from `docker_host`); `timeout`: per call unless given.
  explicit DockerClient(std::string socket_path,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~DockerClient();

  // One request; `body` is sent as application/json when not empty. kUnavailable when the
  // engine cannot be reached or does not answer within the timeout (the message says how to
  // fix it); any HTTP status is a response.
  Result<DockerResponse> Call(
      std::string_view method, const std::string& target, const std::string& body = "",
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const;

  // A request already sent whose answer is read later: a slow call (POST …/stop?t=30) can run in
  // the engine while inferd starts others.
  class Pending {
   public:
    Pending();
    Pending(Pending&&) noexcept;
    Pending& operator=(Pending&&) noexcept;
    ~Pending();
    // Waits for the answer (at most `timeout`). Once.
    Result<DockerResponse> Finish(std::chrono::milliseconds timeout);

   private:
    friend class DockerClient;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  Result<Pending> Begin(std::string_view method, const std::string& target,
                        const std::string& body = "") const;

 private:
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
};

// "unix:///var/run/docker.sock" (or a bare absolute path) → "/var/run/docker.sock"; kValidation
// for anything else (tcp:// is not supported: the engine must share inferd's filesystem to
// mount the model directory).
Result<std::string> DockerSocketPath(std::string_view docker_host);

// Percent-encodes a query parameter value.
std::string QueryEscape(std::string_view s);

}  // namespace inferd::fleet
