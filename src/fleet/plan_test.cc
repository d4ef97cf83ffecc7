// What a variant runs: instance type resources, model data sources, timeouts, runtimes.
#include "fleet/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "fleet/resources.h"

namespace inferd::fleet {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

TEST(ResourcesTest, TableCoversTheCommonTypes) {
  EXPECT_EQ(ResourcesFor("ml.m5.xlarge", {}), (InstanceResources{4, 16384, 0}));
  EXPECT_EQ(ResourcesFor("ml.t2.medium", {}), (InstanceResources{2, 4096, 0}));
  EXPECT_EQ(ResourcesFor("ml.c4.large", {}), (InstanceResources{2, 3840, 0}));
  EXPECT_EQ(ResourcesFor("ml.c5.9xlarge", {}), (InstanceResources{36, 73728, 0}));
  EXPECT_EQ(ResourcesFor("ml.r5.large", {}), (InstanceResources{2, 16384, 0}));
  EXPECT_EQ(ResourcesFor("ml.g4dn.12xlarge", {}), (InstanceResources{48, 196608, 4}));
  EXPECT_EQ(ResourcesFor("ml.g5.48xlarge", {}), (InstanceResources{192, 786432, 8}));
  EXPECT_EQ(ResourcesFor("ml.p3.2xlarge", {}), (InstanceResources{8, 62464, 1}));
  EXPECT_EQ(ResourcesFor("ml.inf1.xlarge", {}), (InstanceResources{4, 8192, 0}));
  for (const char* family : {"t2", "t3", "m4", "m5", "m5d", "m6i", "c4", "c5", "c5d", "c6i", "r5",
                             "g4dn", "g5", "p3", "inf1"}) {
    int sizes = 0;
    for (const auto& [name, r] : BuiltinInstanceTypes()) {
      if (name.rfind(std::string("ml.") + family + ".", 0) == 0) {
        ++sizes;
        EXPECT_GT(r.vcpus, 0) << name;
        EXPECT_GT(r.memory_mib, 0) << name;
      }
    }
    EXPECT_GE(sizes, 3) << family;
  }
}

TEST(ResourcesTest, UnknownTypesFollowTheirSizeAndOverridesWin) {
  EXPECT_EQ(ResourcesFor("ml.m7i.2xlarge", {}), (InstanceResources{8, 32768, 0}));
  EXPECT_EQ(ResourcesFor("ml.m7i.large", {}), (InstanceResources{2, 8192, 0}));
  EXPECT_EQ(ResourcesFor("ml.m7i.xlarge", {}), (InstanceResources{4, 16384, 0}));
  EXPECT_EQ(ResourcesFor("ml.weird", {}), (InstanceResources{2, 8192, 0}));
  auto overrides = InstanceTypesFromJson(
      json::parse(R"({"ml.m5.large": {"vcpu": 1, "memory_mib": 512}, "ml.x1.huge": {"gpus": 2}})"));
  ASSERT_TRUE(overrides.ok()) << overrides.error().message;
  EXPECT_EQ(ResourcesFor("ml.m5.large", *overrides), (InstanceResources{1, 512, 0}));
  EXPECT_EQ(ResourcesFor("ml.x1.huge", *overrides), (InstanceResources{2, 8192, 2}));
  EXPECT_EQ(ResourcesFor("ml.m5.xlarge", *overrides), (InstanceResources{4, 16384, 0}));
  EXPECT_EQ(Describe("ml.m5.large", (InstanceResources{1, 512, 0})),
            "ml.m5.large: 1 vCPUs, 512 MiB memory, 0 GPUs");
  for (const char* bad : {R"([])", R"({"m5.large": {}})", R"({"ml.a.b": 3})",
                          R"({"ml.a.b": {"vcpu": 0}})", R"({"ml.a.b": {"vcpu": "2"}})",
                          R"({"ml.a.b": {"memory_mib": 1}})", R"({"ml.a.b": {"cpus": 2}})"}) {
    auto r = InstanceTypesFromJson(json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(PlanTest, ModelDataSourcesAndUrls) {
  auto of = [](const char* container) { return ModelDataOf(json::parse(container).as_object()); };
  auto prefix = of(R"({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/m/",
                       "S3DataType": "S3Prefix", "CompressionType": "None"}}})");
  ASSERT_TRUE(prefix.ok() && prefix->has_value());
  EXPECT_EQ((*prefix)->kind, ModelData::Kind::kPrefix);
  EXPECT_EQ((*prefix)->uri, "s3://b/m/");
  auto gz = of(R"({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/m.tar.gz",
                   "S3DataType": "S3Object", "CompressionType": "Gzip"}}})");
  ASSERT_TRUE(gz.ok() && gz->has_value());
  EXPECT_EQ((*gz)->kind, ModelData::Kind::kTarGz);
  auto one = of(R"({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/model.bin",
                    "S3DataType": "S3Object", "CompressionType": "None"}}})");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->kind, ModelData::Kind::kObject);
  auto url = of(R"({"ModelDataUrl": "s3://b/m.tar.gz"})");
  ASSERT_TRUE(url.ok() && url->has_value());
  EXPECT_EQ((*url)->kind, ModelData::Kind::kTarGz);
  auto none = of(R"({"Image": "x"})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto bad = of(R"({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/m/",
                    "S3DataType": "S3Prefix", "CompressionType": "Gzip"}}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("S3DataType S3Prefix with CompressionType Gzip"));
}

TEST(PlanTest, VariantsGetRuntimeResourcesAndTimeouts) {
  FleetOptions o;
  o.data_dir = "/d";
  o.bin_dir = "/bin-dir";
  o.image_runtimes = {{"echo", "inferd-echo"}, {"registry/*", "", RuntimeKind::kDocker}};
  o.instance_types = {{"ml.m5.large", {1, 1024, 0}}};
  json::object doc = json::parse(R"({
    "Models": {
      "m1": {"ModelName": "m1", "PrimaryContainer": {"Image": "echo",
             "ModelDataUrl": "s3://b/m.tar.gz", "Environment": {"A": "1"}}},
      "m2": {"ModelName": "m2", "Containers": [{"Image": "registry/x:1"}]}},
    "Config": {"ProductionVariants": [
      {"VariantName": "v1", "ModelName": "m1", "InstanceType": "ml.m5.large",
       "InitialInstanceCount": 2, "ModelDataDownloadTimeoutInSeconds": 120,
       "ContainerStartupHealthCheckTimeoutInSeconds": 60},
      {"VariantName": "v2", "ModelName": "m2", "InstanceType": "ml.g4dn.xlarge",
       "InitialInstanceCount": 1}]},
    "Variants": [{"VariantName": "v1", "ModelName": "m1", "DesiredInstanceCount": 2},
                 {"VariantName": "v2", "ModelName": "m2", "DesiredInstanceCount": 0}]})")
                         .as_object();
  auto plans = PlanFleet(o, "Ep", doc);
  ASSERT_TRUE(plans.ok()) << plans.error().message;
  ASSERT_EQ(plans->size(), 2u);
  const VariantPlan& v1 = (*plans)[0];
  EXPECT_EQ(v1.desired, 2);
  EXPECT_EQ(v1.runtime, RuntimeKind::kProcess);
  EXPECT_EQ(v1.spec.command, "/bin-dir/inferd-echo");
  EXPECT_EQ(v1.spec.environment.at("A"), "1");
  EXPECT_EQ(v1.spec.instance_type, "ml.m5.large");
  EXPECT_EQ(v1.spec.resources, (InstanceResources{1, 1024, 0}));
  EXPECT_EQ(v1.spec.endpoint, "Ep");
  EXPECT_EQ(v1.download_timeout, std::chrono::seconds(120));
  EXPECT_EQ(v1.startup_timeout, std::chrono::seconds(60));
  const VariantPlan& v2 = (*plans)[1];
  EXPECT_EQ(v2.desired, 0);
  EXPECT_EQ(v2.runtime, RuntimeKind::kDocker);
  EXPECT_EQ(v2.spec.image, "registry/x:1");
  EXPECT_EQ(v2.spec.resources, (InstanceResources{4, 16384, 1}));
  EXPECT_FALSE(v2.model_data.has_value());
  EXPECT_EQ(v2.download_timeout, std::chrono::seconds(3600));  // SageMaker's default
  EXPECT_EQ(v2.startup_timeout, std::chrono::seconds(240));
}

}  // namespace
}  // namespace inferd::fleet
