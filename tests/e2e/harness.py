"""Test harness for the inferd end-to-end suite.

Starts the real ``inferd`` binary (``$INFERD_BIN``, default ``build/bin/inferd`` in the repo) on an
ephemeral loopback port with a temporary data directory, and hands out real clients pointed at it:
boto3 clients, AWS CLI v1 (``python3 -m awscli``) and AWS CLI v2 (``/usr/bin/aws``).

Everything is hermetic: port 0, temp dirs, AWS_* variables of the calling environment are ignored
(config/credentials files point at empty files), and clients never retry, so a server error shows
up as the error it is.
"""

import atexit
import contextlib
import datetime
import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
AWS_CLI_V2 = "/usr/bin/aws"

DEFAULT_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
# An ExecutionRoleArn for CreateModel (inferd does not assume it).
ROLE = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-20240101T000000"

READY_TIMEOUT = 10.0   # seconds to wait for the "listening" line
STOP_TIMEOUT = 15.0    # seconds to wait for a graceful stop
LISTEN_RE = re.compile(r"^inferd listening on http://(\[[^\]]+\]|[^\s:/]+):(\d+)$")

# Keep the user's / machine's AWS configuration out of every client made by this process.
_ISOLATION_DIR = tempfile.mkdtemp(prefix="inferd-e2e-aws-")
atexit.register(shutil.rmtree, _ISOLATION_DIR, True)
for _name in ("config", "credentials"):
    Path(_ISOLATION_DIR, _name).write_text("")
for _var in [v for v in os.environ if v.startswith("AWS_")]:
    del os.environ[_var]
os.environ["AWS_CONFIG_FILE"] = str(Path(_ISOLATION_DIR, "config"))
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(_ISOLATION_DIR, "credentials"))
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

_SESSION = boto3.session.Session()


def inferd_bin():
    """Absolute path of the binary under test."""
    path = os.environ.get("INFERD_BIN")
    if path:
        return os.path.abspath(path)
    return str(REPO_ROOT / "build" / "bin" / "inferd")


def arn(kind, name, region=DEFAULT_REGION, account=DEFAULT_ACCOUNT):
    """SageMaker ARN as inferd mints it (name lower-cased). kind: model, endpoint-config, endpoint."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def free_port():
    """A TCP port free on 127.0.0.1 just now (another process may take it before it is used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_name(prefix="t"):
    """A fresh resource name valid for models, endpoint configs and endpoints."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def model_tar_gz(files):
    """A .tar.gz holding `files` (name -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def aws_error_code(type_string):
    """Error code the way botocore derives it from a JSON `__type` (drop `ns#` prefix and `:suffix`)."""
    if type_string is None:
        return None
    return type_string.split("#")[-1].split(":")[0]


class ServerError(AssertionError):
    """The server process misbehaved (did not start, died, did not stop cleanly)."""


class InferdServer:
    """One inferd process. Use as a context manager, or start()/close() explicitly.

    config: dict written as the JSON config file (--config), or None for no config file.
    listen: value for --listen.
    """

    def __init__(self, config=None, listen="127.0.0.1:0", log_level="info", extra_args=()):
        self.config = config
        self.listen = listen
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.tmp = Path(tempfile.mkdtemp(prefix="inferd-e2e-"))
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir()
        self.config_path = None
        if config is not None:
            self.config_path = self.tmp / "config.json"
            self.config_path.write_text(json.dumps(config))
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.listen_line = None
        self.stdout_lines = []
        self.starts = 0
        self._stderr_path = None
        self._stdout_queue = None
        self._stdout_thread = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def command(self):
        cmd = [inferd_bin(), "serve", "--listen", self.listen, "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        return cmd + self.extra_args

    def start(self):
        binary = inferd_bin()
        if not os.access(binary, os.X_OK):
            raise ServerError(f"inferd binary not found or not executable: {binary} "
                              f"(build it, or set INFERD_BIN)")
        self.starts += 1
        self._stderr_path = self.tmp / f"stderr-{self.starts}.log"
        self.stdout_lines = []
        with open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err, cwd=self.tmp)
        self._stdout_queue = queue.Queue()
        self._stdout_thread = threading.Thread(target=self._pump_stdout, args=(self.proc,),
                                               daemon=True)
        self._stdout_thread.start()
        deadline = time.monotonic() + READY_TIMEOUT
        line = None
        while time.monotonic() < deadline:
            try:
                line = self._stdout_queue.get(timeout=0.05)
                break
            except queue.Empty:
                if self.proc.poll() is not None:
                    # Give the pump a moment to deliver a line written just before exiting.
                    try:
                        line = self._stdout_queue.get(timeout=0.5)
                    except queue.Empty:
                        pass
                    break
        if line is None:
            if self.proc.poll() is None:
                self._kill()
                raise ServerError(f"inferd printed no 'listening' line within {READY_TIMEOUT}s\n"
                                  + self.describe())
            raise ServerError(f"inferd exited with code {self.proc.returncode} before it was ready\n"
                              + self.describe())
        m = LISTEN_RE.match(line)
        if not m:
            self._kill()
            raise ServerError(f"unexpected first stdout line {line!r} (expected "
                              f"'inferd listening on http://HOST:PORT')\n" + self.describe())
        self.listen_line = line
        host = m.group(1)
        self.port = int(m.group(2))
        if host in ("0.0.0.0", "*"):
            host = "127.0.0.1"
        elif host in ("[::]", "::"):
            host = "[::1]"
        self.host = host
        self.url = f"http://{host}:{self.port}"
        return self

    def _pump_stdout(self, proc):
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            self._stdout_queue.put(line)
        proc.stdout.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"inferd died (exit code {self.proc.returncode})\n" + self.describe())

    def stop(self, sig=signal.SIGTERM, expect_code=0):
        """Signal the server, wait for it, and assert its exit code. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            msg = (f"inferd had already exited (code {self.proc.returncode}) before it was "
                   f"stopped\n" + self.describe())
            self.proc = None
            raise ServerError(msg)
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            msg = (f"inferd did not stop within {STOP_TIMEOUT}s of {signal.Signals(sig).name}\n"
                   + self.describe())
            self._kill()
            self.proc = None
            raise ServerError(msg)
        if self._stdout_thread is not None:
            self._stdout_thread.join(timeout=5)
        code = self.proc.returncode
        msg = (f"inferd exited with code {code} after {signal.Signals(sig).name}, expected "
               f"{expect_code}\n" + self.describe())
        self.proc = None
        if expect_code is not None and code != expect_code:
            raise ServerError(msg)
        return code

    def restart(self):
        """Graceful stop (exit code 0 asserted) and start again on the same data dir and config.

        The port changes: make new clients afterwards."""
        self.stop()
        return self.start()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self):
        """Kill if still running (no exit-code check) and remove the temp dir."""
        self._kill()
        self.proc = None
        if not os.environ.get("INFERD_E2E_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            self.close()
        return False

    # ---- diagnostics -----------------------------------------------------------------------------

    def stderr_text(self):
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text(errors="replace")

    def stderr_tail(self, lines=40):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def describe(self):
        code = None if self.proc is None else self.proc.poll()
        return (f"command: {' '.join(self.command())}\n"
                f"exit code: {code}\n"
                f"stdout: {self.stdout_lines!r}\n"
                f"--- stderr (tail) ---\n{self.stderr_tail()}\n--- end stderr ---")

    # ---- clients ---------------------------------------------------------------------------------

    def client(self, service="sagemaker", region=DEFAULT_REGION, key=DEFAULT_KEY,
               secret=DEFAULT_SECRET, attempts=1, **config):
        """A boto3 client for `service` pointed at this server. No retries by default."""
        cfg = Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                     connect_timeout=10, read_timeout=60, **config)
        return _SESSION.client(service, region_name=region, endpoint_url=self.url,
                               aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

    def s3_bucket(self, prefix, objects=None):
        """A fresh bucket (named after `prefix`) in inferd's S3 holding `objects` (key -> bytes);
        returns (a path-style S3 client, the bucket's name)."""
        s3 = self.client("s3", s3={"addressing_style": "path"})
        bucket = unique_name(prefix)
        s3.create_bucket(Bucket=bucket)
        for key, body in (objects or {}).items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        return s3, bucket

    def cli_env(self, region=DEFAULT_REGION, key=DEFAULT_KEY, secret=DEFAULT_SECRET):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": str(Path(_ISOLATION_DIR, "config")),
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(_ISOLATION_DIR, "credentials")),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
        })
        return env

    def _cli(self, argv, args, region, key, secret, timeout):
        cmd = argv + [str(a) for a in args] + ["--endpoint-url", self.url, "--output", "json"]
        res = subprocess.run(cmd, env=self.cli_env(region, key, secret), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=timeout, cwd=self.tmp)
        out = res.stdout
        if out.strip():
            try:
                out = json.loads(out)
            except ValueError:
                pass
        return res.returncode, out, res.stderr

    def cli_v1(self, *args, region=DEFAULT_REGION, key=DEFAULT_KEY, secret=DEFAULT_SECRET,
               timeout=120):
        """AWS CLI v1 (`python3 -m awscli`). Returns (returncode, parsed JSON or stdout, stderr)."""
        return self._cli([sys.executable, "-m", "awscli"], args, region, key, secret, timeout)

    def cli_v2(self, *args, region=DEFAULT_REGION, key=DEFAULT_KEY, secret=DEFAULT_SECRET,
               timeout=120):
        """AWS CLI v2 (/usr/bin/aws). Returns (returncode, parsed JSON or stdout, stderr)."""
        return self._cli([AWS_CLI_V2], args, region, key, secret, timeout)

    def sign(self, method="POST", path="/", service="sagemaker", region=DEFAULT_REGION,
             headers=None, body=b"", key=DEFAULT_KEY, secret=DEFAULT_SECRET, clock_offset=None):
        """SigV4-sign a request with botocore's signer (optionally with a skewed clock).
        Returns (url, headers dict, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        req = botocore.awsrequest.AWSRequest(method=method, url=self.url + path, data=body,
                                             headers=dict(headers or {}))
        signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret),
                                         service, region)
        with (skewed_clock(clock_offset) if clock_offset is not None
              else contextlib.nullcontext()):
            signer.add_auth(req)
        prepared = req.prepare()
        return prepared.url, dict(prepared.headers), prepared.body

    def signed_request(self, method="POST", path="/", service="sagemaker", region=DEFAULT_REGION,
                       headers=None, body=b"", key=DEFAULT_KEY, secret=DEFAULT_SECRET,
                       clock_offset=None, timeout=30):
        """Send a SigV4-signed request with `requests`. Returns the requests.Response."""
        import requests
        url, hdrs, data = self.sign(method, path, service, region, headers, body, key, secret,
                                    clock_offset)
        return requests.request(method, url, headers=hdrs, data=data, timeout=timeout)


@contextlib.contextmanager
def skewed_clock(offset):
    """Make botocore's SigV4 signer believe the time is now + offset (a timedelta)."""
    from unittest import mock
    real = botocore.auth.get_current_datetime

    def fake(*args, **kwargs):
        return real(*args, **kwargs) + offset

    with mock.patch("botocore.auth.get_current_datetime", fake):
        yield


def run_inferd(args, timeout=10.0):
    """Run the binary with `args` to completion (for startup-refusal tests). Returns CompletedProcess
    or raises ServerError if it is still running after `timeout` seconds."""
    cmd = [inferd_bin()] + list(args)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise ServerError(f"{' '.join(cmd)} still running after {timeout}s\nstdout: {out}\n"
                          f"stderr: {err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


class InferdTestCase(unittest.TestCase):
    """Base class: one inferd server per test class (setUpClass); checks after every test that it
    is still alive, and at the end that it stops gracefully with exit code 0."""

    server_config = None
    server_listen = "127.0.0.1:0"
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = InferdServer(config=cls.server_config, listen=cls.server_listen)
        cls.addClassCleanup(cls.server.close)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.server.check_alive()

    def tearDown(self):
        self.server.check_alive()
        super().tearDown()

    # ---- helpers ---------------------------------------------------------------------------------

    @classmethod
    def sm(cls, region=DEFAULT_REGION, **kwargs):
        return cls.server.client("sagemaker", region=region, **kwargs)

    def assertAwsError(self, fn, code, status=400, message=None, message_startswith=None,
                       message_contains=()):
        """Call fn(); assert it raises botocore ClientError with `code` / HTTP `status` (and the
        message checks given). Returns the parsed error response."""
        try:
            result = fn()
        except botocore.exceptions.ClientError as e:
            resp = e.response
        else:
            self.fail(f"expected {code} (HTTP {status}), call succeeded: {result!r}")
        err = resp.get("Error", {})
        meta = resp.get("ResponseMetadata", {})
        detail = f"error response: {resp!r}"
        self.assertEqual(err.get("Code"), code, detail)
        self.assertEqual(meta.get("HTTPStatusCode"), status, detail)
        msg = err.get("Message")
        if message is not None:
            self.assertEqual(msg, message, detail)
        if message_startswith is not None:
            self.assertIsNotNone(msg, detail)
            self.assertTrue(msg.startswith(message_startswith),
                            f"message {msg!r} does not start with {message_startswith!r}")
        for part in ([message_contains] if isinstance(message_contains, str) else message_contains):
            self.assertIsNotNone(msg, detail)
            self.assertIn(part, msg, detail)
        return resp

    def assertRecentTime(self, value, slack=300):
        """A timezone-aware datetime within `slack` seconds of now."""
        self.assertIsInstance(value, datetime.datetime)
        self.assertIsNotNone(value.tzinfo, f"{value!r} has no timezone")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - value).total_seconds()), slack, f"{value!r} is not recent")

    def poll_until(self, fn, timeout=30.0, interval=0.1, what="condition"):
        """Bounded polling: call fn() until it returns a truthy value; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
            time.sleep(interval)
