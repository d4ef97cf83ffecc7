"""The asynchronous pipeline end to end on `inferd-echo` instances (spec §3, §4, §6, §9): the
concurrency cap seen from inside an instance, a real invocation timeout, model failures, scale to
zero and back with the backlog in /metrics, the /inferd/ API and `inferd invocations`
(list/get/cancel), UpdateEndpoint without loss, DeleteEndpoint failing what is queued, and the
test notifications of CreateEndpoint / UpdateEndpoint / UpdateEndpointWeightsAndCapacities.

Echo's behaviour comes from its environment (the model's `Environment`): asynchronous
invocations forward only Content-Type, Accept and custom attributes to the container, so
ECHO_DELAY_MS / ECHO_STATUS set per endpoint make it slow or failing.
"""

import concurrent.futures
import json
import re
import subprocess
import time
import unittest

import requests

from async_support import AsyncTestCase, NotificationSink, echo_instances, echo_stats
from harness import ROLE, inferd_bin, unique_name


def metric(text, name, endpoint):
    """The value of `name{endpoint="..."}` (gauges) in a Prometheus exposition, or None."""
    m = re.search(rf'^{name}{{endpoint="{re.escape(endpoint)}"}} (\S+)$', text, re.M)
    return None if m is None else float(m.group(1))


def metric_sum(text, name, endpoint):
    """The sum of `name{endpoint="...",...}` over variants."""
    total = 0.0
    for m in re.finditer(rf'^{name}{{endpoint="{re.escape(endpoint)}"[^}}]*}} (\S+)$', text, re.M):
        total += float(m.group(1))
    return total


class PipelineTest(AsyncTestCase):

    def invoke_many(self, endpoint, n, **kwargs):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda i: self.invoke(endpoint, f"payload-{i}".encode(), **kwargs),
                                 range(n)))

    def metrics(self):
        resp = requests.get(self.server.url + "/metrics", timeout=10)  # unsigned, like a scraper
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertTrue(resp.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return resp.text

    def cli(self, *args):
        env = self.server.cli_env()
        res = subprocess.run([inferd_bin(), "invocations", *args, "--endpoint-url",
                              self.server.url], env=env, capture_output=True, text=True,
                             timeout=30)
        return res.returncode, res.stdout, res.stderr

    # ---- tests ---------------------------------------------------------------------------------

    def test_concurrency_cap_seen_by_the_instance(self):
        capped = self.create_echo_endpoint(environment={"ECHO_DELAY_MS": "300"}, concurrency=2,
                                           wait=False)
        default = self.create_echo_endpoint(environment={"ECHO_DELAY_MS": "300"}, wait=False)
        for name in (capped, default):
            self.wait_in_service(name)
        for name, cap in ((capped, 2), (default, 4)):  # 4: the documented default
            with self.subTest(endpoint=name, cap=cap):
                responses = self.invoke_many(name, 12)
                for r in responses:
                    self.assertEqual(self.wait_result(r)[0], "output")
                ports = echo_instances(self.server, name)
                self.assertEqual(len(ports), 1, ports)
                stats = echo_stats(ports[0])
                self.assertEqual(stats["requests"], 12, stats)
                self.assertEqual(stats["max_in_flight"], cap, stats)

    def test_invocation_timeout(self):
        slow = self.create_echo_endpoint(environment={"ECHO_DELAY_MS": "4000"})
        resp = self.invoke(slow, InvocationTimeoutSeconds=1)
        started = time.monotonic()
        kind, body, _, _ = self.wait_result(resp, timeout=30)
        self.assertEqual(kind, "failure")
        self.assertLess(time.monotonic() - started, 4.0, "the timeout was not enforced")
        note = self.sink.for_id(resp["InferenceId"])
        self.assertEqual(note["invocationStatus"], "Failed")
        self.assertIn("InvocationTimeoutSeconds (1 s)", note["failureReason"])
        self.assertEqual(body.decode(), note["failureReason"])

    def test_model_failure(self):
        failing = self.create_echo_endpoint(environment={"ECHO_STATUS": "500"},
                                            include_response=["ERROR_NOTIFICATION_TOPIC"])
        resp = self.invoke(failing, b"will fail", ContentType="text/plain")
        kind, body, _, _ = self.wait_result(resp)
        self.assertEqual((kind, body), ("failure", b"echo: failing with 500 as asked"))
        note = self.sink.for_id(resp["InferenceId"])
        self.assertEqual(note["invocationStatus"], "Failed")
        self.assertEqual(note["failureReason"],
                         "ClientError: Received server error (500) from model. See the SageMaker "
                         "Endpoint logs in your account for more information.")
        self.assertEqual(note["responseParameters"]["failureLocation"], resp["FailureLocation"])
        self.assertIn("responseBody", note)
        self.assertEqual(self.get_object(resp["OutputLocation"]), None)
        text = self.metrics()
        self.assertGreaterEqual(metric_sum(text, "inferd_invocation_failures_total", failing), 1)
        self.assertGreaterEqual(metric_sum(text, "inferd_invocation_5xx_errors_total", failing), 1)

    def test_scale_to_zero_queue_inspect_cancel_and_drain(self):
        name = self.create_echo_endpoint()
        desc = self.scale(name, 0)
        self.assertEqual(desc["ProductionVariants"][0]["CurrentInstanceCount"], 0)
        responses = [self.invoke(name, f"queued-{i}".encode(), InferenceId=f"q-{i}")
                     for i in range(5)]
        time.sleep(1.0)  # nothing runs without capacity
        for r in responses:
            self.assertIsNone(self.get_object(r["OutputLocation"]))

        # The backlog is in the metrics...
        text = self.metrics()
        self.assertEqual(metric(text, "inferd_approximate_backlog_size", name), 5)
        self.assertEqual(metric(text, "inferd_has_backlog_without_capacity", name), 1)
        self.assertGreater(metric(text, "inferd_approximate_age_of_oldest_request_seconds", name),
                           0.5)

        # ...in the /inferd/ API...
        listed = self.inferd_api("GET", f"/inferd/endpoints/{name}/invocations")
        self.assertEqual(listed.status_code, 200, listed.text)
        items = listed.json()["Invocations"]
        self.assertEqual([i["inferenceId"] for i in items], [f"q-{i}" for i in range(5)])
        self.assertEqual([i["state"] for i in items], ["Queued"] * 5)
        self.assertEqual([i.get("queuePosition") for i in items], list(range(5)))
        page = self.inferd_api("GET", f"/inferd/endpoints/{name}/invocations?limit=2").json()
        self.assertEqual(len(page["Invocations"]), 2)
        rest = self.inferd_api(
            "GET", f"/inferd/endpoints/{name}/invocations?after={page['NextToken']}").json()
        self.assertEqual([i["inferenceId"] for i in rest["Invocations"]], ["q-2", "q-3", "q-4"])
        one = self.inferd_api("GET", f"/inferd/endpoints/{name}/invocations/q-1").json()
        self.assertEqual(one["state"], "Queued")
        self.assertEqual(one["outputLocation"], responses[1]["OutputLocation"])
        self.assertEqual(one["failureLocation"], responses[1]["FailureLocation"])
        self.assertEqual(one["attempts"], 0)
        missing = self.inferd_api("GET", f"/inferd/endpoints/{name}/invocations/nope")
        self.assertEqual(missing.status_code, 404, missing.text)
        unsigned = requests.get(f"{self.server.url}/inferd/endpoints/{name}/invocations",
                                timeout=10)
        self.assertEqual(unsigned.status_code, 403, unsigned.text)

        # ...and through the command line.
        code, out, err = self.cli("list", name, "--output", "json")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(json.loads(out)["Invocations"]), 5)
        code, out, err = self.cli("list", name)
        self.assertEqual(code, 0, err)
        self.assertIn("INFERENCE ID", out)
        self.assertEqual(out.count("Queued"), 5, out)
        code, out, err = self.cli("get", name, "q-3", "--output", "json")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["state"], "Queued")
        code, out, err = self.cli("cancel", name, "q-2", "--output", "json")
        self.assertEqual(code, 0, err)
        cancelled = json.loads(out)
        self.assertEqual(cancelled["state"], "Failed")
        self.assertIn("cancel", cancelled["failureReason"])
        note = self.sink.for_id("q-2")
        self.assertEqual(note["invocationStatus"], "Failed")
        self.assertEqual(note["failureReason"], cancelled["failureReason"])
        code, out, err = self.cli("cancel", name, "q-2")
        self.assertEqual(code, 1, out)
        self.assertIn("Conflict", err)
        code, out, err = self.cli("get", name, "nope")
        self.assertEqual(code, 1)
        self.assertIn("ResourceNotFound", err)

        # Capacity returns: the other four drain, the cancelled one never runs.
        self.scale(name, 1)
        for i, r in enumerate(responses):
            kind, body, _, _ = self.wait_result(r)
            if i == 2:
                self.assertEqual(kind, "failure")
            else:
                self.assertEqual((kind, body), ("output", f"queued-{i}".encode()))
        self.assertEqual(echo_stats(echo_instances(self.server, name)[-1])["requests"], 4)
        self.poll_until(lambda: metric(self.metrics(), "inferd_approximate_backlog_size",
                                       name) == 0, what="an empty backlog")
        for i in range(5):
            self.assertEqual(self.sink.by_id()[f"q-{i}"], 1)

    def test_update_without_loss(self):
        name = self.create_echo_endpoint(environment={"ECHO_DELAY_MS": "150"}, concurrency=2)
        before = self.invoke_many(name, 20)
        new_config = self.create_echo_config(unique_name("v2"),
                                             environment={"ECHO_DELAY_MS": "150"}, count=2)
        self.sm_client.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
        during = self.invoke_many(name, 10)
        desc = self.wait_in_service(name)
        self.assertEqual(desc["EndpointConfigName"], new_config)
        after = self.invoke_many(name, 5)
        for r in before + during + after:
            self.assertEqual(self.wait_result(r)[0], "output", r["InferenceId"])
        for r in before + during + after:
            self.poll_until(lambda: self.sink.by_id()[r["InferenceId"]] >= 1,
                            what=f"the notification of {r['InferenceId']}")
        counts = self.sink.by_id()
        self.assertEqual({counts[r["InferenceId"]] for r in before + during + after}, {1})

    def test_delete_fails_what_is_queued(self):
        name = self.create_echo_endpoint()
        self.scale(name, 0)
        responses = [self.invoke(name) for _ in range(3)]
        self.delete_endpoint(name)
        for r in responses:
            kind, body, _, _ = self.wait_result(r)
            self.assertEqual(kind, "failure")
            note = self.sink.for_id(r["InferenceId"])
            self.assertEqual(note["invocationStatus"], "Failed")
            self.assertIn("deleted", note["failureReason"])
            self.assertEqual(body.decode(), note["failureReason"])
        self.assertAwsError(lambda: self.invoke(name), "ValidationError")

    def test_test_notifications(self):
        sink = NotificationSink()
        self.addCleanup(sink.stop)
        ok = self.sns.create_topic(Name=unique_name("t-ok"))["TopicArn"]
        err = self.sns.create_topic(Name=unique_name("t-err"))["TopicArn"]
        self.sns.subscribe(TopicArn=ok, Protocol="http", Endpoint=sink.url)
        self.sns.subscribe(TopicArn=err, Protocol="http", Endpoint=sink.url)
        name = unique_name("tn")
        self.sm_client.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                                    PrimaryContainer={"Image": "inferd-echo"})
        self.sm_client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            AsyncInferenceConfig={"OutputConfig": {
                "S3OutputPath": f"s3://{self.bucket}/tn",
                "NotificationConfig": {"SuccessTopic": ok, "ErrorTopic": err}}})
        expected = {"eventVersion": "1.0", "eventSource": "aws:sagemaker",
                    "eventName": "TestNotification"}

        def tests(n):
            return sink.wait(lambda ms: len(ms) >= n and ms, what=f"{n} test notifications")

        self.sm_client.create_endpoint(EndpointName=name, EndpointConfigName=name)
        self.assertEqual(tests(2), [expected] * 2)  # one per topic
        self.wait_in_service(name)
        self.sm_client.create_endpoint_config(
            EndpointConfigName=name + "-v2",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            AsyncInferenceConfig={"OutputConfig": {
                "S3OutputPath": f"s3://{self.bucket}/tn",
                "NotificationConfig": {"SuccessTopic": ok, "ErrorTopic": err}}})
        self.sm_client.update_endpoint(EndpointName=name, EndpointConfigName=name + "-v2")
        self.assertEqual(tests(4), [expected] * 4)
        self.wait_in_service(name)
        self.scale(name, 2)
        self.assertEqual(tests(6), [expected] * 6)
        # Exactly those: the subscriber got nothing else.
        time.sleep(0.5)
        self.assertEqual(len(sink.messages), 6, sink.messages)
        self.delete_endpoint(name)


if __name__ == "__main__":
    unittest.main()
