#include "api/sagemaker/validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace inferd::api::sagemaker {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kNamePattern = "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?";
constexpr std::string_view kEndpointNamePattern = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}";

json::value Parse(std::string_view text) { return json::parse(text); }

// The validation message for `input`, or "OK".
std::string Check(std::string_view operation, const json::value& input) {
  Status s = ValidateInput(operation, input);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.error().code, Errc::kValidation) << s.error().message;
  return s.error().message;
}

std::string One(std::string_view value, std::string_view path, std::string_view constraint) {
  return "1 validation error detected: Value '" + std::string(value) + "' at '" +
         std::string(path) + "' failed to satisfy constraint: " + std::string(constraint);
}

json::value ValidModel() {
  return Parse(R"({
    "ModelName": "xgb-model-1",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/service-role/SageMakerRole",
    "PrimaryContainer": {
      "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1.7-1",
      "ModelDataUrl": "s3://models/xgb/model.tar.gz",
      "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "_X1": "any value\nwith newline"}
    },
    "Tags": [{"Key": "team", "Value": "ml"},
             {"Key": "aws:cost-center", "Value": "a b_c.d:e/f=g+h-i@j"}],
    "EnableNetworkIsolation": false
  })");
}

json::value ValidEndpointConfig() {
  return Parse(R"({
    "EndpointConfigName": "async-cfg",
    "ProductionVariants": [{
      "VariantName": "AllTraffic", "ModelName": "xgb-model-1", "InitialInstanceCount": 1,
      "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0
    }],
    "AsyncInferenceConfig": {
      "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
      "OutputConfig": {
        "S3OutputPath": "s3://bucket/async-out",
        "S3FailurePath": "s3://bucket/async-failures/",
        "NotificationConfig": {
          "SuccessTopic": "arn:aws:sns:us-east-1:123456789012:async-success",
          "ErrorTopic": "arn:aws:sns:us-east-1:123456789012:async-error",
          "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]
        }
      }
    }
  })");
}

json::value& At(json::value& v, std::string_view pointer) { return v.at_pointer(pointer); }

TEST(SageMakerValidatorTest, EmbeddedModelLoadsAndEveryPatternCompiles) {
  const Result<Validator>& v = EmbeddedValidator();
  ASSERT_TRUE(v.ok()) << v.error().message;
  const json::value doc = json::parse(EmbeddedShapesJson());
  const json::object& shapes = doc.at("shapes").as_object();
  std::size_t patterns = 0;
  for (const auto& entry : shapes) patterns += entry.value().as_object().contains("pattern");
  EXPECT_GT(patterns, 20u);
  EXPECT_EQ(v->PatternCount(), patterns);
  EXPECT_EQ(v->ShapeCount(), shapes.size());
  EXPECT_EQ(v->OperationCount(), 17u);
}

TEST(SageMakerValidatorTest, LoadReportsPatternsThatDoNotCompileAndDanglingShapes) {
  Result<Validator> v = Validator::Load(R"({"operations": {"Op": "In"}, "shapes": {
      "In": {"type": "structure", "members": {"A": "Bad", "B": "Missing"}},
      "Bad": {"type": "string", "pattern": "a(b"}}})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::kInternal);
  EXPECT_THAT(v.error().message, HasSubstr("shape Bad: pattern a(b does not compile"));
  EXPECT_THAT(v.error().message, HasSubstr("member B names an unknown shape"));
  EXPECT_FALSE(Validator::Load("{not json").ok());
}

TEST(SageMakerValidatorTest, ValidInputsPass) {
  EXPECT_EQ(Check("CreateModel", ValidModel()), "OK");
  EXPECT_EQ(Check("CreateEndpointConfig", ValidEndpointConfig()), "OK");
  EXPECT_EQ(Check("CreateEndpoint", Parse(R"({"EndpointName": "my-endpoint",
      "EndpointConfigName": "async-cfg", "Tags": []})")),
            "OK");
  EXPECT_EQ(Check("ListEndpoints", Parse(R"({"SortBy": "CreationTime", "SortOrder": "Descending",
      "MaxResults": 100, "NameContains": "my-", "CreationTimeAfter": 1704067200,
      "CreationTimeBefore": 1700000000.123, "StatusEquals": "InService"})")),
            "OK");
  EXPECT_EQ(Check("ListEndpoints", json::value()), "OK");  // no body at all
  EXPECT_EQ(Check("ListModels", json::object()), "OK");
  EXPECT_EQ(Check("DeleteModel", Parse(R"({"ModelName": "m", "Unknown": [1, 2]})")), "OK");
  EXPECT_EQ(Check("UpdateEndpointWeightsAndCapacities", Parse(R"({"EndpointName": "e",
      "DesiredWeightsAndCapacities": [{"VariantName": "v", "DesiredInstanceCount": 0}]})")),
            "OK");
}

TEST(SageMakerValidatorTest, NameTooLong) {
  std::string name(64, 'a');
  EXPECT_EQ(Check("DescribeModel", json::object{{"ModelName", name}}),
            One(name, "modelName", "Member must have length less than or equal to 63"));
  EXPECT_EQ(Check("DescribeModel", json::object{{"ModelName", name.substr(1)}}), "OK");
}

TEST(SageMakerValidatorTest, BadNamePattern) {
  EXPECT_EQ(Check("DeleteModel", json::object{{"ModelName", "bad_name"}}),
            One("bad_name", "modelName",
                "Member must satisfy regular expression pattern: " + std::string(kNamePattern)));
  EXPECT_EQ(
      Check("DeleteEndpoint", json::object{{"EndpointName", "ends-with-"}}),
      One("ends-with-", "endpointName",
          "Member must satisfy regular expression pattern: " + std::string(kEndpointNamePattern)));
}

TEST(SageMakerValidatorTest, SeveralConstraintsOnOneValueGiveOneViolationEach) {
  std::string name(63, 'a');
  name += "_";
  EXPECT_EQ(Check("DeleteModel", json::object{{"ModelName", name}}),
            "2 validation errors detected: Value '" + name +
                "' at 'modelName' failed to satisfy constraint: Member must have length less than "
                "or equal to 63; Value '" +
                name +
                "' at 'modelName' failed to satisfy constraint: Member must satisfy regular "
                "expression pattern: " +
                std::string(kNamePattern));
}

TEST(SageMakerValidatorTest, TwoViolationsInDifferentMembers) {
  json::value model = ValidModel();
  model.as_object()["ModelName"] = "bad_name";
  At(model, "/PrimaryContainer/ModelDataUrl") = "ftp://models/x";
  EXPECT_EQ(Check("CreateModel", model),
            "2 validation errors detected: Value 'bad_name' at 'modelName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?; Value 'ftp://models/x' at "
            "'primaryContainer.modelDataUrl' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern: (https|s3)://([^/]+)/?(.*)");
}

TEST(SageMakerValidatorTest, MissingRequiredMembersAreNull) {
  EXPECT_EQ(Check("CreateEndpointConfig", Parse(R"({"ProductionVariants": [{}]})")),
            "2 validation errors detected: Value null at 'endpointConfigName' failed to satisfy "
            "constraint: Member must not be null; Value null at "
            "'productionVariants.1.member.variantName' failed to satisfy constraint: Member must "
            "not be null");
  EXPECT_EQ(Check("DescribeEndpoint", Parse(R"({"EndpointName": null})")),
            "1 validation error detected: Value null at 'endpointName' failed to satisfy "
            "constraint: Member must not be null");
}

TEST(SageMakerValidatorTest, InstanceTypeNotInEnum) {
  json::value cfg = ValidEndpointConfig();
  At(cfg, "/ProductionVariants/0/InstanceType") = "ml.huge";
  std::string message = Check("CreateEndpointConfig", cfg);
  EXPECT_THAT(message, StartsWith("1 validation error detected: Value 'ml.huge' at "
                                  "'productionVariants.1.member.instanceType' failed to satisfy "
                                  "constraint: Member must satisfy enum value set: [ml.t2.medium, "
                                  "ml.t2.large, ml.t2.xlarge, "));
  EXPECT_THAT(message, HasSubstr(", ml.m5.xlarge, "));
  EXPECT_EQ(message.back(), ']');
}

TEST(SageMakerValidatorTest, NumericRanges) {
  json::value cfg = ValidEndpointConfig();
  At(cfg, "/ProductionVariants/0/InitialInstanceCount") = 0;
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("0", "productionVariants.1.member.initialInstanceCount",
                "Member must have value greater than or equal to 1"));

  cfg = ValidEndpointConfig();
  At(cfg, "/AsyncInferenceConfig/ClientConfig/MaxConcurrentInvocationsPerInstance") = 1001;
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("1001", "asyncInferenceConfig.clientConfig.maxConcurrentInvocationsPerInstance",
                "Member must have value less than or equal to 1000"));

  cfg = ValidEndpointConfig();
  At(cfg, "/ProductionVariants/0/InitialVariantWeight") = -0.5;
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("-0.5", "productionVariants.1.member.initialVariantWeight",
                "Member must have value greater than or equal to 0"));

  EXPECT_EQ(Check("ListEndpoints", Parse(R"({"MaxResults": 101})")),
            One("101", "maxResults", "Member must have value less than or equal to 100"));
  EXPECT_EQ(Check("ListModels", Parse(R"({"MaxResults": 0})")),
            One("0", "maxResults", "Member must have value greater than or equal to 1"));
  // The model gives ListTags a minimum of 50 and no maximum.
  EXPECT_EQ(Check("ListTags", Parse(R"({"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:)"
                                    R"(endpoint/e", "MaxResults": 10})")),
            One("10", "maxResults", "Member must have value greater than or equal to 50"));
}

TEST(SageMakerValidatorTest, BadS3PathAndTopicArn) {
  json::value cfg = ValidEndpointConfig();
  At(cfg, "/AsyncInferenceConfig/OutputConfig/S3OutputPath") = "bucket/async-out";
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("bucket/async-out", "asyncInferenceConfig.outputConfig.s3OutputPath",
                "Member must satisfy regular expression pattern: (https|s3)://([^/])/?(.*)"));

  cfg = ValidEndpointConfig();
  At(cfg, "/AsyncInferenceConfig/OutputConfig/NotificationConfig/ErrorTopic") =
      "arn:aws:sqs:us-east-1:123456789012:queue";
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("arn:aws:sqs:us-east-1:123456789012:queue",
                "asyncInferenceConfig.outputConfig.notificationConfig.errorTopic",
                "Member must satisfy regular expression pattern: "
                "arn:aws[a-z\\-]*:sns:[a-z0-9\\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+"));

  cfg = ValidEndpointConfig();
  At(cfg, "/AsyncInferenceConfig/OutputConfig/NotificationConfig/IncludeInferenceResponseIn/0") =
      "EVERYWHERE";
  EXPECT_EQ(Check("CreateEndpointConfig", cfg),
            One("EVERYWHERE",
                "asyncInferenceConfig.outputConfig.notificationConfig.includeInferenceResponseIn."
                "1.member",
                "Member must satisfy enum value set: [SUCCESS_NOTIFICATION_TOPIC, "
                "ERROR_NOTIFICATION_TOPIC]"));
}

TEST(SageMakerValidatorTest, EnvironmentMapKeys) {
  json::value model = ValidModel();
  At(model, "/PrimaryContainer/Environment") = json::object{{"MY-KEY", "v"}, {"OK_KEY", "v"}};
  EXPECT_EQ(Check("CreateModel", model),
            One(R"({"MY-KEY":"v","OK_KEY":"v"})", "primaryContainer.environment",
                "Map keys must satisfy constraint: [Member must satisfy regular expression "
                "pattern: [a-zA-Z_][a-zA-Z0-9_]*]"));

  At(model, "/PrimaryContainer/Environment") = json::object{{"K", std::string(1025, 'x')}};
  EXPECT_THAT(Check("CreateModel", model),
              HasSubstr("at 'primaryContainer.environment' failed to satisfy constraint: Map value "
                        "must satisfy constraint: [Member must have length less than or equal to "
                        "1024]"));

  At(model, "/PrimaryContainer/Environment") = json::object{{"K", 5}};
  Status s = ValidateInput("CreateModel", model);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kSerialization);
}

TEST(SageMakerValidatorTest, TagsAcceptNonAsciiLettersAndCountCodePoints) {
  json::value model = ValidModel();
  At(model, "/Tags/0/Value") = "Größe café 日本語 ١٢٣";
  EXPECT_EQ(Check("CreateModel", model), "OK");

  std::string key;
  for (int i = 0; i < 128; ++i) key += "é";  // 128 code points, 256 bytes
  At(model, "/Tags/0/Key") = key;
  EXPECT_EQ(Check("CreateModel", model), "OK");
  At(model, "/Tags/0/Key") = key + "é";
  EXPECT_EQ(Check("CreateModel", model), One(key + "é", "tags.1.member.key",
                                             "Member must have length less than or equal to 128"));

  At(model, "/Tags/0/Key") = "team";
  At(model, "/Tags/0/Value") = "no!";
  EXPECT_EQ(
      Check("CreateModel", model),
      One("no!", "tags.1.member.value",
          "Member must satisfy regular expression pattern: ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"));
}

TEST(SageMakerValidatorTest, TooManyTags) {
  json::array tags;
  for (int i = 0; i < 51; ++i)
    tags.push_back(json::object{{"Key", "k" + std::to_string(i)}, {"Value", "v"}});
  json::value input = json::object{
      {"ResourceArn", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"}, {"Tags", tags}};
  std::string message = Check("AddTags", input);
  EXPECT_EQ(message,
            One(json::serialize(tags), "tags", "Member must have length less than or equal to 50"));
  tags.pop_back();
  input.as_object()["Tags"] = tags;
  EXPECT_EQ(Check("AddTags", input), "OK");
}

TEST(SageMakerValidatorTest, JavaPatternSemantics) {
  // Lookbehind, whole-value matching.
  json::value model = ValidModel();
  json::object& container = At(model, "/PrimaryContainer").as_object();
  container["ModelPackageName"] = "my-package/3";
  EXPECT_EQ(Check("CreateModel", model), "OK");
  container["ModelPackageName"] = "my-package-";
  EXPECT_THAT(Check("CreateModel", model),
              HasSubstr("at 'primaryContainer.modelPackageName' failed to satisfy constraint: "
                        "Member must satisfy regular expression pattern: "));
  // `(?!\s*$).+`: blank names fail, '.' does not match a line break.
  auto alarm = [](std::string_view name) {
    json::value v = Parse(R"({"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig":
        {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ""}]}}})");
    At(v, "/DeploymentConfig/AutoRollbackConfiguration/Alarms/0/AlarmName") = name;
    return Check("UpdateEndpoint", v);
  };
  EXPECT_EQ(alarm("high-latency"), "OK");
  EXPECT_EQ(alarm("   "),
            One("   ", "deploymentConfig.autoRollbackConfiguration.alarms.1.member.alarmName",
                "Member must satisfy regular expression pattern: (?!\\s*$).+"));
  EXPECT_THAT(alarm("two\nlines"), HasSubstr("Member must satisfy regular expression pattern"));
}

TEST(SageMakerValidatorTest, WrongJsonTypeIsSerializationError) {
  auto expect_serialization = [](std::string_view op, std::string_view body, std::string_view msg) {
    Status s = ValidateInput(op, Parse(body));
    ASSERT_FALSE(s.ok()) << body;
    EXPECT_EQ(s.error().code, Errc::kSerialization) << body;
    EXPECT_EQ(s.error().aws_code, "SerializationException");
    EXPECT_EQ(s.error().message, msg);
  };
  expect_serialization("DescribeModel", R"({"ModelName": 5})",
                       "Unexpected value at 'modelName': expected a string, got a number.");
  expect_serialization("CreateEndpointConfig",
                       R"({"EndpointConfigName": "c", "ProductionVariants": {"VariantName": "v"}})",
                       "Unexpected value at 'productionVariants': expected a list, got an object.");
  expect_serialization(
      "CreateEndpointConfig",
      R"({"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v",
          "InitialInstanceCount": "1"}]})",
      "Unexpected value at 'productionVariants.1.member.initialInstanceCount': expected a 32-bit "
      "integer, got a string.");
  expect_serialization(
      "ListModels", R"({"MaxResults": 1.5})",
      "Unexpected value at 'maxResults': expected a 32-bit integer, got a number.");
  expect_serialization("ListModels", R"({"CreationTimeAfter": "2024-01-01"})",
                       "Unexpected value at 'creationTimeAfter': expected a timestamp in epoch "
                       "seconds, got a string.");
  expect_serialization("CreateModel", R"({"ModelName": "m", "EnableNetworkIsolation": "true"})",
                       "Unexpected value at 'enableNetworkIsolation': expected a boolean, got a "
                       "string.");
  expect_serialization("ListModels", "[]",
                       "Unexpected value at the request body: expected an object, got a list.");
  // Integral floats are integers.
  EXPECT_EQ(Check("ListModels", Parse(R"({"MaxResults": 10.0})")), "OK");
}

TEST(SageMakerValidatorTest, UnknownOperation) {
  Status s = ValidateInput("CreateTrainingJob", json::object());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kUnknownOperation);
}

}  // namespace
}  // namespace inferd::api::sagemaker

namespace inferd::api::sagemaker {
namespace {

TEST(ValidatorKnownOperations, KnowsEverySageMakerOperation) {
  const auto& v = EmbeddedValidator();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->IsKnownOperation("CreateModel"));
  EXPECT_TRUE(v->IsKnownOperation("CreateTrainingJob"));  // real, not implemented by inferd
  EXPECT_FALSE(v->IsKnownOperation("NoSuchOperation"));
  EXPECT_FALSE(v->IsKnownOperation("createmodel"));
}

}  // namespace
}  // namespace inferd::api::sagemaker
