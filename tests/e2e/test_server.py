"""The inferd process and its HTTP front door: startup contract, signals, persistence across
restarts, SigV4 authentication per protocol, request ids, the not-yet-implemented services, and
keep-alive.

Authentication outcomes are the table in docs/sagemaker-compat.md ("Authentication").
"""

import copy
import datetime
import http.client
import json
import signal
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import requests

from harness import (DEFAULT_ACCOUNT, InferdServer, InferdTestCase, arn, aws_error_code,
                     run_inferd, unique_name)

KEY = "AKIDTEST"
SECRET = "secret"
ACCOUNT = "123456789012"
CREDENTIALS_CONFIG = {"account_id": ACCOUNT,
                      "credentials": [{"access_key_id": KEY, "secret_access_key": SECRET}]}

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3"
CONTAINER = {"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz",
             "Environment": {"TS_MAX_REQUEST_SIZE": "100000000"}}
ASYNC_CONFIG = {
    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
    "OutputConfig": {
        "S3OutputPath": "s3://bucket/out",
        "S3FailurePath": "s3://bucket/failure",
        "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:ok",
                               "ErrorTopic": "arn:aws:sns:us-east-1:000000000000:err",
                               "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]},
    },
}
SKEW = datetime.timedelta(minutes=20)
JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.1"}
SNS_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
SNS_LIST_TOPICS = "Action=ListTopics&Version=2010-03-31"


def json_error_code(resp):
    """Error code of a JSON error response, read the way botocore does for rest-json (runtime):
    header x-amzn-ErrorType first, then body `code`, then `__type` (the only source for JSON 1.1)."""
    if resp.headers.get("x-amzn-ErrorType"):
        return aws_error_code(resp.headers["x-amzn-ErrorType"])
    body = resp.json()
    return aws_error_code(body.get("code") or body.get("__type"))


def xml_error_code(resp):
    root = ET.fromstring(resp.content)
    for el in root.iter():
        if el.tag.split("}")[-1] == "Code":
            return el.text
    return None


def header(resp_meta_or_response, name):
    """Case-insensitive header lookup in a boto3 response/error dict or a requests.Response."""
    if isinstance(resp_meta_or_response, requests.Response):
        return resp_meta_or_response.headers.get(name)
    return resp_meta_or_response["ResponseMetadata"]["HTTPHeaders"].get(name.lower())


class RequestIdMixin:
    def assertRequestId(self, resp):
        value = header(resp, "x-amzn-RequestId")
        self.assertTrue(value, f"no x-amzn-RequestId header in {resp!r}")
        return value


# ---------------------------------------------------------------------------------------------
# Process lifecycle
# ---------------------------------------------------------------------------------------------

class ProcessTest(unittest.TestCase):
    maxDiff = None

    def test_listening_line_and_sigterm(self):
        server = InferdServer()
        try:
            server.start()
            self.assertRegex(server.listen_line,
                             r"^inferd listening on http://127\.0\.0\.1:\d+$")
            self.assertGreater(server.port, 0)
            server.client().list_models()
            self.assertEqual(server.stop(signal.SIGTERM), 0)
            # Exactly one line on stdout: logs go to stderr.
            self.assertEqual(server.stdout_lines, [server.listen_line])
        finally:
            server.close()

    def test_sigint_exit_zero(self):
        server = InferdServer()
        try:
            server.start()
            server.client().list_models()
            self.assertEqual(server.stop(signal.SIGINT), 0)
        finally:
            server.close()

    def test_sigterm_with_idle_keepalive_connection(self):
        server = InferdServer()
        try:
            server.start()
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            url, headers, body = server.sign(headers=dict(JSON_HEADERS,
                                                          **{"X-Amz-Target": "SageMaker.ListModels"}),
                                             body=b"{}")
            conn.request("POST", "/", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            # The connection stays open and idle; a graceful stop must not wait for it.
            start = time.monotonic()
            self.assertEqual(server.stop(signal.SIGTERM), 0)
            self.assertLess(time.monotonic() - start, 10)
            conn.close()
        finally:
            server.close()

    def test_non_loopback_without_credentials_refused(self):
        with tempfile.TemporaryDirectory(prefix="inferd-e2e-") as tmp:
            start = time.monotonic()
            res = run_inferd(["serve", "--listen", "0.0.0.0:0", "--data-dir", tmp])
            self.assertEqual(res.returncode, 2, f"stdout: {res.stdout!r}\nstderr: {res.stderr!r}")
            self.assertIn("credential", res.stderr.lower())
            self.assertNotIn("listening", res.stdout)
            self.assertLess(time.monotonic() - start, 10)

    def test_non_loopback_with_credentials_starts(self):
        server = InferdServer(config=CREDENTIALS_CONFIG, listen="0.0.0.0:0")
        try:
            server.start()
            self.assertRegex(server.listen_line, r"^inferd listening on http://0\.0\.0\.0:\d+$")
            client = server.client(key=KEY, secret=SECRET)
            self.assertEqual(client.list_models()["Models"], [])
            resp = requests.post(server.url + "/", data=b"{}",
                                 headers=dict(JSON_HEADERS,
                                              **{"X-Amz-Target": "SageMaker.ListModels"}),
                                 timeout=10)
            self.assertEqual(resp.status_code, 403)
            self.assertEqual(server.stop(), 0)
        finally:
            server.close()

    def test_second_server_on_one_data_dir_refused(self):
        server = InferdServer(config={"model_hosting": False})
        try:
            server.start()
            client = server.client()
            client.create_model(ModelName="kept", PrimaryContainer=copy.deepcopy(CONTAINER))
            start = time.monotonic()
            res = run_inferd(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                              str(server.data_dir)])
            self.assertEqual(res.returncode, 1, f"stdout: {res.stdout!r}\nstderr: {res.stderr!r}")
            self.assertIn(f"data dir {server.data_dir} is in use by another inferd "
                          f"(pid {server.proc.pid})", res.stderr)
            self.assertNotIn("listening", res.stdout)
            self.assertLess(time.monotonic() - start, 5)
            # The first one is untouched; once it stops, the data dir serves again.
            self.assertEqual(client.describe_model(ModelName="kept")["ModelName"], "kept")
            self.assertEqual(server.stop(), 0)
            server.start()
            self.assertEqual(server.client().describe_model(ModelName="kept")["ModelName"], "kept")
            self.assertEqual(server.stop(), 0)
        finally:
            server.close()

    def test_restart_keeps_catalog(self):
        server = InferdServer(config={"model_hosting": False})  # the catalog, not the fleet
        try:
            server.start()
            client = server.client()
            west = server.client(region="us-west-2")
            tags = [{"Key": "owner", "Value": "e2e"}]
            model = unique_name("Persist")
            config = unique_name("persist-config")
            endpoint = unique_name("persist-endpoint")
            deleted = unique_name("deleted")
            west_model = unique_name("west")
            client.create_model(ModelName=model, PrimaryContainer=copy.deepcopy(CONTAINER),
                                Tags=tags)
            client.create_model(ModelName=deleted, PrimaryContainer=copy.deepcopy(CONTAINER))
            west.create_model(ModelName=west_model, PrimaryContainer=copy.deepcopy(CONTAINER))
            client.create_endpoint_config(
                EndpointConfigName=config, Tags=tags,
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model,
                                     "InitialInstanceCount": 2,
                                     "InstanceType": "ml.m5.xlarge"}],
                AsyncInferenceConfig=copy.deepcopy(ASYNC_CONFIG))
            client.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags)
            client.delete_model(ModelName=deleted)

            def snapshot(c):
                out = {
                    "model": c.describe_model(ModelName=model),
                    "config": c.describe_endpoint_config(EndpointConfigName=config),
                    "endpoint": c.describe_endpoint(EndpointName=endpoint),
                    "tags": [c.list_tags(ResourceArn=arn(k, n))["Tags"]
                             for k, n in (("model", model), ("endpoint-config", config),
                                          ("endpoint", endpoint))],
                }
                for v in out.values():
                    if isinstance(v, dict):
                        v.pop("ResponseMetadata", None)
                return out

            before = snapshot(client)
            server.restart()
            client = server.client()
            west = server.client(region="us-west-2")
            after = snapshot(client)
            self.assertEqual(after, before)
            self.assertEqual(after["endpoint"]["EndpointStatus"], "Creating")
            self.assertEqual(after["tags"], [tags, tags, tags])
            self.assertEqual(after["config"]["AsyncInferenceConfig"], ASYNC_CONFIG)
            self.assertEqual(
                [m["ModelName"] for m in client.list_models(NameContains=model)["Models"]],
                [model])
            self.assertEqual(client.list_endpoints(NameContains=endpoint,
                                                   StatusEquals="Creating")["Endpoints"][0]
                             ["EndpointName"], endpoint)
            # Deletions persist, regions persist, uniqueness still holds.
            with self.assertRaises(client.exceptions.ClientError):
                client.describe_model(ModelName=deleted)
            self.assertEqual(west.describe_model(ModelName=west_model)["ModelArn"],
                             arn("model", west_model, region="us-west-2"))
            with self.assertRaises(client.exceptions.ClientError) as cm:
                client.create_model(ModelName=model, PrimaryContainer=copy.deepcopy(CONTAINER))
            self.assertEqual(cm.exception.response["Error"]["Message"],
                             f'Cannot create already existing model "{arn("model", model)}".')
            # And the restarted catalog keeps working: delete, then restart once more.
            client.delete_endpoint(EndpointName=endpoint)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.describe_endpoint(EndpointName=endpoint)
                except client.exceptions.ClientError:
                    break
                self.assertLess(time.monotonic(), deadline, "endpoint not deleted in 30 s")
                time.sleep(0.1)
            server.restart()
            client = server.client()
            with self.assertRaises(client.exceptions.ClientError):
                client.describe_endpoint(EndpointName=endpoint)
            self.assertEqual(client.describe_model(ModelName=model)["ModelName"], model)
            self.assertEqual(server.stop(), 0)
        finally:
            server.close()


# ---------------------------------------------------------------------------------------------
# Authentication with configured credentials
# ---------------------------------------------------------------------------------------------

class AuthTest(RequestIdMixin, InferdTestCase):
    server_config = CREDENTIALS_CONFIG

    def good(self, service="sagemaker", **kw):
        return self.server.client(service, key=KEY, secret=SECRET, **kw)

    def test_valid_credentials_and_account_id(self):
        client = self.good()
        name = unique_name("Acct")
        resp = client.create_model(ModelName=name, PrimaryContainer=copy.deepcopy(CONTAINER))
        self.assertEqual(resp["ModelArn"], f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/"
                                           f"{name.lower()}")
        self.assertAwsError(lambda: client.describe_model(ModelName="x"), "ValidationException",
                            message=f'Could not find model "arn:aws:sagemaker:us-east-1:'
                                    f'{ACCOUNT}:model/x".')

    def test_sagemaker_wrong_secret(self):
        client = self.server.client(key=KEY, secret="wrong-secret")
        resp = self.assertAwsError(lambda: client.list_models(), "InvalidSignatureException",
                                   status=403)
        self.assertRequestId(resp)

    def test_sagemaker_unknown_access_key(self):
        client = self.server.client(key="AKIDUNKNOWN", secret=SECRET)
        resp = self.assertAwsError(lambda: client.list_models(), "UnrecognizedClientException",
                                   status=403)
        self.assertRequestId(resp)

    def test_sagemaker_missing_authentication(self):
        resp = requests.post(self.server.url + "/", data=b"{}",
                             headers=dict(JSON_HEADERS, **{"X-Amz-Target": "SageMaker.ListModels"}),
                             timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(json_error_code(resp), "MissingAuthenticationTokenException", resp.text)
        self.assertRequestId(resp)

    def test_sagemaker_clock_skew(self):
        from harness import skewed_clock
        client = self.good()
        for offset in (-SKEW, SKEW):
            with self.subTest(offset=str(offset)), skewed_clock(offset):
                resp = self.assertAwsError(lambda: client.list_models(), "RequestTimeTooSkewed",
                                           status=403)
                self.assertRequestId(resp)
        # Within 15 minutes is fine.
        for offset in (datetime.timedelta(minutes=-5), datetime.timedelta(minutes=5)):
            with self.subTest(offset=str(offset)), skewed_clock(offset):
                client.list_models()

    def test_runtime_auth(self):
        def invoke(client):
            return client.invoke_endpoint_async(EndpointName="x",
                                                InputLocation="s3://bucket/in.csv")
        self.assertAwsError(
            lambda: invoke(self.server.client("sagemaker-runtime", key=KEY, secret="wrong")),
            "InvalidSignatureException", status=403)
        self.assertAwsError(
            lambda: invoke(self.server.client("sagemaker-runtime", key="AKIDUNKNOWN",
                                              secret=SECRET)),
            "UnrecognizedClientException", status=403)
        resp = requests.post(self.server.url + "/endpoints/x/async-invocations",
                             headers={"X-Amzn-SageMaker-InputLocation": "s3://bucket/in.csv"},
                             timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(json_error_code(resp), "MissingAuthenticationTokenException", resp.text)

    def test_s3_auth(self):
        from harness import skewed_clock
        self.assertAwsError(
            lambda: self.server.client("s3", key=KEY, secret="wrong").list_buckets(),
            "SignatureDoesNotMatch", status=403)
        self.assertAwsError(
            lambda: self.server.client("s3", key="AKIDUNKNOWN", secret=SECRET).list_buckets(),
            "InvalidAccessKeyId", status=403)
        resp = requests.get(self.server.url + "/", timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(xml_error_code(resp), "AccessDenied", resp.text)
        self.assertRequestId(resp)
        s3 = self.good("s3")
        with skewed_clock(-SKEW):
            self.assertAwsError(lambda: s3.list_buckets(), "RequestTimeTooSkewed", status=403)
        # Authenticated: reaches the S3 API.
        self.assertIn("Buckets", s3.list_buckets())

    def test_sns_auth(self):
        from harness import skewed_clock
        self.assertAwsError(
            lambda: self.server.client("sns", key=KEY, secret="wrong").list_topics(),
            "SignatureDoesNotMatch", status=403)
        self.assertAwsError(
            lambda: self.server.client("sns", key="AKIDUNKNOWN", secret=SECRET).list_topics(),
            "InvalidClientTokenId", status=403)
        resp = requests.post(self.server.url + "/", data=SNS_LIST_TOPICS, headers=SNS_HEADERS,
                             timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(xml_error_code(resp), "MissingAuthenticationToken", resp.text)
        self.assertRequestId(resp)
        sns = self.good("sns")
        with skewed_clock(SKEW):
            self.assertAwsError(lambda: sns.list_topics(), "RequestTimeTooSkewed", status=403)
        self.assertIn("Topics", sns.list_topics())


# ---------------------------------------------------------------------------------------------
# No credentials configured (loopback): the front door
# ---------------------------------------------------------------------------------------------

class FrontDoorTest(RequestIdMixin, InferdTestCase):

    def test_any_signature_accepted_on_loopback(self):
        for key, secret in (("AKIDONE", "s1"), ("AKIDTWO", "another-secret")):
            with self.subTest(key=key):
                client = self.server.client(key=key, secret=secret)
                self.assertIsInstance(client.list_models()["Models"], list)

    def test_request_id_on_success_and_error(self):
        client = self.sm()
        ok1 = client.list_models()
        ok2 = client.list_models()
        for resp in (ok1, ok2):
            self.assertTrue(resp["ResponseMetadata"]["RequestId"])
            self.assertEqual(self.assertRequestId(resp), resp["ResponseMetadata"]["RequestId"])
        self.assertNotEqual(ok1["ResponseMetadata"]["RequestId"],
                            ok2["ResponseMetadata"]["RequestId"])
        err = self.assertAwsError(lambda: client.describe_model(ModelName="nope"),
                                  "ValidationException")
        self.assertTrue(err["ResponseMetadata"]["RequestId"])
        self.assertRequestId(err)

    def test_json_protocol_details(self):
        resp = self.server.signed_request(
            headers=dict(JSON_HEADERS, **{"X-Amz-Target": "SageMaker.ListModels"}), body=b"{}")
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertTrue(resp.headers.get("Content-Type", "").startswith(
            "application/x-amz-json-1.1"), resp.headers)
        self.assertIsInstance(resp.json()["Models"], list)
        err = self.server.signed_request(
            headers=dict(JSON_HEADERS, **{"X-Amz-Target": "SageMaker.DescribeModel"}),
            body=json.dumps({"ModelName": "nope"}))
        self.assertEqual(err.status_code, 400, err.text)
        self.assertEqual(json_error_code(err), "ValidationException")
        self.assertEqual(err.json().get("message") or err.json().get("Message"),
                         'Could not find model '
                         f'"arn:aws:sagemaker:us-east-1:{DEFAULT_ACCOUNT}:model/nope".')

    def test_unknown_operation(self):
        # Not a SageMaker operation at all (AWS answers UnknownOperationException too).
        for target in ("SageMaker.NoSuchOperation", "Foo.Bar"):
            with self.subTest(target=target):
                resp = self.server.signed_request(
                    headers=dict(JSON_HEADERS, **{"X-Amz-Target": target}), body=b"{}")
                self.assertEqual(resp.status_code, 400, resp.text)
                self.assertEqual(json_error_code(resp), "UnknownOperationException", resp.text)
                self.assertRequestId(resp)

    def test_unimplemented_sagemaker_operation(self):
        resp = self.assertAwsError(lambda: self.sm().list_training_jobs(), "NotImplemented",
                                   status=501)
        self.assertRequestId(resp)

    def test_runtime_answers_in_its_format(self):
        # The runtime exists: an unknown endpoint is its ValidationError (REST-JSON, with the
        # x-amzn-ErrorType header and a request id), for both invoke operations.
        runtime = self.server.client("sagemaker-runtime")
        message = f"Endpoint x of account {DEFAULT_ACCOUNT} not found."
        resp = self.assertAwsError(
            lambda: runtime.invoke_endpoint_async(EndpointName="x",
                                                  InputLocation="s3://bucket/in.csv"),
            "ValidationError", status=400, message=message)
        self.assertRequestId(resp)
        self.assertEqual(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"],
                         "ValidationError")
        self.assertAwsError(
            lambda: runtime.invoke_endpoint(EndpointName="x", Body=b"1,2,3",
                                            ContentType="text/csv"),
            "ValidationError", status=400, message=message)

    def test_s3_request_ids(self):
        s3 = self.server.client("s3")
        self.assertTrue(s3.list_buckets()["ResponseMetadata"]["RequestId"])
        resp = self.assertAwsError(lambda: s3.head_bucket(Bucket="absent-bucket"), "404",
                                   status=404)
        self.assertRequestId(resp)

    def test_sns_request_ids(self):
        sns = self.server.client("sns")
        self.assertTrue(sns.list_topics()["ResponseMetadata"]["RequestId"])
        resp = self.assertAwsError(lambda: sns.get_topic_attributes(
            TopicArn="arn:aws:sns:us-east-1:000000000000:absent"), "NotFound", status=404)
        self.assertRequestId(resp)

    def test_keep_alive_many_sequential_calls(self):
        client = self.sm()
        start = time.monotonic()
        for _ in range(200):
            client.list_models(MaxResults=1)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 20, f"200 calls took {elapsed:.1f} s")
        made = connections_made(client)
        if made is not None:
            self.assertLessEqual(made, 2, f"{made} TCP connections for 200 calls: no keep-alive?")

    def test_keep_alive_same_socket(self):
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            local_ports = []
            for target, body, status in (("SageMaker.ListModels", b"{}", 200),
                                         ("SageMaker.DescribeModel", b'{"ModelName": "nope"}', 400),
                                         ("SageMaker.ListEndpoints", b"{}", 200)):
                url, headers, data = self.server.sign(
                    headers=dict(JSON_HEADERS, **{"X-Amz-Target": target}), body=body)
                conn.request("POST", "/", body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, status)
                self.assertFalse(resp.will_close, f"server closes the connection after {target}")
                self.assertIsNotNone(conn.sock, f"connection closed after {target}")
                local_ports.append(conn.sock.getsockname()[1])
            self.assertEqual(len(set(local_ports)), 1, local_ports)
        finally:
            conn.close()


def connections_made(client):
    """Number of TCP connections botocore's urllib3 pools opened, or None if not observable."""
    try:
        manager = client._endpoint.http_session._manager
        pools = [manager.pools[key] for key in manager.pools.keys()]
        return sum(pool.num_connections for pool in pools)
    except (AttributeError, KeyError, TypeError):
        return None


if __name__ == "__main__":
    unittest.main()
