"""RequestTTLSeconds for real (spec §2.2, §6): an invocation that waits in the queue longer than its
TTL ends as a failure "expired" — failure object, error notification, ExpiredRequests — even while
the endpoint has no capacity at all, and one with the default TTL (6 h) keeps waiting and runs when
capacity returns. The smallest TTL SageMaker allows is 60 s, so this module takes about a minute
(the fake-clock unit tests in src/dispatch cover the edges).
"""

import time
import unittest

import requests

from async_support import AsyncTestCase
from test_async_pipeline import metric_sum


class RequestTtlTest(AsyncTestCase):

    def test_expires_at_zero_capacity_while_a_default_ttl_waits(self):
        name = self.create_echo_endpoint()
        self.assertEqual(self.scale(name, 0)["ProductionVariants"][0]["CurrentInstanceCount"], 0)
        accepted = time.monotonic()
        short = self.invoke(name, b"short-lived", InferenceId="ttl-60", RequestTTLSeconds=60)
        patient = self.invoke(name, b"patient", InferenceId="ttl-default")

        kind, body, content_type, metadata = self.wait_result(short, timeout=90)
        waited = time.monotonic() - accepted
        self.assertEqual(kind, "failure")
        self.assertGreaterEqual(waited, 59.0, "expired before its RequestTTLSeconds")
        self.assertLess(waited, 75.0, "the expiry was not enforced without capacity")
        note = self.sink.for_id("ttl-60")
        self.assertEqual(note["invocationStatus"], "Failed")
        self.assertIn("RequestTTLSeconds (60 s)", note["failureReason"])
        self.assertEqual(body.decode(), note["failureReason"])
        self.assertEqual(note["requestParameters"]["inputLocation"],
                         self.get_input_location(name, "ttl-60"))
        self.assertIsNone(self.get_object(short["OutputLocation"]))

        text = requests.get(self.server.url + "/metrics", timeout=10).text
        self.assertEqual(metric_sum(text, "inferd_expired_requests_total", name), 1)

        # The default-TTL invocation is still queued, and runs once capacity returns.
        one = self.inferd_api("GET", f"/inferd/endpoints/{name}/invocations/ttl-default").json()
        self.assertEqual(one["state"], "Queued")
        self.scale(name, 1)
        self.assertEqual(self.wait_result(patient)[:2], ("output", b"patient"))
        self.assertEqual(self.sink.by_id()["ttl-60"], 1)
        self.assertEqual(self.sink.by_id()["ttl-default"], 1)

    def get_input_location(self, endpoint, inference_id):
        got = self.inferd_api("GET", f"/inferd/endpoints/{endpoint}/invocations/{inference_id}")
        self.assertEqual(got.status_code, 200, got.text)
        return got.json()["inputLocation"]


if __name__ == "__main__":
    unittest.main()
