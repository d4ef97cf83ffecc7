// Shared start-up for inferd's built-in model servers (containers/): the SageMaker hosting
// container contract (spec §7.1) as environment variables, and a main loop that serves an
// http::Handler until SIGTERM or SIGINT.
//
// Lifecycle of a model server's main():
//   BlockTerminationSignals()      first, before any thread exists (threads inherit the mask);
//   ReadModelServerEnv()           the contract's variables;
//   ... load the model, create the BlockingPool and the Handler ...
//   RunModelServer(...)            binds, prints "<name> listening on HOST:PORT" on stdout (tests
//                                  and people read the port from it), waits for a signal, stops
//                                  the server gracefully; then main stops its pool and returns 0.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"
#include "http/server.h"

namespace inferd::containers {

struct ModelServerEnv {
  std::string host = "0.0.0.0";             // SAGEMAKER_BIND_HOST (inferd's runtime: 127.0.0.1)
  uint16_t port = 8080;                     // SAGEMAKER_BIND_TO_PORT; 0 = any free port
  int workers = 1;                          // SAGEMAKER_MODEL_SERVER_WORKERS; default: CPU count
  std::string model_dir = "/opt/ml/model";  // SM_MODEL_DIR
};

// The value of an environment variable; nullopt when unset or empty.
std::optional<std::string> GetEnv(const char* name);

// An unsigned integer environment variable in [min, max]; nullopt when unset or empty; an error
// naming the variable when it is malformed or out of range.
Result<std::optional<uint64_t>> GetEnvUint(const char* name, uint64_t min, uint64_t max);

// A boolean flag: unset, "", "0", "false", "no", "off" (any case) are false; anything else true.
bool GetEnvFlag(const char* name);

// Reads the contract's variables. `default_workers` applies when SAGEMAKER_MODEL_SERVER_WORKERS
// is unset (0 = the number of CPUs).
Result<ModelServerEnv> ReadModelServerEnv(int default_workers = 0);

// Sets the log level from INFERD_LOG_LEVEL (trace, debug, info, warn, error, critical, off), or
// `default_level` when unset. The server logs one access line per request at info.
Status InitModelServerLogging(std::string_view default_level);

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts later) and
// returns the set for RunModelServer to wait on.
sigset_t BlockTerminationSignals();

struct RunOptions {
  std::string name;  // "inferd-xgboost": prefixes the listening line and errors
  http::ServerOptions server;
  int io_threads = 2;
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(20)};
};

// Serves `handler` until one of `signals` arrives, then stops accepting, lets in-flight requests
// finish within the grace period and returns 0. Returns 1 (after printing why on stderr) when
// the server cannot start.
//   before_stop: runs after the signal, before the server stops (e.g. to cut waits short);
//   after_stop:  runs once the server has stopped, while the I/O threads still exist — stop the
//                handler's BlockingPool here, so no task responds after they are gone.
int RunModelServer(const RunOptions& options, http::Handler& handler, const sigset_t& signals,
                   const std::function<void()>& before_stop,
                   const std::function<void()>& after_stop);

// Helpers for handlers.
http::Response TextResponse(int status, std::string body,
                            std::string content_type = "text/plain; charset=utf-8");

// True when argv asks for serving: no argument or "serve" (the hosting contract starts containers
// with `serve`). Prints usage and sets `exit_code` otherwise.
bool WantsServe(int argc, char** argv, const char* name, const char* description, int* exit_code);

}  // namespace inferd::containers
