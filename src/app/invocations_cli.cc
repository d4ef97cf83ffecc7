#include "app/invocations_cli.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "http/client.h"
#include "http/sigv4.h"
#include "http/uri.h"

namespace inferd::app {

namespace json = boost::json;

namespace {

constexpr int kPageSize = 100;

// What the caller gets back: the parsed JSON answer, or an exit code after printing the problem.
struct Reply {
  std::optional<json::value> body;
  int exit_code = 0;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string FirstOf(std::initializer_list<std::string> values) {
  for (const auto& v : values) {
    if (!v.empty()) return v;
  }
  return "";
}

class ApiClient {
 public:
  explicit ApiClient(const InvocationsOptions& o) : options_(o) {
    region_ = FirstOf({o.region, Env("AWS_REGION"), Env("AWS_DEFAULT_REGION"), "us-east-1"});
    // A server without configured credentials accepts any well-formed signature.
    key_ = FirstOf({o.access_key_id, Env("AWS_ACCESS_KEY_ID"), "inferd-cli"});
    secret_ = FirstOf({o.secret_access_key, Env("AWS_SECRET_ACCESS_KEY"), "inferd-cli"});
  }

  // `path` and `query` already percent-encoded.
  Reply Call(const std::string& method, const std::string& path, const std::string& query) {
    auto url = http::ParseUrl(options_.endpoint_url);
    if (!url.ok()) {
      std::cerr << "inferd invocations: --endpoint-url: " << url.error().message << "\n";
      return {std::nullopt, 2};
    }
    std::string host = http::HostHeader(*url);
    http::Request signed_request;
    signed_request.method = method;
    signed_request.path = path;
    signed_request.query = query;
    signed_request.headers.Add("Host", host);
    http::sigv4::SignRequest(signed_request, key_, secret_, region_, "sagemaker",
                             std::chrono::system_clock::now());
    http::ClientRequest request;
    request.method = method;
    request.url = url->scheme + "://" + host + path + (query.empty() ? "" : "?" + query);
    request.headers = signed_request.headers;
    auto response = client_.Do(request);
    if (!response.ok()) {
      std::cerr << "inferd invocations: cannot reach inferd at " << options_.endpoint_url << ": "
                << response.error().message
                << " (is it running? give its address with --endpoint-url)\n";
      return {std::nullopt, 2};
    }
    boost::system::error_code ec;
    json::value body = json::parse(response->body, ec);
    if (response->status < 200 || response->status > 299) {
      std::string code(response->headers.Get("x-amzn-ErrorType").value_or(""));
      std::string message = response->body;
      if (!ec && body.is_object()) {
        const auto& o = body.get_object();
        if (code.empty() && o.contains("ErrorCode"))
          code = json::value_to<std::string>(o.at("ErrorCode"));
        if (o.contains("message")) message = json::value_to<std::string>(o.at("message"));
      }
      std::cerr << "inferd invocations: " << (code.empty() ? "error" : code) << " (HTTP "
                << response->status << "): " << message << "\n";
      return {std::nullopt, 1};
    }
    if (ec) {
      std::cerr << "inferd invocations: the answer from " << options_.endpoint_url
                << " is not JSON: " << response->body.substr(0, 200) << "\n";
      return {std::nullopt, 1};
    }
    return {std::move(body), 0};
  }

 private:
  const InvocationsOptions& options_;
  std::string region_, key_, secret_;
  http::Client client_;
};

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

void PrettyPrint(std::ostream& out, const json::value& v, int indent = 0) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.empty()) {
      out << "{}";
      return;
    }
    out << "{\n";
    std::size_t i = 0;
    for (const auto& [k, item] : o) {
      out << pad << "  " << json::serialize(json::string(k)) << ": ";
      PrettyPrint(out, item, indent + 2);
      out << (++i < o.size() ? ",\n" : "\n");
    }
    out << pad << "}";
  } else if (v.is_array()) {
    const auto& a = v.get_array();
    if (a.empty()) {
      out << "[]";
      return;
    }
    out << "[\n";
    for (std::size_t i = 0; i < a.size(); ++i) {
      out << pad << "  ";
      PrettyPrint(out, a[i], indent + 2);
      out << (i + 1 < a.size() ? ",\n" : "\n");
    }
    out << pad << "]";
  } else {
    out << json::serialize(v);
  }
}

// The fields of one invocation, one per line, in a fixed order.
void PrintInvocation(const json::object& inv) {
  static constexpr std::string_view kOrder[] = {"inferenceId",
                                                "endpointName",
                                                "state",
                                                "queuePosition",
                                                "receivedTime",
                                                "startedTime",
                                                "finishedTime",
                                                "variant",
                                                "instance",
                                                "attempts",
                                                "inputLocation",
                                                "inlineBodyBytes",
                                                "outputLocation",
                                                "failureLocation",
                                                "failureReason",
                                                "contentType",
                                                "accept",
                                                "responseContentType",
                                                "requestTTLSeconds",
                                                "invocationTimeoutSeconds",
                                                "notified"};
  for (auto key : kOrder) {
    if (inv.contains(key)) {
      std::string label(key);
      label.resize(26, ' ');
      std::cout << label << Str(inv, key) << "\n";
    }
  }
}

void PrintTable(const json::array& items) {
  struct Column {
    std::string_view title, key;
  };
  static constexpr Column kColumns[] = {
      {"INFERENCE ID", "inferenceId"}, {"STATE", "state"},       {"POSITION", "queuePosition"},
      {"RECEIVED", "receivedTime"},    {"ATTEMPTS", "attempts"}, {"INSTANCE", "instance"}};
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> width;
  rows.emplace_back();
  for (const auto& c : kColumns) {
    rows.back().emplace_back(c.title);
    width.push_back(c.title.size());
  }
  for (const auto& item : items) {
    rows.emplace_back();
    for (std::size_t i = 0; i < std::size(kColumns); ++i) {
      std::string cell = item.is_object() ? Str(item.get_object(), kColumns[i].key) : "";
      if (cell.empty()) cell = "-";
      width[i] = std::max(width[i], cell.size());
      rows.back().push_back(std::move(cell));
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      if (i + 1 < row.size()) cell.resize(width[i] + 2, ' ');
      line += cell;
    }
    std::cout << line << "\n";
  }
}

std::string InvocationsPath(const std::string& endpoint) {
  return "/inferd/endpoints/" + http::AwsUriEncode(endpoint, false) + "/invocations";
}

int List(ApiClient& api, const InvocationsOptions& o) {
  std::string states;
  for (const auto& s : o.states) states += (states.empty() ? "" : ",") + s;
  json::array all;
  std::string after;
  while (true) {
    int page = kPageSize;
    if (o.limit > 0) page = std::min<int>(page, o.limit - static_cast<int>(all.size()));
    std::string query = "limit=" + std::to_string(page);
    if (!states.empty()) query += "&state=" + http::AwsUriEncode(states, false);
    if (!after.empty()) query += "&after=" + http::AwsUriEncode(after, false);
    Reply reply = api.Call("GET", InvocationsPath(o.endpoint), query);
    if (!reply.body) return reply.exit_code;
    const json::object& body = reply.body->as_object();
    for (const auto& item : body.at("Invocations").as_array()) all.push_back(item);
    after = Str(body, "NextToken");
    if (after.empty() || (o.limit > 0 && static_cast<int>(all.size()) >= o.limit)) break;
  }
  if (o.output == "json") {
    PrettyPrint(std::cout, json::object{{"Invocations", std::move(all)}});
    std::cout << "\n";
  } else if (all.empty()) {
    std::cout << "No " << (states.empty() ? "queued or in-progress" : states) << " invocations on "
              << o.endpoint << ".\n";
  } else {
    PrintTable(all);
  }
  return 0;
}

int One(ApiClient& api, const InvocationsOptions& o, const std::string& method,
        const std::string& suffix) {
  Reply reply = api.Call(
      method,
      InvocationsPath(o.endpoint) + "/" + http::AwsUriEncode(o.inference_id, false) + suffix, "");
  if (!reply.body) return reply.exit_code;
  if (o.output == "json") {
    PrettyPrint(std::cout, *reply.body);
    std::cout << "\n";
  } else {
    PrintInvocation(reply.body->as_object());
  }
  return 0;
}

}  // namespace

int RunInvocations(const InvocationsOptions& options) {
  if (options.output != "table" && options.output != "json") {
    std::cerr << "inferd invocations: --output must be table or json\n";
    return 2;
  }
  ApiClient api(options);
  if (options.command == "list") return List(api, options);
  if (options.command == "get") return One(api, options, "GET", "");
  if (options.command == "cancel") return One(api, options, "POST", "/cancel");
  std::cerr << "inferd invocations: unknown command " << options.command << "\n";
  return 2;
}

}  // namespace inferd::app
