#include "app/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace inferd::app {
namespace {

// Removes the test's config file when the test ends (WriteTemp is called more than once in a test:
// each call overwrites the same file).
class ConfigFile : public ::testing::Test {
 protected:
  void TearDown() override {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove(path_, ec);
  }

  std::string WriteTemp(const std::string& text) {
    path_ = std::filesystem::temp_directory_path() /
            ("inferd-config-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json");
    std::ofstream(path_) << text;
    return path_.string();
  }

 private:
  std::filesystem::path path_;
};

TEST(Config, ParsesListenForms) {
  Config c;
  c.listen = "127.0.0.1:0";
  ASSERT_TRUE(c.Validate().ok());
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 0);
  c.listen = "[::1]:8600";
  ASSERT_TRUE(c.Validate().ok());
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 8600);
  c.listen = "8600";
  EXPECT_FALSE(c.Validate().ok());
  c.listen = "h:70000";
  EXPECT_FALSE(c.Validate().ok());
}

TEST(Config, Loopback) {
  EXPECT_TRUE(IsLoopback("127.0.0.1"));
  EXPECT_TRUE(IsLoopback("127.1.2.3"));
  EXPECT_TRUE(IsLoopback("::1"));
  EXPECT_TRUE(IsLoopback("localhost"));
  EXPECT_FALSE(IsLoopback("0.0.0.0"));
  EXPECT_FALSE(IsLoopback("::"));
  EXPECT_FALSE(IsLoopback("10.0.0.1"));
}

TEST_F(ConfigFile, LoadsFileAndRejectsUnknownKeys) {
  Config c;
  c.config_file = WriteTemp(R"({"account_id":"123456789012","io_threads":3,
      "credentials":[{"access_key_id":"AK","secret_access_key":"S"}]})");
  ASSERT_TRUE(c.Load().ok());
  EXPECT_EQ(c.account_id, "123456789012");
  EXPECT_EQ(c.io_threads, 3);
  EXPECT_EQ(c.credentials.at("AK"), "S");

  Config bad;
  bad.config_file = WriteTemp(R"({"acount_id":"123456789012"})");
  auto st = bad.Load();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("unknown key \"acount_id\""), std::string::npos);

  Config range;
  range.config_file = WriteTemp(R"({"io_threads":0})");
  EXPECT_FALSE(range.Load().ok());
  Config account;
  account.config_file = WriteTemp(R"({"account_id":"12"})");
  EXPECT_FALSE(account.Load().ok());
}

TEST_F(ConfigFile, ModelHostingKeys) {
  Config c;
  c.config_file = WriteTemp(R"({"docker_host":"unix:///run/podman/podman.sock",
      "image_runtimes":[{"pattern":"registry.example/*","runtime":"docker"},
                        {"pattern":"local/*","command":"/usr/bin/server"}],
      "instance_types":{"ml.m5.large":{"vcpu":1,"memory_mib":512}}})");
  auto st = c.Load();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(c.docker_host, "unix:///run/podman/podman.sock");
  ASSERT_EQ(c.image_runtimes.size(), 2u);
  EXPECT_EQ(c.image_runtimes[0].runtime, fleet::RuntimeKind::kDocker);
  EXPECT_EQ(c.image_runtimes[1].command, "/usr/bin/server");
  EXPECT_EQ(c.instance_types.at("ml.m5.large"), (fleet::InstanceResources{1, 512, 0}));
  for (const char* bad : {R"({"docker_host":"tcp://127.0.0.1:2375"})",
                          R"({"image_runtimes":[{"pattern":"x","runtime":"podman"}]})",
                          R"({"instance_types":{"ml.m5.large":{"vcpu":0}}})"}) {
    Config b;
    b.config_file = WriteTemp(bad);
    EXPECT_FALSE(b.Load().ok()) << bad;
  }
}

TEST_F(ConfigFile, AsyncInvocationKeys) {
  Config c;
  c.config_file = WriteTemp(R"({"dispatch_threads":8,
      "default_max_concurrent_invocations_per_instance":2, "invocation_max_attempts":5,
      "invocation_retention_hours":1, "invoke_endpoint_timeout_seconds":120,
      "invoke_endpoint_threads":4, "queue_commit_interval_us":0})");
  auto st = c.Load();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(c.dispatch_threads, 8);
  EXPECT_EQ(c.default_max_concurrent_invocations_per_instance, 2);
  EXPECT_EQ(c.invocation_max_attempts, 5);
  EXPECT_EQ(c.invocation_retention_hours, 1);
  EXPECT_EQ(c.invoke_endpoint_timeout_seconds, 120);
  EXPECT_EQ(c.invoke_endpoint_threads, 4);
  EXPECT_EQ(c.queue_commit_interval_us, 0);
  EXPECT_EQ(Config().queue_commit_interval_us, 1000);
  // MaxConcurrentInvocationsPerInstance's own range is 1-1000.
  for (const char* bad :
       {R"({"default_max_concurrent_invocations_per_instance":0})",
        R"({"default_max_concurrent_invocations_per_instance":1001})",
        R"({"invocation_max_attempts":0})", R"({"dispatch_threads":"8"})",
        R"({"queue_commit_interval_us":-1})", R"({"queue_commit_interval_us":1000001})"}) {
    Config b;
    b.config_file = WriteTemp(bad);
    EXPECT_FALSE(b.Load().ok()) << bad;
  }
}

TEST(Config, ReferenceListsEveryKey) {
  std::string ref = ConfigReference();
  for (const char* key : {"account_id", "credentials", "io_threads", "max_body_bytes",
                          "shutdown_grace_seconds", "max_clock_skew_seconds"}) {
    EXPECT_NE(ref.find(std::string("`") + key + "`"), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace inferd::app
