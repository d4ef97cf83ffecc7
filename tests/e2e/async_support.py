"""Shared pieces of the asynchronous-inference end-to-end tests (test_async_*.py).

- `NotificationSink`: an HTTP subscriber for SNS topics that answers the confirmation handshake
  (visits SubscribeURL, as a real subscriber does) and records every SageMaker notification by
  InferenceId, so tests can assert "exactly one per invocation".
- `AsyncTestCase`: an InferdTestCase with S3/SNS/SageMaker/runtime clients, a bucket, the echo
  model artifact, and helpers to create async endpoints on `inferd-echo`, invoke them and wait for
  results.
- `echo_instances` / `echo_stats`: the `inferd-echo` instances of an endpoint (ports read from
  their logs under the data dir) and their `/stats`.
"""

import collections
import http.server
import json
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid

import botocore.exceptions
import requests

from harness import ROLE, InferdTestCase, model_tar_gz, unique_name

ECHO_LISTEN_RE = re.compile(r"inferd-echo listening on 127\.0\.0\.1:(\d+)")


def split_s3(uri):
    """'s3://bucket/key' -> ('bucket', 'key')."""
    url = urllib.parse.urlparse(uri)
    return url.netloc, url.path.lstrip("/")


class NotificationSink:
    """An SNS HTTP subscriber. Confirms subscriptions through SubscribeURL and records every
    Notification's Message (parsed JSON) in arrival order. Thread-safe."""

    def __init__(self):
        self.messages = []        # parsed Message objects, in arrival order (redeliveries too)
        self.envelopes = []       # the raw envelopes of notifications
        self.confirmations = 0
        self._cv = threading.Condition()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                envelope = json.loads(self.rfile.read(length))
                if envelope.get("Type") == "SubscriptionConfirmation":
                    urllib.request.urlopen(envelope["SubscribeURL"], timeout=10).read()
                    with sink._cv:
                        sink.confirmations += 1
                        sink._cv.notify_all()
                elif envelope.get("Type") == "Notification":
                    with sink._cv:
                        sink.envelopes.append(envelope)
                        sink.messages.append(json.loads(envelope["Message"]))
                        sink._cv.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # inferd killed mid-connection (test_async_recovery) resets keep-alive sockets: not news.
        self.server.handle_error = lambda request, client_address: None
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, predicate, timeout=30.0, what="notifications"):
        """Block until predicate(messages) is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = predicate(self.messages)
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"{len(self.messages)} received: {self.messages[-5:]!r}")
                self._cv.wait(left)

    def for_id(self, inference_id, timeout=30.0):
        """The one notification of an invocation (waits for it)."""
        found = self.wait(lambda ms: [m for m in ms if m.get("inferenceId") == inference_id],
                          timeout, f"the notification of {inference_id}")
        return found[0]

    def by_id(self):
        """InferenceId -> number of distinct notifications (SNS MessageIds) received. SNS delivers
        at least once: a redelivery of the same message (same MessageId) counts once."""
        with self._cv:
            seen = set()
            counts = collections.Counter()
            for envelope, m in zip(self.envelopes, self.messages):
                if m.get("eventName") != "InferenceResult" or envelope["MessageId"] in seen:
                    continue
                seen.add(envelope["MessageId"])
                counts[m.get("inferenceId")] += 1
            return counts

    def redeliveries(self):
        """How many deliveries repeated a MessageId already received."""
        with self._cv:
            ids = [e["MessageId"] for e in self.envelopes]
            return len(ids) - len(set(ids))

    def test_notifications(self):
        with self._cv:
            return [m for m in self.messages if m.get("eventName") == "TestNotification"]


def echo_instances(server, endpoint):
    """Ports of the inferd-echo instances of `endpoint` (from their logs), newest last."""
    root = server.data_dir / "instances"
    ports = []
    if root.exists():
        dirs = sorted(root.glob(endpoint.lower() + "-*"), key=lambda p: p.stat().st_mtime)
        for d in dirs:
            m = ECHO_LISTEN_RE.search((d / "log").read_text(errors="replace"))
            if m:
                ports.append(int(m.group(1)))
    return ports


def echo_stats(port):
    """/stats of one inferd-echo instance, or None when it is gone."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
    except requests.RequestException:
        return None


class AsyncTestCase(InferdTestCase):
    """One server per class, clients, a bucket holding the echo artifact, and a sink subscribed
    (auto-confirmed) to fresh success and error topics."""

    server_config = {"sns_auto_confirm": True, "instance_stop_grace_seconds": 5,
                     "container_startup_timeout_seconds": 20}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_clients()
        _, cls.bucket = cls.server.s3_bucket(
            "async", {"echo/model.tar.gz": model_tar_gz({"model.bin": b"weights"})})
        cls.sink = NotificationSink()
        cls.addClassCleanup(cls.sink.stop)
        cls.success_topic = cls.sns.create_topic(Name=unique_name("ok"))["TopicArn"]
        cls.error_topic = cls.sns.create_topic(Name=unique_name("err"))["TopicArn"]
        for topic in (cls.success_topic, cls.error_topic):
            cls.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=cls.sink.url)

    @classmethod
    def make_clients(cls):
        cls.sm_client = cls.server.client("sagemaker")
        cls.runtime = cls.server.client("sagemaker-runtime")
        cls.s3 = cls.server.client("s3", s3={"addressing_style": "path"})
        cls.sns = cls.server.client("sns")

    # ---- endpoints ---------------------------------------------------------------------------

    @classmethod
    def create_echo_endpoint(cls, environment=None, count=1, async_config=True, concurrency=None,
                             failure_path=True, include_response=(), name=None, wait=True,
                             topics=True):
        """An endpoint on inferd-echo; returns its name (InService unless wait=False)."""
        name = name or unique_name("ep")
        cls.create_echo_config(name, environment, count, async_config, concurrency,
                               failure_path, include_response, topics)
        cls.sm_client.create_endpoint(EndpointName=name, EndpointConfigName=name)
        if wait:
            cls.wait_in_service(name)
        return name

    @classmethod
    def create_echo_config(cls, name, environment=None, count=1, async_config=True,
                           concurrency=None, failure_path=True, include_response=(),
                           topics=True):
        container = {"Image": "inferd-echo",
                     "ModelDataUrl": f"s3://{cls.bucket}/echo/model.tar.gz"}
        if environment:
            container["Environment"] = environment
        cls.sm_client.create_model(ModelName=name, PrimaryContainer=container,
                                   ExecutionRoleArn=ROLE)
        kwargs = {}
        if async_config:
            output = {"S3OutputPath": f"s3://{cls.bucket}/out/{name}"}
            if failure_path:
                output["S3FailurePath"] = f"s3://{cls.bucket}/failed/{name}"
            if topics:
                output["NotificationConfig"] = {"SuccessTopic": cls.success_topic,
                                                "ErrorTopic": cls.error_topic}
                if include_response:
                    output["NotificationConfig"]["IncludeInferenceResponseIn"] = \
                        list(include_response)
            config = {"OutputConfig": output}
            if concurrency:
                config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": concurrency}
            kwargs["AsyncInferenceConfig"] = config
        cls.sm_client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": count}],
            **kwargs)
        return name

    @classmethod
    def wait_in_service(cls, name, attempts=120):
        cls.sm_client.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": attempts})
        return cls.sm_client.describe_endpoint(EndpointName=name)

    @classmethod
    def scale(cls, name, count):
        """UpdateEndpointWeightsAndCapacities to `count` instances; returns the InService
        DescribeEndpoint."""
        cls.sm_client.update_endpoint_weights_and_capacities(
            EndpointName=name,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                          "DesiredInstanceCount": count}])
        return cls.wait_in_service(name)

    @classmethod
    def delete_endpoint(cls, name):
        cls.sm_client.delete_endpoint(EndpointName=name)
        cls.sm_client.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})

    # ---- invocations -------------------------------------------------------------------------

    @classmethod
    def put_input(cls, data, key=None):
        key = key or f"in/{uuid.uuid4().hex}"
        cls.s3.put_object(Bucket=cls.bucket, Key=key, Body=data)
        return f"s3://{cls.bucket}/{key}"

    @classmethod
    def invoke(cls, endpoint, data=b"payload", **kwargs):
        location = cls.put_input(data)
        return cls.runtime.invoke_endpoint_async(EndpointName=endpoint, InputLocation=location,
                                                  **kwargs)

    @classmethod
    def get_object(cls, uri):
        """(body bytes, ContentType, Metadata) of an object, or None if absent."""
        bucket, key = split_s3(uri)
        try:
            obj = cls.s3.get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return obj["Body"].read(), obj.get("ContentType"), obj.get("Metadata", {})

    def wait_result(self, response, timeout=60):
        """('output'|'failure', body, content_type, metadata) once one of the objects exists."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.get_object(response["OutputLocation"])
            if out is not None:
                return ("output",) + out
            if response.get("FailureLocation"):
                failed = self.get_object(response["FailureLocation"])
                if failed is not None:
                    return ("failure",) + failed
            if time.monotonic() > deadline:
                self.fail(f"no result for {response['InferenceId']} within {timeout}s")
            time.sleep(0.2)

    def inferd_api(self, method, path, region="us-east-1"):
        """A signed call to the /inferd/ API; returns the requests.Response."""
        return self.server.signed_request(method=method, path=path, region=region)
