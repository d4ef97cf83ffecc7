// Test fixture for the reconciler: a real CatalogStore, FilesystemStore (bucket "models" with
// echo.tar.gz) and inferd-echo processes, with fast timings.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "catalog/catalog.h"
#include "catalog/store.h"
#include "common/clock.h"
#include "fleet/reconciler.h"
#include "fleet/test_util.h"
#include "http/client.h"
#include "store/filesystem_store.h"
#include "store/store_test_util.h"

namespace inferd::fleet::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

inline constexpr const char* kRegion = "us-east-1";

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cs = catalog::CatalogStore::Open(tmp_.path() / "catalog.db");
    ASSERT_TRUE(cs.ok());
    catalog_store_ = std::move(*cs);
    catalog_ = std::make_unique<catalog::Catalog>(*catalog_store_, clock_, "123456789012");
    auto objects = store::FilesystemStore::Open({.root = tmp_.path() / "objects", .fsync = false});
    ASSERT_TRUE(objects.ok());
    objects_ = std::move(*objects);
    ASSERT_TRUE(objects_->CreateBucket("models").ok());
    store::testing::StringSource body(MakeTarGz({{.path = "model.bin", .content = "w"}}));
    ASSERT_TRUE(objects_->Put("models", "echo.tar.gz", {}, body).ok());
  }
  void TearDown() override {
    if (reconciler_) reconciler_->Stop();
  }

  FleetOptions Options() {
    FleetOptions o;
    o.data_dir = tmp_.path() / "data";
    o.image_runtimes = {{"inferd-echo", EchoBin().string()}};
    o.stop_grace = 5000ms;
    o.startup_poll_interval = 100ms;
    o.health_check_interval = 200ms;
    o.unhealthy_threshold = 2;
    o.startup_timeout_override = 10000ms;
    o.reconcile_interval = 50ms;
    o.restart_backoff_initial = 100ms;
    o.restart_backoff_max = 1000ms;
    o.drain_delay = 300ms;
    return o;
  }
  void StartReconciler(FleetOptions o, store::ObjectStore* objects = nullptr) {
    reconciler_ = std::make_unique<Reconciler>(std::move(o), *catalog_store_, *catalog_,
                                               objects ? *objects : *objects_);
    ASSERT_TRUE(reconciler_->Start().ok());
  }

  // Model + config + endpoint named `name` running `image` from `url` on `count` instances.
  void CreateEndpoint(const std::string& name, const std::string& image, const std::string& url,
                      int count, const std::string& env = "{}") {
    Create(name,
           json::object{{"Image", image}, {"ModelDataUrl", url}, {"Environment", json::parse(env)}},
           {}, count);
  }
  json::object Describe(const std::string& name) {
    auto d = catalog_->DescribeEndpoint(kRegion, json::object{{"EndpointName", name}});
    return d.ok() ? *d : json::object{};
  }
  // Model `name` with `container`, and its config (variant v1 with `config_extra`) and endpoint.
  void Create(const std::string& name, json::object container, const json::object& config_extra,
              int count) {
    auto m = catalog_->CreateModel(
        kRegion, json::object{{"ModelName", name}, {"PrimaryContainer", std::move(container)}});
    ASSERT_TRUE(m.ok()) << m.error().message;
    json::object pv{{"VariantName", "v1"},
                    {"ModelName", name},
                    {"InstanceType", "ml.m5.large"},
                    {"InitialInstanceCount", count}};
    for (const auto& [k, v] : config_extra) pv[k] = v;
    auto c = catalog_->CreateEndpointConfig(
        kRegion,
        json::object{{"EndpointConfigName", name}, {"ProductionVariants", json::array{pv}}});
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto e = catalog_->CreateEndpoint(
        kRegion, json::object{{"EndpointName", name}, {"EndpointConfigName", name}});
    ASSERT_TRUE(e.ok()) << e.error().message;
  }
  std::string Status(const std::string& name) {
    auto d = Describe(name);
    return d.contains("EndpointStatus") ? std::string(d.at("EndpointStatus").as_string()) : "";
  }
  // Waits until HealthyInstances() lists `n` instances of `name`.
  bool WaitHealthy(const std::string& name, size_t n) {
    return WaitFor([&] { return reconciler_->HealthyInstances(kRegion, name).size() == n; });
  }
  bool WaitStatus(const std::string& name, const std::string& status) {
    return WaitFor([&] {
      reconciler_->Wake();
      return Status(name) == status;
    });
  }
  // The JSON an inferd-echo instance answers to POST /invocations with header `ask: 1`
  // (X-Echo-Env: its environment; X-Echo-Model: the files of its model directory); {} on failure.
  json::object AskEcho(uint16_t port, const std::string& ask) {
    http::Client client;
    http::ClientRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(port) + "/invocations";
    req.headers.Add(ask, "1");
    auto resp = client.Do(req);
    EXPECT_TRUE(resp.ok()) << resp.error().message;
    if (!resp.ok()) return {};
    EXPECT_EQ(resp->status, 200) << resp->body;
    return resp->status == 200 ? json::parse(resp->body).as_object() : json::object{};
  }
  // UpdateEndpointWeightsAndCapacities: variant v1 of `name` to `count` instances, then waits
  // until the endpoint is InService again (wrap in ASSERT_NO_FATAL_FAILURE).
  void Scale(const std::string& name, int count) {
    auto up = catalog_->UpdateEndpointWeightsAndCapacities(
        kRegion,
        json::object{
            {"EndpointName", name},
            {"DesiredWeightsAndCapacities",
             json::array{json::object{{"VariantName", "v1"}, {"DesiredInstanceCount", count}}}}});
    ASSERT_TRUE(up.ok()) << up.error().message;
    ASSERT_TRUE(WaitStatus(name, "InService"));
  }

  TempDir tmp_;
  SystemClock clock_;
  std::unique_ptr<catalog::CatalogStore> catalog_store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<store::FilesystemStore> objects_;
  std::unique_ptr<Reconciler> reconciler_;
};

}  // namespace inferd::fleet::testing
