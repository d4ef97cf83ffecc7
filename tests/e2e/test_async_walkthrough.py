"""docs/walkthrough.md, executed: every ```python block of the walkthrough runs in order in one
namespace against a fresh inferd (its address substituted for http://127.0.0.1:8600), then the
results it produced are checked field by field — the output and failure objects, the success and
error notifications (spec §4.2), the test notifications, and that each invocation was announced
exactly once.

The server runs without `sns_auto_confirm`: the walkthrough's subscriber confirms through the
SubscribeURL handshake, as a user's would.
"""

import base64
import collections
import contextlib
import io
import re
import unittest

from harness import DEFAULT_ACCOUNT, REPO_ROOT, InferdTestCase

WALKTHROUGH = REPO_ROOT / "docs" / "walkthrough.md"
DOC_URL = "http://127.0.0.1:8600"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SUCCESS_KEYS = ["awsRegion", "eventTime", "receivedTime", "invocationStatus", "requestParameters",
                "responseParameters", "responseBody", "inferenceId", "eventVersion",
                "eventSource", "eventName"]
RESPONSE_BODY_MESSAGE = ("Check S3 path location(if configured) or Cloudwatch for additional "
                         "details.")
TEST_NOTIFICATION = {"eventVersion": "1.0", "eventSource": "aws:sagemaker",
                     "eventName": "TestNotification"}
GOOD_ANSWER = b"0.7310585975646973,0.2689414322376251"
BAD_ANSWER = (b"Unable to evaluate payload provided: Feature size of csv inference data 2 is not "
              b"consistent with feature size of trained model 3.")


def python_blocks(markdown):
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


class WalkthroughTest(InferdTestCase):
    server_config = {"instance_stop_grace_seconds": 5}

    def run_walkthrough(self):
        text = WALKTHROUGH.read_text()
        self.assertIn(DOC_URL, text)
        blocks = python_blocks(text)
        self.assertGreaterEqual(len(blocks), 9, "the walkthrough lost its Python blocks")
        ns = {"__name__": "walkthrough"}
        out = io.StringIO()
        for i, block in enumerate(blocks):
            code = block.replace(DOC_URL, self.server.url)
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(code, f"{WALKTHROUGH.name} block {i + 1}", "exec"), ns)
                except BaseException as e:
                    raise AssertionError(f"walkthrough block {i + 1} failed: {e!r}\n{code}\n"
                                         f"--- printed so far ---\n{out.getvalue()}\n"
                                         f"--- server ---\n{self.server.stderr_tail()}") from e
        return ns, out.getvalue()

    def test_walkthrough(self):
        ns, printed = self.run_walkthrough()
        s3 = self.server.client("s3")

        # 202 answer: InferenceId, and the two locations sharing one fresh uuid.
        response = ns["response"]
        uid = re.fullmatch(r"s3://demo/results/([0-9a-f-]{36})\.out", response["OutputLocation"])
        self.assertIsNotNone(uid, response)
        self.assertEqual(response["FailureLocation"], f"s3://demo/failures/{uid.group(1)}-error.out")
        self.assertNotEqual(uid.group(1), response["InferenceId"])
        self.assertEqual(response["ResponseMetadata"]["HTTPStatusCode"], 202)

        # The output object: the container's answer and Content-Type.
        obj = s3.get_object(Bucket="demo", Key=f"results/{uid.group(1)}.out")
        self.assertEqual(obj["Body"].read(), GOOD_ANSWER)
        self.assertEqual(obj["ContentType"], "text/csv")
        self.assertNotIn(f"failures/{uid.group(1)}-error.out",
                         [o["Key"] for o in s3.list_objects_v2(Bucket="demo").get("Contents", [])])

        # The success notification, field by field and in SageMaker's key order.
        note = ns["note"]
        self.assertEqual(list(note), SUCCESS_KEYS)
        self.assertEqual(note["awsRegion"], "us-east-1")
        self.assertRegex(note["eventTime"], ISO_MS)
        self.assertRegex(note["receivedTime"], ISO_MS)
        self.assertLessEqual(note["receivedTime"], note["eventTime"])
        self.assertEqual(note["invocationStatus"], "Completed")
        self.assertEqual(note["requestParameters"], {"contentType": "text/csv",
                                                     "endpointName": "demo",
                                                     "inputLocation": "s3://demo/inputs/rows.csv"})
        self.assertEqual(note["responseParameters"], {"contentType": "text/csv",
                                                      "outputLocation": response["OutputLocation"]})
        self.assertEqual(note["responseBody"], {"content": base64.b64encode(GOOD_ANSWER).decode(),
                                                "message": RESPONSE_BODY_MESSAGE,
                                                "encoding": "BASE64"})
        self.assertEqual(note["inferenceId"], response["InferenceId"])
        self.assertEqual((note["eventVersion"], note["eventSource"], note["eventName"]),
                         ("1.0", "aws:sagemaker", "InferenceResult"))

        # The failing input: the model's 400 is the failure object and the error notification.
        bad = ns["bad"]
        bucket, key = bad["FailureLocation"][len("s3://"):].split("/", 1)
        failed = s3.get_object(Bucket=bucket, Key=key)
        self.assertEqual(failed["Body"].read(), BAD_ANSWER)
        out_bucket, out_key = bad["OutputLocation"][len("s3://"):].split("/", 1)
        self.assertNotIn(out_key, [o["Key"] for o in
                                   s3.list_objects_v2(Bucket=out_bucket).get("Contents", [])])
        bad_note = ns["bad_note"]
        self.assertEqual(bad_note["invocationStatus"], "Failed")
        self.assertEqual(bad_note["failureReason"],
                         "ClientError: Received client error (400) from model. See the SageMaker "
                         "Endpoint logs in your account for more information.")
        self.assertEqual(bad_note["requestParameters"],
                         {"contentType": "text/csv", "endpointName": "demo",
                          "inputLocation": "s3://demo/inputs/bad.csv"})
        self.assertEqual(bad_note["responseParameters"]["failureLocation"], bad["FailureLocation"])
        self.assertEqual(bad_note["responseBody"]["content"],
                         base64.b64encode(BAD_ANSWER).decode())
        self.assertEqual(bad_note["inferenceId"], bad["InferenceId"])
        self.assertEqual(bad_note["eventName"], "InferenceResult")
        for key in ("awsRegion", "eventTime", "receivedTime", "eventVersion", "eventSource"):
            self.assertIn(key, bad_note)

        # The invocation made during UpdateEndpoint completed on whichever fleet served it.
        self.assertIn("('output', b'0.7310585975646973,0.2689414322376251')", printed)

        # One notification per invocation; test notifications for CreateEndpoint and
        # UpdateEndpoint, each to both topics (the subscriber is on both).
        messages = ns["notifications"]
        results = collections.Counter(m["inferenceId"] for m in messages
                                      if m.get("eventName") == "InferenceResult")
        self.assertEqual(results, {response["InferenceId"]: 1, bad["InferenceId"]: 1,
                                   ns["during"]["InferenceId"]: 1})
        tests = [m for m in messages if m.get("eventName") == "TestNotification"]
        self.assertTrue(all(m == TEST_NOTIFICATION for m in tests), tests)
        self.assertEqual(len(tests), 4, tests)

        # The endpoint is gone (the waiter succeeded on ValidationException).
        sm = self.server.client("sagemaker")
        self.assertAwsError(lambda: sm.describe_endpoint(EndpointName="demo"),
                            "ValidationException",
                            message='Could not find endpoint "arn:aws:sagemaker:us-east-1:'
                                    f'{DEFAULT_ACCOUNT}:endpoint/demo".')


if __name__ == "__main__":
    unittest.main()
