"""inferd's S3 API driven by the AWS SDK for JavaScript v3 (npm, installed by `scripts/setup` into
tests/e2e/js/node_modules): `js/s3_stream_upload.mjs` uploads a stream body with PutObjectCommand
(the SDK sends it as `Transfer-Encoding: chunked` + `Content-Encoding: aws-chunked` with
`x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER` and a trailing CRC32), a Buffer, an empty
stream and a lib-storage multipart stream, and reads them back. This module checks the script's JSON
report and then fetches every object again with boto3, so what is stored is the decoded bytes and not
the aws-chunked framing.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import unittest
import uuid
import zlib
from pathlib import Path

from harness import InferdTestCase

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "s3_stream_upload.mjs"
NODE = shutil.which("node")
MiB = 1024 * 1024
STREAM_SIZE = 5 * MiB + 1234   # the script's default
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

KEY = "AKIDJSSDK"
SECRET = "js-sdk-secret"
CREDENTIALS_CONFIG = {"credentials": [{"access_key_id": KEY, "secret_access_key": SECRET}]}

_SKIP_REASON = None
if NODE is None:
    _SKIP_REASON = "node is not installed (scripts/setup installs it)"
elif not (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir():
    _SKIP_REASON = (f"{JS_DIR / 'node_modules'} lacks @aws-sdk/client-s3 "
                    f"(scripts/setup runs `npm ci --prefix tests/e2e/js`)")


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@unittest.skipIf(_SKIP_REASON is not None, _SKIP_REASON)
class JsSdkStreamUploadTest(InferdTestCase):
    """The server without credentials (loopback): any well-formed signature is accepted."""

    access_key = "AKIDEXAMPLE"
    secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

    def run_script(self, bucket, secret=None, **env_extra):
        """Run the Node script; returns (returncode, parsed JSON summary or None, stdout, stderr)."""
        env = dict(os.environ)   # the harness already stripped AWS_* and isolated the config files
        env.update({"S3_ACCESS_KEY_ID": self.access_key,
                    "S3_SECRET_ACCESS_KEY": secret or self.secret_key,
                    "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"})
        env.update(env_extra)
        res = subprocess.run([NODE, str(SCRIPT), self.server.url, bucket], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=120, cwd=JS_DIR)
        try:
            summary = json.loads(res.stdout)
        except ValueError:
            summary = None
        return res.returncode, summary, res.stdout, res.stderr

    def s3(self):
        return self.server.client("s3", key=self.access_key, secret=self.secret_key,
                                  s3={"addressing_style": "path"})

    def assertScriptPassed(self, code, summary, stdout, stderr):
        detail = f"exit code {code}\nstdout:\n{stdout[-6000:]}\nstderr:\n{stderr[-3000:]}"
        self.assertIsNotNone(summary, "the script printed no JSON summary\n" + detail)
        self.assertEqual(summary["errors"], [], detail)
        self.assertTrue(summary["ok"], detail)
        self.assertEqual(code, 0, detail)

    def test_stream_buffer_empty_and_multipart_uploads(self):
        bucket = f"js-{uuid.uuid4().hex[:12]}"
        code, summary, stdout, stderr = self.run_script(bucket)
        self.assertScriptPassed(code, summary, stdout, stderr)

        # The script really exercised the aws-chunked stream path (it checks this itself too).
        wire = summary["requests"]["PUT js/stream.bin"]
        self.assertEqual(wire.get("content-encoding"), "aws-chunked", wire)
        self.assertEqual(wire.get("transfer-encoding"), "chunked", wire)
        self.assertEqual(wire.get("x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                         wire)
        self.assertEqual(wire.get("x-amz-decoded-content-length"), str(STREAM_SIZE), wire)
        self.assertEqual(wire.get("x-amz-trailer"), "x-amz-checksum-crc32", wire)
        self.assertNotIn("content-length", wire)

        objects = summary["objects"]
        self.assertEqual(sorted(objects), ["js/buffer.bin", "js/empty-stream",
                                           "js/multipart-stream.bin", "js/stream.bin"])
        self.assertEqual(objects["js/stream.bin"]["size"], STREAM_SIZE)
        self.assertEqual(objects["js/empty-stream"]["sha256"], EMPTY_SHA256)
        self.assertEqual([o["key"] for o in summary["list"]["contents"]], sorted(objects))

        # Independently, with boto3: the stored bytes are the decoded payload.
        s3 = self.s3()
        for key, expected in objects.items():
            with self.subTest(key=key):
                got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
                data = got["Body"].read()
                self.assertEqual(len(data), expected["size"])
                self.assertEqual(hashlib.sha256(data).hexdigest(), expected["sha256"])
                self.assertEqual(got["ContentLength"], expected["size"])
                self.assertNotIn("aws-chunked", got.get("ContentEncoding", ""))
                self.assertEqual(got["ETag"], expected["put"]["etag"])
                if key != "js/multipart-stream.bin":
                    # Single PutObject: the ETag is the MD5 of the decoded bytes, and the CRC32
                    # that came in the trailer (or header) is the one of the stored bytes.
                    self.assertEqual(got["ETag"], f'"{hashlib.md5(data).hexdigest()}"')
                    self.assertEqual(expected["put"]["checksumCRC32"], crc32_b64(data),
                                     f"PutObject answer: {expected['put']}")
                    self.assertEqual(got.get("ChecksumCRC32"), crc32_b64(data),
                                     f"GetObject answer: {got}")
                else:
                    self.assertRegex(got["ETag"], r'^"[0-9a-f]{32}-3"$')
        head = s3.head_object(Bucket=bucket, Key="js/stream.bin")
        self.assertEqual(head["ContentLength"], STREAM_SIZE)
        self.assertEqual(head["ContentType"], "application/octet-stream")


@unittest.skipIf(_SKIP_REASON is not None, _SKIP_REASON)
class JsSdkWithCredentialsTest(JsSdkStreamUploadTest):
    """The same with configured credentials: the streaming upload's SigV4 signature (over the
    STREAMING-UNSIGNED-PAYLOAD-TRAILER content hash) is verified, and a wrong secret is refused."""

    server_config = CREDENTIALS_CONFIG
    access_key = KEY
    secret_key = SECRET

    def test_wrong_secret_is_refused(self):
        bucket = f"js-{uuid.uuid4().hex[:12]}"
        self.s3().create_bucket(Bucket=bucket)
        # The bucket exists, so the first request the script makes is the aws-chunked stream PUT.
        code, summary, stdout, stderr = self.run_script(bucket, secret="not-the-secret",
                                                        S3_CREATE_BUCKET="0",
                                                        S3_SKIP_MULTIPART="1")
        detail = f"exit code {code}\nstdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-2000:]}"
        self.assertEqual(code, 2, detail)
        self.assertFalse(summary["ok"], detail)
        self.assertEqual(len(summary["errors"]), 1, detail)
        self.assertTrue(summary["errors"][0].startswith("SignatureDoesNotMatch:"), detail)
        self.assertIn("HTTP 403", summary["errors"][0], detail)
        self.assertIn("PUT js/stream.bin", summary["requests"], detail)
        self.assertEqual(self.s3().list_objects_v2(Bucket=bucket)["KeyCount"], 0)


if __name__ == "__main__":
    unittest.main()
