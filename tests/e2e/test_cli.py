"""Key control-plane flows through the AWS CLI, v1 (`python3 -m awscli`, botocore 1.43) and
v2 (/usr/bin/aws, 2.9.19, whose older service model lacks S3FailurePath and
IncludeInferenceResponseIn, so its async config omits them).
"""

import json
import time
import unittest

from harness import InferdTestCase, arn, unique_name

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
CONTAINER = {"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz",
             "Environment": {"TS_MAX_REQUEST_SIZE": "100000000",
                             "TS_MAX_RESPONSE_SIZE": "100000000"}}
ASYNC_V2 = {
    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    "OutputConfig": {
        "S3OutputPath": "s3://bucket/output",
        "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:ok",
                               "ErrorTopic": "arn:aws:sns:us-east-1:000000000000:err"},
    },
}
ASYNC_V1 = {
    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    "OutputConfig": {
        "S3OutputPath": "s3://bucket/output",
        "S3FailurePath": "s3://bucket/failure",
        "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:ok",
                               "ErrorTopic": "arn:aws:sns:us-east-1:000000000000:err",
                               "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC",
                                                              "ERROR_NOTIFICATION_TOPIC"]},
    },
}
CLIS = ("v1", "v2")


class CliTest(InferdTestCase):
    server_config = {"model_hosting": False}  # the catalog flows; hosting is test_fleet's

    def cli(self, version, *args, expect_ok=True):
        run = self.server.cli_v1 if version == "v1" else self.server.cli_v2
        code, out, err = run(*args)
        if expect_ok:
            self.assertEqual(code, 0, f"aws {' '.join(map(str, args))} ({version}) failed:\n"
                                      f"stdout: {out!r}\nstderr: {err}")
        return code, out, err

    def ok(self, version, *args):
        return self.cli(version, *args)[1]

    def create_model(self, version, name=None):
        name = name or unique_name(f"cli{version}")
        out = self.ok(version, "sagemaker", "create-model", "--model-name", name,
                      "--primary-container", json.dumps(CONTAINER),
                      "--execution-role-arn", ROLE,
                      "--tags", "Key=team,Value=ml")
        self.assertEqual(out["ModelArn"], arn("model", name))
        return name

    def test_model_flow(self):
        for version in CLIS:
            with self.subTest(cli=version):
                prefix = unique_name(f"CliModel{version}")
                names = [self.create_model(version, f"{prefix}-{i}") for i in range(2)]
                desc = self.ok(version, "sagemaker", "describe-model", "--model-name", names[0])
                self.assertEqual(desc["ModelName"], names[0])
                self.assertEqual(desc["ModelArn"], arn("model", names[0]))
                self.assertEqual(desc["ExecutionRoleArn"], ROLE)
                for key, value in CONTAINER.items():
                    self.assertEqual(desc["PrimaryContainer"][key], value)
                self.assertTrue(desc["CreationTime"])

                # The CLI paginates by itself (--page-size 1 → two round trips).
                listed = self.ok(version, "sagemaker", "list-models", "--name-contains", prefix,
                                 "--sort-by", "Name", "--sort-order", "Ascending",
                                 "--page-size", "1")
                self.assertEqual([m["ModelName"] for m in listed["Models"]], names)
                self.assertEqual([m["ModelArn"] for m in listed["Models"]],
                                 [arn("model", n) for n in names])

                tags = self.sm().list_tags(ResourceArn=arn("model", names[0]))["Tags"]
                self.assertEqual(tags, [{"Key": "team", "Value": "ml"}])

                self.ok(version, "sagemaker", "delete-model", "--model-name", names[1])
                self.assertEqual(
                    [m["ModelName"] for m in self.sm().list_models(NameContains=prefix)["Models"]],
                    [names[0]])

    def test_endpoint_flow(self):
        for version in CLIS:
            with self.subTest(cli=version):
                async_config = ASYNC_V1 if version == "v1" else ASYNC_V2
                model = self.create_model(version)
                config = unique_name(f"cli{version}-config")
                variants = [{"VariantName": "AllTraffic", "ModelName": model,
                             "InitialInstanceCount": 2, "InstanceType": "ml.m5.xlarge",
                             "InitialVariantWeight": 1.0}]
                out = self.ok(version, "sagemaker", "create-endpoint-config",
                              "--endpoint-config-name", config,
                              "--production-variants", json.dumps(variants),
                              "--async-inference-config", json.dumps(async_config))
                self.assertEqual(out["EndpointConfigArn"], arn("endpoint-config", config))
                desc = self.ok(version, "sagemaker", "describe-endpoint-config",
                               "--endpoint-config-name", config)
                self.assertEqual(desc["AsyncInferenceConfig"], async_config)
                self.assertEqual(desc["ProductionVariants"][0]["VariantName"], "AllTraffic")
                self.assertEqual(desc["ProductionVariants"][0]["ModelName"], model)

                endpoint = unique_name(f"Cli{version}-Endpoint")
                out = self.ok(version, "sagemaker", "create-endpoint", "--endpoint-name",
                              endpoint, "--endpoint-config-name", config,
                              "--tags", "Key=stage,Value=test")
                self.assertEqual(out["EndpointArn"], arn("endpoint", endpoint))
                desc = self.ok(version, "sagemaker", "describe-endpoint", "--endpoint-name",
                               endpoint)
                self.assertEqual(desc["EndpointName"], endpoint)
                self.assertEqual(desc["EndpointArn"], arn("endpoint", endpoint))
                self.assertEqual(desc["EndpointStatus"], "Creating")
                self.assertEqual(desc["EndpointConfigName"], config)
                self.assertEqual(desc["AsyncInferenceConfig"], async_config)
                self.assertEqual(desc["ProductionVariants"][0]["VariantName"], "AllTraffic")
                self.assertEqual(desc["ProductionVariants"][0]["DesiredInstanceCount"], 2)
                self.assertEqual(desc["ProductionVariants"][0].get("CurrentInstanceCount"), 0)

                listed = self.ok(version, "sagemaker", "list-endpoints", "--name-contains",
                                 endpoint, "--status-equals", "Creating")
                self.assertEqual([(e["EndpointName"], e["EndpointStatus"])
                                  for e in listed["Endpoints"]], [(endpoint, "Creating")])
                tags = self.ok(version, "sagemaker", "list-tags", "--resource-arn",
                               arn("endpoint", endpoint))
                self.assertEqual(tags["Tags"], [{"Key": "stage", "Value": "test"}])

                code, _, err = self.cli(version, "sagemaker", "update-endpoint",
                                        "--endpoint-name", endpoint,
                                        "--endpoint-config-name", config, expect_ok=False)
                self.assertNotEqual(code, 0)
                self.assertIn("ValidationException", err)
                self.assertIn(f'Cannot update in-progress endpoint "{arn("endpoint", endpoint)}".',
                              err)

                self.ok(version, "sagemaker", "delete-endpoint", "--endpoint-name", endpoint)
                # The CLI waiter sleeps 30 s between polls: wait for the endpoint to be gone
                # first (bounded polling with boto3), so its first poll succeeds.
                client = self.sm()

                def gone():
                    try:
                        client.describe_endpoint(EndpointName=endpoint)
                        return False
                    except client.exceptions.ClientError:
                        return True
                self.poll_until(gone, timeout=30, what=f"{endpoint} to disappear")
                start = time.monotonic()
                self.ok(version, "sagemaker", "wait", "endpoint-deleted", "--endpoint-name",
                        endpoint)
                self.assertLess(time.monotonic() - start, 25)
                self.assertEqual(client.list_endpoints(NameContains=endpoint)["Endpoints"], [])

    def test_missing_model_error(self):
        for version in CLIS:
            with self.subTest(cli=version):
                name = unique_name("nope")
                code, out, err = self.cli(version, "sagemaker", "describe-model", "--model-name",
                                          name, expect_ok=False)
                self.assertNotEqual(code, 0, out)
                self.assertIn("ValidationException", err)
                self.assertIn(f'Could not find model "{arn("model", name)}".', err)

    def test_validation_error(self):
        for version in CLIS:
            with self.subTest(cli=version):
                code, out, err = self.cli(version, "sagemaker", "create-model",
                                          "--model-name", "bad_name",
                                          "--primary-container", json.dumps(CONTAINER),
                                          "--execution-role-arn", ROLE,
                                          expect_ok=False)
                self.assertNotEqual(code, 0, out)
                self.assertIn("ValidationException", err)
                self.assertIn("1 validation error detected: Value 'bad_name' at 'modelName'",
                              err)


if __name__ == "__main__":
    unittest.main()
