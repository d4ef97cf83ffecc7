"""The sagemaker-runtime API end to end (spec §2): InvokeEndpointAsync's 202 answer and result
naming, every header constraint answered with AWS's ValidationError wording, the errors for
unknown and non-async endpoints, InvokeEndpoint on real-time endpoints (200, ModelError 424) and
on async ones (ValidationError), driven by boto3, AWS CLI v1 and v2 and the JS SDK v3. Model
servers are `inferd-echo` instances (the answer is the payload).
"""

import base64
import json
import os
import re
import shutil
import subprocess
import unittest
from pathlib import Path

from async_support import AsyncTestCase
from harness import DEFAULT_ACCOUNT

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
JS_DIR = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
HEAD = "1 validation error detected: "


class RuntimeTest(AsyncTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.async_ep = cls.create_echo_endpoint(wait=False)
        cls.realtime_ep = cls.create_echo_endpoint(async_config=False, wait=False)
        cls.failing_ep = cls.create_echo_endpoint(async_config=False,
                                                  environment={"ECHO_STATUS": "500"}, wait=False)
        for name in (cls.async_ep, cls.realtime_ep, cls.failing_ep):
            cls.wait_in_service(name)

    # ---- InvokeEndpointAsync -----------------------------------------------------------------

    def test_accepted_with_locations_then_result(self):
        resp = self.invoke(self.async_ep, b"hello async", ContentType="text/plain",
                           InferenceId="my-id-1")
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(resp["InferenceId"], "my-id-1")
        out = re.fullmatch(rf"s3://{self.bucket}/out/{self.async_ep}/({UUID})\.out",
                           resp["OutputLocation"])
        self.assertIsNotNone(out, resp)
        self.assertEqual(resp["FailureLocation"],
                         f"s3://{self.bucket}/failed/{self.async_ep}/{out.group(1)}-error.out")
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.assertEqual(headers["content-type"], "application/json")
        kind, body, content_type, _ = self.wait_result(resp)
        self.assertEqual((kind, body, content_type), ("output", b"hello async", "text/plain"))
        note = self.sink.for_id("my-id-1")
        self.assertEqual(note["invocationStatus"], "Completed")
        self.assertEqual(note["requestParameters"],
                         {"contentType": "text/plain", "endpointName": self.async_ep,
                          "inputLocation": note["requestParameters"]["inputLocation"]})

    def test_generated_inference_id(self):
        resp = self.invoke(self.async_ep)
        self.assertRegex(resp["InferenceId"], f"^{UUID}$")
        self.assertNotIn(resp["InferenceId"], resp["OutputLocation"])
        self.assertEqual(self.wait_result(resp)[0], "output")

    def test_output_path_extension_and_filename(self):
        resp = self.invoke(self.async_ep, S3OutputPathExtension="batch/7", Filename="r-1.json")
        self.assertEqual(resp["OutputLocation"],
                         f"s3://{self.bucket}/out/{self.async_ep}/batch/7/r-1.json")
        self.assertRegex(resp["FailureLocation"],
                         rf"^s3://{self.bucket}/failed/{self.async_ep}/{UUID}-error\.out$")
        self.assertEqual(self.wait_result(resp)[:2], ("output", b"payload"))

    def test_inline_body(self):
        # The newer API's Body: the payload is the request body, no InputLocation.
        resp = self.server.signed_request(
            path=f"/endpoints/{self.async_ep}/async-invocations", service="sagemaker",
            headers={"X-Amzn-SageMaker-Content-Type": "text/csv",
                     "Content-Type": "application/octet-stream"},
            body=b"1,2,3")
        self.assertEqual(resp.status_code, 202, resp.text)
        answer = {"InferenceId": resp.json()["InferenceId"],
                  "OutputLocation": resp.headers["X-Amzn-SageMaker-OutputLocation"],
                  "FailureLocation": resp.headers["X-Amzn-SageMaker-FailureLocation"]}
        self.assertEqual(self.wait_result(answer)[:3], ("output", b"1,2,3", "text/csv"))
        note = self.sink.for_id(answer["InferenceId"])
        self.assertNotIn("inputLocation", note["requestParameters"])

    def test_body_and_input_location_are_exclusive(self):
        both = self.server.signed_request(
            path=f"/endpoints/{self.async_ep}/async-invocations",
            headers={"X-Amzn-SageMaker-InputLocation": f"s3://{self.bucket}/in/x"}, body=b"x")
        self.assertEqual(both.status_code, 400, both.text)
        self.assertEqual(both.headers["x-amzn-ErrorType"], "ValidationError")
        self.assertIn("mutually exclusive", both.json()["message"])
        neither = self.server.signed_request(path=f"/endpoints/{self.async_ep}/async-invocations")
        self.assertEqual(neither.status_code, 400, neither.text)
        too_big = self.server.signed_request(
            path=f"/endpoints/{self.async_ep}/async-invocations", body=b"x" * 128001)
        self.assertEqual(too_big.status_code, 400)
        self.assertEqual(too_big.json()["message"],
                         HEAD + "Value at 'body' failed to satisfy constraint: Member must have "
                                "length less than or equal to 128000")

    def test_constraints_boto3_leaves_to_the_server(self):
        loc = f"s3://{self.bucket}/in/x"
        cases = [
            (dict(InputLocation="s3://b/" + "k" * 1020),
             f"Value 's3://b/{'k' * 1020}' at 'inputLocation' failed to satisfy constraint: "
             "Member must have length less than or equal to 1024"),
            (dict(InputLocation="ftp://b/k"),
             "Value 'ftp://b/k' at 'inputLocation' failed to satisfy constraint: Member must "
             "satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"),
            (dict(InputLocation=loc, InferenceId="i" * 65),
             f"Value '{'i' * 65}' at 'inferenceId' failed to satisfy constraint: Member must "
             "have length less than or equal to 64"),
            (dict(InputLocation=loc, S3OutputPathExtension="https://elsewhere"),
             "Value 'https://elsewhere' at 's3OutputPathExtension' failed to satisfy "
             "constraint: Member must satisfy regular expression pattern: "
             "^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$"),
            (dict(InputLocation=loc, Filename="two.dots.out"),
             "Value 'two.dots.out' at 'filename' failed to satisfy constraint: Member must "
             "satisfy regular expression pattern: ^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$"),
            (dict(InputLocation=loc, Filename="f" * 33),
             f"Value '{'f' * 33}' at 'filename' failed to satisfy constraint: Member must have "
             "length less than or equal to 32"),
            (dict(InputLocation=loc, RequestTTLSeconds=21601),
             "Value '21601' at 'requestTTLSeconds' failed to satisfy constraint: Member must "
             "have value less than or equal to 21600"),
            (dict(InputLocation=loc, InvocationTimeoutSeconds=3601),
             "Value '3601' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member "
             "must have value less than or equal to 3600"),
            (dict(InputLocation=loc, CustomAttributes="c" * 1025),
             "Value at 'customAttributes' failed to satisfy constraint: Member must have length "
             "less than or equal to 1024"),
            (dict(InputLocation=loc, Accept="a" * 1025),
             f"Value '{'a' * 1025}' at 'accept' failed to satisfy constraint: Member must have "
             "length less than or equal to 1024"),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=list(kwargs)):
                self.assertAwsError(
                    lambda: self.runtime.invoke_endpoint_async(EndpointName=self.async_ep,
                                                               **kwargs),
                    "ValidationError", message=HEAD + message)
        # Two at once.
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint_async(
                EndpointName=self.async_ep, InputLocation=loc, RequestTTLSeconds=99999,
                InvocationTimeoutSeconds=9999),
            "ValidationError", message_startswith="2 validation errors detected: ")

    def test_minimums_boto3_would_refuse_itself(self):
        # botocore checks minimums client-side; a raw signed request reaches the server.
        path = f"/endpoints/{self.async_ep}/async-invocations"
        loc = f"s3://{self.bucket}/in/x"
        for header, value, message in [
            ("X-Amzn-SageMaker-RequestTTLSeconds", "59",
             "Value '59' at 'requestTTLSeconds' failed to satisfy constraint: Member must have "
             "value greater than or equal to 60"),
            ("X-Amzn-SageMaker-InvocationTimeoutSeconds", "0",
             "Value '0' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must "
             "have value greater than or equal to 1"),
        ]:
            with self.subTest(header=header):
                resp = self.server.signed_request(
                    path=path, headers={"X-Amzn-SageMaker-InputLocation": loc, header: value})
                self.assertEqual(resp.status_code, 400, resp.text)
                self.assertEqual(resp.headers["x-amzn-ErrorType"], "ValidationError")
                self.assertEqual(resp.json()["message"], HEAD + message)

    def test_endpoint_errors(self):
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint_async(EndpointName="nope",
                                                       InputLocation="s3://b/k"),
            "ValidationError", message=f"Endpoint nope of account {DEFAULT_ACCOUNT} not found.")
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint_async(EndpointName="bad_name",
                                                       InputLocation="s3://b/k"),
            "ValidationError",
            message=HEAD + "Value 'bad_name' at 'endpointName' failed to satisfy constraint: "
                           "Member must satisfy regular expression pattern: "
                           "^[a-zA-Z0-9](-*[a-zA-Z0-9])*")
        # A real-time endpoint takes no asynchronous invocations...
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint_async(EndpointName=self.realtime_ep,
                                                       InputLocation="s3://b/k"),
            "ValidationError", message_contains="AsyncInferenceConfig")
        # ...and an async endpoint no real-time ones (as SageMaker answers).
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint(EndpointName=self.async_ep, Body=b"x"),
            "ValidationError")
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint(EndpointName="nope", Body=b"x"),
            "ValidationError", message=f"Endpoint nope of account {DEFAULT_ACCOUNT} not found.")

    # ---- InvokeEndpoint ----------------------------------------------------------------------

    def test_invoke_endpoint_real_time(self):
        resp = self.runtime.invoke_endpoint(EndpointName=self.realtime_ep, Body=b"1,2,3",
                                            ContentType="text/csv", Accept="text/csv",
                                            CustomAttributes="trace=1")
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertEqual(resp["Body"].read(), b"1,2,3")
        self.assertEqual(resp["ContentType"], "text/csv")
        self.assertEqual(resp["InvokedProductionVariant"], "AllTraffic")
        self.assertEqual(resp["CustomAttributes"], "trace=1")

    def test_model_error(self):
        resp = self.assertAwsError(
            lambda: self.runtime.invoke_endpoint(EndpointName=self.failing_ep, Body=b"x"),
            "ModelError", status=424)
        err = resp["Error"]
        self.assertEqual(resp["OriginalStatusCode"], 500)
        self.assertEqual(resp["OriginalMessage"], "echo: failing with 500 as asked")
        self.assertIn("Received server error (500) from primary", err["Message"])
        self.assertTrue(resp["LogStreamArn"].startswith("arn:aws:logs:us-east-1:"), resp)
        with self.assertRaises(self.runtime.exceptions.ModelError):
            self.runtime.invoke_endpoint(EndpointName=self.failing_ep, Body=b"x")

    def test_invoke_endpoint_body_limit(self):
        self.assertAwsError(
            lambda: self.runtime.invoke_endpoint(EndpointName=self.realtime_ep,
                                                 Body=b"x" * (6291456 + 1)),
            "ValidationError", status=413,
            message=HEAD + "Value at 'body' failed to satisfy constraint: Member must have "
                           "length less than or equal to 6291456")

    # ---- other clients -----------------------------------------------------------------------

    def test_aws_cli_v1_and_v2(self):
        location = self.put_input(b"from the CLI")
        for name, cli in (("v1", self.server.cli_v1), ("v2", self.server.cli_v2)):
            with self.subTest(cli=name):
                code, out, err = cli("sagemaker-runtime", "invoke-endpoint-async",
                                     "--endpoint-name", self.async_ep,
                                     "--input-location", location,
                                     "--content-type", "text/plain",
                                     "--inference-id", f"cli-{name}")
                self.assertEqual(code, 0, err)
                self.assertEqual(out["InferenceId"], f"cli-{name}")
                self.assertRegex(out["OutputLocation"], rf"/{UUID}\.out$")
                self.assertEqual(self.wait_result(out)[:2], ("output", b"from the CLI"))
                self.assertEqual(self.sink.for_id(f"cli-{name}")["invocationStatus"],
                                 "Completed")

                payload = Path(self.server.tmp) / f"payload-{name}"
                payload.write_bytes(b"real-time via CLI")
                outfile = Path(self.server.tmp) / f"answer-{name}"
                code, out, err = cli("sagemaker-runtime", "invoke-endpoint",
                                     "--endpoint-name", self.realtime_ep,
                                     "--body", f"fileb://{payload}",
                                     "--content-type", "text/plain", str(outfile))
                self.assertEqual(code, 0, err)
                self.assertEqual(out["ContentType"], "text/plain")
                self.assertEqual(out["InvokedProductionVariant"], "AllTraffic")
                self.assertEqual(outfile.read_bytes(), b"real-time via CLI")

                code, out, err = cli("sagemaker-runtime", "invoke-endpoint-async",
                                     "--endpoint-name", "nope", "--input-location", location)
                self.assertNotEqual(code, 0)
                self.assertIn("ValidationError", err)
                self.assertIn(f"Endpoint nope of account {DEFAULT_ACCOUNT} not found.", err)

    @unittest.skipIf(NODE is None or not (JS_DIR / "node_modules" / "@aws-sdk" /
                                          "client-sagemaker-runtime").is_dir(),
                     "node or @aws-sdk/client-sagemaker-runtime missing (scripts/setup)")
    def test_js_sdk_v3(self):
        location = self.put_input(b"js input location")
        env = dict(os.environ, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true")
        res = subprocess.run([NODE, str(JS_DIR / "sagemaker_runtime.mjs"), self.server.url,
                              self.async_ep, location, self.realtime_ep],
                             env=env, capture_output=True, text=True, timeout=120, cwd=JS_DIR)
        detail = f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        summary = json.loads(res.stdout)
        self.assertEqual(summary["errors"], [], detail)
        self.assertEqual(res.returncode, 0, detail)
        self.assertEqual(summary["async"]["status"], 202)
        self.assertEqual(summary["async"]["inferenceId"], "js-sdk-input-location")
        self.assertEqual(self.wait_result({"OutputLocation": summary["async"]["outputLocation"],
                                           "FailureLocation": summary["async"]["failureLocation"],
                                           "InferenceId": "js"})[:2],
                         ("output", b"js input location"))
        inline = summary["inline"]
        self.assertEqual(inline["status"], 202)
        self.assertEqual(self.wait_result({"OutputLocation": inline["outputLocation"],
                                           "FailureLocation": inline["failureLocation"],
                                           "InferenceId": inline["inferenceId"]})[:2],
                         ("output", b"inline payload from the JS SDK"))
        self.assertEqual(summary["realtime"], {"status": 200, "body": "real-time from the JS SDK",
                                               "contentType": "text/plain",
                                               "invokedProductionVariant": "AllTraffic"})


if __name__ == "__main__":
    unittest.main()
