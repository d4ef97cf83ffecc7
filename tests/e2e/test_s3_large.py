"""The 1 GB memory check: one 1 GiB PutObject streamed through inferd's S3 API and a streamed
GetObject of it, while the server's resident memory is watched. The object is a sparse 1 GiB temp
file (all zeros, no disk space) sent by boto3 `put_object(Body=<open file>)`, which streams it in one
request (no multipart); the download is hashed chunk by chunk with `iter_chunks`.

Peak RSS growth over the pre-upload baseline must stay under 64 MiB during the PUT and during the GET:
the server streams bodies, it does not buffer them. RSS is sampled from /proc/<pid>/status (VmRSS)
every 50 ms in a thread; the kernel's own peak (VmHWM, reset through /proc/<pid>/clear_refs before
each phase where permitted) is folded in so a short spike between samples is not missed.

Set INFERD_SKIP_1GB=1 to skip it in quick local runs.
"""

import hashlib
import os
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from harness import DEFAULT_KEY, DEFAULT_REGION, DEFAULT_SECRET, InferdServer

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
SIZE = 1 * GiB
MAX_GROWTH = 64 * MiB
SAMPLE_INTERVAL = 0.05


def proc_status(pid):
    """The memory fields of /proc/<pid>/status, in bytes (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0]) * KiB
    return fields


def reset_peak(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0, writing "5" to clear_refs). True if it worked."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds in a thread while in the `with` block;
    `peak` is the largest RSS seen (including the kernel's VmHWM when it could be reset first) and
    `peak_fields` the status fields of the sample that held it."""

    def __init__(self, pid, interval=SAMPLE_INTERVAL):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.peak_fields = {}
        self.samples = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        try:
            fields = proc_status(self.pid)
        except OSError:
            return
        self.samples += 1
        if fields.get("VmRSS", 0) > self.peak:
            self.peak = fields["VmRSS"]
            self.peak_fields = fields

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self.hwm_reset = reset_peak(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        if self.hwm_reset:
            try:
                hwm = proc_status(self.pid).get("VmHWM", 0)
            except OSError:   # the process is gone: the caller's check_alive() says so
                hwm = 0
            if hwm > self.peak:
                self.peak = hwm
                self.peak_fields = dict(self.peak_fields, VmHWM=hwm)
        return False

    def describe(self, baseline):
        f = self.peak_fields
        return (f"peak RSS {self.peak / MiB:.1f} MiB = baseline {baseline / MiB:.1f} MiB + "
                f"{(self.peak - baseline) / MiB:.1f} MiB (RssAnon {f.get('RssAnon', 0) / MiB:.1f}, "
                f"RssFile {f.get('RssFile', 0) / MiB:.1f}, RssShmem {f.get('RssShmem', 0) / MiB:.1f} "
                f"MiB; {self.samples} samples, VmHWM reset: {self.hwm_reset})")


def zeros_digests(size):
    """SHA-256 and MD5 hex digests of `size` zero bytes."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    block = bytes(MiB)
    left = size
    while left:
        piece = block if left >= MiB else block[:left]
        sha.update(piece)
        md5.update(piece)
        left -= len(piece)
    return sha.hexdigest(), md5.hexdigest()


@unittest.skipIf(os.environ.get("INFERD_SKIP_1GB") == "1", "INFERD_SKIP_1GB=1 is set")
class OneGiBMemoryTest(unittest.TestCase):

    def test_one_gib_put_and_get_keep_memory_flat(self):
        with InferdServer() as server, tempfile.TemporaryDirectory(prefix="inferd-1gb-") as tmp:
            # Long read timeout: the server may flush 1 GiB to disk before it answers the PUT.
            s3 = boto3.session.Session().client(
                "s3", region_name=DEFAULT_REGION, endpoint_url=server.url,
                aws_access_key_id=DEFAULT_KEY, aws_secret_access_key=DEFAULT_SECRET,
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                              connect_timeout=10, read_timeout=300,
                              s3={"addressing_style": "path"}))
            pid = server.proc.pid
            bucket = f"large-{uuid.uuid4().hex[:12]}"
            s3.create_bucket(Bucket=bucket)
            # Warm up: the first request of each kind allocates the server's pools and buffers.
            for i in range(3):
                s3.put_object(Bucket=bucket, Key="warm-up", Body=os.urandom(4 * MiB))
                s3.get_object(Bucket=bucket, Key="warm-up")["Body"].read()
            time.sleep(0.2)
            baseline = proc_status(pid)["VmRSS"]

            path = Path(tmp, "sparse-1GiB.bin")
            with open(path, "wb"):
                pass
            os.truncate(path, SIZE)   # sparse: reads as zeros, takes no disk space
            expected_sha256, expected_md5 = zeros_digests(SIZE)

            started = time.monotonic()
            with RssSampler(pid) as put_rss, open(path, "rb") as body:
                resp = s3.put_object(Bucket=bucket, Key="one-gib.bin", Body=body)
            put_seconds = time.monotonic() - started
            server.check_alive()
            self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200, resp)
            self.assertEqual(resp["ETag"], f'"{expected_md5}"')
            self.assertEqual(s3.head_object(Bucket=bucket, Key="one-gib.bin")["ContentLength"],
                             SIZE)

            started = time.monotonic()
            received = 0
            sha = hashlib.sha256()
            with RssSampler(pid) as get_rss:
                got = s3.get_object(Bucket=bucket, Key="one-gib.bin")
                self.assertEqual(got["ContentLength"], SIZE)
                for chunk in got["Body"].iter_chunks(MiB):
                    sha.update(chunk)
                    received += len(chunk)
            get_seconds = time.monotonic() - started
            server.check_alive()

            print(f"\n  1 GiB PUT {put_seconds:.1f} s, {put_rss.describe(baseline)}"
                  f"\n  1 GiB GET {get_seconds:.1f} s, {get_rss.describe(baseline)}",
                  file=sys.stderr)
            self.assertEqual(received, SIZE)
            self.assertEqual(sha.hexdigest(), expected_sha256)
            self.assertGreater(put_rss.samples, 5)
            self.assertGreater(get_rss.samples, 5)
            self.assertLess(put_rss.peak - baseline, MAX_GROWTH,
                            "server memory grew with the PUT body: " + put_rss.describe(baseline))
            self.assertLess(get_rss.peak - baseline, MAX_GROWTH,
                            "server memory grew with the GET body: " + get_rss.describe(baseline))

            s3.delete_object(Bucket=bucket, Key="one-gib.bin")


if __name__ == "__main__":
    unittest.main()
