"""SageMaker control plane (JSON 1.1, X-Amz-Target SageMaker.*) driven with boto3.

Behaviours asserted here are the ones fixed by shared/spec/sagemaker-async.md §1 and
docs/sagemaker-compat.md. Endpoints never leave `Creating` in this issue (no model hosting yet).
"""

import copy
import datetime
import math
import time
import unittest

from harness import (DEFAULT_ACCOUNT, InferdTestCase, arn, unique_name)

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-20240101T000000"
CONTAINER = {
    "Image": IMAGE,
    "ModelDataUrl": "s3://bucket/model.tar.gz",
    "Environment": {
        "TS_MAX_REQUEST_SIZE": "100000000",
        "TS_MAX_RESPONSE_SIZE": "100000000",
        "TS_DEFAULT_RESPONSE_TIMEOUT": "1000",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    },
}
SUCCESS_TOPIC = "arn:aws:sns:us-east-1:000000000000:async-success"
ERROR_TOPIC = "arn:aws:sns:us-east-1:000000000000:async-error"
ASYNC_CONFIG = {
    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    "OutputConfig": {
        "S3OutputPath": "s3://bucket/async/output",
        "S3FailurePath": "s3://bucket/async/failure",
        "KmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "NotificationConfig": {
            "SuccessTopic": SUCCESS_TOPIC,
            "ErrorTopic": ERROR_TOPIC,
            "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC",
                                           "ERROR_NOTIFICATION_TOPIC"],
        },
    },
}


def variant(model, name="AllTraffic", count=1, weight=1.0, instance_type="ml.m5.xlarge"):
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": count,
            "InstanceType": instance_type, "InitialVariantWeight": weight}


class ControlPlaneTestCase(InferdTestCase):
    """One server per class; helpers creating resources with unique names. Model hosting is off:
    these tests are about the catalog, so endpoints stay Creating (test_fleet covers hosting)."""

    server_config = {"model_hosting": False}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client = cls.sm()

    def create_model(self, name=None, client=None, **kwargs):
        name = name or unique_name("model")
        params = {"ModelName": name, "PrimaryContainer": copy.deepcopy(CONTAINER),
                  "ExecutionRoleArn": ROLE}
        params.update(kwargs)
        (client or self.client).create_model(**params)
        return name

    def create_config(self, model=None, name=None, variants=None, async_config=ASYNC_CONFIG,
                      **kwargs):
        model = model or self.create_model()
        name = name or unique_name("config")
        params = {"EndpointConfigName": name,
                  "ProductionVariants": variants or [variant(model)]}
        if async_config is not None:
            params["AsyncInferenceConfig"] = copy.deepcopy(async_config)
        params.update(kwargs)
        self.client.create_endpoint_config(**params)
        return name

    def create_endpoint(self, config=None, name=None, **kwargs):
        config = config or self.create_config()
        name = name or unique_name("endpoint")
        self.client.create_endpoint(EndpointName=name, EndpointConfigName=config, **kwargs)
        return name

    def wait_gone(self, endpoint, timeout=30):
        """Bounded polling until DescribeEndpoint says the endpoint is gone; while it exists its
        status must be Deleting."""
        def gone():
            try:
                desc = self.client.describe_endpoint(EndpointName=endpoint)
            except self.client.exceptions.ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "ValidationException", e.response)
                return True
            self.assertEqual(desc["EndpointStatus"], "Deleting")
            return False
        self.poll_until(gone, timeout=timeout, what=f"endpoint {endpoint} to disappear")

    def assertSubset(self, expected, actual, path=""):
        """Every key of `expected` is in `actual` with an equal value (recursively for dicts)."""
        for key, value in expected.items():
            self.assertIn(key, actual, f"missing {path}{key} in {actual!r}")
            if isinstance(value, dict):
                self.assertIsInstance(actual[key], dict)
                self.assertSubset(value, actual[key], f"{path}{key}.")
            elif isinstance(value, float):
                self.assertAlmostEqual(actual[key], value, msg=f"{path}{key}")
            else:
                self.assertEqual(actual[key], value, f"{path}{key}")

    @staticmethod
    def names(items, key):
        return [item[key] for item in items]


def wait_for_next_second_after(dt, seconds=2):
    """Sleep until the wall clock is at least floor(dt) + `seconds` (so that a whole-second
    boundary lies strictly between dt and anything created afterwards). At most `seconds` s."""
    target = math.floor(dt.timestamp()) + seconds
    delay = target - time.time()
    if delay > 0:
        time.sleep(delay + 0.01)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class ModelTest(ControlPlaneTestCase):

    def test_create_and_describe_model(self):
        name = unique_name("Model")
        resp = self.client.create_model(ModelName=name, PrimaryContainer=copy.deepcopy(CONTAINER),
                                        ExecutionRoleArn=ROLE)
        self.assertEqual(resp["ModelArn"], arn("model", name))
        self.assertTrue(resp["ResponseMetadata"]["RequestId"])
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)

        desc = self.client.describe_model(ModelName=name)
        self.assertEqual(desc["ModelName"], name)
        self.assertEqual(desc["ModelArn"], arn("model", name))
        self.assertEqual(desc["ExecutionRoleArn"], ROLE)
        self.assertSubset(CONTAINER, desc["PrimaryContainer"])
        self.assertEqual(desc["PrimaryContainer"]["Environment"], CONTAINER["Environment"])
        self.assertRecentTime(desc["CreationTime"])

    def test_arn_lowercases_name_and_duplicates_are_case_insensitive(self):
        resp = self.client.create_model(ModelName="MyModel",
                                        PrimaryContainer=copy.deepcopy(CONTAINER),
                                        ExecutionRoleArn=ROLE)
        self.assertEqual(resp["ModelArn"],
                         "arn:aws:sagemaker:us-east-1:000000000000:model/mymodel")
        desc = self.client.describe_model(ModelName="MyModel")
        self.assertEqual(desc["ModelName"], "MyModel")  # keeps the case it was created with
        self.assertEqual(desc["ModelArn"],
                         "arn:aws:sagemaker:us-east-1:000000000000:model/mymodel")
        for dup in ("MyModel", "mymodel"):
            with self.subTest(duplicate=dup):
                self.assertAwsError(
                    lambda: self.client.create_model(ModelName=dup,
                                                     PrimaryContainer=copy.deepcopy(CONTAINER),
                                                     ExecutionRoleArn=ROLE),
                    "ValidationException",
                    message='Cannot create already existing model '
                            '"arn:aws:sagemaker:us-east-1:000000000000:model/mymodel".')

    def test_containers_list_and_optional_role(self):
        name = unique_name("model")
        second = dict(copy.deepcopy(CONTAINER), ContainerHostname="second")
        first = dict(copy.deepcopy(CONTAINER), ContainerHostname="first")
        self.client.create_model(ModelName=name, Containers=[first, second],
                                 InferenceExecutionConfig={"Mode": "Serial"})
        desc = self.client.describe_model(ModelName=name)
        self.assertEqual(len(desc["Containers"]), 2)
        self.assertSubset(first, desc["Containers"][0])
        self.assertSubset(second, desc["Containers"][1])
        self.assertEqual(desc.get("InferenceExecutionConfig"), {"Mode": "Serial"})
        self.assertNotIn("ExecutionRoleArn", desc)

    def test_exactly_one_of_primary_container_and_containers(self):
        self.assertAwsError(
            lambda: self.client.create_model(ModelName=unique_name("model"),
                                             ExecutionRoleArn=ROLE),
            "ValidationException")
        self.assertAwsError(
            lambda: self.client.create_model(ModelName=unique_name("model"),
                                             PrimaryContainer=copy.deepcopy(CONTAINER),
                                             Containers=[copy.deepcopy(CONTAINER)]),
            "ValidationException")

    def test_describe_and_delete_missing_model(self):
        expected = 'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/x".'
        self.assertAwsError(lambda: self.client.describe_model(ModelName="x"),
                            "ValidationException", message=expected)
        self.assertAwsError(lambda: self.client.delete_model(ModelName="x"),
                            "ValidationException", message=expected)

    def test_delete_model(self):
        name = self.create_model()
        resp = self.client.delete_model(ModelName=name)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertAwsError(lambda: self.client.describe_model(ModelName=name),
                            "ValidationException",
                            message=f'Could not find model "{arn("model", name)}".')
        listed = self.client.list_models(NameContains=name)["Models"]
        self.assertEqual(listed, [])
        # The name is free again.
        self.create_model(name)
        self.assertEqual(self.client.describe_model(ModelName=name)["ModelName"], name)

    def test_model_name_too_long(self):
        name = "a" * 64
        resp = self.assertAwsError(
            lambda: self.client.create_model(ModelName=name,
                                             PrimaryContainer=copy.deepcopy(CONTAINER)),
            "ValidationException",
            message_startswith="1 validation error detected: Value '",
            message_contains=["at 'modelName' failed to satisfy constraint: Member must have "
                              "length less than or equal to 63", name])
        self.assertTrue(resp["ResponseMetadata"]["RequestId"])
        # 63 is fine.
        self.create_model("b" * 63)

    def test_model_name_bad_pattern(self):
        self.assertAwsError(
            lambda: self.client.create_model(ModelName="bad_name",
                                             PrimaryContainer=copy.deepcopy(CONTAINER)),
            "ValidationException",
            message_startswith="1 validation error detected: Value 'bad_name' at 'modelName' "
                               "failed to satisfy constraint: Member must satisfy regular "
                               "expression pattern: ")

    def test_two_validation_errors(self):
        self.assertAwsError(
            lambda: self.client.create_model(ModelName="a" * 64,
                                             PrimaryContainer=copy.deepcopy(CONTAINER),
                                             ExecutionRoleArn="arn:aws:iam::123:role/bad"),
            "ValidationException",
            message_startswith="2 validation errors detected: ",
            message_contains=["'modelName'", "'executionRoleArn'"])

    def test_bad_execution_role_arn(self):
        self.assertAwsError(
            lambda: self.create_model(ExecutionRoleArn="arn:aws:iam::123:role/bad"),
            "ValidationException",
            message_startswith="1 validation error detected: Value 'arn:aws:iam::123:role/bad' "
                               "at 'executionRoleArn' failed to satisfy constraint: Member must "
                               "satisfy regular expression pattern: ")


class ListModelsTest(ControlPlaneTestCase):

    def test_name_contains_and_sort_by_name(self):
        prefix = unique_name("lm")
        names = [f"{prefix}-{s}" for s in ("b", "a", "c")]
        for n in names:
            self.create_model(n)
        self.create_model(unique_name("other"))
        asc = self.client.list_models(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
        self.assertEqual(self.names(asc["Models"], "ModelName"), sorted(names))
        self.assertNotIn("NextToken", asc)
        for item in asc["Models"]:
            self.assertEqual(item["ModelArn"], arn("model", item["ModelName"]))
            self.assertRecentTime(item["CreationTime"])
        desc = self.client.list_models(NameContains=prefix, SortBy="Name", SortOrder="Descending")
        self.assertEqual(self.names(desc["Models"], "ModelName"), sorted(names, reverse=True))
        # NameContains is a substring match.
        mid = self.client.list_models(NameContains=prefix[3:] + "-a")
        self.assertEqual(self.names(mid["Models"], "ModelName"), [f"{prefix}-a"])

    def test_sort_by_creation_time_and_time_filters(self):
        prefix = unique_name("lt")
        created = []
        for i in range(3):
            if created:
                wait_for_next_second_after(created[-1][1])
            name = f"{prefix}-{i}"
            self.create_model(name)
            created.append((name, self.client.describe_model(ModelName=name)["CreationTime"]))
        names = [n for n, _ in created]
        t = [ct for _, ct in created]
        self.assertLess(t[0], t[1])
        self.assertLess(t[1], t[2])

        def listed(**kw):
            return self.names(self.client.list_models(NameContains=prefix, **kw)["Models"],
                              "ModelName")

        self.assertEqual(listed(SortBy="CreationTime", SortOrder="Ascending"), names)
        self.assertEqual(listed(SortBy="CreationTime", SortOrder="Descending"), names[::-1])
        # Defaults: SortBy CreationTime, SortOrder Descending.
        self.assertEqual(listed(), names[::-1])

        # Whole-second boundaries strictly between the creation times (botocore sends seconds).
        b1 = datetime.datetime.fromtimestamp(math.floor(t[0].timestamp()) + 1,
                                             datetime.timezone.utc)
        b2 = datetime.datetime.fromtimestamp(math.floor(t[1].timestamp()) + 1,
                                             datetime.timezone.utc)
        self.assertEqual(listed(SortBy="Name", SortOrder="Ascending", CreationTimeBefore=b1),
                         names[:1])
        self.assertEqual(listed(SortBy="Name", SortOrder="Ascending", CreationTimeAfter=b1),
                         names[1:])
        self.assertEqual(listed(SortBy="Name", SortOrder="Ascending", CreationTimeBefore=b2),
                         names[:2])
        self.assertEqual(listed(SortBy="Name", SortOrder="Ascending", CreationTimeAfter=b2),
                         names[2:])
        self.assertEqual(listed(SortBy="Name", SortOrder="Ascending", CreationTimeAfter=b1,
                                CreationTimeBefore=b2), names[1:2])

    def test_pagination_with_next_token(self):
        prefix = unique_name("lp")
        names = [f"{prefix}-{i}" for i in range(5)]
        for n in names:
            self.create_model(n)
        pages = []
        kwargs = {"NameContains": prefix, "SortBy": "Name", "SortOrder": "Ascending",
                  "MaxResults": 2}
        token = None
        while True:
            resp = self.client.list_models(**kwargs, **({"NextToken": token} if token else {}))
            pages.append(self.names(resp["Models"], "ModelName"))
            token = resp.get("NextToken")
            if not token:
                break
            self.assertLessEqual(len(pages), 5, "pagination does not terminate")
        self.assertEqual(pages, [names[0:2], names[2:4], names[4:5]])

    def test_paginator_collects_all(self):
        prefix = unique_name("lg")
        names = [f"{prefix}-{i}" for i in range(5)]
        for n in names:
            self.create_model(n)
        paginator = self.client.get_paginator("list_models")
        pages = list(paginator.paginate(NameContains=prefix, SortBy="Name",
                                        SortOrder="Descending",
                                        PaginationConfig={"PageSize": 2}))
        self.assertEqual([len(p["Models"]) for p in pages], [2, 2, 1])
        collected = [m["ModelName"] for p in pages for m in p["Models"]]
        self.assertEqual(collected, sorted(names, reverse=True))
        full = paginator.paginate(NameContains=prefix).build_full_result()
        self.assertEqual(sorted(self.names(full["Models"], "ModelName")), names)

    def test_default_max_results_is_10(self):
        prefix = unique_name("ld")
        names = [f"{prefix}-{i:02d}" for i in range(12)]
        for n in names:
            self.create_model(n)
        first = self.client.list_models(NameContains=prefix, SortBy="Name",
                                        SortOrder="Ascending")
        self.assertEqual(self.names(first["Models"], "ModelName"), names[:10])
        self.assertTrue(first.get("NextToken"))
        second = self.client.list_models(NameContains=prefix, SortBy="Name",
                                         SortOrder="Ascending", NextToken=first["NextToken"])
        self.assertEqual(self.names(second["Models"], "ModelName"), names[10:])
        self.assertNotIn("NextToken", second)

    def test_max_results_above_100_rejected(self):
        self.assertAwsError(lambda: self.client.list_models(MaxResults=101),
                            "ValidationException")
        self.client.list_models(MaxResults=100)

    def test_foreign_next_token_rejected(self):
        self.assertAwsError(lambda: self.client.list_models(NextToken="not-a-token-we-issued"),
                            "ValidationException")


# ---------------------------------------------------------------------------------------------
# Endpoint configs
# ---------------------------------------------------------------------------------------------

class EndpointConfigTest(ControlPlaneTestCase):

    def test_create_and_describe_echoes_everything(self):
        model = self.create_model()
        name = unique_name("Config")
        variants = [variant(model, "VariantA", count=1, weight=1.0),
                    variant(model, "VariantB", count=2, weight=0.5,
                            instance_type="ml.c5.large")]
        resp = self.client.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=copy.deepcopy(variants),
            AsyncInferenceConfig=copy.deepcopy(ASYNC_CONFIG))
        self.assertEqual(resp["EndpointConfigArn"], arn("endpoint-config", name))
        desc = self.client.describe_endpoint_config(EndpointConfigName=name)
        self.assertEqual(desc["EndpointConfigName"], name)
        self.assertEqual(desc["EndpointConfigArn"], arn("endpoint-config", name))
        self.assertEqual(desc["AsyncInferenceConfig"], ASYNC_CONFIG)
        self.assertEqual(len(desc["ProductionVariants"]), 2)
        for want, got in zip(variants, desc["ProductionVariants"]):
            self.assertSubset(want, got)
        self.assertRecentTime(desc["CreationTime"])

    def test_describe_and_delete_missing_config(self):
        expected = ('Could not find endpoint configuration '
                    '"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/x".')
        self.assertAwsError(lambda: self.client.describe_endpoint_config(EndpointConfigName="x"),
                            "ValidationException", message=expected)
        self.assertAwsError(lambda: self.client.delete_endpoint_config(EndpointConfigName="x"),
                            "ValidationException", message=expected)

    def test_duplicate_config(self):
        model = self.create_model()
        name = self.create_config(model, name=unique_name("Dup"))
        for dup in (name, name.lower(), name.upper()):
            with self.subTest(duplicate=dup):
                self.assertAwsError(
                    lambda: self.create_config(model, name=dup),
                    "ValidationException",
                    message='Cannot create already existing endpoint configuration '
                            f'"{arn("endpoint-config", name)}".')

    def test_missing_model(self):
        missing = unique_name("Missing")
        self.assertAwsError(lambda: self.create_config(model=missing),
                            "ValidationException",
                            message=f'Could not find model "{arn("model", missing)}".')

    def test_list_and_delete(self):
        model = self.create_model()
        prefix = unique_name("lc")
        names = [self.create_config(model, name=f"{prefix}-{i}") for i in range(3)]
        resp = self.client.list_endpoint_configs(NameContains=prefix, SortBy="Name",
                                                 SortOrder="Ascending")
        self.assertEqual(self.names(resp["EndpointConfigs"], "EndpointConfigName"), names)
        for item in resp["EndpointConfigs"]:
            self.assertEqual(item["EndpointConfigArn"],
                             arn("endpoint-config", item["EndpointConfigName"]))
            self.assertRecentTime(item["CreationTime"])
        resp = self.client.list_endpoint_configs(NameContains=prefix, SortBy="Name",
                                                 SortOrder="Descending")
        self.assertEqual(self.names(resp["EndpointConfigs"], "EndpointConfigName"), names[::-1])
        paginator = self.client.get_paginator("list_endpoint_configs")
        pages = list(paginator.paginate(NameContains=prefix, SortBy="Name",
                                        SortOrder="Ascending",
                                        PaginationConfig={"PageSize": 2}))
        self.assertEqual([self.names(p["EndpointConfigs"], "EndpointConfigName") for p in pages],
                         [names[:2], names[2:]])

        self.client.delete_endpoint_config(EndpointConfigName=names[1])
        self.assertAwsError(
            lambda: self.client.describe_endpoint_config(EndpointConfigName=names[1]),
            "ValidationException",
            message=f'Could not find endpoint configuration "{arn("endpoint-config", names[1])}".')
        resp = self.client.list_endpoint_configs(NameContains=prefix, SortBy="Name",
                                                 SortOrder="Ascending")
        self.assertEqual(self.names(resp["EndpointConfigs"], "EndpointConfigName"),
                         [names[0], names[2]])

    def test_bogus_instance_type(self):
        model = self.create_model()
        self.assertAwsError(
            lambda: self.create_config(model, variants=[variant(model,
                                                                instance_type="ml.bogus")]),
            "ValidationException",
            message_startswith="1 validation error detected: Value 'ml.bogus' at '",
            message_contains="instanceType' failed to satisfy constraint: Member must satisfy "
                             "enum value set: [")

    def test_max_concurrent_invocations_above_1000(self):
        model = self.create_model()
        cfg = copy.deepcopy(ASYNC_CONFIG)
        cfg["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] = 1001
        self.assertAwsError(
            lambda: self.create_config(model, async_config=cfg),
            "ValidationException",
            message_startswith="1 validation error detected: Value '1001' at '",
            message_contains="maxConcurrentInvocationsPerInstance' failed to satisfy constraint: "
                             "Member must have value less than or equal to 1000")
        cfg["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] = 1000
        self.create_config(model, async_config=cfg)

    def test_async_with_serverless_variant_rejected(self):
        model = self.create_model()
        serverless = {"VariantName": "AllTraffic", "ModelName": model,
                      "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
        self.assertAwsError(
            lambda: self.create_config(model, variants=[serverless]),
            "ValidationException",
            message_startswith="One or more endpoint features are not supported using this "
                               "configuration")
        # Without AsyncInferenceConfig a serverless variant is fine.
        self.create_config(model, variants=[serverless], async_config=None)

    def test_async_with_shadow_variants_rejected(self):
        model = self.create_model()
        self.assertAwsError(
            lambda: self.create_config(model, ShadowProductionVariants=[
                variant(model, "Shadow")]),
            "ValidationException",
            message_startswith="One or more endpoint features are not supported using this "
                               "configuration")

    def test_async_without_s3_output_path_rejected(self):
        model = self.create_model()
        cfg = copy.deepcopy(ASYNC_CONFIG)
        del cfg["OutputConfig"]["S3OutputPath"]
        self.assertAwsError(lambda: self.create_config(model, async_config=cfg),
                            "ValidationException")

    def test_duplicate_variant_names_rejected(self):
        model = self.create_model()
        self.assertAwsError(
            lambda: self.create_config(model, variants=[variant(model, "Same"),
                                                        variant(model, "Same")]),
            "ValidationException")

    def test_instance_type_required(self):
        model = self.create_model()
        v = variant(model)
        del v["InstanceType"]
        self.assertAwsError(lambda: self.create_config(model, variants=[v]),
                            "ValidationException")

    def test_delete_model_in_use_is_allowed(self):
        model = self.create_model()
        config = self.create_config(model)
        endpoint = self.create_endpoint(config)
        self.client.delete_model(ModelName=model)
        desc = self.client.describe_endpoint_config(EndpointConfigName=config)
        self.assertEqual(desc["ProductionVariants"][0]["ModelName"], model)
        self.client.delete_endpoint_config(EndpointConfigName=config)
        desc = self.client.describe_endpoint(EndpointName=endpoint)
        self.assertEqual(desc["EndpointConfigName"], config)
        self.assertEqual(desc["AsyncInferenceConfig"], ASYNC_CONFIG)


# ---------------------------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------------------------

class EndpointTest(ControlPlaneTestCase):

    def test_create_and_describe_endpoint(self):
        model = self.create_model()
        config = self.create_config(model, variants=[
            variant(model, "VariantA", count=1, weight=1.0),
            variant(model, "VariantB", count=3, weight=0.25)])
        name = unique_name("Endpoint")
        resp = self.client.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.assertEqual(resp["EndpointArn"], arn("endpoint", name))
        desc = self.client.describe_endpoint(EndpointName=name)
        self.assertEqual(desc["EndpointName"], name)
        self.assertEqual(desc["EndpointArn"], arn("endpoint", name))
        self.assertEqual(desc["EndpointConfigName"], config)
        self.assertEqual(desc["EndpointStatus"], "Creating")
        self.assertRecentTime(desc["CreationTime"])
        self.assertRecentTime(desc["LastModifiedTime"])
        self.assertGreaterEqual(desc["LastModifiedTime"], desc["CreationTime"])
        self.assertEqual(desc["AsyncInferenceConfig"], ASYNC_CONFIG)
        summaries = {v["VariantName"]: v for v in desc["ProductionVariants"]}
        self.assertEqual(set(summaries), {"VariantA", "VariantB"})
        for vname, count, weight in (("VariantA", 1, 1.0), ("VariantB", 3, 0.25)):
            with self.subTest(variant=vname):
                s = summaries[vname]
                self.assertEqual(s.get("DesiredInstanceCount"), count, s)
                self.assertEqual(s.get("CurrentInstanceCount"), 0, s)
                self.assertAlmostEqual(s.get("DesiredWeight"), weight, msg=repr(s))

    def test_describe_and_delete_missing_endpoint(self):
        expected = ('Could not find endpoint '
                    '"arn:aws:sagemaker:us-east-1:000000000000:endpoint/x".')
        self.assertAwsError(lambda: self.client.describe_endpoint(EndpointName="x"),
                            "ValidationException", message=expected)
        self.assertAwsError(lambda: self.client.delete_endpoint(EndpointName="x"),
                            "ValidationException", message=expected)

    def test_duplicate_endpoint(self):
        config = self.create_config()
        name = self.create_endpoint(config, name=unique_name("DupEp"))
        for dup in (name, name.lower()):
            with self.subTest(duplicate=dup):
                self.assertAwsError(
                    lambda: self.client.create_endpoint(EndpointName=dup,
                                                        EndpointConfigName=config),
                    "ValidationException",
                    message=f'Cannot create already existing endpoint "{arn("endpoint", name)}".')

    def test_missing_config(self):
        missing = unique_name("NoSuchConfig")
        self.assertAwsError(
            lambda: self.client.create_endpoint(EndpointName=unique_name("endpoint"),
                                                EndpointConfigName=missing),
            "ValidationException",
            message=f'Could not find endpoint configuration "{arn("endpoint-config", missing)}".')

    def test_list_endpoints(self):
        config = self.create_config()
        prefix = unique_name("le")
        names = [self.create_endpoint(config, name=f"{prefix}-{i}") for i in range(3)]
        resp = self.client.list_endpoints(NameContains=prefix, SortBy="Name",
                                          SortOrder="Ascending")
        self.assertEqual(self.names(resp["Endpoints"], "EndpointName"), names)
        for item in resp["Endpoints"]:
            self.assertEqual(item["EndpointArn"], arn("endpoint", item["EndpointName"]))
            self.assertEqual(item["EndpointStatus"], "Creating")
            self.assertRecentTime(item["CreationTime"])
            self.assertRecentTime(item["LastModifiedTime"])
        resp = self.client.list_endpoints(NameContains=prefix, SortBy="Name",
                                          SortOrder="Descending")
        self.assertEqual(self.names(resp["Endpoints"], "EndpointName"), names[::-1])

        by_time = self.client.list_endpoints(NameContains=prefix, SortBy="CreationTime",
                                             SortOrder="Ascending")["Endpoints"]
        times = [e["CreationTime"] for e in by_time]
        self.assertEqual(times, sorted(times))
        self.assertEqual(set(self.names(by_time, "EndpointName")), set(names))
        by_time = self.client.list_endpoints(NameContains=prefix)["Endpoints"]  # default: desc
        times = [e["CreationTime"] for e in by_time]
        self.assertEqual(times, sorted(times, reverse=True))

        creating = self.client.list_endpoints(NameContains=prefix, StatusEquals="Creating")
        self.assertEqual(sorted(self.names(creating["Endpoints"], "EndpointName")), names)
        in_service = self.client.list_endpoints(NameContains=prefix, StatusEquals="InService")
        self.assertEqual(in_service["Endpoints"], [])

        pages = list(self.client.get_paginator("list_endpoints").paginate(
            NameContains=prefix, SortBy="Name", SortOrder="Ascending",
            PaginationConfig={"PageSize": 2}))
        self.assertEqual([self.names(p["Endpoints"], "EndpointName") for p in pages],
                         [names[:2], names[2:]])
        first = self.client.list_endpoints(NameContains=prefix, SortBy="Name",
                                           SortOrder="Ascending", MaxResults=1)
        self.assertEqual(self.names(first["Endpoints"], "EndpointName"), names[:1])
        rest = self.client.list_endpoints(NameContains=prefix, SortBy="Name",
                                          SortOrder="Ascending", MaxResults=5,
                                          NextToken=first["NextToken"])
        self.assertEqual(self.names(rest["Endpoints"], "EndpointName"), names[1:])

    def test_update_endpoint_while_creating(self):
        model = self.create_model()
        config = self.create_config(model)
        other = self.create_config(model)
        name = self.create_endpoint(config)
        expected = f'Cannot update in-progress endpoint "{arn("endpoint", name)}".'
        self.assertAwsError(
            lambda: self.client.update_endpoint(EndpointName=name, EndpointConfigName=other),
            "ValidationException", message=expected)
        self.assertAwsError(
            lambda: self.client.update_endpoint_weights_and_capacities(
                EndpointName=name,
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                              "DesiredInstanceCount": 0}]),
            "ValidationException", message=expected)
        desc = self.client.describe_endpoint(EndpointName=name)
        self.assertEqual(desc["EndpointStatus"], "Creating")
        self.assertEqual(desc["EndpointConfigName"], config)

    def test_update_weights_unknown_variant(self):
        name = self.create_endpoint()
        # Whether the unknown variant or the in-progress status is reported first is not fixed;
        # either way it is a ValidationException.
        self.assertAwsError(
            lambda: self.client.update_endpoint_weights_and_capacities(
                EndpointName=name,
                DesiredWeightsAndCapacities=[{"VariantName": "NoSuchVariant",
                                              "DesiredWeight": 1.0}]),
            "ValidationException")
        self.assertAwsError(
            lambda: self.client.update_endpoint_weights_and_capacities(
                EndpointName=name,
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 1.0},
                                             {"VariantName": "AllTraffic", "DesiredWeight": 2.0}]),
            "ValidationException")

    def test_update_missing_endpoint(self):
        config = self.create_config()
        self.assertAwsError(
            lambda: self.client.update_endpoint(EndpointName="x", EndpointConfigName=config),
            "ValidationException",
            message='Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/x".')

    def test_delete_endpoint(self):
        name = self.create_endpoint()
        resp = self.client.delete_endpoint(EndpointName=name)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.wait_gone(name)
        self.assertAwsError(lambda: self.client.describe_endpoint(EndpointName=name),
                            "ValidationException",
                            message=f'Could not find endpoint "{arn("endpoint", name)}".')
        self.assertEqual(self.client.list_endpoints(NameContains=name)["Endpoints"], [])

    def test_endpoint_deleted_waiter(self):
        name = self.create_endpoint()
        self.client.delete_endpoint(EndpointName=name)
        start = time.monotonic()
        self.client.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.assertLess(time.monotonic() - start, 31)


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------

class TagsTest(ControlPlaneTestCase):

    def resources(self, tags=None):
        """A model, endpoint config and endpoint, each created with `tags`. Returns their ARNs."""
        kw = {"Tags": tags} if tags else {}
        model = self.create_model(**kw)
        config = self.create_config(model, **kw)
        endpoint = self.create_endpoint(config, **kw)
        return {"model": arn("model", model), "endpoint-config": arn("endpoint-config", config),
                "endpoint": arn("endpoint", endpoint)}

    def test_tags_given_at_create(self):
        tags = [{"Key": "team", "Value": "ml"}, {"Key": "cost-center", "Value": "42"}]
        for kind, resource in self.resources(tags).items():
            with self.subTest(kind=kind):
                got = self.client.list_tags(ResourceArn=resource)["Tags"]
                self.assertCountEqual(got, tags)

    def test_add_list_delete_tags(self):
        for kind, resource in self.resources().items():
            with self.subTest(kind=kind):
                self.assertEqual(self.client.list_tags(ResourceArn=resource)["Tags"], [])
                resp = self.client.add_tags(ResourceArn=resource, Tags=[
                    {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"},
                    {"Key": "empty", "Value": ""}])
                self.assertCountEqual(resp.get("Tags", []), [
                    {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"},
                    {"Key": "empty", "Value": ""}])
                # AddTags overwrites a key's value.
                self.client.add_tags(ResourceArn=resource, Tags=[{"Key": "a", "Value": "one"}])
                self.assertCountEqual(self.client.list_tags(ResourceArn=resource)["Tags"], [
                    {"Key": "a", "Value": "one"}, {"Key": "b", "Value": "2"},
                    {"Key": "empty", "Value": ""}])
                self.client.delete_tags(ResourceArn=resource, TagKeys=["b", "empty"])
                self.assertEqual(self.client.list_tags(ResourceArn=resource)["Tags"],
                                 [{"Key": "a", "Value": "one"}])

    def test_list_tags_pagination_and_limit(self):
        resource = self.resources()["model"]
        tags = [{"Key": f"key-{i:02d}", "Value": f"value-{i}"} for i in range(50)]
        self.client.add_tags(ResourceArn=resource, Tags=tags[:25])
        self.client.add_tags(ResourceArn=resource, Tags=tags[25:])
        # Default MaxResults is 50: everything on one page.
        resp = self.client.list_tags(ResourceArn=resource)
        self.assertCountEqual(resp["Tags"], tags)
        self.assertFalse(resp.get("NextToken"))
        pages = list(self.client.get_paginator("list_tags").paginate(
            ResourceArn=resource, PaginationConfig={"PageSize": 50}))
        self.assertCountEqual([t for p in pages for t in p["Tags"]], tags)
        # Overwriting an existing key is not a new tag; a 51st key is over the limit.
        self.client.add_tags(ResourceArn=resource, Tags=[{"Key": "key-00", "Value": "x"}])
        self.assertAwsError(
            lambda: self.client.add_tags(ResourceArn=resource,
                                         Tags=[{"Key": "one-too-many", "Value": "x"}]),
            "ResourceLimitExceeded")
        self.assertEqual(len(self.client.list_tags(ResourceArn=resource, MaxResults=100)["Tags"]),
                         50)

    def test_tags_on_missing_resource(self):
        missing = arn("model", unique_name("gone"))
        expected = f'Could not find resource "{missing}".'
        self.assertAwsError(lambda: self.client.list_tags(ResourceArn=missing),
                            "ValidationException", message=expected)
        self.assertAwsError(
            lambda: self.client.add_tags(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}]),
            "ValidationException", message=expected)
        self.assertAwsError(lambda: self.client.delete_tags(ResourceArn=missing, TagKeys=["k"]),
                            "ValidationException", message=expected)

    def test_tags_go_with_deleted_resource(self):
        name = self.create_model(Tags=[{"Key": "k", "Value": "v"}])
        self.client.delete_model(ModelName=name)
        self.create_model(name)
        self.assertEqual(self.client.list_tags(ResourceArn=arn("model", name))["Tags"], [])


# ---------------------------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------------------------

class RegionTest(ControlPlaneTestCase):

    def test_catalog_is_regional(self):
        west = self.sm(region="us-west-2")
        name = unique_name("Regional")
        self.create_model(name, client=west)
        resp = west.describe_model(ModelName=name)
        self.assertEqual(resp["ModelArn"],
                         f"arn:aws:sagemaker:us-west-2:{DEFAULT_ACCOUNT}:model/{name.lower()}")
        self.assertEqual(self.names(west.list_models(NameContains=name)["Models"], "ModelName"),
                         [name])
        # Not visible from us-east-1.
        self.assertAwsError(lambda: self.client.describe_model(ModelName=name),
                            "ValidationException",
                            message=f'Could not find model "{arn("model", name)}".')
        self.assertEqual(self.client.list_models(NameContains=name)["Models"], [])
        # The same name is free in us-east-1 and gets a us-east-1 ARN.
        self.assertEqual(self.client.create_model(ModelName=name,
                                                  PrimaryContainer=copy.deepcopy(CONTAINER))
                         ["ModelArn"], arn("model", name))
        # Tags are addressed by the ARN's region.
        west.add_tags(ResourceArn=resp["ModelArn"], Tags=[{"Key": "region", "Value": "west"}])
        self.assertEqual(west.list_tags(ResourceArn=resp["ModelArn"])["Tags"],
                         [{"Key": "region", "Value": "west"}])
        self.assertEqual(self.client.list_tags(ResourceArn=arn("model", name))["Tags"], [])

    def test_endpoint_in_other_region(self):
        west = self.sm(region="eu-west-1")
        model = self.create_model(client=west)
        config = unique_name("config")
        west.create_endpoint_config(EndpointConfigName=config,
                                    ProductionVariants=[variant(model)],
                                    AsyncInferenceConfig=copy.deepcopy(ASYNC_CONFIG))
        # The us-east-1 partition has no such model/config.
        self.assertAwsError(
            lambda: self.client.create_endpoint_config(
                EndpointConfigName=unique_name("config"), ProductionVariants=[variant(model)],
                AsyncInferenceConfig=copy.deepcopy(ASYNC_CONFIG)),
            "ValidationException", message=f'Could not find model "{arn("model", model)}".')
        name = unique_name("endpoint")
        resp = west.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.assertEqual(resp["EndpointArn"], arn("endpoint", name, region="eu-west-1"))
        self.assertAwsError(lambda: self.client.describe_endpoint(EndpointName=name),
                            "ValidationException",
                            message=f'Could not find endpoint "{arn("endpoint", name)}".')


if __name__ == "__main__":
    unittest.main()
