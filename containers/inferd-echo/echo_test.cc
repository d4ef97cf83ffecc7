// End-to-end tests of the inferd-echo binary, started as a process (SAGEMAKER_BIND_TO_PORT=0) and
// driven over HTTP. The binary is INFERD_ECHO_BIN if set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "common/testing/test_support.h"
#include "testing/child_process.h"
#include "testing/http_client.h"

namespace inferd::echo {
namespace {

using containers::testing::BinaryPath;
using containers::testing::ChildProcess;
using containers::testing::HttpReply;
using containers::testing::Send;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

class Echo {
 public:
  explicit Echo(Env env = {}) {
    env["SAGEMAKER_BIND_TO_PORT"] = "0";
    env["SAGEMAKER_BIND_HOST"] = "127.0.0.1";
    process_ = std::make_unique<ChildProcess>(BinaryPath("INFERD_ECHO_BIN", INFERD_ECHO_BUILT_BIN),
                                              std::vector<std::string>{"serve"}, env);
    auto port = process_->WaitForPort();
    EXPECT_TRUE(port) << process_->Output();
    port_ = port.value_or(0);
  }
  HttpReply Invoke(const std::string& body, const std::map<std::string, std::string>& h = {}) {
    return Send(port_, "POST", "/invocations", body, h);
  }
  HttpReply Get(const std::string& target) { return Send(port_, "GET", target); }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

TEST(EchoTest, EchoesTheBodyAndContentType) {
  Echo echo;
  HttpReply r = echo.Invoke("{\"a\": 1}", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"a\": 1}");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("content-length"), "8");
  HttpReply raw = echo.Invoke(std::string("\0\1\2", 3));
  EXPECT_EQ(raw.body, std::string("\0\1\2", 3));
  EXPECT_EQ(raw.Header("content-type"), "application/octet-stream");
}

TEST(EchoTest, CustomAttributesComeBack) {
  Echo echo;
  HttpReply r = echo.Invoke("x", {{"X-Amzn-SageMaker-Custom-Attributes", "trace=1"}});
  EXPECT_EQ(r.Header("x-amzn-sagemaker-custom-attributes"), "trace=1");
}

TEST(EchoTest, FailsWithTheStatusAsked) {
  Echo echo;
  HttpReply r = echo.Invoke("x", {{"X-Echo-Status", "500"}});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "echo: failing with 500 as asked");
  EXPECT_EQ(echo.Invoke("x", {{"X-Echo-Status", "429"}}).status, 429);
  EXPECT_EQ(echo.Invoke("x", {{"X-Echo-Status", "abc"}}).status, 400);
}

TEST(EchoTest, EnvironmentStatusAppliesToEveryRequest) {
  Echo echo(Env{{"ECHO_STATUS", "503"}});
  EXPECT_EQ(echo.Invoke("x").status, 503);
  EXPECT_EQ(echo.Invoke("x", {{"X-Echo-Status", "200"}}).status, 200);
}

TEST(EchoTest, ReportsItsEnvironment) {
  Echo echo(Env{{"TS_MAX_REQUEST_SIZE", "100000000"}, {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "3600"}});
  HttpReply r = echo.Invoke("x", {{"X-Echo-Env", "1"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_THAT(r.body, HasSubstr("\"TS_MAX_REQUEST_SIZE\":\"100000000\""));
  EXPECT_THAT(r.body, HasSubstr("\"SAGEMAKER_MODEL_SERVER_TIMEOUT\":\"3600\""));
  EXPECT_THAT(r.body, HasSubstr("\"SAGEMAKER_BIND_TO_PORT\":\"0\""));
}

TEST(EchoTest, DescribesItsModelDirectory) {
  std::string dir = ::testing::TempDir() + "/echo-model-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir + "/code");
  std::ofstream(dir + "/model.bin") << "weights";
  std::ofstream(dir + "/code/x.py") << "print(1)";
  Echo echo(Env{{"SM_MODEL_DIR", dir}});
  HttpReply r = echo.Invoke("x", {{"X-Echo-Model", "1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"dir\":\"" + dir +
                        "\",\"files\":{\"code/x.py\":\"print(1)\",\"model.bin\":\"weights\"},"
                        "\"writable\":true}");
  std::filesystem::remove_all(dir);
}

TEST(EchoTest, DelaysOnWorkersAndCountsConcurrency) {
  Echo echo;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (echo.Invoke("slow", {{"X-Echo-Delay-Ms", "800"}}).status == 200) ++ok;
    });
  }
  // While they sleep, the I/O threads still answer at once.
  HttpReply ping = echo.Get("/ping");
  EXPECT_EQ(ping.status, 200);
  for (auto& t : threads) t.join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ok.load(), 4);
  EXPECT_GE(elapsed, 800ms);
  EXPECT_LT(elapsed, 3000ms);  // in parallel, not one after the other
  HttpReply stats = echo.Get("/stats");
  EXPECT_EQ(stats.Header("content-type"), "application/json");
  EXPECT_EQ(stats.body, "{\"requests\":4,\"in_flight\":0,\"max_in_flight\":4}");
}

TEST(EchoTest, WorkersCapConcurrentServing) {
  Echo echo(Env{{"SAGEMAKER_MODEL_SERVER_WORKERS", "1"}});
  auto start = std::chrono::steady_clock::now();
  std::thread a([&] { echo.Invoke("a", {{"X-Echo-Delay-Ms", "300"}}); });
  std::thread b([&] { echo.Invoke("b", {{"X-Echo-Delay-Ms", "300"}}); });
  a.join();
  b.join();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
}

TEST(EchoTest, CrashesOnTheRequestAfterN) {
  Echo echo(Env{{"ECHO_CRASH_AFTER", "2"}});
  EXPECT_EQ(echo.Invoke("1").status, 200);
  EXPECT_EQ(echo.Invoke("2").status, 200);
  HttpReply third = echo.Invoke("3");
  EXPECT_FALSE(third.ok()) << third.status;
  EXPECT_EQ(echo.process().WaitForExit(), 3);
  EXPECT_THAT(echo.process().Output(), HasSubstr("crashing on request 3 as asked"));
}

TEST(EchoTest, CrashesWhenAskedByHeader) {
  Echo echo;
  EXPECT_FALSE(echo.Invoke("x", {{"X-Echo-Crash", "1"}}).ok());
  EXPECT_EQ(echo.process().WaitForExit(), 3);
}

TEST(EchoTest, StartsSlowly) {
  auto start = std::chrono::steady_clock::now();
  Echo echo(Env{{"ECHO_STARTUP_DELAY_MS", "1000"}});
  EXPECT_EQ(echo.Get("/ping").status, 503);
  int status = 0;
  while (std::chrono::steady_clock::now() - start < 10s) {
    status = echo.Get("/ping").status;
    if (status == 200) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1000ms);
  EXPECT_EQ(echo.Invoke("x").status, 200);  // invocations are not held back
}

TEST(EchoTest, FailPingNeverBecomesHealthy) {
  Echo echo(Env{{"ECHO_FAIL_PING", "1"}});
  HttpReply r = echo.Get("/ping");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("ECHO_FAIL_PING"));
}

TEST(EchoTest, BodiesAboveEchoMaxBodyAnswer413) {
  Echo echo(Env{{"ECHO_MAX_BODY", "100"}});
  EXPECT_EQ(echo.Invoke(std::string(100, 'x')).status, 200);
  HttpReply r = echo.Invoke(std::string(101, 'x'));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 413);
}

TEST(EchoTest, SigtermExitsPromptlyEvenWithSleepingRequests) {
  Echo echo;
  std::thread slow([&] { echo.Invoke("x", {{"X-Echo-Delay-Ms", "60000"}}); });
  while (echo.Get("/stats").body.find("\"in_flight\":1") == std::string::npos) {
    std::this_thread::sleep_for(5ms);
  }
  auto start = std::chrono::steady_clock::now();
  echo.process().Signal(SIGTERM);
  EXPECT_EQ(echo.process().WaitForExit(), 0) << echo.process().Output();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  slow.join();
}

// ECHO_DURABLE_FILE: answers wait until the body is in the file (durable_log_test.cc covers the
// syncs); delayed ones too; a file that cannot be created stops start-up.
TEST(EchoTest, DurableFileHoldsEachBodyBeforeItsAnswer) {
  test_support::TempDir dir;
  const auto ring = dir.path() / "ring";
  Echo echo(Env{{"ECHO_DURABLE_FILE", ring.string()}});
  HttpReply first = echo.Invoke("first body");
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "first body");
  HttpReply delayed = echo.Invoke("second body", {{"X-Echo-Delay-Ms", "20"}});
  EXPECT_EQ(delayed.body, "second body");
  std::ifstream in(ring, std::ios::binary);
  std::string start(21, '\0');
  in.read(start.data(), 21);
  EXPECT_EQ(start, "first bodysecond body");
  EXPECT_EQ(std::filesystem::file_size(ring), 16u << 20);
}

TEST(EchoTest, DurableFileThatCannotBeCreatedStopsStartUp) {
  ChildProcess echo(
      BinaryPath("INFERD_ECHO_BIN", INFERD_ECHO_BUILT_BIN), {"serve"},
      Env{{"SAGEMAKER_BIND_TO_PORT", "0"}, {"ECHO_DURABLE_FILE", "/nonexistent-dir/ring"}});
  EXPECT_EQ(echo.WaitForExit(), 1);
  EXPECT_THAT(echo.Output(), HasSubstr("ECHO_DURABLE_FILE /nonexistent-dir/ring"));
}

TEST(EchoTest, UnknownPathsAnswer404) {
  Echo echo;
  EXPECT_EQ(echo.Get("/nope").status, 404);
  EXPECT_EQ(echo.Get("/invocations").status, 404);
}

}  // namespace
}  // namespace inferd::echo
