"""SNS end to end: boto3's `sns` client against the real server, and real HTTP subscribers.

Receivers are `http.server` endpoints on 127.0.0.1 (free ports) that record every delivery.
Signatures are checked the way a subscriber checks them: the certificate is fetched from
SigningCertURL and the Signature verified over AWS's string to sign with the `cryptography` package.

Config keys used: `sns_auto_confirm` (subscriptions confirmed without the handshake) and
`sns_delivery_timeout_seconds`.
"""

import base64
import http.server
import json
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from harness import DEFAULT_ACCOUNT, DEFAULT_REGION, InferdServer, InferdTestCase, free_port

SNS_NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"
NOTIFICATION_KEYS = ["Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                     "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL",
                     "MessageAttributes"]
CONFIRMATION_KEYS = ["Type", "MessageId", "Token", "TopicArn", "Message", "SubscribeURL",
                     "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"]
FAST_RETRIES = json.dumps({"healthyRetryPolicy": {"numRetries": 3, "minDelayTarget": 1,
                                                  "maxDelayTarget": 1}})


class Receiver:
    """An HTTP subscriber endpoint. Records every POST as (headers, lower-case names; body text).

    fail_first: answer that many deliveries with `fail_status` before answering 200.
    hang: never answer (until stop()).
    """

    def __init__(self, port=0, fail_first=0, fail_status=500, hang=False):
        self.deliveries = []
        self.statuses = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hang = hang
        self._released = threading.Event()
        self._cv = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._cv:
                    failing = len(receiver.deliveries) < receiver.fail_first
                    status = receiver.fail_status if failing else 200
                    receiver.deliveries.append((headers, body))
                    receiver.statuses.append(None if receiver.hang else status)
                    receiver._cv.notify_all()
                if receiver.hang:
                    receiver._released.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n, timeout=20.0, what=None):
        """Block until `n` deliveries arrived; returns the first n. Fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.deliveries) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.url} got {len(self.deliveries)} deliveries, "
                                         f"expected {n} within {timeout}s ({what or ''}): "
                                         f"{self.deliveries!r}")
                self._cv.wait(left)
            return list(self.deliveries[:n])

    def messages(self, n, timeout=20.0, type_=None):
        """The JSON envelopes of the first n deliveries (optionally only of one Type)."""
        got = []
        deadline = time.monotonic() + timeout
        seen = 0
        while len(got) < n:
            left = deadline - time.monotonic()
            deliveries = self.wait_for(seen + 1, timeout=max(left, 0.01), what=f"{n} x {type_}")
            headers, body = deliveries[seen]
            seen += 1
            msg = json.loads(body)
            if type_ is None or msg["Type"] == type_:
                got.append((headers, msg))
        return got


def string_to_sign(msg):
    if msg["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{msg[k]}\n" for k in keys if k in msg)


def xml_text(body, tag):
    node = ET.fromstring(body).find(f".//{SNS_NS}{tag}")
    return None if node is None else node.text


class SnsTestCase(InferdTestCase):
    def setUp(self):
        super().setUp()
        self.sns = self.server.client("sns")

    def receiver(self, **kwargs):
        r = Receiver(**kwargs)
        self.addCleanup(r.stop)
        return r

    def topic(self, prefix="t", **kwargs):
        return self.sns.create_topic(Name=f"{prefix}-{uuid.uuid4().hex[:10]}", **kwargs)["TopicArn"]

    def assertSignatureValid(self, msg):
        pem = urllib.request.urlopen(msg["SigningCertURL"], timeout=10).read()
        cert = x509.load_pem_x509_certificate(pem)
        digest = hashes.SHA1() if msg["SignatureVersion"] == "1" else hashes.SHA256()
        try:
            cert.public_key().verify(base64.b64decode(msg["Signature"]),
                                     string_to_sign(msg).encode("utf-8"), padding.PKCS1v15(),
                                     digest)
        except InvalidSignature:
            self.fail(f"signature does not verify: {msg!r}")

    def confirm(self, receiver, index=0):
        """Wait for the SubscriptionConfirmation, visit its SubscribeURL (unsigned GET) and return
        the subscription ARN from the XML answer."""
        confirmations = receiver.messages(index + 1, type_="SubscriptionConfirmation")
        _, msg = confirmations[index]
        resp = requests.get(msg["SubscribeURL"], timeout=10)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertTrue(resp.text.startswith("<ConfirmSubscriptionResponse"), resp.text)
        return xml_text(resp.text, "SubscriptionArn")


class TopicsTest(SnsTestCase):
    def test_create_is_idempotent_and_lists(self):
        name = f"orders-{uuid.uuid4().hex[:8]}"
        arn = self.sns.create_topic(Name=name)["TopicArn"]
        self.assertEqual(arn, f"arn:aws:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{name}")
        self.assertEqual(self.sns.create_topic(Name=name)["TopicArn"], arn)
        self.assertIn({"TopicArn": arn}, self.sns.list_topics()["Topics"])
        other = self.server.client("sns", region="eu-west-1")
        self.assertEqual(other.create_topic(Name=name)["TopicArn"],
                         f"arn:aws:sns:eu-west-1:{DEFAULT_ACCOUNT}:{name}")
        self.assertNotIn({"TopicArn": arn}, other.list_topics()["Topics"])

    def test_attributes(self):
        arn = self.topic(Attributes={"DisplayName": "Results"})
        attrs = self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        self.assertEqual(attrs["TopicArn"], arn)
        self.assertEqual(attrs["Owner"], DEFAULT_ACCOUNT)
        self.assertEqual(attrs["DisplayName"], "Results")
        for key in ("SubscriptionsConfirmed", "SubscriptionsPending", "SubscriptionsDeleted"):
            self.assertEqual(attrs[key], "0")
        self.assertEqual(json.loads(attrs["Policy"])["Statement"][0]["Resource"], arn)
        effective = json.loads(attrs["EffectiveDeliveryPolicy"])
        self.assertEqual(effective["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3)
        self.assertEqual(effective["http"]["defaultHealthyRetryPolicy"]["minDelayTarget"], 20)

        policy = {"http": {"defaultHealthyRetryPolicy": {"numRetries": 5}}}
        self.sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy",
                                      AttributeValue=json.dumps(policy))
        self.sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName",
                                      AttributeValue="Renamed")
        attrs = self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        self.assertEqual(attrs["DisplayName"], "Renamed")
        self.assertEqual(json.loads(attrs["DeliveryPolicy"]), policy)
        self.assertEqual(json.loads(attrs["EffectiveDeliveryPolicy"])["http"]
                         ["defaultHealthyRetryPolicy"]["numRetries"], 5)
        self.assertAwsError(lambda: self.sns.set_topic_attributes(
            TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue="{not json"),
            "InvalidParameter")
        self.assertAwsError(lambda: self.sns.create_topic(
            Name=arn.split(":")[-1], Attributes={"DisplayName": "Different"}),
            "InvalidParameter", message_contains="different attributes")

    def test_delete_is_idempotent(self):
        arn = self.topic()
        self.sns.delete_topic(TopicArn=arn)
        self.assertNotIn({"TopicArn": arn}, self.sns.list_topics()["Topics"])
        self.sns.delete_topic(TopicArn=arn)
        self.assertAwsError(lambda: self.sns.get_topic_attributes(TopicArn=arn), "NotFound",
                            status=404, message="Topic does not exist")

    def test_list_topics_paginates(self):
        region = "ap-south-1"  # a region of its own: exact counts
        sns = self.server.client("sns", region=region)
        arns = {sns.create_topic(Name=f"p{i:03d}")["TopicArn"] for i in range(105)}
        first = sns.list_topics()
        self.assertEqual(len(first["Topics"]), 100)
        self.assertIn("NextToken", first)
        second = sns.list_topics(NextToken=first["NextToken"])
        self.assertEqual(len(second["Topics"]), 5)
        self.assertNotIn("NextToken", second)
        listed = {t["TopicArn"] for page in sns.get_paginator("list_topics").paginate()
                  for t in page["Topics"]}
        self.assertEqual(listed, arns)

    def test_tags(self):
        arn = self.topic(Tags=[{"Key": "team", "Value": "ml"}])
        self.sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
        self.sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
        self.assertEqual(self.sns.list_tags_for_resource(ResourceArn=arn)["Tags"],
                         [{"Key": "env", "Value": "dev"}])

    def test_errors(self):
        missing = f"arn:aws:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:missing-{uuid.uuid4().hex[:6]}"
        self.assertAwsError(lambda: self.sns.get_topic_attributes(TopicArn=missing), "NotFound",
                            status=404, message="Topic does not exist")
        self.assertAwsError(lambda: self.sns.publish(TopicArn=missing, Message="m"), "NotFound",
                            status=404)
        self.assertAwsError(lambda: self.sns.subscribe(TopicArn=missing, Protocol="http",
                                                       Endpoint="http://127.0.0.1:1/"),
                            "NotFound", status=404)
        self.assertAwsError(lambda: self.sns.create_topic(Name="has spaces"), "InvalidParameter")
        self.assertAwsError(lambda: self.sns.create_topic(
            Name="jobs.fifo", Attributes={"FifoTopic": "true"}), "InvalidParameter",
            message_contains="FIFO")
        self.assertAwsError(lambda: self.sns.get_topic_attributes(TopicArn="not-an-arn"),
                            "InvalidParameter")
        arn = self.topic()
        self.assertAwsError(lambda: self.sns.publish(TopicArn=arn, Message=""), "InvalidParameter",
                            message="Invalid parameter: Empty message")
        self.assertAwsError(lambda: self.sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1)),
                            "InvalidParameter", message="Invalid parameter: Message too long")
        self.assertAwsError(lambda: self.sns.publish(
            TopicArn=arn, Message="m",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}),
            "ParameterValueInvalid")
        self.assertAwsError(lambda: self.sns.subscribe(TopicArn=arn, Protocol="sqs",
                                                       Endpoint="arn:aws:sqs:us-east-1:0:q"),
                            "InvalidParameter")
        unknown_subscription = f"{arn}:{uuid.uuid4()}"
        self.assertAwsError(lambda: self.sns.unsubscribe(SubscriptionArn=unknown_subscription),
                            "NotFound", status=404)
        self.assertAwsError(lambda: self.sns.publish_batch(
            TopicArn=arn, PublishBatchRequestEntries=[{"Id": "a", "Message": "1"},
                                                      {"Id": "a", "Message": "2"}]),
            "BatchEntryIdsNotDistinct")
        # Only the SubscribeURL/UnsubscribeURL links are served unsigned.
        resp = requests.get(self.server.url + "/?Action=ListTopics&Version=2010-03-31", timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertIn("<ErrorResponse", resp.text)


class HandshakeTest(SnsTestCase):
    """Default configuration: subscriptions need SNS's confirmation handshake."""

    def test_subscription_handshake_and_signed_notification(self):
        receiver = self.receiver()
        arn = self.topic()
        resp = self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url)
        self.assertEqual(resp["SubscriptionArn"], "pending confirmation")
        subs = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        self.assertEqual(subs, [{"SubscriptionArn": "PendingConfirmation", "Owner": DEFAULT_ACCOUNT,
                                 "Protocol": "http", "Endpoint": receiver.url, "TopicArn": arn}])
        self.assertEqual(self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
                         ["SubscriptionsPending"], "1")

        headers, body = receiver.wait_for(1)[0]
        self.assertEqual(headers["x-amz-sns-message-type"], "SubscriptionConfirmation")
        self.assertEqual(headers["x-amz-sns-topic-arn"], arn)
        self.assertNotIn("x-amz-sns-subscription-arn", headers)
        self.assertEqual(headers["content-type"], "text/plain; charset=UTF-8")
        self.assertEqual(headers["user-agent"], "Amazon Simple Notification Service Agent")
        msg = json.loads(body)
        self.assertEqual(list(msg), CONFIRMATION_KEYS)
        self.assertEqual(headers["x-amz-sns-message-id"], msg["MessageId"])
        self.assertEqual(msg["TopicArn"], arn)
        self.assertEqual(msg["Message"],
                         f"You have chosen to subscribe to the topic {arn}.\nTo confirm the "
                         f"subscription, visit the SubscribeURL included in this message.")
        self.assertEqual(msg["SignatureVersion"], "1")
        url = urllib.parse.urlsplit(msg["SubscribeURL"])
        query = dict(urllib.parse.parse_qsl(url.query))
        self.assertEqual(query, {"Action": "ConfirmSubscription", "TopicArn": arn,
                                 "Token": msg["Token"]})
        self.assertEqual(f"{url.scheme}://{url.netloc}", self.server.url)
        self.assertRegex(msg["SigningCertURL"],
                         r"/SimpleNotificationService-[0-9a-f]{32}\.pem$")
        self.assertSignatureValid(msg)

        # Nothing reaches a pending subscription.
        self.sns.publish(TopicArn=arn, Message="too early")
        sub_arn = self.confirm(receiver)
        self.assertTrue(sub_arn.startswith(arn + ":"), sub_arn)
        self.assertEqual(self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]
                         ["SubscriptionArn"], sub_arn)
        attrs = self.sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
        self.assertEqual(attrs["PendingConfirmation"], "false")
        self.assertEqual(attrs["Endpoint"], receiver.url)
        self.assertEqual(attrs["RawMessageDelivery"], "false")

        message_id = self.sns.publish(
            TopicArn=arn, Message='{"invocationStatus":"Completed"}', Subject="Inference result",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "result"},
                               "count": {"DataType": "Number", "StringValue": "3"},
                               "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        )["MessageId"]
        headers, note = receiver.messages(1, type_="Notification")[0]
        self.assertEqual(list(note), NOTIFICATION_KEYS)
        self.assertEqual(note["MessageId"], message_id)
        self.assertEqual(note["Message"], '{"invocationStatus":"Completed"}')
        self.assertEqual(note["Subject"], "Inference result")
        self.assertEqual(note["TopicArn"], arn)
        self.assertRegex(note["Timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(note["MessageAttributes"], {
            "count": {"Type": "Number", "Value": "3"},
            "kind": {"Type": "String", "Value": "result"},
            "raw": {"Type": "Binary", "Value": "AAE="},
        })
        self.assertEqual(headers["x-amz-sns-message-type"], "Notification")
        self.assertEqual(headers["x-amz-sns-message-id"], message_id)
        self.assertEqual(headers["x-amz-sns-topic-arn"], arn)
        self.assertEqual(headers["x-amz-sns-subscription-arn"], sub_arn)
        self.assertEqual(urllib.parse.parse_qs(urllib.parse.urlsplit(note["UnsubscribeURL"]).query),
                         {"Action": ["Unsubscribe"], "SubscriptionArn": [sub_arn]})
        self.assertSignatureValid(note)

    def test_confirm_with_boto3_and_signature_version_2(self):
        receiver = self.receiver()
        arn = self.topic(Attributes={"SignatureVersion": "2"})
        resp = self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url,
                                  ReturnSubscriptionArn=True)
        self.assertTrue(resp["SubscriptionArn"].startswith(arn + ":"))
        _, msg = receiver.messages(1, type_="SubscriptionConfirmation")[0]
        self.assertEqual(msg["SignatureVersion"], "2")
        self.assertSignatureValid(msg)
        self.assertAwsError(lambda: self.sns.confirm_subscription(TopicArn=arn, Token="bogus"),
                            "InvalidParameter")
        confirmed = self.sns.confirm_subscription(TopicArn=arn, Token=msg["Token"],
                                                  AuthenticateOnUnsubscribe="true")
        self.assertEqual(confirmed["SubscriptionArn"], resp["SubscriptionArn"])
        self.sns.publish(TopicArn=arn, Message="v2")
        _, note = receiver.messages(1, type_="Notification")[0]
        self.assertEqual(note["SignatureVersion"], "2")
        self.assertSignatureValid(note)
        # AuthenticateOnUnsubscribe: the unsigned link no longer unsubscribes.
        resp = requests.get(note["UnsubscribeURL"], timeout=10)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(xml_text(resp.text, "Code"), "AuthorizationError")

    def test_raw_delivery_and_publish_batch(self):
        receiver = self.receiver()
        arn = self.topic()
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url)
        sub_arn = self.confirm(receiver)
        self.sns.set_subscription_attributes(SubscriptionArn=sub_arn,
                                             AttributeName="RawMessageDelivery",
                                             AttributeValue="true")
        self.assertEqual(self.sns.get_subscription_attributes(SubscriptionArn=sub_arn)
                         ["Attributes"]["RawMessageDelivery"], "true")
        result = self.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
            {"Id": "one", "Message": "first"},
            {"Id": "two", "Message": "second", "Subject": "s"},
            {"Id": "bad", "Message": ""},
        ])
        self.assertEqual([s["Id"] for s in result["Successful"]], ["one", "two"])
        self.assertEqual(len(result["Failed"]), 1)
        self.assertEqual(result["Failed"][0]["Id"], "bad")
        self.assertEqual(result["Failed"][0]["Code"], "InvalidParameter")
        self.assertTrue(result["Failed"][0]["SenderFault"])
        deliveries = receiver.wait_for(3)[1:]  # after the confirmation
        bodies = sorted(body for _, body in deliveries)
        self.assertEqual(bodies, ["first", "second"])
        for headers, _ in deliveries:
            self.assertEqual(headers["x-amz-sns-rawdelivery"], "true")
            self.assertEqual(headers["x-amz-sns-message-type"], "Notification")
        ids = {h["x-amz-sns-message-id"] for h, _ in deliveries}
        self.assertEqual(ids, {s["MessageId"] for s in result["Successful"]})

    def test_unsubscribe_via_unsubscribe_url(self):
        receiver = self.receiver()
        arn = self.topic()
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url)
        sub_arn = self.confirm(receiver)
        self.sns.publish(TopicArn=arn, Message="before")
        _, note = receiver.messages(1, type_="Notification")[0]
        resp = requests.get(note["UnsubscribeURL"], timeout=10)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertTrue(resp.text.startswith("<UnsubscribeResponse"), resp.text)
        headers, bye = receiver.messages(1, type_="UnsubscribeConfirmation")[0]
        self.assertEqual(headers["x-amz-sns-subscription-arn"], sub_arn)
        self.assertEqual(bye["TopicArn"], arn)
        self.assertIn("deactivate subscription " + sub_arn, bye["Message"])
        self.assertSignatureValid(bye)
        self.assertEqual(self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"], [])
        self.assertEqual(self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
                         ["SubscriptionsDeleted"], "1")
        count = len(receiver.deliveries)
        self.sns.publish(TopicArn=arn, Message="after")
        time.sleep(1.0)  # bounded: asserting that nothing arrives
        self.assertEqual(len(receiver.deliveries), count)


class DeliveryTest(SnsTestCase):
    server_config = {"sns_auto_confirm": True}

    def test_auto_confirm(self):
        receiver = self.receiver()
        arn = self.topic()
        sub_arn = self.sns.subscribe(TopicArn=arn, Protocol="http",
                                     Endpoint=receiver.url)["SubscriptionArn"]
        self.assertTrue(sub_arn.startswith(arn + ":"), sub_arn)
        self.sns.publish(TopicArn=arn, Message="direct")
        headers, msg = receiver.messages(1)[0]  # no SubscriptionConfirmation first
        self.assertEqual(msg["Type"], "Notification")
        self.assertEqual(msg["Message"], "direct")

    def test_receiver_failing_twice_gets_one_successful_delivery(self):
        receiver = self.receiver(fail_first=2, fail_status=500)
        arn = self.topic()
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url,
                           Attributes={"DeliveryPolicy": FAST_RETRIES})
        start = time.monotonic()
        message_id = self.sns.publish(TopicArn=arn, Message="retry me")["MessageId"]
        deliveries = receiver.wait_for(3)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 1.8, "retries came faster than minDelayTarget")
        self.assertEqual(receiver.statuses[:3], [500, 500, 200])
        for headers, body in deliveries:
            self.assertEqual(headers["x-amz-sns-message-id"], message_id)
            self.assertEqual(json.loads(body)["Message"], "retry me")
        time.sleep(2.5)  # bounded: a delivered message is not sent again
        self.assertEqual(len(receiver.deliveries), 3)

    def test_dead_subscriber_does_not_delay_others(self):
        dead = self.receiver(hang=True)
        alive = self.receiver()
        arn = self.topic()
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=dead.url)
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=alive.url)
        for i in range(3):
            self.sns.publish(TopicArn=arn, Message=f"m{i}")
        dead.wait_for(1, timeout=10)
        start = time.monotonic()
        got = sorted(msg["Message"] for _, msg in alive.messages(3, timeout=10))
        self.assertEqual(got, ["m0", "m1", "m2"])
        self.assertLess(time.monotonic() - start, 5.0)
        t0 = time.monotonic()
        self.sns.list_topics()
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(len(dead.deliveries), 1)  # one attempt at a time per subscription

    def test_message_structure_json(self):
        receiver = self.receiver()
        arn = self.topic()
        self.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=receiver.url)
        self.sns.publish(TopicArn=arn, MessageStructure="json",
                         Message=json.dumps({"default": "plain", "http": "for http"}))
        _, msg = receiver.messages(1)[0]
        self.assertEqual(msg["Message"], "for http")
        self.assertAwsError(lambda: self.sns.publish(TopicArn=arn, MessageStructure="json",
                                                     Message=json.dumps({"http": "x"})),
                            "InvalidParameter", message_contains="No default entry")


class RestartTest(unittest.TestCase):
    """Deliveries pending at shutdown survive a restart; a dead subscriber does not hold up stop."""

    def test_pending_delivery_survives_restart(self):
        port = free_port()  # the receiver is down while the message is published
        config = {"sns_auto_confirm": True}
        with InferdServer(config=config) as server:
            sns = server.client("sns")
            arn = sns.create_topic(Name="restart")["TopicArn"]
            policy = json.dumps({"healthyRetryPolicy": {"numRetries": 60, "minDelayTarget": 1,
                                                        "maxDelayTarget": 1}})
            sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=f"http://127.0.0.1:{port}/hook",
                          Attributes={"DeliveryPolicy": policy})
            message_id = sns.publish(TopicArn=arn, Message="kept")["MessageId"]
            # Wait until an attempt has failed (the receiver is down), then restart.
            deadline = time.monotonic() + 10
            while f"attempt 1 of Notification {message_id}" not in server.stderr_text():
                self.assertLess(time.monotonic(), deadline, server.stderr_tail())
                time.sleep(0.05)
            server.restart()
            receiver = Receiver(port=port)
            try:
                headers, msg = receiver.messages(1, timeout=20)[0]
                self.assertEqual(msg["MessageId"], message_id)
                self.assertEqual(msg["Message"], "kept")
                # Links point at the restarted server (a new port).
                self.assertTrue(msg["SigningCertURL"].startswith(server.url + "/"), msg)
                pem = urllib.request.urlopen(msg["SigningCertURL"], timeout=10).read()
                cert = x509.load_pem_x509_certificate(pem)
                cert.public_key().verify(base64.b64decode(msg["Signature"]),
                                         string_to_sign(msg).encode(), padding.PKCS1v15(),
                                         hashes.SHA1())
            finally:
                receiver.stop()

    def test_dead_subscriber_does_not_hold_up_shutdown(self):
        dead = Receiver(hang=True)
        self.addCleanup(dead.stop)
        with InferdServer(config={"sns_auto_confirm": True}) as server:
            sns = server.client("sns")
            arn = sns.create_topic(Name="hang")["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=dead.url)
            sns.publish(TopicArn=arn, Message="never answered")
            dead.wait_for(1, timeout=10)
            start = time.monotonic()
            server.stop()  # exit code 0 asserted
            self.assertLess(time.monotonic() - start, 6.0)
            # The abandoned attempt is retried after a restart.
            server.start()
            dead.wait_for(2, timeout=10)


if __name__ == "__main__":
    unittest.main()
