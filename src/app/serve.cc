#include "app/serve.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "api/router.h"
#include "api/runtime/backend.h"
#include "api/runtime/inferd_api.h"
#include "api/runtime/runtime_api.h"
#include "api/s3/s3_api.h"
#include "api/sagemaker/sagemaker_api.h"
#include "api/sagemaker/validator.h"
#include "api/sns/sns_api.h"
#include "app/data_dir_lock.h"
#include "catalog/catalog.h"
#include "catalog/store.h"
#include "common/blocking_pool.h"
#include "common/clock.h"
#include "common/log.h"
#include "dispatch/dispatcher.h"
#include "fleet/docker_client.h"
#include "fleet/reconciler.h"
#include "http/io_threads.h"
#include "http/server.h"
#include "http/sigv4.h"
#include "notify/http_send.h"
#include "notify/notifier.h"
#include "queue/invocation_store.h"
#include "store/filesystem_store.h"
#include "store/store_router.h"

namespace inferd::app {

int Serve(Config config) {
  if (auto st = InitLogging(config.log_level); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 2;
  }
  if (config.credentials.empty() && !IsLoopback(config.host)) {
    std::cerr << "inferd: refusing to listen on " << config.host
              << " without credentials: anyone who can reach it could use it. Add "
                 "\"credentials\" to the config file (see inferd config-reference), or listen on "
                 "a loopback address such as 127.0.0.1.\n";
    return 2;
  }
  if (const auto& validator = api::sagemaker::EmbeddedValidator(); !validator.ok()) {
    std::cerr << "inferd: " << validator.error().message << "\n";
    return 1;
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    std::cerr << "inferd: cannot create data dir " << config.data_dir << ": " << ec.message()
              << "\n";
    return 1;
  }
  auto data_dir_lock = DataDirLock::Acquire(config.data_dir);  // held until Serve returns
  if (!data_dir_lock.ok()) {
    std::cerr << "inferd: " << data_dir_lock.error().message << "\n";
    return 1;
  }
  auto store = catalog::CatalogStore::Open(std::filesystem::path(config.data_dir) / "catalog.db");
  if (!store.ok()) {
    std::cerr << "inferd: " << store.error().message << "\n";
    return 1;
  }
  store::FilesystemStoreOptions object_options;
  object_options.root = std::filesystem::path(config.data_dir) / "objects";
  auto objects = store::FilesystemStore::Open(object_options);
  if (!objects.ok()) {
    std::cerr << "inferd: " << objects.error().message << "\n";
    return 1;
  }
  // The core's view of objects: each bucket in the embedded store or a configured remote one.
  auto remote_stores = store::RemoteStoresFromJson(
      config.object_stores_json.empty() ? boost::json::value(boost::json::object{})
                                        : boost::json::parse(config.object_stores_json));
  if (!remote_stores.ok()) {
    std::cerr << "inferd: " << remote_stores.error().message << "\n";
    return 2;
  }
  store::StoreRouter object_router(**objects, std::move(remote_stores).value());

  // Every thread started from here on inherits the blocked signals; main waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const Clock& clock = SystemClock::Instance();
  notify::NotifyOptions notify_options;
  notify_options.data_dir = config.data_dir;
  notify_options.account_id = config.account_id;
  notify_options.public_url = config.sns_public_url;  // "" until the port is known (below)
  notify_options.auto_confirm = config.sns_auto_confirm;
  notify_options.delivery.threads = config.sns_delivery_threads;
  notify_options.delivery.max_inflight_per_subscription = config.sns_max_inflight_per_subscription;
  notify_options.delivery.attempt_timeout =
      std::chrono::seconds(config.sns_delivery_timeout_seconds);
  http::ClientOptions delivery_client;
  delivery_client.connect_timeout = std::min<std::chrono::milliseconds>(
      delivery_client.connect_timeout, notify_options.delivery.attempt_timeout);
  auto notifier =
      notify::Notifier::Open(notify_options, clock, notify::MakeHttpSend(delivery_client));
  if (!notifier.ok()) {
    std::cerr << "inferd: " << notifier.error().message << "\n";
    return 1;
  }
  // Asynchronous invocations: the durable queue (<data-dir>/queue.db).
  queue::InvocationStoreOptions queue_options;
  queue_options.path = std::filesystem::path(config.data_dir) / "queue.db";
  queue_options.commit_interval = std::chrono::microseconds(config.queue_commit_interval_us);
  auto invocations = queue::InvocationStore::Open(queue_options);
  if (!invocations.ok()) {
    std::cerr << "inferd: " << invocations.error().message << "\n";
    return 1;
  }
  BlockingPool pool(config.blocking_threads, "blocking");
  catalog::Catalog catalog(**store, clock, config.account_id);
  api::sagemaker::SageMakerApi sagemaker(catalog, pool);
  // Model hosting: built-in image rows come after the configured ones.
  fleet::FleetOptions fleet_options;
  fleet_options.data_dir = config.data_dir;
  fleet_options.host_models = config.model_hosting;
  std::vector<fleet::ImageRuntime> runtimes = config.image_runtimes;
  for (auto& row : fleet_options.image_runtimes) runtimes.push_back(std::move(row));
  fleet_options.image_runtimes = std::move(runtimes);
  fleet_options.instance_types = config.instance_types;
  // The docker runtime's engine: docker_host, else $DOCKER_HOST (when a unix socket), else
  // Docker's default socket.
  std::string docker_host = config.docker_host;
  if (const char* env = std::getenv("DOCKER_HOST"); docker_host.empty() && env && *env) {
    if (fleet::DockerSocketPath(env).ok()) {
      docker_host = env;
    } else {
      spdlog::warn("ignoring DOCKER_HOST={}: the docker runtime needs a unix socket", env);
    }
  }
  fleet_options.docker_socket =
      *fleet::DockerSocketPath(docker_host.empty() ? "unix:///var/run/docker.sock" : docker_host);
  fleet_options.stop_grace = std::chrono::seconds(config.instance_stop_grace_seconds);
  fleet_options.health_check_interval = std::chrono::seconds(config.health_check_interval_seconds);
  if (config.container_startup_timeout_seconds > 0) {
    fleet_options.startup_timeout_override =
        std::chrono::seconds(config.container_startup_timeout_seconds);
  }
  // The fleet tells the dispatcher when capacity changed, so queued work starts at once (the
  // dispatcher is built after the reconciler: the callback finds it through this pointer).
  std::atomic<dispatch::Dispatcher*> capacity_listener{nullptr};
  fleet_options.on_healthy_changed = [&capacity_listener] {
    if (dispatch::Dispatcher* d = capacity_listener.load()) d->Wake();
  };
  fleet::Reconciler reconciler(fleet_options, **store, catalog, object_router);
  dispatch::DispatchOptions dispatch_options;
  dispatch_options.account_id = config.account_id;
  dispatch_options.worker_threads = config.dispatch_threads;
  dispatch_options.default_max_concurrency_per_instance =
      config.default_max_concurrent_invocations_per_instance;
  dispatch_options.max_attempts = config.invocation_max_attempts;
  dispatch_options.retention = std::chrono::hours(config.invocation_retention_hours);
  dispatch_options.sync_timeout = std::chrono::seconds(config.invoke_endpoint_timeout_seconds);
  dispatch::Dispatcher dispatcher(
      dispatch_options, **invocations, **store, object_router, **notifier,
      [&reconciler](const std::string& region, const std::string& endpoint) {
        std::vector<dispatch::InstanceRef> out;
        for (const auto& i : reconciler.HealthyInstances(region, endpoint)) {
          out.push_back({i.variant, i.host, i.port});
        }
        return out;
      },
      clock);
  capacity_listener = &dispatcher;
  // Before any thread uses the catalog: every endpoint change reaches the dispatcher in order.
  catalog.SetEndpointObserver(
      [&dispatcher](catalog::EndpointChange change, const catalog::Resource& endpoint) {
        dispatcher.OnEndpointChange(change, endpoint);
      });
  // Recovers the invocations a previous run left (re-queued, or finished from their result).
  if (auto st = dispatcher.Start(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 1;
  }
  if (auto st = reconciler.Start(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 2;
  }
  // Whatever the way out, the reconciler (whose reports reach the dispatcher through the catalog)
  // stops before the dispatcher is destroyed. Stop() is idempotent.
  struct StopReconciler {
    fleet::Reconciler& reconciler;
    ~StopReconciler() { reconciler.Stop(); }
  } stop_reconciler{reconciler};
  api::runtime::DispatcherBackend backend(dispatcher);
  // InvokeEndpoint holds a thread for the container's answer: its own pool, so real-time traffic
  // never starves the control plane.
  BlockingPool invoke_pool(config.invoke_endpoint_threads, "invoke");
  api::runtime::RuntimeApi runtime(backend, invoke_pool, config.account_id);
  api::runtime::InferdApi inferd_api(backend, pool);
  api::sns::SnsApi sns(**notifier, pool);
  // Transfers hold a thread for their duration: their own pool, so they never starve the
  // control plane.
  BlockingPool s3_pool(config.s3_transfer_threads, "s3-transfer");
  api::s3::S3ApiOptions s3_options;
  if (!config.credentials.empty()) {
    s3_options.secret_lookup = [&config](std::string_view akid) -> std::optional<std::string> {
      auto it = config.credentials.find(std::string(akid));
      if (it == config.credentials.end()) return std::nullopt;
      return it->second;
    };
  }
  if (auto st = s3_options.Validate(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 2;
  }
  api::s3::S3Api s3(**objects, s3_pool, s3_options);
  http::sigv4::VerifierOptions verifier_options;
  verifier_options.credentials = config.credentials;
  verifier_options.max_clock_skew = std::chrono::seconds(config.max_clock_skew_seconds);
  http::sigv4::Verifier verifier(verifier_options, clock);
  api::Router router(verifier, {&sagemaker, &runtime, &sns, &s3, &inferd_api});

  http::ServerOptions server_options;
  server_options.host = config.host;
  server_options.port = config.port;
  server_options.max_header_bytes = static_cast<size_t>(config.max_header_bytes);
  server_options.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
  server_options.idle_timeout = std::chrono::seconds(config.idle_timeout_seconds);
  server_options.request_timeout = std::chrono::seconds(config.request_timeout_seconds);
  if (auto st = server_options.Validate(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 2;
  }
  http::IoThreads io(config.io_threads);
  http::Server server(server_options, io, router);
  if (auto st = server.Start(); !st.ok()) {
    std::cerr << "inferd: " << st.error().message << "\n";
    return 1;
  }
  io.Start();
  std::string shown_host =
      config.host.find(':') != std::string::npos ? "[" + config.host + "]" : config.host;
  if (config.sns_public_url.empty()) {
    // Links in SNS envelopes must reach this server: a wildcard address is not reachable.
    std::string link_host = config.host == "0.0.0.0" ? "127.0.0.1"
                            : config.host == "::"    ? "[::1]"
                                                     : shown_host;
    (*notifier)->SetPublicUrl("http://" + link_host + ":" + std::to_string(server.port()));
  }
  (*notifier)->Start();
  std::printf("inferd listening on http://%s:%u\n", shown_host.c_str(), server.port());
  std::fflush(stdout);
  spdlog::info("serving on {}:{} with data in {}{}", config.host, server.port(), config.data_dir,
               config.credentials.empty() ? " (no credentials configured: loopback only)" : "");

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, stopping (grace {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace_seconds);
  auto stop_started = std::chrono::steady_clock::now();
  server.Stop(std::chrono::seconds(config.shutdown_grace_seconds));
  // Invocations in flight get what is left of the grace period; unfinished ones stay Started and
  // are recovered on the next start (never run twice when their result was written).
  dispatcher.Stop(stop_started + std::chrono::seconds(config.shutdown_grace_seconds));
  // Delivery attempts in flight get at most 2 s (within the grace period) to finish; the rest are
  // abandoned and stay in the outbox, retried after the next start.
  (*notifier)->Stop(std::min(stop_started + std::chrono::seconds(config.shutdown_grace_seconds),
                             std::chrono::steady_clock::now() + std::chrono::seconds(2)));
  io.Stop();
  reconciler.Stop();  // model servers get instance_stop_grace_seconds to exit
  pool.Stop();
  invoke_pool.Stop();
  s3_pool.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace inferd::app
