// The docker runtime: request shapes (no engine needed) and real containers through Podman's
// Docker-compatible API (podman_fixture.h: a private engine and an image the test builds).
#include "fleet/docker_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "fleet/podman_fixture.h"
#include "fleet/test_util.h"
#include "http/client.h"

namespace inferd::fleet {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::EchoBin;
using ::testing::HasSubstr;
using testing::WaitFor;

InstanceSpec Spec(const fs::path& root, const std::string& image) {
  InstanceSpec spec;
  spec.image = image;
  spec.model_dir = root / "model";
  spec.work_dir = root / "instances" / "ep-v1-1-abcdef12";
  spec.environment = {{"TS_MAX_REQUEST_SIZE", "100000000"}, {"WITH SPACE", "a b"}};
  spec.instance_type = "ml.m5.large";
  spec.resources = {1, 512, 0};
  spec.endpoint = "Ep";
  spec.variant = "v1";
  return spec;
}

TEST(DockerRuntimeTest, CreateBodyCarriesTheContractAndTheLimits) {
  DockerRuntime runtime({.socket_path = "/nowhere.sock", .owner = "/data", .host_cpus = 2});
  InstanceSpec spec = Spec("/data", "registry.example/model:1");
  spec.resources = {4, 16384, 2};
  spec.environment["SAGEMAKER_BIND_TO_PORT"] = "9999";  // the contract's own value wins
  json::object body = json::parse(runtime.CreateBody(spec)).as_object();
  EXPECT_EQ(body.at("Image").as_string(), "registry.example/model:1");
  EXPECT_EQ(body.at("Cmd"), (json::array{"serve"}));
  EXPECT_EQ(body.at("Env"), (json::array{"TS_MAX_REQUEST_SIZE=100000000", "WITH SPACE=a b",
                                         "SAGEMAKER_BIND_TO_PORT=8080"}));
  EXPECT_TRUE(body.at("ExposedPorts").as_object().contains("8080/tcp"));
  const json::object& labels = body.at("Labels").as_object();
  EXPECT_EQ(labels.at("io.inferd.owner").as_string(), "/data");
  EXPECT_EQ(labels.at("io.inferd.endpoint").as_string(), "Ep");
  EXPECT_EQ(labels.at("io.inferd.variant").as_string(), "v1");
  EXPECT_EQ(labels.at("io.inferd.instance").as_string(), "ep-v1-1-abcdef12");
  const json::object& host = body.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Init"), true);
  EXPECT_EQ(host.at("Memory").to_number<int64_t>(), 16384ll << 20);
  EXPECT_EQ(host.at("NanoCpus").to_number<int64_t>(), 2'000'000'000);  // capped at the host's 2
  EXPECT_EQ(host.at("PortBindings").at("8080/tcp").at(0).at("HostIp").as_string(), "127.0.0.1");
  const json::object& mount = host.at("Mounts").at(0).as_object();
  EXPECT_EQ(mount.at("Source").as_string(), "/data/model");
  EXPECT_EQ(mount.at("Target").as_string(), "/opt/ml/model");
  EXPECT_EQ(mount.at("ReadOnly"), true);
  EXPECT_EQ(host.at("DeviceRequests").at(0).at("Count").to_number<int>(), 2);
  EXPECT_EQ(host.at("DeviceRequests").at(0).at("Capabilities"), (json::array{json::array{"gpu"}}));
  spec.resources.gpus = 0;
  EXPECT_FALSE(json::parse(runtime.CreateBody(spec))
                   .at("HostConfig")
                   .as_object()
                   .contains("DeviceRequests"));
}

TEST(DockerRuntimeTest, AnUnreachableEngineIsNamed) {
  DockerRuntime runtime({.socket_path = "/nonexistent/docker.sock", .owner = "/data"});
  auto r = runtime.PrepareImage(Spec("/data", "registry.example/model:1"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("image registry.example/model:1 is not available: cannot reach the "
                        "container engine at unix:///nonexistent/docker.sock"));
  runtime.RemoveLeftovers();  // logs, does not throw or hang
}

TEST(DockerRuntimeTest, SocketPathsAndLogLines) {
  EXPECT_EQ(*DockerSocketPath("unix:///var/run/docker.sock"), "/var/run/docker.sock");
  EXPECT_EQ(*DockerSocketPath("/run/podman/podman.sock"), "/run/podman/podman.sock");
  EXPECT_FALSE(DockerSocketPath("tcp://127.0.0.1:2375").ok());
  EXPECT_FALSE(DockerSocketPath("unix://relative.sock").ok());

  auto frame = [](const std::string& text) {
    std::string f = {1, 0, 0, 0, 0, 0, 0, static_cast<char>(text.size())};
    return f + text;
  };
  int64_t since = 0, seen = 0;
  std::string body =
      frame("2026-11-26T18:24:43.5Z first\n") + frame("2026-11-26T18:24:43.7Z second\n");
  EXPECT_EQ(NewLogLines(body, since, seen), "first\nsecond\n");
  EXPECT_EQ(since, 1795717483);
  EXPECT_EQ(seen, 2);
  // The next answer (since=<that second>) repeats both, then has new lines.
  body += frame("2026-11-26T18:24:43.9Z third\n") + frame("2026-11-26T19:24:44+01:00 fourth\n");
  EXPECT_EQ(NewLogLines(body, since, seen), "third\nfourth\n");
  EXPECT_EQ(since, 1795717484);
  EXPECT_EQ(seen, 1);
  // A TTY container's raw stream.
  since = seen = 0;
  EXPECT_EQ(NewLogLines("2026-11-26T18:24:43Z raw\n", since, seen), "raw\n");
}

// One engine and one image for the tests below (≈2 s to start and import).
class PodmanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    auto started = std::chrono::steady_clock::now();
    podman_ = new testing::Podman(dir_->path() / "podman");
    if (podman_->ok()) {
      image_error_ = podman_->ImportBinaryImage(EchoBin(), kImage);
    }
    std::printf("podman engine and image ready in %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - started)
                                           .count()));
  }
  static void TearDownTestSuite() {
    delete podman_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(podman_->ok()) << podman_->error();
    ASSERT_EQ(image_error_, "");
    fs::create_directories(tmp_.path() / "model/code");
    std::ofstream(tmp_.path() / "model/xgboost-model") << "weights";
    std::ofstream(tmp_.path() / "model/code/inference.py") << "print(1)";
  }
  DockerRuntimeOptions Options() {
    return {.socket_path = podman_->socket(),
            .owner = tmp_.path().string(),
            .poll_interval = 100ms,
            .log_interval = 100ms};
  }
  json::object Inspect(const std::string& what) {
    DockerClient client(podman_->socket());
    auto r = client.Call("GET", what);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || r->status != 200) return {};
    return json::parse(r->body).as_object();
  }
  // The containers carrying `owner`'s label.
  size_t Containers(const std::string& owner) {
    DockerClient client(podman_->socket());
    std::string filters = json::serialize(
        json::object{{"label", json::array{std::string(kOwnerLabel) + "=" + owner}}});
    auto r = client.Call("GET", "/containers/json?all=1&filters=" + QueryEscape(filters));
    EXPECT_TRUE(r.ok() && r->status == 200);
    return r.ok() ? json::parse(r->body).as_array().size() : 0;
  }

  static constexpr const char* kImage = "localhost/inferd-echo-test:1";
  static testing::TempDir* dir_;
  static testing::Podman* podman_;
  static std::string image_error_;
  testing::TempDir tmp_;
};
testing::TempDir* PodmanTest::dir_ = nullptr;
testing::Podman* PodmanTest::podman_ = nullptr;
std::string PodmanTest::image_error_;

TEST_F(PodmanTest, RunsAnImageUnderTheHostingContract) {
  DockerRuntime runtime(Options());
  InstanceSpec spec = Spec(tmp_.path(), kImage);
  auto resolved = runtime.PrepareImage(spec);
  ASSERT_TRUE(resolved.ok()) << resolved.error().message;
  EXPECT_THAT(*resolved, HasSubstr("localhost/inferd-echo-test"));
  auto started = std::chrono::steady_clock::now();
  auto inst = runtime.Start(spec);
  ASSERT_TRUE(inst.ok()) << inst.error().message;
  Instance& i = **inst;
  EXPECT_EQ(i.state(), InstanceState::kStarting);
  EXPECT_GT(i.port(), 0);
  EXPECT_GT(i.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return i.Ping(2000ms); })) << i.LogTail(20);
  std::printf("container answered /ping %lld ms after Start\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  EXPECT_EQ(i.state(), InstanceState::kHealthy);

  http::Client client;
  http::ClientRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(i.port()) + "/invocations";
  req.body = "hello";
  auto echo = client.Do(req);
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(echo->status, 200);
  EXPECT_EQ(echo->body, "hello");
  // The container's Environment, and the contract's port.
  req.headers.Add("X-Echo-Env", "1");
  auto env = client.Do(req);
  ASSERT_TRUE(env.ok());
  json::object vars = json::parse(env->body).as_object();
  EXPECT_EQ(vars.at("TS_MAX_REQUEST_SIZE").as_string(), "100000000");
  EXPECT_EQ(vars.at("WITH SPACE").as_string(), "a b");
  EXPECT_EQ(vars.at("SAGEMAKER_BIND_TO_PORT").as_string(), "8080");
  // The model, read-only at /opt/ml/model.
  req.headers = {};
  req.headers.Add("X-Echo-Model", "1");
  auto model = client.Do(req);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->body, R"j({"dir":"/opt/ml/model","files":{"code/inference.py":"print(1)",)j"
                         R"j("xgboost-model":"weights"},"writable":false})j");

  // Limits, init, port publishing and labels as the engine sees them.
  json::object info = Inspect("/containers/inferd-ep-v1-1-abcdef12/json");
  ASSERT_FALSE(info.empty());
  const json::object& host = info.at("HostConfig").as_object();
  EXPECT_EQ(host.at("Memory").to_number<int64_t>(), 512ll << 20);
  EXPECT_EQ(host.at("NanoCpus").to_number<int64_t>(), 1'000'000'000);
  EXPECT_EQ(host.at("Init"), true);
  const json::value& binding = info.at("NetworkSettings").at("Ports").at("8080/tcp").at(0);
  EXPECT_EQ(binding.at("HostIp").as_string(), "127.0.0.1");
  EXPECT_EQ(binding.at("HostPort").as_string(), std::to_string(i.port()));
  EXPECT_EQ(info.at("Config").at("Labels").at("io.inferd.owner").as_string(), tmp_.path().string());
  EXPECT_EQ(info.at("Config").at("Cmd"), (json::array{"serve"}));

  // The container's output reaches the instance log.
  ASSERT_TRUE(WaitFor([&] {
    i.Poll();
    return i.LogTail(20).find("inferd-echo listening on 0.0.0.0:8080") != std::string::npos;
  })) << i.LogTail(20);
  EXPECT_THAT(i.LogTail(20), HasSubstr("ml.m5.large: 1 vCPUs, 512 MiB memory, 0 GPUs"));

  auto stop_started = std::chrono::steady_clock::now();
  i.Stop(10s);
  auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - stop_started);
  EXPECT_LT(stop_ms, 5s);  // Init forwards SIGTERM: no waiting out the grace period
  EXPECT_EQ(i.state(), InstanceState::kStopped);
  EXPECT_EQ(i.exit_code(), 0);
  EXPECT_FALSE(PingOnce(i.port(), 500ms));
  // Copied incrementally, yet every line once.
  std::string log = i.LogTail(100);
  size_t copies = 0;
  for (size_t at = log.find("listening on 0.0.0.0:8080"); at != std::string::npos;
       at = log.find("listening on 0.0.0.0:8080", at + 1)) {
    ++copies;
  }
  EXPECT_EQ(copies, 1u) << log;
  EXPECT_EQ(Containers(tmp_.path().string()), 0u);  // removed
}

TEST_F(PodmanTest, AnExitIsSeenWithItsCodeAndLog) {
  DockerRuntime runtime(Options());
  InstanceSpec spec = Spec(tmp_.path(), kImage);
  spec.environment["ECHO_CRASH_AFTER"] = "1";
  auto inst = runtime.Start(spec);
  ASSERT_TRUE(inst.ok()) << inst.error().message;
  Instance& i = **inst;
  ASSERT_TRUE(WaitFor([&] { return i.Ping(2000ms); }));
  http::Client client;
  http::ClientRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(i.port()) + "/invocations";
  req.body = "x";
  ASSERT_TRUE(client.Do(req).ok());
  (void)client.Do(req);  // the second request crashes it
  ASSERT_TRUE(WaitFor([&] { return !i.Poll(); }));
  EXPECT_EQ(i.state(), InstanceState::kExited);
  EXPECT_EQ(i.exit_code(), 3);
  EXPECT_THAT(i.LogTail(5), HasSubstr("crashing on request 2"));
  i.Stop(1s);
  EXPECT_EQ(i.state(), InstanceState::kStopped);
  EXPECT_EQ(Containers(tmp_.path().string()), 0u);
}

TEST_F(PodmanTest, AServerThatCannotStartIsAnExitWithItsOutput) {
  DockerRuntime runtime(Options());
  InstanceSpec spec = Spec(tmp_.path(), kImage);
  spec.environment["ECHO_STATUS"] = "999";  // refused by inferd-echo at start: exit 1
  auto inst = runtime.Start(spec);
  ASSERT_TRUE(inst.ok()) << inst.error().message;
  ASSERT_TRUE(WaitFor([&] { return !(*inst)->Poll(); }));
  EXPECT_EQ((*inst)->state(), InstanceState::kExited);
  EXPECT_EQ((*inst)->exit_code(), 1);
  EXPECT_THAT((*inst)->LogTail(5), HasSubstr("ECHO_STATUS"));
  (*inst)->Stop(1s);
  EXPECT_EQ(Containers(tmp_.path().string()), 0u);
}

TEST_F(PodmanTest, AMissingImageIsNamed) {
  DockerRuntime runtime(Options());
  auto r = runtime.PrepareImage(Spec(tmp_.path(), "localhost/no-such-image:1"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message,
              HasSubstr("image localhost/no-such-image:1 is not available: it is not on the "
                        "engine and pulling it failed: "));
}

TEST_F(PodmanTest, LeftoversOfThisDataDirAreRemoved) {
  // A crashed inferd leaves running containers behind: a runtime on the same data dir removes
  // them; another data dir's containers stay.
  testing::TempDir other;
  DockerRuntimeOptions theirs = Options();
  theirs.owner = other.path().string();
  DockerClient client(podman_->socket());
  auto launch = [&](const DockerRuntimeOptions& o, const std::string& name) {
    InstanceSpec spec = Spec(tmp_.path(), kImage);
    spec.work_dir = tmp_.path() / "instances" / name;
    auto c =
        client.Call("POST", "/containers/create?name=" + name, DockerRuntime(o).CreateBody(spec));
    ASSERT_TRUE(c.ok() && c->status == 201) << (c.ok() ? c->body : c.error().message);
    auto s = client.Call("POST", "/containers/" + name + "/start");
    ASSERT_TRUE(s.ok() && s->status == 204) << (s.ok() ? s->body : s.error().message);
  };
  launch(Options(), "leftover-mine-" + std::to_string(::getpid()));
  launch(theirs, "leftover-theirs-" + std::to_string(::getpid()));
  EXPECT_EQ(Containers(tmp_.path().string()), 1u);
  DockerRuntime(Options()).RemoveLeftovers();
  EXPECT_EQ(Containers(tmp_.path().string()), 0u);
  EXPECT_EQ(Containers(other.path().string()), 1u);
  DockerRuntime(theirs).RemoveLeftovers();
  EXPECT_EQ(Containers(other.path().string()), 0u);
}

}  // namespace
}  // namespace inferd::fleet
