"""inferd's S3 API (embedded FilesystemStore) driven by real clients: boto3 (path-style), presigned
URLs used with requests / curl / http.client, a JS-SDK-shaped aws-chunked upload, and the AWS CLI v1
(`python3 -m awscli`) and v2 (/usr/bin/aws) high-level `s3` commands. The 1 GiB memory check is
test_s3_large.py; the JS SDK's stream uploads are test_js_sdk.py.
"""

import base64
import datetime
import hashlib
import http.client
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from unittest import mock

import boto3.s3.transfer
import requests

from harness import InferdTestCase, skewed_clock

KEY = "AKIDS3TEST"
SECRET = "s3-test-secret"
CREDENTIALS_CONFIG = {"credentials": [{"access_key_id": KEY, "secret_access_key": SECRET}]}
MiB = 1024 * 1024

# Keys that must survive the round trip untouched: path-like oddities, escapes, unicode.
ODD_KEYS = ["../up", "a/../b", "x/./y", "a//b", "dir/a b.txt", "100%", "%2F%20literal",
            "plus+sign", "amp&amp;", "question?mark#hash", "\u00fcn\u00efc\u00f8d\u00e9/\u2713",
            "tab\there", "trailing/", " leading-space"]


def bucket_name(prefix="b"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def xml_code(resp):
    for el in ET.fromstring(resp.content).iter():
        if el.tag.split("}")[-1] == "Code":
            return el.text
    return None


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class S3TestCase(InferdTestCase):
    """One server per class; a fresh bucket per test."""

    def s3(self, **kwargs):
        kwargs.setdefault("s3", {"addressing_style": "path"})
        return self.server.client("s3", **kwargs)

    def setUp(self):
        super().setUp()
        self.client = self.s3()
        self.bucket = bucket_name()
        self.client.create_bucket(Bucket=self.bucket)

    def put(self, key, body=b"x", **kwargs):
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)

    def get_bytes(self, key, **kwargs):
        return self.client.get_object(Bucket=self.bucket, Key=key, **kwargs)["Body"].read()

    def keys(self, bucket=None, **kwargs):
        paginator = self.client.get_paginator("list_objects_v2")
        out = []
        for page in paginator.paginate(Bucket=bucket or self.bucket, **kwargs):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


class BucketTest(S3TestCase):

    def test_create_head_list_delete(self):
        name = bucket_name("life")
        resp = self.client.create_bucket(Bucket=name)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertEqual(resp["Location"], f"/{name}")
        self.assertTrue(resp["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"))
        head = self.client.head_bucket(Bucket=name)
        self.assertEqual(head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"],
                         "us-east-1")
        listed = self.client.list_buckets()
        self.assertIn(name, [b["Name"] for b in listed["Buckets"]])
        self.assertEqual(listed["Owner"]["DisplayName"], "inferd")
        created = next(b for b in listed["Buckets"] if b["Name"] == name)["CreationDate"]
        self.assertRecentTime(created)
        self.client.delete_bucket(Bucket=name)
        self.assertAwsError(lambda: self.client.head_bucket(Bucket=name), "404", status=404)
        self.assertAwsError(lambda: self.client.delete_bucket(Bucket=name), "NoSuchBucket",
                            status=404)

    def test_errors(self):
        self.assertAwsError(lambda: self.client.create_bucket(Bucket=self.bucket),
                            "BucketAlreadyOwnedByYou", status=409)
        self.assertAwsError(lambda: self.client.create_bucket(Bucket="inferd"),
                            "InvalidBucketName", status=400, message_contains="reserved")
        # botocore validates most names itself; these pass its check but not S3's rules.
        for bad in ("ab", "a" * 64, "192.168.1.1", "xn--bucket"):
            with self.subTest(bad=bad):
                self.assertAwsError(lambda: self.client.create_bucket(Bucket=bad),
                                    "InvalidBucketName", status=400)
        self.put("k")
        self.assertAwsError(lambda: self.client.delete_bucket(Bucket=self.bucket),
                            "BucketNotEmpty", status=409)
        self.assertAwsError(lambda: self.client.list_objects_v2(Bucket=bucket_name("none")),
                            "NoSuchBucket", status=404)
        # Refused before the (streamed) body is read: the client still gets the answer.
        self.assertAwsError(lambda: self.client.put_object(Bucket=bucket_name("none"), Key="k",
                                                           Body=os.urandom(8 * MiB)),
                            "NoSuchBucket", status=404)

    def test_location(self):
        self.assertIsNone(self.client.get_bucket_location(Bucket=self.bucket)
                          .get("LocationConstraint"))
        eu = self.s3(region="eu-west-1")
        name = bucket_name("eu")
        eu.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.assertEqual(eu.get_bucket_location(Bucket=name)["LocationConstraint"], "eu-west-1")

    def test_unimplemented_subresources(self):
        self.assertAwsError(lambda: self.client.get_bucket_tagging(Bucket=self.bucket),
                            "NotImplemented", status=501)
        self.assertAwsError(lambda: self.client.get_bucket_policy(Bucket=self.bucket),
                            "NotImplemented", status=501)
        self.assertEqual(self.client.get_bucket_versioning(Bucket=self.bucket)
                         ["ResponseMetadata"]["HTTPStatusCode"], 200)


class ObjectTest(S3TestCase):

    def test_put_get_head_delete_with_metadata(self):
        data = b"hello, inferd"
        resp = self.put("dir/hello.txt", data, ContentType="text/plain",
                        Metadata={"Color": "blue", "k": "v"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="h.txt"', ContentLanguage="en",
                        ContentEncoding="identity")
        self.assertEqual(resp["ETag"], f'"{md5_hex(data)}"')
        got = self.client.get_object(Bucket=self.bucket, Key="dir/hello.txt")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ContentType"], "text/plain")
        self.assertEqual(got["ContentLength"], len(data))
        self.assertEqual(got["ETag"], resp["ETag"])
        self.assertEqual(got["Metadata"], {"color": "blue", "k": "v"})
        self.assertEqual(got["CacheControl"], "max-age=60")
        self.assertEqual(got["ContentDisposition"], 'attachment; filename="h.txt"')
        self.assertEqual(got["ContentLanguage"], "en")
        self.assertEqual(got["ContentEncoding"], "identity")
        self.assertEqual(got["AcceptRanges"], "bytes")
        self.assertRecentTime(got["LastModified"])
        head = self.client.head_object(Bucket=self.bucket, Key="dir/hello.txt")
        self.assertEqual(head["ContentLength"], len(data))
        self.assertEqual(head["Metadata"], {"color": "blue", "k": "v"})
        self.client.delete_object(Bucket=self.bucket, Key="dir/hello.txt")
        self.assertAwsError(lambda: self.get_bytes("dir/hello.txt"), "NoSuchKey", status=404)
        self.assertAwsError(lambda: self.client.head_object(Bucket=self.bucket,
                                                            Key="dir/hello.txt"),
                            "404", status=404)
        # Deleting what is not there succeeds, as on S3.
        self.client.delete_object(Bucket=self.bucket, Key="dir/hello.txt")

    def test_default_content_type_and_empty_object(self):
        self.put("empty", b"")
        got = self.client.get_object(Bucket=self.bucket, Key="empty")
        self.assertEqual(got["Body"].read(), b"")
        self.assertEqual(got["ETag"], '"d41d8cd98f00b204e9800998ecf8427e"')
        self.assertEqual(got["ContentType"], "binary/octet-stream")

    def test_odd_keys(self):
        for key in ODD_KEYS:
            with self.subTest(key=key):
                self.put(key, key.encode())
                self.assertEqual(self.get_bytes(key), key.encode())
                self.assertEqual(self.client.head_object(Bucket=self.bucket, Key=key)
                                 ["ContentLength"], len(key.encode()))
        self.assertEqual(sorted(self.keys()), sorted(ODD_KEYS, key=lambda k: k.encode()))
        self.assertEqual(self.keys(), sorted(ODD_KEYS, key=lambda k: k.encode()))

    def test_checksums(self):
        data = b"checksummed body"
        for algorithm in ("CRC32", "SHA1", "SHA256"):
            with self.subTest(algorithm=algorithm):
                key = f"sum-{algorithm}"
                resp = self.put(key, data, ChecksumAlgorithm=algorithm)
                field = "Checksum" + algorithm
                self.assertIn(field, resp)
                got = self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
                self.assertEqual(got[field], resp[field])
                self.assertEqual(got["Body"].read(), data)
                head = self.client.head_object(Bucket=self.bucket, Key=key,
                                               ChecksumMode="ENABLED")
                self.assertEqual(head[field], resp[field])

    def test_bad_digests_store_nothing(self):
        wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        self.assertAwsError(lambda: self.put("bad-md5", b"data", ContentMD5=wrong_md5),
                            "BadDigest", status=400,
                            message="The Content-MD5 you specified did not match what we "
                                    "received.")
        self.assertAwsError(lambda: self.put("bad-crc", b"data", ChecksumCRC32=crc32_b64(b"x")),
                            "BadDigest", status=400,
                            message="The CRC32 you specified did not match the calculated "
                                    "checksum.")
        for key in ("bad-md5", "bad-crc"):
            self.assertAwsError(lambda: self.get_bytes(key), "NoSuchKey", status=404)
        # A payload hash that does not match the body (signed as sent, so only the hash is off).
        url, headers, _ = self.server.sign(
            "PUT", f"/{self.bucket}/bad-sha", service="s3",
            headers={"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})
        resp = requests.put(url, headers=headers, data=b"data", timeout=30)
        self.assertEqual(resp.status_code, 400, resp.text)
        self.assertEqual(xml_code(resp), "XAmzContentSHA256Mismatch")
        self.assertEqual(resp.headers.get("x-amz-request-id"), resp.headers["x-amzn-RequestId"])

    def test_ranges(self):
        self.put("digits", b"0123456789")
        got = self.client.get_object(Bucket=self.bucket, Key="digits", Range="bytes=2-5")
        self.assertEqual(got["Body"].read(), b"2345")
        self.assertEqual(got["ContentRange"], "bytes 2-5/10")
        self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(self.get_bytes("digits", Range="bytes=-3"), b"789")
        self.assertEqual(self.get_bytes("digits", Range="bytes=7-"), b"789")
        self.assertEqual(self.get_bytes("digits", Range="bytes=8-1000"), b"89")
        self.assertAwsError(lambda: self.get_bytes("digits", Range="bytes=10-"),
                            "InvalidRange", status=416)

    def test_conditional_requests(self):
        etag = self.put("cond", b"v1")["ETag"]
        future = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        self.assertAwsError(lambda: self.client.get_object(Bucket=self.bucket, Key="cond",
                                                           IfNoneMatch=etag), "304", status=304)
        self.assertAwsError(lambda: self.client.get_object(Bucket=self.bucket, Key="cond",
                                                           IfModifiedSince=future),
                            "304", status=304)
        self.assertAwsError(lambda: self.client.get_object(Bucket=self.bucket, Key="cond",
                                                           IfMatch='"nope"'),
                            "PreconditionFailed", status=412)
        self.assertAwsError(lambda: self.client.get_object(Bucket=self.bucket, Key="cond",
                                                           IfUnmodifiedSince=past),
                            "PreconditionFailed", status=412)
        self.assertAwsError(lambda: self.client.head_object(Bucket=self.bucket, Key="cond",
                                                            IfMatch='"nope"'),
                            "412", status=412)
        self.assertEqual(self.get_bytes("cond", IfMatch=etag, IfModifiedSince=past), b"v1")
        self.assertEqual(self.get_bytes("cond", IfNoneMatch='"other"'), b"v1")
        # Conditional writes.
        self.assertAwsError(lambda: self.put("cond", b"v2", IfNoneMatch="*"),
                            "PreconditionFailed", status=412)
        self.put("cond-new", b"v1", IfNoneMatch="*")

    def test_copy(self):
        self.put("src dir/a+b", b"payload", ContentType="text/x", Metadata={"m": "1"})
        other = bucket_name("copy")
        self.client.create_bucket(Bucket=other)
        resp = self.client.copy_object(Bucket=other, Key="copy",
                                       CopySource={"Bucket": self.bucket, "Key": "src dir/a+b"})
        self.assertEqual(resp["CopyObjectResult"]["ETag"], f'"{md5_hex(b"payload")}"')
        self.assertRecentTime(resp["CopyObjectResult"]["LastModified"])
        got = self.client.get_object(Bucket=other, Key="copy")
        self.assertEqual(got["Body"].read(), b"payload")
        self.assertEqual(got["ContentType"], "text/x")
        self.assertEqual(got["Metadata"], {"m": "1"})
        self.client.copy_object(Bucket=other, Key="replaced", MetadataDirective="REPLACE",
                                ContentType="text/y", Metadata={"n": "2"},
                                CopySource=f"{self.bucket}/src dir/a+b")
        got = self.client.head_object(Bucket=other, Key="replaced")
        self.assertEqual((got["ContentType"], got["Metadata"]), ("text/y", {"n": "2"}))
        self.assertAwsError(
            lambda: self.client.copy_object(Bucket=self.bucket, Key="src dir/a+b",
                                            CopySource={"Bucket": self.bucket,
                                                        "Key": "src dir/a+b"}),
            "InvalidRequest", status=400)
        self.assertAwsError(
            lambda: self.client.copy_object(Bucket=other, Key="x",
                                            CopySource={"Bucket": self.bucket, "Key": "missing"}),
            "NoSuchKey", status=404)
        self.assertAwsError(
            lambda: self.client.copy_object(Bucket=other, Key="x",
                                            CopySource={"Bucket": self.bucket,
                                                        "Key": "src dir/a+b"},
                                            CopySourceIfMatch='"nope"'),
            "PreconditionFailed", status=412)
        # The managed copy (HeadObject + CopyObject) too.
        self.client.copy({"Bucket": self.bucket, "Key": "src dir/a+b"}, other, "managed")
        self.assertEqual(self.client.get_object(Bucket=other, Key="managed")["Body"].read(),
                         b"payload")

    def test_delete_objects(self):
        for k in ("a", "b", "c d", "e"):
            self.put(k)
        resp = self.client.delete_objects(Bucket=self.bucket, Delete={
            "Objects": [{"Key": "a"}, {"Key": "c d"}, {"Key": "missing"}]})
        self.assertEqual(sorted(d["Key"] for d in resp["Deleted"]), ["a", "c d", "missing"])
        self.assertNotIn("Errors", resp)
        resp = self.client.delete_objects(Bucket=self.bucket, Delete={
            "Objects": [{"Key": "b"}], "Quiet": True})
        self.assertNotIn("Deleted", resp)
        self.assertEqual(self.keys(), ["e"])

    def test_presigned_urls_without_credentials(self):
        # A server without credentials accepts any well-formed signature, SigV2 presigned too.
        self.put("shared", b"shared content")
        for config in ({}, {"signature_version": "s3v4"}):
            with self.subTest(config=config):
                url = self.s3(**config).generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": "shared"})
                resp = requests.get(url, timeout=30)
                self.assertEqual((resp.status_code, resp.content), (200, b"shared content"))

    def test_aws_chunked_stream_with_trailing_checksum(self):
        """The JS SDK v3's wire format for stream bodies: Transfer-Encoding: chunked carrying an
        aws-chunked body with a trailing x-amz-checksum-crc32; the stored object is the decoded
        bytes."""
        data = os.urandom(300 * 1024 + 7)
        headers = {"Content-Encoding": "aws-chunked",
                   "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "x-amz-decoded-content-length": str(len(data)),
                   "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-sdk-checksum-algorithm": "CRC32",
                   "Content-Type": "application/octet-stream"}
        url, signed, _ = self.server.sign("PUT", f"/{self.bucket}/chunked", service="s3",
                                          headers=headers)
        signed.pop("Content-Length", None)

        def body(checksum):
            for i in range(0, len(data), 65536):
                chunk = data[i:i + 65536]
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
            yield b"0\r\nx-amz-checksum-crc32:" + checksum.encode() + b"\r\n\r\n"

        resp = requests.put(url, headers=signed, data=body(crc32_b64(data)), timeout=60)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.content, b"")
        self.assertEqual(resp.headers["ETag"], f'"{md5_hex(data)}"')
        self.assertEqual(resp.headers["x-amz-checksum-crc32"], crc32_b64(data))
        got = self.client.get_object(Bucket=self.bucket, Key="chunked", ChecksumMode="ENABLED")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ChecksumCRC32"], crc32_b64(data))
        self.assertNotIn("ContentEncoding", got)

        url, signed, _ = self.server.sign("PUT", f"/{self.bucket}/chunked-bad", service="s3",
                                          headers=headers)
        signed.pop("Content-Length", None)
        resp = requests.put(url, headers=signed, data=body(crc32_b64(b"x")), timeout=60)
        self.assertEqual(resp.status_code, 400, resp.text)
        self.assertEqual(xml_code(resp), "BadDigest")
        self.assertAwsError(lambda: self.get_bytes("chunked-bad"), "NoSuchKey", status=404)


class ListTest(S3TestCase):

    KEYS = ["a.txt", "dir/x", "dir/y", "dir/sub/z", "e f", "zzz"]

    def setUp(self):
        super().setUp()
        for k in self.KEYS:
            self.put(k)

    def test_v2_delimiter_and_prefix(self):
        resp = self.client.list_objects_v2(Bucket=self.bucket, Delimiter="/")
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["a.txt", "e f", "zzz"])
        self.assertEqual([p["Prefix"] for p in resp["CommonPrefixes"]], ["dir/"])
        self.assertEqual(resp["KeyCount"], 4)
        self.assertFalse(resp["IsTruncated"])
        first = resp["Contents"][0]
        self.assertEqual((first["Size"], first["ETag"], first["StorageClass"]),
                         (1, f'"{md5_hex(b"x")}"', "STANDARD"))
        self.assertRecentTime(first["LastModified"])
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix="dir/", Delimiter="/",
                                           FetchOwner=True)
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["dir/x", "dir/y"])
        self.assertEqual([p["Prefix"] for p in resp["CommonPrefixes"]], ["dir/sub/"])
        self.assertEqual(resp["Contents"][0]["Owner"]["DisplayName"], "inferd")

    def test_v2_pagination_and_start_after(self):
        pages = list(self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, PaginationConfig={"PageSize": 2}))
        self.assertEqual(len(pages), 3)
        self.assertEqual([o["Key"] for p in pages for o in p["Contents"]],
                         sorted(self.KEYS))
        self.assertTrue(pages[0]["IsTruncated"])
        self.assertIn("NextContinuationToken", pages[0])
        resp = self.client.list_objects_v2(Bucket=self.bucket, StartAfter="dir/y")
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["e f", "zzz"])
        # Paginating with a delimiter rolls each prefix up once.
        pages = list(self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Delimiter="/", PaginationConfig={"PageSize": 1}))
        self.assertEqual([p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])],
                         ["dir/"])
        self.assertEqual([o["Key"] for page in pages for o in page.get("Contents", [])],
                         ["a.txt", "e f", "zzz"])
        self.assertAwsError(lambda: self.client.list_objects_v2(Bucket=self.bucket,
                                                                ContinuationToken="!!"),
                            "InvalidArgument", status=400)

    def test_v1_marker(self):
        pages = list(self.client.get_paginator("list_objects").paginate(
            Bucket=self.bucket, PaginationConfig={"PageSize": 4}))
        self.assertEqual([o["Key"] for p in pages for o in p["Contents"]], sorted(self.KEYS))
        self.assertEqual(pages[0]["NextMarker"], "dir/y")
        self.assertEqual(pages[0]["Contents"][0]["Owner"]["DisplayName"], "inferd")
        resp = self.client.list_objects(Bucket=self.bucket, Marker="dir/y", Delimiter="/")
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["e f", "zzz"])

    def test_url_encoding_type(self):
        # botocore asks for encoding-type=url on its own and decodes what comes back...
        self.put("sp ace/\u2713+%")
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix="sp ace/")
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["sp ace/\u2713+%"])
        self.assertEqual(resp["Prefix"], "sp ace/")
        resp = self.client.list_objects(Bucket=self.bucket, Prefix="sp ace/", Delimiter="\u2713")
        self.assertEqual([p["Prefix"] for p in resp["CommonPrefixes"]], ["sp ace/\u2713"])
        # ...but leaves the keys encoded when the caller asked for the encoding itself.
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix="sp ace/",
                                           EncodingType="url")
        self.assertEqual([o["Key"] for o in resp["Contents"]], ["sp%20ace/%E2%9C%93%2B%25"])
        self.assertEqual(resp["EncodingType"], "url")


class MultipartTest(S3TestCase):

    def test_low_level_flow(self):
        c = self.client
        up = c.create_multipart_upload(Bucket=self.bucket, Key="mp file", ContentType="video/mp4",
                                       Metadata={"origin": "camera"})
        uid = up["UploadId"]
        parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
        etags = []
        for n, data in enumerate(parts_data, 1):
            resp = c.upload_part(Bucket=self.bucket, Key="mp file", UploadId=uid, PartNumber=n,
                                 Body=data)
            self.assertEqual(resp["ETag"], f'"{md5_hex(data)}"')
            etags.append(resp["ETag"])
        listed = c.list_parts(Bucket=self.bucket, Key="mp file", UploadId=uid)
        self.assertEqual([p["PartNumber"] for p in listed["Parts"]], [1, 2, 3])
        self.assertEqual([p["Size"] for p in listed["Parts"]], [5 * MiB, 5 * MiB, 4])
        uploads = c.list_multipart_uploads(Bucket=self.bucket)
        self.assertEqual([(u["Key"], u["UploadId"]) for u in uploads["Uploads"]],
                         [("mp file", uid)])
        self.assertAwsError(
            lambda: c.complete_multipart_upload(
                Bucket=self.bucket, Key="mp file", UploadId=uid,
                MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etags[1]},
                                           {"PartNumber": 1, "ETag": etags[0]}]}),
            "InvalidPartOrder", status=400)
        self.assertAwsError(
            lambda: c.complete_multipart_upload(
                Bucket=self.bucket, Key="mp file", UploadId=uid,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"beef"'}]}),
            "InvalidPart", status=400)
        self.assertAwsError(
            lambda: c.complete_multipart_upload(
                Bucket=self.bucket, Key="mp file", UploadId=uid,
                MultipartUpload={"Parts": [{"PartNumber": 3, "ETag": etags[2]},
                                           {"PartNumber": 4, "ETag": etags[2]}]}),
            "InvalidPart", status=400)
        done = c.complete_multipart_upload(
            Bucket=self.bucket, Key="mp file", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                       for n, e in enumerate(etags, 1)]})
        expected = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest()
        self.assertEqual(done["ETag"], f'"{expected}-3"')
        self.assertEqual(done["Key"], "mp file")
        got = c.get_object(Bucket=self.bucket, Key="mp file")
        self.assertEqual(got["Body"].read(), b"".join(parts_data))
        self.assertEqual((got["ContentType"], got["Metadata"]), ("video/mp4",
                                                                 {"origin": "camera"}))
        self.assertAwsError(lambda: c.list_parts(Bucket=self.bucket, Key="mp file", UploadId=uid),
                            "NoSuchUpload", status=404)

    def test_abort_and_unknown_upload(self):
        c = self.client
        uid = c.create_multipart_upload(Bucket=self.bucket, Key="k")["UploadId"]
        c.upload_part(Bucket=self.bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"x")
        resp = c.abort_multipart_upload(Bucket=self.bucket, Key="k", UploadId=uid)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 204)
        for call in (lambda: c.upload_part(Bucket=self.bucket, Key="k", UploadId=uid,
                                           PartNumber=1, Body=b"x"),
                     lambda: c.abort_multipart_upload(Bucket=self.bucket, Key="k", UploadId=uid),
                     lambda: c.complete_multipart_upload(
                         Bucket=self.bucket, Key="k", UploadId=uid,
                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"a"'}]})):
            self.assertAwsError(call, "NoSuchUpload", status=404)
        self.assertEqual(c.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []), [])

    def test_upload_part_copy(self):
        c = self.client
        source = os.urandom(6 * MiB)
        self.put("source", source)
        uid = c.create_multipart_upload(Bucket=self.bucket, Key="dest")["UploadId"]
        p1 = c.upload_part_copy(Bucket=self.bucket, Key="dest", UploadId=uid, PartNumber=1,
                                CopySource={"Bucket": self.bucket, "Key": "source"},
                                CopySourceRange=f"bytes=0-{5 * MiB - 1}")
        p2 = c.upload_part_copy(Bucket=self.bucket, Key="dest", UploadId=uid, PartNumber=2,
                                CopySource={"Bucket": self.bucket, "Key": "source"})
        c.complete_multipart_upload(
            Bucket=self.bucket, Key="dest", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                                       {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
        self.assertEqual(self.get_bytes("dest"), source[:5 * MiB] + source)

    def test_transfer_manager_up_and_down(self):
        config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB,
                                                  multipart_chunksize=5 * MiB, max_concurrency=4)
        data = os.urandom(17 * MiB + 3)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp, "up.bin")
            src.write_bytes(data)
            self.client.upload_file(str(src), self.bucket, "big/up.bin", Config=config)
            head = self.client.head_object(Bucket=self.bucket, Key="big/up.bin")
            self.assertEqual(head["ContentLength"], len(data))
            self.assertTrue(head["ETag"].endswith('-4"'), head["ETag"])
            dst = Path(tmp, "down.bin")
            self.client.download_file(self.bucket, "big/up.bin", str(dst), Config=config)
            self.assertEqual(hashlib.sha256(dst.read_bytes()).hexdigest(),
                             hashlib.sha256(data).hexdigest())


class PresignTest(S3TestCase):
    server_config = CREDENTIALS_CONFIG

    def s3(self, **kwargs):
        kwargs.setdefault("key", KEY)
        kwargs.setdefault("secret", SECRET)
        return super().s3(**kwargs)

    def presign(self, method, key, expires=300, client=None):
        return (client or self.client).generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires)

    def test_presigned_get_and_put(self):
        self.put("dir/file.txt", b"presigned content")
        resp = requests.get(self.presign("get_object", "dir/file.txt"), timeout=30)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.content, b"presigned content")
        self.assertEqual(resp.headers["ETag"], f'"{md5_hex(b"presigned content")}"')
        resp = requests.put(self.presign("put_object", "uploaded.bin"), data=b"via presigned PUT",
                            timeout=30)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.content, b"")
        self.assertEqual(self.get_bytes("uploaded.bin"), b"via presigned PUT")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp, "in.bin")
            src.write_bytes(b"curl upload")
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--upload-file", str(src),
                                  self.presign("put_object", "curl.bin")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.stdout, "200", out.stderr)
            out = subprocess.run(["curl", "-sS", "-o", str(Path(tmp, "out.bin")), "-w",
                                  "%{http_code}", self.presign("get_object", "curl.bin")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.stdout, "200", out.stderr)
            self.assertEqual(Path(tmp, "out.bin").read_bytes(), b"curl upload")

    def test_presigned_odd_keys(self):
        for key in ODD_KEYS:
            with self.subTest(key=key):
                self.put(key, key.encode())
                # http.client sends the path exactly as the URL has it (no dot-segment removal).
                url = urllib.parse.urlsplit(self.presign("get_object", key))
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                conn.request("GET", url.path + "?" + url.query)
                resp = conn.getresponse()
                self.assertEqual((resp.status, resp.read()), (200, key.encode()))
                conn.close()
        # curl needs --path-as-is to leave "../" alone.
        out = subprocess.run(["curl", "-sS", "--path-as-is", self.presign("get_object", "../up")],
                             capture_output=True, timeout=60)
        self.assertEqual(out.stdout, b"../up", out.stderr)

    def test_expired_and_tampered(self):
        self.put("k", b"v")
        # boto3's default presigned URLs are SigV2 (Expires = time.time() + ExpiresIn) ...
        with mock.patch("botocore.auth.time") as fake_time:
            fake_time.time.return_value = time.time() - 7200
            url = self.presign("get_object", "k", expires=60)
        self.assertIn("AWSAccessKeyId=", url)
        resp = requests.get(url, timeout=30)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(xml_code(resp), "AccessDenied")
        # ... SigV4 ones (X-Amz-Date + X-Amz-Expires) come with signature_version="s3v4".
        v4 = self.s3(signature_version="s3v4")
        with skewed_clock(-datetime.timedelta(hours=2)):
            url = self.presign("get_object", "k", expires=60, client=v4)
        self.assertIn("X-Amz-Signature=", url)
        resp = requests.get(url, timeout=30)
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(xml_code(resp), "AccessDenied")
        resp = requests.get(self.presign("get_object", "k", client=v4), timeout=30)
        self.assertEqual((resp.status_code, resp.content), (200, b"v"))
        for client, param in ((self.client, "Signature"), (v4, "X-Amz-Signature")):
            parts = urllib.parse.urlsplit(self.presign("get_object", "k", client=client))
            query = urllib.parse.parse_qs(parts.query)
            signature = query[param][0]
            query[param] = [("A" if signature[0] != "A" else "B") + signature[1:]]
            tampered = parts._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()
            resp = requests.get(tampered, timeout=30)
            self.assertEqual(resp.status_code, 403, resp.text)
            self.assertEqual(xml_code(resp), "SignatureDoesNotMatch")
        wrong = self.s3(secret="not-the-secret")
        resp = requests.get(self.presign("get_object", "k", client=wrong), timeout=30)
        self.assertEqual(xml_code(resp), "SignatureDoesNotMatch")
        self.assertAwsError(lambda: wrong.get_object(Bucket=self.bucket, Key="k"),
                            "SignatureDoesNotMatch", status=403)


class CliTest(S3TestCase):
    """The AWS CLI's high-level s3 commands, v1 and v2."""

    def cli(self, version, *args, timeout=300):
        run = self.server.cli_v1 if version == "v1" else self.server.cli_v2
        code, out, err = run(*args, timeout=timeout)
        self.assertEqual(code, 0, f"aws {' '.join(map(str, args))} ({version}) failed:\n"
                                  f"stdout: {out!r}\nstderr: {err}")
        return out

    def test_mb_cp_sync_ls_rm_rb(self):
        for version in ("v1", "v2"):
            with self.subTest(version=version), tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                bucket = bucket_name(f"cli{version}")
                self.cli(version, "s3", "mb", f"s3://{bucket}")
                small = tmp / "small file.txt"
                small.write_bytes(b"small content\n")
                big = tmp / "big.bin"
                with open(big, "wb") as f:  # >= 64 MiB: a multipart upload (8 MiB parts)
                    for _ in range(65):
                        f.write(os.urandom(MiB))
                self.cli(version, "s3", "cp", small, f"s3://{bucket}/docs/small file.txt")
                self.cli(version, "s3", "cp", big, f"s3://{bucket}/big.bin")
                head = self.client.head_object(Bucket=bucket, Key="big.bin")
                self.assertEqual(head["ContentLength"], 65 * MiB)
                self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-\d+"$')
                down = tmp / "down"
                down.mkdir()
                self.cli(version, "s3", "cp", f"s3://{bucket}/big.bin", down / "big.bin")
                self.cli(version, "s3", "cp", f"s3://{bucket}/docs/small file.txt", down / "s.txt")
                self.assertEqual(hashlib.sha256((down / "big.bin").read_bytes()).hexdigest(),
                                 hashlib.sha256(big.read_bytes()).hexdigest())
                self.assertEqual((down / "s.txt").read_bytes(), b"small content\n")

                tree = tmp / "tree"
                for rel in ("a.txt", "sub/b.txt", "sub/deeper/c d.txt", "\u2713.txt"):
                    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tree / rel).write_text(f"content of {rel}")
                self.cli(version, "s3", "sync", tree, f"s3://{bucket}/tree")
                self.assertEqual(sorted(self.keys(bucket, Prefix="tree/")),
                                 sorted(f"tree/{r}" for r in ("a.txt", "sub/b.txt",
                                                              "sub/deeper/c d.txt",
                                                              "\u2713.txt")))
                back = tmp / "back"
                self.cli(version, "s3", "sync", f"s3://{bucket}/tree", back)
                self.assertEqual((back / "sub/deeper/c d.txt").read_text(),
                                 "content of sub/deeper/c d.txt")
                # A second sync has nothing to do.
                out = self.cli(version, "s3", "sync", tree, f"s3://{bucket}/tree")
                self.assertNotIn("upload:", str(out))

                listing = self.cli(version, "s3", "ls", f"s3://{bucket}/")
                self.assertIn("PRE docs/", listing)
                self.assertIn("PRE tree/", listing)
                self.assertIn("big.bin", listing)
                listing = self.cli(version, "s3", "ls", "--recursive", f"s3://{bucket}/tree/")
                self.assertIn("tree/sub/deeper/c d.txt", listing)
                self.assertIn(bucket, self.cli(version, "s3", "ls"))

                self.cli(version, "s3", "rm", "--recursive", f"s3://{bucket}/")
                self.assertEqual(self.keys(bucket), [])
                self.cli(version, "s3", "rb", f"s3://{bucket}")
                self.assertAwsError(lambda: self.client.head_bucket(Bucket=bucket), "404",
                                    status=404)

    def test_rb_force_and_errors(self):
        for version in ("v1", "v2"):
            with self.subTest(version=version):
                bucket = bucket_name(f"force{version}")
                self.cli(version, "s3", "mb", f"s3://{bucket}")
                self.client.put_object(Bucket=bucket, Key="a/b", Body=b"x")
                run = self.server.cli_v1 if version == "v1" else self.server.cli_v2
                code, _, err = run("s3", "rb", f"s3://{bucket}")
                self.assertNotEqual(code, 0)
                self.assertIn("BucketNotEmpty", err)
                self.cli(version, "s3", "rb", "--force", f"s3://{bucket}")
                code, _, err = run("s3", "cp", f"s3://{bucket}/nope", "-")
                self.assertNotEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
