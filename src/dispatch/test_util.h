// Test harness for dispatch/: real stores (FilesystemStore, InvocationStore, CatalogStore +
// Catalog), a real Notifier whose deliveries go to a recording FakeSender (driven with
// RunOnce), real inferd-echo model servers (containers/testing's ChildProcess), and one FakeClock
// for everything (model calls and the loop's waits still take real time).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/testing/test_support.h"
#include "dispatch/dispatcher.h"
#include "http/client.h"
#include "notify/notifier.h"
#include "notify/testing.h"
#include "queue/invocation_store.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"
#include "testing/child_process.h"

namespace inferd::dispatch::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

inline constexpr const char* kRegion = "us-east-1";
inline constexpr const char* kAccount = "123456789012";

using queue::InvocationState;
using store::testing::PatternSource;
using test_support::TempDir;
using test_support::WaitFor;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class Harness {
 public:
  Harness() {
    store::FilesystemStoreOptions so;
    so.root = dir.path() / "objects";
    so.clock = &clock;
    so.fsync = false;
    objects = std::move(store::FilesystemStore::Open(so)).value();
    for (const char* b : {"input", "output", "failure"}) EXPECT_TRUE(objects->CreateBucket(b).ok());
    OpenQueue();
    catalog_store = std::move(catalog::CatalogStore::Open(dir.path() / "catalog.db")).value();
    catalog = std::make_unique<catalog::Catalog>(*catalog_store, clock, kAccount);
    catalog->SetEndpointObserver([this](catalog::EndpointChange c, const catalog::Resource& r) {
      if (dispatcher) dispatcher->OnEndpointChange(c, r);
    });
    notify::NotifyOptions no;
    no.data_dir = dir.path() / "notify";
    std::filesystem::create_directories(no.data_dir);
    no.account_id = kAccount;
    no.public_url = "http://127.0.0.1:9";
    no.auto_confirm = true;
    notifier = std::move(notify::Notifier::Open(no, clock, sender.fn())).value();
    options.account_id = kAccount;
    options.worker_threads = 8;
    options.aux_threads = 2;
    options.expiry_sweep_interval = 50ms;
    options.capacity_poll_interval = 20ms;
    options.failed_instance_cooldown = 200ms;
    options.connect_timeout = 1000ms;
    options.sync_timeout = 5000ms;
    options.sync_slot_wait = 500ms;
  }
  ~Harness() { dispatcher.reset(); }

  void OpenQueue() {
    queue.reset();
    queue::InvocationStoreOptions qo;
    qo.path = dir.path() / "queue.db";
    auto q = queue::InvocationStore::Open(qo);
    ASSERT_TRUE(q.ok()) << q.error().message;
    queue = std::move(q).value();
  }

  // ---- instances ----
  // An inferd-echo server (`serve`, SAGEMAKER_BIND_TO_PORT=0) with `env` (ECHO_*).
  InstanceRef StartEcho(const std::string& variant, std::map<std::string, std::string> env = {}) {
    env["SAGEMAKER_BIND_TO_PORT"] = "0";
    env["SM_MODEL_DIR"] = dir.path().string();
    echoes.push_back(std::make_unique<containers::testing::ChildProcess>(
        test_support::BinaryPath("INFERD_ECHO_BIN", INFERD_ECHO_BIN),
        std::vector<std::string>{"serve"}, env));
    std::optional<uint16_t> port = echoes.back()->WaitForPort();
    EXPECT_TRUE(port.has_value()) << echoes.back()->Output();
    return InstanceRef{variant, "127.0.0.1", port.value_or(0)};
  }
  // `wake`: tell the dispatcher (as the fleet does); false leaves it to find out by itself.
  void SetInstances(const std::string& endpoint, std::vector<InstanceRef> list, bool wake = true) {
    {
      std::lock_guard lock(mu_);
      instances_[endpoint] = std::move(list);
    }
    if (dispatcher && wake) dispatcher->Wake();
  }
  InstancesFn Instances() {
    return [this](const std::string& region, const std::string& endpoint) {
      std::lock_guard lock(mu_);
      auto it = instances_.find(endpoint);
      return it == instances_.end() ? std::vector<InstanceRef>{} : it->second;
    };
  }
  // GET /stats of an echo instance.
  json::object Stats(const InstanceRef& i) {
    http::ClientRequest r;
    r.url = "http://127.0.0.1:" + std::to_string(i.port) + "/stats";
    auto res = client.Do(r);
    EXPECT_TRUE(res.ok());
    return res.ok() ? json::parse(res->body).as_object() : json::object{};
  }

  // ---- control plane ----
  std::string Topic(const std::string& name) {
    notify::Caller caller{kRegion, true};
    std::string arn = *notifier->CreateTopic(caller, name, {}, {});
    EXPECT_TRUE(
        notifier->Subscribe(caller, {arn, "http", "http://127.0.0.1:9/" + name, {}, false}).ok());
    return arn;
  }
  // `async` is the AsyncInferenceConfig JSON ("" = a real-time endpoint); `variants` the
  // ProductionVariants' names and weights.
  void CreateEndpoint(const std::string& name, const std::string& async,
                      std::vector<std::pair<std::string, double>> variants = {{"AllTraffic", 1}},
                      const std::string& config_name = "") {
    const std::string config = config_name.empty() ? name + "-config" : config_name;
    json::object model = json::parse(R"({"PrimaryContainer":{"Image":"inferd-echo"}})").as_object();
    model["ModelName"] = name + "-model";
    auto m = catalog->CreateModel(kRegion, model);
    (void)m;  // exists already when a second configuration is made
    json::array pv;
    for (const auto& [variant, weight] : variants) {
      pv.push_back(json::object{{"VariantName", variant},
                                {"ModelName", name + "-model"},
                                {"InstanceType", "ml.m5.large"},
                                {"InitialInstanceCount", 1},
                                {"InitialVariantWeight", weight}});
    }
    json::object c{{"EndpointConfigName", config}, {"ProductionVariants", pv}};
    if (!async.empty()) c["AsyncInferenceConfig"] = json::parse(async);
    auto created = catalog->CreateEndpointConfig(kRegion, c);
    ASSERT_TRUE(created.ok()) << created.error().message;
    if (config_name.empty()) {
      auto e = catalog->CreateEndpoint(
          kRegion, json::object{{"EndpointName", name}, {"EndpointConfigName", config}});
      ASSERT_TRUE(e.ok()) << e.error().message;
    }
  }

  // What the fleet reports once the instances are up (needed before UpdateEndpoint).
  void InService(const std::string& name) {
    Status st = catalog->ReportFleet(kRegion, name, catalog::EndpointEvent::kFleetReady, "", {});
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  // ---- the dispatcher ----
  void StartDispatcher() {
    dispatcher = std::make_unique<Dispatcher>(options, *queue, *catalog_store, *objects, *notifier,
                                              Instances(), clock);
    Status st = dispatcher->Start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  // Dispatcher::Accept; the future has its answer (the 202 or the error).
  std::future<Result<Accepted>> AcceptAsync(AcceptRequest r) {
    if (r.region.empty()) r.region = kRegion;
    auto p = std::make_shared<std::promise<Result<Accepted>>>();
    auto f = p->get_future();
    dispatcher->Accept(std::move(r), [p](Result<Accepted> a) { p->set_value(std::move(a)); });
    return f;
  }
  Result<Accepted> Invoke(AcceptRequest r) { return AcceptAsync(std::move(r)).get(); }
  // Invokes with `body` as the inline Body.
  Result<Accepted> InvokeInline(const std::string& endpoint, const std::string& body) {
    AcceptRequest r;
    r.endpoint = endpoint;
    r.inline_body = body;
    return Invoke(std::move(r));
  }
  // A request for `endpoint` with input `data` uploaded to s3://input/<key> (text/csv), for
  // Dispatcher::Accept.
  AcceptRequest InputRequest(const std::string& endpoint, const std::string& data,
                             AcceptRequest r = {}) {
    const std::string key = "input-" + std::to_string(++inputs_);
    Put("s3://input/" + key, data, "text/csv");
    if (r.region.empty()) r.region = kRegion;
    r.endpoint = endpoint;
    r.input_location = "s3://input/" + key;
    if (r.content_type.empty()) r.content_type = "text/csv";
    return r;
  }
  // Invokes with input `data` uploaded to s3://input/<key>.
  Accepted InvokeWith(const std::string& endpoint, const std::string& data, AcceptRequest r = {}) {
    auto a = Invoke(InputRequest(endpoint, data, std::move(r)));
    EXPECT_TRUE(a.ok()) << a.error().message;
    return a.ok() ? *a : Accepted{};
  }
  queue::Invocation WaitDone(const std::string& endpoint, const std::string& id,
                             std::chrono::milliseconds limit = 20s) {
    queue::Invocation last;
    bool done = WaitFor(
        [&] {
          auto s = dispatcher->Describe(kRegion, endpoint, id);
          if (!s.ok()) return false;
          last = s->invocation;
          return last.state == queue::InvocationState::kCompleted ||
                 last.state == queue::InvocationState::kFailed;
        },
        limit);
    EXPECT_TRUE(done) << "invocation " << id << " is still " << queue::ToString(last.state);
    return last;
  }

  // ---- objects ----
  void Put(const std::string& location, const std::string& data,
           const std::string& content_type = "") {
    auto loc = store::ParseS3Uri(location);
    ASSERT_TRUE(loc.ok());
    store::testing::StringSource src(data);
    ASSERT_TRUE(objects->Put(loc->bucket, loc->key, {content_type, {}}, src).ok());
  }
  // The object's bytes and info; nullopt when absent.
  std::optional<std::pair<std::string, store::ObjectInfo>> Get(const std::string& location) {
    auto loc = store::ParseS3Uri(location);
    if (!loc.ok()) return std::nullopt;
    auto r = objects->Get(loc->bucket, loc->key);
    if (!r.ok()) return std::nullopt;
    std::string out = store::testing::ReadAll(**r, 65536);
    return std::make_pair(std::move(out), (*r)->info());
  }
  static std::string Header(const store::ObjectInfo& info, const std::string& name) {
    for (const auto& h : info.attributes.headers) {
      if (http::EqualsIgnoreCase(h.name, name)) return h.value;
    }
    return "<none>";
  }

  // ---- notifications ----
  // The SageMaker messages delivered for `topic` so far (drives the delivery worker).
  std::vector<json::object> Messages(const std::string& topic, const std::string& event = "") {
    for (int round = 0; round < 1000 && notifier->delivery().RunOnce() > 0; ++round) {
    }
    std::vector<json::object> out;
    for (const auto& r : sender.requests()) {
      json::object envelope = json::parse(r.body).as_object();
      if (envelope["Type"] != "Notification" || envelope["TopicArn"] != topic.c_str()) continue;
      json::object m = json::parse(envelope["Message"].as_string()).as_object();
      if (!event.empty() && m["eventName"] != event.c_str()) continue;
      out.push_back(std::move(m));
    }
    return out;
  }
  std::vector<json::object> WaitMessages(const std::string& topic, size_t n,
                                         const std::string& event = "InferenceResult") {
    std::vector<json::object> got;
    WaitFor([&] {
      got = Messages(topic, event);
      return got.size() >= n;
    });
    EXPECT_EQ(got.size(), n) << "messages on " << topic;
    return got;
  }

  FakeClock clock{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  TempDir dir;
  std::unique_ptr<store::FilesystemStore> objects;
  std::unique_ptr<queue::InvocationStore> queue;
  std::unique_ptr<catalog::CatalogStore> catalog_store;
  std::unique_ptr<catalog::Catalog> catalog;
  notify::testing::FakeSender sender;
  std::unique_ptr<notify::Notifier> notifier;
  DispatchOptions options;
  std::unique_ptr<Dispatcher> dispatcher;
  std::vector<std::unique_ptr<containers::testing::ChildProcess>> echoes;
  http::Client client;

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<InstanceRef>> instances_;
  int inputs_ = 0;
};

inline std::string Str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : "<" + json::serialize(v) + ">";
}

// An AsyncInferenceConfig with output and failure paths, the two topics, and extras.
inline std::string AsyncConfig(const std::string& success, const std::string& error,
                               const std::string& extra_notification = "", int max_concurrency = 0,
                               bool failure_path = true) {
  json::object notification{{"SuccessTopic", success}, {"ErrorTopic", error}};
  if (!extra_notification.empty()) {
    json::value extra = json::parse(extra_notification);
    for (auto& [k, v] : extra.as_object()) notification[k] = v;
  }
  json::object output{{"S3OutputPath", "s3://output/results"},
                      {"NotificationConfig", notification}};
  if (failure_path) output["S3FailurePath"] = "s3://failure/errors";
  json::object async{{"OutputConfig", output}};
  if (max_concurrency > 0) {
    async["ClientConfig"] = json::object{{"MaxConcurrentInvocationsPerInstance", max_concurrency}};
  }
  return json::serialize(async);
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ok_ = h_.Topic("ok");
    err_ = h_.Topic("err");
  }
  // Endpoint `name` notifying ok_ / err_, one echo instance, the dispatcher started.
  InstanceRef ServeWithEcho(const std::string& name) {
    h_.CreateEndpoint(name, AsyncConfig(ok_, err_));
    InstanceRef echo = h_.StartEcho("AllTraffic");
    h_.SetInstances(name, {echo});
    h_.StartDispatcher();
    return echo;
  }
  Harness h_;
  std::string ok_, err_;
};

}  // namespace inferd::dispatch::testing
