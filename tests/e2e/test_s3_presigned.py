"""Presigned S3 URLs made by boto3 (`generate_presigned_url`) and used with curl, against inferd with
configured credentials so that every signature is checked. Both kinds boto3 makes: its default
(SigV2 query auth: AWSAccessKeyId / Signature / Expires) and `signature_version="s3v4"` (X-Amz-*).

Covers: PUT with `curl -T` (small, and large enough for curl to send `Expect: 100-continue`), GET
with `curl -o`, an expired URL (403 AccessDenied), a tampered signature and other tampering
(403 SignatureDoesNotMatch), and that refused PUTs store nothing.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import botocore.exceptions

from harness import InferdTestCase

KEY = "AKIDPRESIGN"
SECRET = "presign-secret"
CREDENTIALS_CONFIG = {"credentials": [{"access_key_id": KEY, "secret_access_key": SECRET}]}
MiB = 1024 * 1024

# (label, extra botocore Config arguments, name of the signature query parameter)
SIGNATURE_KINDS = [("sigv2-default", {}, "Signature"),
                   ("sigv4", {"signature_version": "s3v4"}, "X-Amz-Signature")]


def curl(*args, timeout=120):
    """curl with the given arguments; returns CompletedProcess (bytes)."""
    return subprocess.run(["curl", "-g", "--max-time", str(timeout - 10), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def xml_error(body):
    """(Code, Message) of an S3 XML error document."""
    root = ET.fromstring(body)
    fields = {el.tag.split("}")[-1]: el.text for el in root.iter()}
    return fields.get("Code"), fields.get("Message")


def replace_query(url, **params):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    for name, value in params.items():
        query[name] = [value]
    return parts._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()


def flip(signature):
    """The same signature with its first character changed (stays valid base64 / hex)."""
    return ("a" if signature[0] != "a" else "b") + signature[1:]


class PresignedCurlTest(InferdTestCase):
    server_config = CREDENTIALS_CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = Path(tempfile.mkdtemp(prefix="inferd-presign-"))
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def setUp(self):
        super().setUp()
        self.client = self.s3()
        self.bucket = f"presign-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=self.bucket)

    def s3(self, **config):
        return self.server.client("s3", key=KEY, secret=SECRET,
                                  s3={"addressing_style": "path"}, **config)

    def presign(self, client, method, key, expires=300):
        return client.generate_presigned_url(method, Params={"Bucket": self.bucket, "Key": key},
                                             ExpiresIn=expires)

    def curl_status(self, *args):
        """Run curl without -f; returns (HTTP status, response body bytes)."""
        out = self.tmp / f"resp-{uuid.uuid4().hex}"
        res = curl("-sS", "-o", str(out), "-w", "%{http_code}", *args)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        body = out.read_bytes() if out.exists() else b""
        return int(res.stdout), body

    def assertS3Error(self, status_body, status, code, message_contains=None):
        status_got, body = status_body
        detail = f"HTTP {status_got}, body {body[:2000]!r}"
        self.assertEqual(status_got, status, detail)
        got_code, message = xml_error(body)
        self.assertEqual(got_code, code, detail)
        if message_contains is not None:
            self.assertIn(message_contains, (message or "").lower(), detail)

    def assertNoKey(self, key):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.client.head_object(Bucket=self.bucket, Key=key)
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)

    # ---- tests -----------------------------------------------------------------------------------

    def test_put_and_get_with_curl(self):
        small = os.urandom(10 * 1024 + 3)
        # Over 1 MiB: curl 7.88 sends `Expect: 100-continue` and waits for the interim answer.
        large = os.urandom(3 * MiB + 17)
        for label, config, _ in SIGNATURE_KINDS:
            client = self.s3(**config)
            for name, data in (("small", small), ("large", large)):
                with self.subTest(signature=label, size=name):
                    key = f"{label}/{name} file.bin"   # a space in the key: %20 in the URL
                    src = self.tmp / f"{label}-{name}.bin"
                    src.write_bytes(data)
                    res = curl("-sf", "-T", str(src), self.presign(client, "put_object", key))
                    self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
                    dst = self.tmp / f"{label}-{name}.out"
                    res = curl("-sf", self.presign(client, "get_object", key), "-o", str(dst))
                    self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
                    self.assertEqual(len(dst.read_bytes()), len(data))
                    self.assertEqual(hashlib.sha256(dst.read_bytes()).hexdigest(),
                                     hashlib.sha256(data).hexdigest())
                    # And boto3 (header-signed) sees the same object.
                    got = self.client.get_object(Bucket=self.bucket, Key=key)
                    self.assertEqual(got["Body"].read(), data)
                    self.assertEqual(got["ETag"], f'"{hashlib.md5(data).hexdigest()}"')

    def test_expired_url_is_access_denied(self):
        self.client.put_object(Bucket=self.bucket, Key="k", Body=b"value")
        urls = {}
        for label, config, _ in SIGNATURE_KINDS:
            client = self.s3(**config)
            urls[label] = (self.presign(client, "get_object", "k", expires=1),
                           self.presign(client, "put_object", "new", expires=1))
            # The same URL with a longer lifetime works (checking the 1 s one right away would race
            # its expiry on a loaded machine: SigV4's X-Amz-Date has whole seconds).
            self.assertEqual(self.curl_status(self.presign(client, "get_object", "k", expires=60)),
                             (200, b"value"))
        time.sleep(2.2)
        src = self.tmp / "expired-put.bin"
        src.write_bytes(b"must not be stored")
        for label, (get_url, put_url) in urls.items():
            with self.subTest(signature=label):
                self.assertS3Error(self.curl_status(get_url), 403, "AccessDenied",
                                   message_contains="expired")
                self.assertS3Error(self.curl_status("-T", str(src), put_url), 403,
                                   "AccessDenied", message_contains="expired")
        self.assertNoKey("new")

    def test_tampered_urls_are_signature_mismatches(self):
        self.client.put_object(Bucket=self.bucket, Key="k", Body=b"value")
        self.client.put_object(Bucket=self.bucket, Key="other", Body=b"other value")
        src = self.tmp / "tampered-put.bin"
        src.write_bytes(b"must not be stored")
        for label, config, param in SIGNATURE_KINDS:
            client = self.s3(**config)
            with self.subTest(signature=label, tamper="signature"):
                url = self.presign(client, "get_object", "k")
                signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[param][0]
                self.assertS3Error(self.curl_status(replace_query(url, **{param: flip(signature)})),
                                   403, "SignatureDoesNotMatch")
            with self.subTest(signature=label, tamper="put signature"):
                url = self.presign(client, "put_object", "tampered")
                signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[param][0]
                self.assertS3Error(
                    self.curl_status("-T", str(src), replace_query(url, **{param: flip(signature)})),
                    403, "SignatureDoesNotMatch")
                self.assertNoKey("tampered")
            with self.subTest(signature=label, tamper="key in the path"):
                url = self.presign(client, "get_object", "k")
                parts = urllib.parse.urlsplit(url)
                other = parts._replace(path=parts.path[:-len("/k")] + "/other").geturl()
                self.assertS3Error(self.curl_status(other), 403, "SignatureDoesNotMatch")
            with self.subTest(signature=label, tamper="expiry extended"):
                url = self.presign(client, "get_object", "k", expires=60)
                if param == "Signature":
                    longer = replace_query(url, Expires=str(int(time.time()) + 7200))
                else:
                    longer = replace_query(url, **{"X-Amz-Expires": "7200"})
                self.assertS3Error(self.curl_status(longer), 403, "SignatureDoesNotMatch")
            with self.subTest(signature=label, tamper="GET URL used for PUT"):
                url = self.presign(client, "get_object", "k")
                self.assertS3Error(self.curl_status("-T", str(src), url), 403,
                                   "SignatureDoesNotMatch")
                self.assertEqual(self.client.get_object(Bucket=self.bucket, Key="k")["Body"].read(),
                                 b"value")
            with self.subTest(signature=label, tamper="wrong secret"):
                wrong = self.server.client("s3", key=KEY, secret="not-the-secret",
                                           s3={"addressing_style": "path"}, **config)
                self.assertS3Error(self.curl_status(self.presign(wrong, "get_object", "k")), 403,
                                   "SignatureDoesNotMatch")


if __name__ == "__main__":
    unittest.main()
