// inferd-loadgen's settings: what to load (InvokeEndpointAsync on inferd, or POST /invocations
// straight at a model server), how (open loop at a rate, or closed loop with N connections), and
// whether completion notifications are collected by the built-in SNS HTTP sink.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"

namespace inferd::bench {

enum class Mode {
  kInvoke,    // POST /endpoints/{name}/async-invocations on inferd (SigV4, service sagemaker)
  kDirect,    // POST /invocations on a model server (the floor: one model call)
  kSinkOnly,  // send nothing: count notifications whose InferenceId starts with --id-prefix
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "host:port" or "http://host:port[/]" → kValidation naming `what`.
Result<HostPort> ParseHostPort(const std::string& text, const std::string& what);

struct LoadOptions {
  Mode mode = Mode::kInvoke;
  HostPort target;  // inferd (kInvoke) or the model server (kDirect)

  // kInvoke: what each InvokeEndpointAsync carries.
  std::string endpoint;
  std::string input_location;  // s3://bucket/key
  std::string content_type;    // X-Amzn-SageMaker-Content-Type ("" = none)
  std::string accept;          // X-Amzn-SageMaker-Accept ("" = none)
  int ttl_seconds = 0;         // X-Amzn-SageMaker-RequestTTLSeconds (0 = not sent)
  std::string region = "us-east-1";
  std::string access_key_id = "AKIDEXAMPLE";
  std::string secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

  // kDirect: body size (random bytes, application/octet-stream).
  uint64_t payload_bytes = 1024;

  // Load shape. rate > 0: open loop (a request is due every 1/rate s whether or not earlier ones
  // were answered; latency counts from the due time). rate == 0: closed loop, each connection
  // sends its next request when the previous one is answered.
  double rate = 0;
  int connections = 64;
  int threads = 1;               // sender threads, each with its share of rate and connections
  double duration_seconds = 5;   // stop sending after this long
  uint64_t max_requests = 0;     // stop after this many requests (0 = no limit)
  uint64_t max_outstanding = 0;  // closed loop: at most this many sent but not yet completed
  double warmup_seconds = 0;     // requests due in the first seconds are sent but not measured

  // Notifications (kInvoke with a sink, kSinkOnly).
  std::string sink_listen;               // "127.0.0.1:PORT" ("" = no sink: accept figures only)
  double wait_completions_seconds = 30;  // after the load, wait this long at most for the rest
  int wait_confirmations = 0;  // SubscriptionConfirmations to answer before starting the load
  double wait_confirmations_seconds = 30;
  std::string id_prefix;         // InferenceIds are <prefix>-<thread>-<seq> ("" = random)
  uint64_t expect = 0;           // kSinkOnly: stop after this many distinct completions
  double timeout_seconds = 600;  // kSinkOnly: give up after this long

  bool verbose = false;

  // kValidation naming the bad option.
  Status Validate() const;
};

// Parses argv (CLI11). On --help or a usage error, prints and returns the exit code in `exit_code`
// with an empty result.
std::optional<LoadOptions> ParseArgs(int argc, char** argv, int* exit_code);

}  // namespace inferd::bench
