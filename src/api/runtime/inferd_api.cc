#include "api/runtime/inferd_api.h"

#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <vector>

#include "common/clock.h"
#include "http/uri.h"

namespace inferd::api::runtime {

namespace json = boost::json;

namespace {

constexpr std::string_view kPrefix = "/inferd/";
constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;

std::string Iso(int64_t epoch_ms) {
  return FormatIso8601Millis(
      std::chrono::system_clock::time_point(std::chrono::milliseconds(epoch_ms)));
}

http::Response JsonResponse(const json::value& body, std::string operation) {
  http::Response r;
  r.headers.Add("Content-Type", "application/json");
  r.body = json::serialize(body);
  r.operation = std::move(operation);
  return r;
}

http::Response Fail(const Error& e, const std::string& request_id, std::string operation) {
  http::Response r = MakeErrorResponse(Protocol::kInferd, e, request_id);
  r.operation = std::move(operation);
  return r;
}

// Splits the path after /inferd/ into percent-decoded segments; nullopt on a bad escape.
std::optional<std::vector<std::string>> Segments(std::string_view path) {
  std::vector<std::string> out;
  std::string_view rest = path.substr(kPrefix.size());
  while (true) {
    auto slash = rest.find('/');
    auto decoded = http::PercentDecode(rest.substr(0, slash));
    if (!decoded) return std::nullopt;
    out.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return out;
}

struct ListParams {
  std::vector<queue::InvocationState> states;
  int64_t after = 0;
  int limit = kDefaultLimit;
};

Result<int64_t> ParseInteger(std::string_view name, std::string_view text, int64_t min,
                             int64_t max) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
    return Error(Errc::kValidation, "The " + std::string(name) +
                                        " parameter must be an integer from " +
                                        std::to_string(min) + " to " + std::to_string(max) +
                                        ", not '" + std::string(text) + "'.");
  }
  return n;
}

Result<ListParams> ParseListParams(std::string_view query) {
  ListParams p;
  for (const auto& [name, value] : http::ParseQuery(query)) {
    if (name == "state") {
      std::string_view rest = value;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        auto state = queue::ParseInvocationState(item);
        if (!state) {
          return Error(Errc::kValidation, "Unknown invocation state '" + std::string(item) +
                                              "': use Queued, InProgress, Completed or Failed.");
        }
        p.states.push_back(*state);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (name == "after") {
      auto n = ParseInteger("after", value, 0, INT64_MAX);
      if (!n.ok()) return std::move(n).error();
      p.after = *n;
    } else if (name == "limit") {
      auto n = ParseInteger("limit", value, 1, kMaxLimit);
      if (!n.ok()) return std::move(n).error();
      p.limit = static_cast<int>(*n);
    } else {
      return Error(Errc::kValidation,
                   "Unknown parameter '" + name + "': the list takes state, after and limit.");
    }
  }
  if (p.states.empty()) {
    p.states = {queue::InvocationState::kQueued, queue::InvocationState::kStarted};
  }
  return p;
}

// The JSON shape of one invocation (camelCase members, ISO-8601 times).
json::object InvocationToJson(const dispatch::InvocationStatus& status) {
  const queue::Invocation& inv = status.invocation;
  json::object o;
  o["inferenceId"] = inv.inference_id;
  o["endpointName"] = inv.endpoint;
  o["state"] = std::string(queue::ToString(inv.state));
  o["receivedTime"] = Iso(inv.received_ms);
  if (inv.started_ms > 0) o["startedTime"] = Iso(inv.started_ms);
  if (inv.finished_ms > 0) o["finishedTime"] = Iso(inv.finished_ms);
  if (!inv.variant.empty()) o["variant"] = inv.variant;
  std::string instance = status.instance.empty() ? inv.instance : status.instance;
  if (!instance.empty()) o["instance"] = instance;
  o["attempts"] = inv.attempts;
  if (!inv.input_location.empty()) {
    o["inputLocation"] = inv.input_location;
  } else {
    o["inlineBodyBytes"] = inv.inline_body.size();
  }
  o["outputLocation"] = inv.output_location;
  if (!inv.failure_location.empty()) o["failureLocation"] = inv.failure_location;
  if (!inv.failure_reason.empty()) o["failureReason"] = inv.failure_reason;
  if (status.queue_position) o["queuePosition"] = *status.queue_position;
  if (!inv.content_type.empty()) o["contentType"] = inv.content_type;
  if (!inv.accept.empty()) o["accept"] = inv.accept;
  if (!inv.response_content_type.empty()) o["responseContentType"] = inv.response_content_type;
  o["requestTTLSeconds"] = inv.ttl_seconds;
  o["invocationTimeoutSeconds"] = inv.invocation_timeout_seconds;
  o["notified"] = inv.notified;
  return o;
}

}  // namespace

InferdApi::InferdApi(InvocationBackend& backend, BlockingPool& pool)
    : backend_(backend), pool_(pool) {}

bool InferdApi::RequiresAuth(const http::Request& request) const {
  return !IsMetricsScrape(request);
}

void InferdApi::Handle(http::Request request, const http::sigv4::Identity& identity,
                       http::Responder respond) {
  const std::string& rid = request.request_id;
  if (IsMetricsScrape(request)) {
    pool_.Post([this, respond = std::move(respond)]() mutable {
      http::Response r;
      r.headers.Add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.body = backend_.RenderMetrics();
      r.operation = "Inferd.Metrics";
      respond(std::move(r));
    });
    return;
  }

  auto unknown = [&] {
    respond(Fail(Error(Errc::kUnknownOperation,
                       "inferd has no API at " + request.method + " " + request.path +
                           " (see docs/api.md: GET /inferd/endpoints/NAME/invocations[/ID], "
                           "POST /inferd/endpoints/NAME/invocations/ID/cancel)."),
                 rid, "Inferd.?"));
  };
  if (request.path.substr(0, kPrefix.size()) != kPrefix) return unknown();
  auto segments = Segments(request.path);
  if (!segments || segments->size() < 3 || (*segments)[0] != "endpoints" ||
      (*segments)[1].empty() || (*segments)[2] != "invocations") {
    return unknown();
  }
  const auto& seg = *segments;
  std::string region = identity.region;
  std::string endpoint = seg[1];

  // The operation to run on the pool, and its name for the access log.
  std::function<Result<json::value>()> op;
  std::string name;
  if (seg.size() == 3 && request.method == "GET") {
    name = "Inferd.ListInvocations";
    auto params = ParseListParams(request.query);
    if (!params.ok()) return respond(Fail(params.error(), rid, name));
    op = [this, region, endpoint, p = std::move(params).value()]() -> Result<json::value> {
      // One more than asked: whether there is a next page.
      auto list = backend_.List(region, endpoint, p.states, p.after, p.limit + 1);
      if (!list.ok()) return std::move(list).error();
      json::array items;
      int64_t last_seq = 0;
      bool more = static_cast<int>(list->size()) > p.limit;
      for (int i = 0; i < static_cast<int>(list->size()) && i < p.limit; ++i) {
        items.push_back(InvocationToJson((*list)[i]));
        last_seq = (*list)[i].invocation.seq;
      }
      json::object out{{"Invocations", std::move(items)}};
      if (more) out["NextToken"] = std::to_string(last_seq);
      return json::value(std::move(out));
    };
  } else if (seg.size() == 4 && request.method == "GET" && !seg[3].empty()) {
    name = "Inferd.GetInvocation";
    op = [this, region, endpoint, id = seg[3]]() -> Result<json::value> {
      auto status = backend_.Describe(region, endpoint, id);
      if (!status.ok()) return std::move(status).error();
      return json::value(InvocationToJson(*status));
    };
  } else if (seg.size() == 5 && request.method == "POST" && !seg[3].empty() && seg[4] == "cancel") {
    name = "Inferd.CancelInvocation";
    op = [this, region, endpoint, id = seg[3]]() -> Result<json::value> {
      auto status = backend_.Cancel(region, endpoint, id);
      if (!status.ok()) return std::move(status).error();
      return json::value(InvocationToJson(*status));
    };
  } else {
    return unknown();
  }
  pool_.Post([op = std::move(op), name = std::move(name), rid = request.request_id,
              respond = std::move(respond)]() mutable {
    Result<json::value> result = CallGuarded(name, op);
    respond(result.ok() ? JsonResponse(*result, name) : Fail(result.error(), rid, name));
  });
}

}  // namespace inferd::api::runtime
