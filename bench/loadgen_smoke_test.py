"""The measuring instrument itself, end to end (ctest bench_loadgen_smoke, label e2e).

A real inferd (with credentials, so the load generator's SigV4 signatures are verified) and an
async endpoint on inferd-echo; inferd-loadgen confirms its SNS subscriptions through SubscribeURL,
sends 2 s of open-loop InvokeEndpointAsync, and must count every accepted invocation complete from
the notifications, with no errors. Also --direct against the echo instance and --sink-only.

Needs inferd, inferd-echo and inferd-loadgen built ($INFERD_BIN, $INFERD_LOADGEN_BIN).
"""

import json
import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import harness  # noqa: E402
from async_support import echo_instances  # noqa: E402
from harness import ROLE, free_port, model_tar_gz  # noqa: E402


def loadgen_bin():
    path = os.environ.get("INFERD_LOADGEN_BIN")
    if path:
        return path
    return str(Path(harness.inferd_bin()).parent / "inferd-loadgen")


class LoadgenSmokeTest(harness.InferdTestCase):
    server_config = {
        "credentials": [{"access_key_id": harness.DEFAULT_KEY,
                         "secret_access_key": harness.DEFAULT_SECRET}],
        "instance_stop_grace_seconds": 5,
        "container_startup_timeout_seconds": 20,
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s3 = cls.server.client("s3", s3={"addressing_style": "path"})
        cls.sm_client = cls.server.client("sagemaker")
        cls.sns = cls.server.client("sns")
        s3.create_bucket(Bucket="smoke")
        s3.put_object(Bucket="smoke", Key="model.tar.gz", Body=model_tar_gz({"m": b"x"}))
        s3.put_object(Bucket="smoke", Key="in/1k", Body=os.urandom(1024))
        cls.topics = [cls.sns.create_topic(Name=n)["TopicArn"] for n in ("smoke-ok", "smoke-err")]
        cls.sm_client.create_model(ModelName="smoke", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "inferd-echo", "ModelDataUrl": "s3://smoke/model.tar.gz"})
        cls.sm_client.create_endpoint_config(
            EndpointConfigName="smoke",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "smoke",
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            AsyncInferenceConfig={"OutputConfig": {
                "S3OutputPath": "s3://smoke/out", "S3FailurePath": "s3://smoke/failed",
                "NotificationConfig": {"SuccessTopic": cls.topics[0],
                                       "ErrorTopic": cls.topics[1]}}})
        cls.sm_client.create_endpoint(EndpointName="smoke", EndpointConfigName="smoke")
        cls.sm_client.get_waiter("endpoint_in_service").wait(
            EndpointName="smoke", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
        cls.sink_port = free_port()

    def loadgen(self, *args, background=False):
        cmd = [loadgen_bin()] + [str(a) for a in args]
        if background:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            self.assertIn("sink listening", proc.stderr.readline())
            return proc
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return self.result(res.returncode, res.stdout, res.stderr)

    def result(self, code, out, err):
        self.assertEqual(code, 0, f"inferd-loadgen failed:\n{err}\n{out}")
        return json.loads(out.strip().splitlines()[-1])

    def invoke_args(self):
        return ["--target", self.server.url, "--endpoint", "smoke", "--input", "s3://smoke/in/1k",
                "--access-key-id", harness.DEFAULT_KEY,
                "--secret-access-key", harness.DEFAULT_SECRET]

    def test_loadgen_counts_what_it_sent(self):
        self.open_loop_counts_every_invocation_complete()
        self.closed_loop_window()
        self.direct_and_sink_only()

    def closed_loop_window(self):
        r = self.loadgen(*self.invoke_args(), "--connections", 8, "--max-outstanding", 4,
                         "--duration", 1, "--sink", f"127.0.0.1:{self.sink_port}",
                         "--wait-completions", 30)
        self.assertGreater(r["accepted"], 0, r)
        self.assertEqual(r["errors"], 0, r)
        self.assertEqual((r["completed"], r["missing"]), (r["accepted"], 0), r)

    def open_loop_counts_every_invocation_complete(self):
        sink = f"127.0.0.1:{self.sink_port}"
        proc = self.loadgen(*self.invoke_args(), "--rate", 50, "--duration", 2, "--sink", sink,
                            "--wait-confirmations", 2, "--wait-completions", 30, background=True)
        for topic in self.topics:  # confirmed by the load generator through SubscribeURL
            self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"http://{sink}/sns")
        out, err = proc.communicate(timeout=60)
        r = self.result(proc.returncode, out, err)
        self.assertEqual(r["confirmations"], 2, r)
        self.assertGreater(r["accepted"], 50, r)
        self.assertEqual(r["accepted"], r["sent"], r)
        self.assertEqual(r["errors"], 0, r)
        self.assertEqual(r["completed"], r["accepted"], r)
        self.assertEqual((r["failed"], r["duplicates"], r["missing"]), (0, 0, 0), r)
        self.assertTrue(r["drained"], r)
        self.assertEqual(r["result_latency_ms"]["count"], r["accepted"], r)
        self.assertEqual(r["event_latency_ms"]["count"], r["accepted"], r)
        self.assertGreater(r["result_latency_ms"]["p50"], 0, r)
        self.assertGreater(r["results_per_s_window"], 0, r)

    def direct_and_sink_only(self):
        port = echo_instances(self.server, "smoke")[-1]
        r = self.loadgen("--direct", f"127.0.0.1:{port}", "--payload-bytes", 4096,
                         "--connections", 4, "--duration", 0.5)
        self.assertGreater(r["accepted"], 0, r)
        self.assertEqual(r["errors"], 0, r)
        # --sink-only counts completions of ids it did not send (a backlog's drain).
        proc = self.loadgen("--sink-only", "--sink", f"127.0.0.1:{self.sink_port}",
                            "--id-prefix", "other,smk", "--expect", 1, "--timeout", 30,
                            background=True)
        runtime = self.server.client("sagemaker-runtime")
        runtime.invoke_endpoint_async(EndpointName="smoke", InputLocation="s3://smoke/in/1k",
                                      InferenceId="smk-0-0")
        out, err = proc.communicate(timeout=60)
        r = self.result(proc.returncode, out, err)
        self.assertEqual((r["completed"], r["timed_out"], r["duplicates"]), (1, False, 0), r)


if __name__ == "__main__":
    unittest.main()
