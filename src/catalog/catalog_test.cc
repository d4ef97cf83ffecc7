#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

namespace inferd::catalog {
namespace {

namespace json = boost::json;

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("inferd-catalog-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::move(CatalogStore::Open(dir_ / "catalog.db")).value();
    catalog_ = std::make_unique<Catalog>(*store_, clock_, "123456789012");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static json::object J(const char* text) { return json::parse(text).as_object(); }

  void CreateModelAndConfig() {
    ASSERT_TRUE(catalog_
                    ->CreateModel(kRegion, J(R"({"ModelName":"M1","PrimaryContainer":
        {"Image":"img:1","ModelDataUrl":"s3://b/m.tar.gz"}})"))
                    .ok());
    auto c = catalog_->CreateEndpointConfig(kRegion, J(R"({"EndpointConfigName":"C1",
        "ProductionVariants":[{"VariantName":"v1","ModelName":"M1","InstanceType":"ml.m5.large",
        "InitialInstanceCount":2}],
        "AsyncInferenceConfig":{"OutputConfig":{"S3OutputPath":"s3://b/out"}}})"));
    ASSERT_TRUE(c.ok()) << c.error().message;
  }
  void ForceStatus(const std::string& endpoint, EndpointStatus status) {
    auto r = store_->Get(Kind::kEndpoint, kRegion, endpoint);
    ASSERT_TRUE(r.ok());
    r->status = std::string(ToString(status));
    ASSERT_TRUE(store_->Update(*r).ok());
  }

  static constexpr const char* kRegion = "eu-west-1";
  FakeClock clock_{FromEpochSeconds(1700000000.5)};
  std::filesystem::path dir_;
  std::unique_ptr<CatalogStore> store_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, ModelArnIsLowerCasedAndDuplicatesRefused) {
  auto r =
      catalog_->CreateModel(kRegion, J(R"({"ModelName":"MyModel","PrimaryContainer":{"Image":"x"},
                                              "Tags":[{"Key":"team","Value":"a"}]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at("ModelArn").as_string(),
            "arn:aws:sagemaker:eu-west-1:123456789012:model/mymodel");
  auto dup = catalog_->CreateModel(
      kRegion, J(R"({"ModelName":"MYMODEL","PrimaryContainer":{"Image":"x"}})"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message,
            "Cannot create already existing model "
            "\"arn:aws:sagemaker:eu-west-1:123456789012:model/mymodel\".");
  auto d = catalog_->DescribeModel(kRegion, J(R"({"ModelName":"mymodel"})"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->at("ModelName").as_string(), "MyModel");
  EXPECT_EQ(d->at("PrimaryContainer").at("Image").as_string(), "x");
  EXPECT_FALSE(d->contains("Tags"));
  EXPECT_DOUBLE_EQ(d->at("CreationTime").as_double(), 1700000000.5);
  auto tags = catalog_->ListTags(kRegion, J(R"({"ResourceArn":
      "arn:aws:sagemaker:eu-west-1:123456789012:model/mymodel"})"));
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->at("Tags").as_array().size(), 1u);
}

TEST_F(CatalogTest, ModelNeedsExactlyOneContainerForm) {
  EXPECT_FALSE(catalog_->CreateModel(kRegion, J(R"({"ModelName":"a"})")).ok());
  EXPECT_FALSE(catalog_
                   ->CreateModel(kRegion, J(R"({"ModelName":"a","PrimaryContainer":{},
      "Containers":[{}]})"))
                   .ok());
}

TEST_F(CatalogTest, EndpointConfigChecks) {
  auto missing = catalog_->CreateEndpointConfig(kRegion, J(R"({"EndpointConfigName":"c",
      "ProductionVariants":[{"VariantName":"v","ModelName":"nope","InstanceType":"ml.m5.large",
      "InitialInstanceCount":1}]})"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "Could not find model \"arn:aws:sagemaker:eu-west-1:123456789012:model/nope\".");
  ASSERT_TRUE(
      catalog_->CreateModel(kRegion, J(R"({"ModelName":"m","PrimaryContainer":{"Image":"x"}})"))
          .ok());
  auto no_output = catalog_->CreateEndpointConfig(kRegion, J(R"({"EndpointConfigName":"c",
      "ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large",
      "InitialInstanceCount":1}],"AsyncInferenceConfig":{"OutputConfig":{}}})"));
  ASSERT_FALSE(no_output.ok());
  EXPECT_NE(no_output.error().message.find("S3OutputPath"), std::string::npos);
  auto serverless = catalog_->CreateEndpointConfig(kRegion, J(R"({"EndpointConfigName":"c",
      "ProductionVariants":[{"VariantName":"v","ModelName":"m","ServerlessConfig":
      {"MemorySizeInMB":2048,"MaxConcurrency":1}}],
      "AsyncInferenceConfig":{"OutputConfig":{"S3OutputPath":"s3://b/o"}}})"));
  ASSERT_FALSE(serverless.ok());
  EXPECT_EQ(serverless.error().message.rfind(
                "One or more endpoint features are not supported using this configuration", 0),
            0u);
  auto dup_variant = catalog_->CreateEndpointConfig(kRegion, J(R"({"EndpointConfigName":"c",
      "ProductionVariants":[{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large",
      "InitialInstanceCount":1},{"VariantName":"v","ModelName":"m","InstanceType":"ml.m5.large",
      "InitialInstanceCount":1}]})"));
  EXPECT_FALSE(dup_variant.ok());
}

TEST_F(CatalogTest, EndpointStartsCreatingAndEchoesConfig) {
  CreateModelAndConfig();
  auto e =
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"c1"})"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"e1"})"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->at("EndpointStatus").as_string(), "Creating");
  EXPECT_EQ(d->at("EndpointConfigName").as_string(), "C1");
  const auto& v = d->at("ProductionVariants").as_array().at(0).as_object();
  EXPECT_EQ(v.at("DesiredInstanceCount").to_number<int>(), 2);
  EXPECT_EQ(v.at("CurrentInstanceCount").to_number<int>(), 0);
  EXPECT_EQ(v.at("DeployedImages").as_array().at(0).at("SpecifiedImage").as_string(), "img:1");
  EXPECT_EQ(d->at("AsyncInferenceConfig").at("OutputConfig").at("S3OutputPath").as_string(),
            "s3://b/out");
  // Deleting the config and model does not change what the endpoint runs.
  ASSERT_TRUE(catalog_->DeleteEndpointConfig(kRegion, J(R"({"EndpointConfigName":"C1"})")).ok());
  ASSERT_TRUE(catalog_->DeleteModel(kRegion, J(R"({"ModelName":"M1"})")).ok());
  EXPECT_TRUE(catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})")).ok());
}

TEST_F(CatalogTest, UpdatesNeedInService) {
  CreateModelAndConfig();
  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  auto early =
      catalog_->UpdateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().message,
            "Cannot update in-progress endpoint "
            "\"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/e1\".");

  ForceStatus("E1", EndpointStatus::kInService);  // what the fleet reconciler would do
  auto unknown = catalog_->UpdateEndpointWeightsAndCapacities(kRegion, J(R"({"EndpointName":"E1",
      "DesiredWeightsAndCapacities":[{"VariantName":"zz","DesiredInstanceCount":0}]})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message,
            "The variant name(s) \"zz\" is/are not present within endpoint configuration \"C1\".");
  auto scale = catalog_->UpdateEndpointWeightsAndCapacities(kRegion, J(R"({"EndpointName":"E1",
      "DesiredWeightsAndCapacities":[{"VariantName":"v1","DesiredInstanceCount":0}]})"));
  ASSERT_TRUE(scale.ok()) << scale.error().message;
  auto d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  EXPECT_EQ(d->at("EndpointStatus").as_string(), "Updating");
  EXPECT_EQ(d->at("ProductionVariants").at(0).at("DesiredInstanceCount").to_number<int>(), 0);

  ForceStatus("E1", EndpointStatus::kInService);
  auto up = catalog_->UpdateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1",
      "RetainAllVariantProperties":true})"));
  ASSERT_TRUE(up.ok()) << up.error().message;
  d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  const auto& pending = d->at("PendingDeploymentSummary").as_object();
  EXPECT_EQ(pending.at("EndpointConfigName").as_string(), "C1");
  EXPECT_EQ(pending.at("ProductionVariants").at(0).at("DesiredInstanceCount").to_number<int>(), 0);
}

TEST_F(CatalogTest, DeleteEndpointThenNotFound) {
  CreateModelAndConfig();
  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  ASSERT_TRUE(catalog_->DeleteEndpoint(kRegion, J(R"({"EndpointName":"E1"})")).ok());
  // Deleting until the fleet reconciler has stopped the instances and removes it.
  auto deleting = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  ASSERT_TRUE(deleting.ok());
  EXPECT_EQ(deleting->at("EndpointStatus").as_string(), "Deleting");
  auto again = catalog_->DeleteEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kValidation);
  ASSERT_TRUE(catalog_->RemoveDeleted(kRegion, "E1").ok());
  auto d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kValidation);
  EXPECT_EQ(d.error().message,
            "Could not find endpoint \"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/e1\".");
}

TEST_F(CatalogTest, EndpointObserverSeesEveryCommittedChangeInOrder) {
  std::vector<std::pair<EndpointChange, std::string>> seen;  // change, status as stored
  catalog_->SetEndpointObserver([&](EndpointChange change, const Resource& endpoint) {
    seen.emplace_back(change, endpoint.status);
  });
  CreateModelAndConfig();
  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  // A refused call commits nothing and tells nobody.
  ASSERT_FALSE(
      catalog_->UpdateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  ASSERT_TRUE(catalog_->ReportFleet(kRegion, "E1", EndpointEvent::kFleetReady, "", {}).ok());
  ASSERT_TRUE(
      catalog_->UpdateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  ASSERT_TRUE(catalog_->ReportFleet(kRegion, "E1", EndpointEvent::kFleetReady, "", {}).ok());
  ASSERT_TRUE(catalog_
                  ->UpdateEndpointWeightsAndCapacities(kRegion, J(R"({"EndpointName":"E1",
      "DesiredWeightsAndCapacities":[{"VariantName":"v1","DesiredInstanceCount":0}]})"))
                  .ok());
  ASSERT_TRUE(catalog_->DeleteEndpoint(kRegion, J(R"({"EndpointName":"E1"})")).ok());
  ASSERT_TRUE(catalog_->RemoveDeleted(kRegion, "E1").ok());
  std::vector<std::pair<EndpointChange, std::string>> want = {
      {EndpointChange::kCreated, "Creating"},         {EndpointChange::kFleetReported, "InService"},
      {EndpointChange::kUpdated, "Updating"},         {EndpointChange::kFleetReported, "InService"},
      {EndpointChange::kCapacityUpdated, "Updating"}, {EndpointChange::kDeleting, "Deleting"},
      {EndpointChange::kRemoved, "Deleting"},
  };
  EXPECT_EQ(seen, want);
}

TEST_F(CatalogTest, RemoveDeletedRefusesLiveEndpoint) {
  CreateModelAndConfig();
  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  auto st = catalog_->RemoveDeleted(kRegion, "E1");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kInvalidState);
}

TEST_F(CatalogTest, ReportFleetReadyAndFailed) {
  CreateModelAndConfig();
  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E1","EndpointConfigName":"C1"})"))
          .ok());
  ASSERT_TRUE(catalog_
                  ->ReportFleet(kRegion, "E1", EndpointEvent::kFleetReady, "",
                                {{"v1", 2, {"/usr/bin/model"}}})
                  .ok());
  auto d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E1"})"));
  EXPECT_EQ(d->at("EndpointStatus").as_string(), "InService");
  const auto& v = d->at("ProductionVariants").at(0).as_object();
  EXPECT_EQ(v.at("CurrentInstanceCount").to_number<int>(), 2);
  EXPECT_FALSE(v.contains("VariantStatus"));
  EXPECT_EQ(v.at("DeployedImages").at(0).at("ResolvedImage").as_string(), "/usr/bin/model");
  // An InService endpoint cannot be failed by a creation report.
  auto st = catalog_->ReportFleet(kRegion, "E1", EndpointEvent::kFleetFailed, "x", {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kInvalidState);

  ASSERT_TRUE(
      catalog_->CreateEndpoint(kRegion, J(R"({"EndpointName":"E2","EndpointConfigName":"C1"})"))
          .ok());
  ASSERT_TRUE(
      catalog_->ReportFleet(kRegion, "E2", EndpointEvent::kFleetFailed, "/ping did not pass", {})
          .ok());
  d = catalog_->DescribeEndpoint(kRegion, J(R"({"EndpointName":"E2"})"));
  EXPECT_EQ(d->at("EndpointStatus").as_string(), "Failed");
  EXPECT_EQ(d->at("FailureReason").as_string(), "/ping did not pass");
}

}  // namespace
}  // namespace inferd::catalog
