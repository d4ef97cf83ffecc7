#include "options.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <iostream>

namespace inferd::bench {

Result<HostPort> ParseHostPort(const std::string& text, const std::string& what) {
  std::string_view s = text;
  if (s.starts_with("http://")) s.remove_prefix(7);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error(Errc::kValidation,
                 what + " must be HOST:PORT or http://HOST:PORT, not \"" + text + "\"");
  }
  HostPort hp;
  hp.host = std::string(s.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const auto port = s.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return Error(Errc::kValidation, what + ": \"" + std::string(port) + "\" is not a port number");
  }
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

Status LoadOptions::Validate() const {
  auto bad = [](std::string m) { return Status(Error(Errc::kValidation, std::move(m))); };
  if (threads < 1 || threads > 16) return bad("--threads must be between 1 and 16");
  if (connections < threads) return bad("--connections must be at least --threads");
  if (rate < 0) return bad("--rate must be ≥ 0 (0: closed loop)");
  if (duration_seconds <= 0 && max_requests == 0 && mode != Mode::kSinkOnly) {
    return bad("give --duration > 0 or --requests N");
  }
  if (warmup_seconds < 0 || (warmup_seconds > 0 && warmup_seconds >= duration_seconds)) {
    return bad("--warmup must be ≥ 0 and shorter than --duration");
  }
  switch (mode) {
    case Mode::kInvoke:
      if (target.port == 0) return bad("--target HOST:PORT (inferd) is required");
      if (endpoint.empty()) return bad("--endpoint NAME is required");
      if (!input_location.starts_with("s3://")) {
        return bad("--input s3://BUCKET/KEY (the InputLocation) is required");
      }
      if (max_outstanding > 0 && sink_listen.empty()) {
        return bad("--max-outstanding needs --sink (completions free the window)");
      }
      if (wait_confirmations > 0 && sink_listen.empty()) {
        return bad("--wait-confirmations needs --sink");
      }
      break;
    case Mode::kDirect:
      if (target.port == 0) return bad("--direct HOST:PORT is required");
      if (!sink_listen.empty() || max_outstanding > 0) {
        return bad("--direct has no notifications: drop --sink / --max-outstanding");
      }
      break;
    case Mode::kSinkOnly:
      if (sink_listen.empty()) return bad("--sink-only needs --sink HOST:PORT");
      if (id_prefix.empty()) return bad("--sink-only needs --id-prefix (whose completions count)");
      if (expect == 0) return bad("--sink-only needs --expect N (> 0)");
      break;
  }
  if (id_prefix.find_first_of(" \t") != std::string::npos ||
      (mode != Mode::kSinkOnly &&
       (id_prefix.size() > 40 || id_prefix.find(',') != std::string::npos))) {
    return bad(
        "--id-prefix must be ≤ 40 printable characters without spaces or commas "
        "(--sink-only: a comma-separated list)");
  }
  return OkStatus();
}

std::optional<LoadOptions> ParseArgs(int argc, char** argv, int* exit_code) {
  LoadOptions o;
  std::string target, direct;
  bool sink_only = false;
  CLI::App app{
      "inferd-loadgen: load for InvokeEndpointAsync (SigV4, as botocore sends it), or POST\n"
      "/invocations straight at a model server (--direct); counts completions from SNS\n"
      "notifications delivered to its own HTTP sink. Prints one JSON line of results.\n"
      "See bench/README.md."};
  app.add_option("--target", target, "inferd's HOST:PORT or http://HOST:PORT");
  app.add_option("--direct", direct, "Model server HOST:PORT: POST /invocations instead");
  app.add_flag("--sink-only", sink_only,
               "Send nothing; count completions with --id-prefix until --expect");
  app.add_option("--endpoint", o.endpoint, "Endpoint name");
  app.add_option("--input", o.input_location, "InputLocation s3://BUCKET/KEY");
  app.add_option("--content-type", o.content_type, "X-Amzn-SageMaker-Content-Type");
  app.add_option("--accept", o.accept, "X-Amzn-SageMaker-Accept");
  app.add_option("--ttl-seconds", o.ttl_seconds, "X-Amzn-SageMaker-RequestTTLSeconds");
  app.add_option("--region", o.region, "Region to sign for")->capture_default_str();
  app.add_option("--access-key-id", o.access_key_id, "Access key")->capture_default_str();
  app.add_option("--secret-access-key", o.secret_access_key, "Secret key");
  app.add_option("--payload-bytes", o.payload_bytes, "--direct: body size")->capture_default_str();
  app.add_option("--rate", o.rate, "Open loop: requests per second (0: closed loop)")
      ->capture_default_str();
  app.add_option("--connections", o.connections, "Connections (closed loop: concurrency)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Sender threads")->capture_default_str();
  app.add_option("--duration", o.duration_seconds, "Seconds of load")->capture_default_str();
  app.add_option("--requests", o.max_requests, "Stop after this many requests (0: no limit)");
  app.add_option("--max-outstanding", o.max_outstanding,
                 "Closed loop: at most N sent and not yet completed (needs --sink)");
  app.add_option("--warmup", o.warmup_seconds, "Seconds at the start not measured");
  app.add_option("--sink", o.sink_listen, "Listen HOST:PORT for SNS notifications");
  app.add_option("--wait-completions", o.wait_completions_seconds,
                 "After the load, wait at most this long for outstanding completions")
      ->capture_default_str();
  app.add_option("--wait-confirmations", o.wait_confirmations,
                 "Answer this many SubscriptionConfirmations before sending");
  app.add_option("--id-prefix", o.id_prefix, "InferenceId prefix (default: random)");
  app.add_option(
      "--expect", o.expect,
      "--sink-only: distinct completions to wait for (over every --id-prefix listed: a,b,c)");
  app.add_option("--timeout", o.timeout_seconds, "--sink-only: give up after this long")
      ->capture_default_str();
  app.add_flag("-v,--verbose", o.verbose, "Progress on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }
  auto fail = [&](const std::string& message) {
    std::cerr << "inferd-loadgen: " << message << "\n";
    *exit_code = 2;
    return std::nullopt;
  };
  if (!direct.empty() + !target.empty() + sink_only > 1) {
    return fail("choose one of --target, --direct and --sink-only");
  }
  o.mode = sink_only ? Mode::kSinkOnly : !direct.empty() ? Mode::kDirect : Mode::kInvoke;
  if (!target.empty() || !direct.empty()) {
    auto hp =
        ParseHostPort(direct.empty() ? target : direct, direct.empty() ? "--target" : "--direct");
    if (!hp.ok()) return fail(hp.error().message);
    o.target = *hp;
  }
  if (auto st = o.Validate(); !st.ok()) return fail(st.error().message);
  return o;
}

}  // namespace inferd::bench
