"""kill -9 with hundreds of invocations queued and in flight (issue: "a request accepted with 202
always ends, exactly once, as an output or a failure in S3 and one notification").

300 invocations are accepted against a slow echo endpoint (2 instances × 4 slots, 200 ms each),
inferd is SIGKILLed while about a third are done, and started again on the same data dir. Then:
every accepted invocation has exactly one result object (output or failure, never both), the
output holds its own payload, and the subscriber received exactly one notification per
invocation (SNS MessageId-distinct; SNS delivery is at least once, so a redelivery of the same
message is allowed and counted separately).
"""

import concurrent.futures
import re
import signal
import time
import unittest

import requests

from async_support import AsyncTestCase, split_s3

N = 300


class KillNineTest(AsyncTestCase):

    def test_kill_9_then_every_invocation_ends_exactly_once(self):
        name = self.create_echo_endpoint(environment={"ECHO_DELAY_MS": "200"}, concurrency=4,
                                         count=2)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            accepted = list(pool.map(
                lambda i: self.invoke(name, f"payload-{i}".encode(), InferenceId=f"inv-{i}"),
                range(N)))
        payload_of = {r["InferenceId"]: f"payload-{i}".encode() for i, r in enumerate(accepted)}

        # Kill it mid-way: some done, some in flight, most queued.
        self.sink.wait(lambda ms: len(ms) >= N // 3, timeout=60, what=f"{N // 3} notifications")
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        done_before = len(self.sink.by_id())
        self.assertLess(done_before, N, "everything finished before the kill: nothing tested")

        self.server.start()  # same data dir, new port
        self.make_clients()
        self.wait_in_service(name)

        self.sink.wait(lambda ms: len(self.sink.by_id()) >= N, timeout=120,
                       what=f"notifications for all {N} invocations")
        time.sleep(2.0)  # late duplicates would show up now

        counts = self.sink.by_id()
        self.assertEqual(set(counts), set(payload_of), "notifications missing or unexpected")
        duplicated = {k: v for k, v in counts.items() if v != 1}
        self.assertEqual(duplicated, {}, "invocations notified more than once")

        # Exactly one result object per invocation, and outputs hold their own payload.
        bucket = self.bucket
        keys = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.update(o["Key"] for o in page.get("Contents", []))
        failures = []
        for r in accepted:
            out_key = split_s3(r["OutputLocation"])[1]
            fail_key = split_s3(r["FailureLocation"])[1]
            self.assertNotEqual(out_key in keys, fail_key in keys,
                                f"{r['InferenceId']}: output {out_key in keys}, "
                                f"failure {fail_key in keys}")
            if out_key in keys:
                body = self.s3.get_object(Bucket=bucket, Key=out_key)["Body"].read()
                self.assertEqual(body, payload_of[r["InferenceId"]])
            else:
                failures.append(r["InferenceId"])
        # A crash is no reason to fail: the ones in flight ran again (or were finished from the
        # result they had already written).
        self.assertEqual(failures, [], "invocations failed because of the crash")
        notes = {m["inferenceId"]: m for m in self.sink.messages if "inferenceId" in m}
        self.assertEqual({m["invocationStatus"] for m in notes.values()}, {"Completed"})

        # Completed ones were not redone: the restarted server processed at most those that had
        # not been announced before the kill.
        text = requests.get(self.server.url + "/metrics", timeout=10).text
        processed = sum(float(v) for v in re.findall(
            rf'^inferd_invocations_processed_total{{endpoint="{name}"[^}}]*}} (\S+)$', text, re.M))
        self.assertGreater(processed, 0)
        self.assertLessEqual(processed, N - done_before)


if __name__ == "__main__":
    unittest.main()
