"""The seed walkthrough with the SageMaker XGBoost image, driven with boto3: a model trained
through libxgboost (build/bin/make-xgboost-model) is uploaded as model.tar.gz to inferd's S3,
CreateModel names the SageMaker XGBoost image URI, CreateEndpointConfig an ml.m5.xlarge variant,
CreateEndpoint reaches InService within seconds on the built-in inferd-xgboost (no container
engine), and the instance answers libxgboost's own predictions (spec §7.2; src/fleet).

The predictions are read from the instance itself (its address from `inferd logs`): this checks
model hosting, not the invocation pipeline, which has its own tests.
"""

import json
import re
import subprocess
import time
import unittest
import urllib.request
from pathlib import Path

from harness import ROLE, InferdTestCase, inferd_bin, model_tar_gz, unique_name

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TOLERANCE = 1e-6


def make_model(directory, objective, fmt):
    """Trains a model with make-xgboost-model; returns its JSON report (model file, csv rows,
    libxgboost's predictions)."""
    tool = Path(inferd_bin()).parent / "make-xgboost-model"
    out = subprocess.run([str(tool), "--out", str(directory), "--objective", objective,
                          "--format", fmt, "--predict", "6"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"{tool} failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout)


def numbers(text):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)]


class XgboostEndpointTest(InferdTestCase):
    server_config = {"instance_stop_grace_seconds": 5}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3, cls.bucket = cls.server.s3_bucket("xgboost")

    def instance_port(self, endpoint):
        """The instance's port, from the model server's own line in `inferd logs`."""
        logs = subprocess.run([inferd_bin(), "logs", endpoint, "--data-dir",
                               str(self.server.data_dir)], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(logs.returncode, 0, logs.stderr)
        ports = re.findall(r"inferd-xgboost listening on 127\.0\.0\.1:(\d+)", logs.stdout)
        self.assertEqual(len(ports), 1, logs.stdout)
        return int(ports[0]), logs.stdout

    def invoke(self, port, body, content_type="text/csv", accept=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                     method="POST", headers={"Content-Type": content_type})
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read().decode()

    def test_seed_flow_serves_libxgboosts_predictions(self):
        sm = self.sm()
        for objective, fmt in [("reg:squarederror", "ubj"), ("binary:logistic", "json"),
                               ("multi:softprob", "binary")]:
            with self.subTest(objective=objective, format=fmt):
                name = unique_name("xgb")
                model = make_model(self.server.tmp / name, objective, fmt)
                key = f"{name}/model.tar.gz"
                artifact = model_tar_gz({"xgboost-model": Path(model["model"]).read_bytes()})
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=artifact)
                sm.create_model(
                    ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST_IMAGE,
                                      "ModelDataUrl": f"s3://{self.bucket}/{key}",
                                      "Environment": {"TS_MAX_REQUEST_SIZE": "100000000",
                                                      "TS_MAX_RESPONSE_SIZE": "100000000",
                                                      "TS_DEFAULT_RESPONSE_TIMEOUT": "1000"}})
                sm.create_endpoint_config(
                    EndpointConfigName=name,
                    ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                         "InstanceType": "ml.m5.xlarge",
                                         "InitialInstanceCount": 1}],
                    AsyncInferenceConfig={"OutputConfig": {
                        "S3OutputPath": f"s3://{self.bucket}/{name}/output"}})
                started = time.monotonic()
                sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
                sm.get_waiter("endpoint_in_service").wait(
                    EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
                elapsed = time.monotonic() - started
                self.assertLess(elapsed, 15, "InService within seconds")
                desc = sm.describe_endpoint(EndpointName=name)
                self.assertEqual(desc["EndpointStatus"], "InService")
                variant = desc["ProductionVariants"][0]
                self.assertEqual(variant["CurrentInstanceCount"], 1)
                self.assertEqual(variant["DeployedImages"][0]["SpecifiedImage"], XGBOOST_IMAGE)
                self.assertTrue(
                    variant["DeployedImages"][0]["ResolvedImage"].endswith("/inferd-xgboost"))

                port, logs = self.instance_port(name)
                # The instance type's resources are reported in the instance log.
                self.assertIn("ml.m5.xlarge: 4 vCPUs, 16384 MiB memory, 0 GPUs", logs)
                expected = model["predictions"]
                status, ctype, body = self.invoke(port, model["csv"])
                self.assertEqual(status, 200)
                self.assertEqual(ctype, "text/csv")
                got = numbers(body)
                self.assertEqual(len(got), len(expected), body)
                for g, e in zip(got, expected):
                    self.assertAlmostEqual(g, e, delta=TOLERANCE, msg=body)
                status, ctype, body = self.invoke(port, model["csv"], accept="application/json")
                self.assertEqual(ctype, "application/json")
                scores = [p["score"] for p in json.loads(body)["predictions"]]
                flat = [v for s in scores for v in (s if isinstance(s, list) else [s])]
                self.assertEqual(len(flat), len(expected))
                for g, e in zip(flat, expected):
                    self.assertAlmostEqual(g, e, delta=TOLERANCE, msg=body)

                sm.delete_endpoint(EndpointName=name)
                sm.get_waiter("endpoint_deleted").wait(
                    EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


if __name__ == "__main__":
    unittest.main()
