"""The docker runtime end to end: inferd runs an OCI image through the Docker Engine API of a
private `podman system service` (runc; storage in a temp dir), with an image this test builds
without a registry (inferd-echo and the libraries it loads, `podman import`). Driven with boto3:
CreateEndpoint → InService, the container answers /ping and /invocations on 127.0.0.1, gets the
model read-only at /opt/ml/model and the container's Environment, runs with the instance type's
memory and CPU limits; a crashed (SIGKILLed) inferd's containers are removed when it starts again;
DeleteEndpoint removes the container (spec §7.1; src/fleet/docker_runtime.h).

Podman missing or failing is a test failure, not a skip (scripts/setup installs it).
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
from pathlib import Path

from harness import ROLE, InferdTestCase, inferd_bin, model_tar_gz, unique_name

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Podman:
    """A private Podman engine serving the Docker API on `<dir>/podman.sock`."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "containers.conf").write_text(CONTAINERS_CONF)
        self.socket = str(self.dir / "podman.sock")
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.dir / "containers.conf"))
        self.args = ["podman", "--root", str(self.dir / "root"), "--runroot",
                     str(self.dir / "runroot"), "--tmpdir", str(self.dir / "tmp"),
                     "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]
        self.log = open(self.dir / "service.log", "wb")
        self.service = subprocess.Popen(self.args + ["system", "service", "--time=0",
                                                     "unix://" + self.socket],
                                        env=self.env, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            if self.service.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.dir / "service.log").read_text(errors="replace")
        self.close()
        raise AssertionError("podman system service did not start: " + log)

    def api(self, method, path):
        conn = UnixConnection(self.socket)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, body
        finally:
            conn.close()

    def run(self, *args, **kwargs):
        return subprocess.run(self.args + list(args), env=self.env, capture_output=True,
                              text=True, timeout=120, **kwargs)

    def import_binary(self, binary, name):
        """An image holding `binary` at /<name of binary> and the libraries it loads."""
        root = Path(tempfile.mkdtemp(dir=self.dir, prefix="rootfs-"))
        (root / "opt/ml/model").mkdir(parents=True)
        (root / "tmp").mkdir()
        shutil.copy(binary, root / Path(binary).name)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"(/\S+)", ldd):
            target = root / lib.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(lib), target)
        tar = self.dir / (root.name + ".tar")
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        out = self.run("import", "--change", f'ENTRYPOINT ["/{Path(binary).name}"]', str(tar),
                       name)
        if out.returncode != 0:
            raise AssertionError(f"podman import failed: {out.stdout}{out.stderr}")

    def containers(self, owner):
        filters = json.dumps({"label": [f"io.inferd.owner={owner}"]})
        status, body = self.api("GET", "/containers/json?all=1&filters="
                                + urllib.parse.quote(filters))
        assert status == 200, body
        return body

    def close(self):
        if self.service.poll() is None:
            self.run("rm", "--all", "--force", "--time", "0")
        self.service.terminate()
        try:
            self.service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.service.kill()
            self.service.wait()
        self.log.close()
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(self.dir))]
        for m in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class DockerRuntimeTest(InferdTestCase):
    IMAGE = "localhost/inferd-echo-e2e:1"

    @classmethod
    def setUpClass(cls):
        started = time.monotonic()
        cls.podman_dir = tempfile.mkdtemp(prefix="inferd-e2e-podman-")
        cls.podman = Podman(cls.podman_dir)
        cls.addClassCleanup(cls.podman.close)
        cls.podman.import_binary(str(Path(inferd_bin()).parent / "inferd-echo"), cls.IMAGE)
        print(f"podman engine and image ready in {time.monotonic() - started:.1f} s")
        cls.server_config = {
            "instance_stop_grace_seconds": 5,
            "docker_host": "unix://" + cls.podman.socket,
            "image_runtimes": [{"pattern": "localhost/*", "runtime": "docker"}],
            "instance_types": {"ml.m5.large": {"vcpu": 1, "memory_mib": 256}},
        }
        super().setUpClass()
        cls.s3, cls.bucket = cls.server.s3_bucket("models", {
            "echo/model.tar.gz": model_tar_gz({"model.bin": b"weights", "code/x.py": b"#"})})

    def owner(self):
        return str(self.server.data_dir)

    def logs(self, name):
        out = subprocess.run([inferd_bin(), "logs", name, "--data-dir", str(self.server.data_dir)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def create(self, image):
        sm = self.sm()
        name = unique_name("docker")
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": image, "ModelDataUrl": f"s3://{self.bucket}/echo/model.tar.gz",
            "Environment": {"TS_MAX_REQUEST_SIZE": "100000000",
                            "TS_DEFAULT_RESPONSE_TIMEOUT": "1000"}})
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return name

    def invoke(self, port, headers=None, body=b"hello"):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     method="POST", headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()

    def test_endpoint_runs_the_image_and_survives_an_inferd_crash(self):
        sm = self.sm()
        name = self.create(self.IMAGE)
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        variant = sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        self.assertEqual(variant["CurrentInstanceCount"], 1)
        self.assertEqual(variant["DeployedImages"][0]["SpecifiedImage"], self.IMAGE)
        self.assertIn("localhost/inferd-echo-e2e", variant["DeployedImages"][0]["ResolvedImage"])

        # `inferd logs` names the container and its address, then shows the server's own output.
        logs = self.poll_until(lambda: (lambda text: "inferd-echo listening on 0.0.0.0:8080" in text
                                        and text)(self.logs(name)),
                               timeout=15, what="the container's output in inferd logs")
        port = int(re.search(r"docker runtime: container \w+ of image \S+ on 127\.0\.0\.1:(\d+)",
                             logs).group(1))
        self.assertIn("ml.m5.large: 1 vCPUs, 256 MiB memory, 0 GPUs (enforced as limits)", logs)
        self.assertEqual(self.invoke(port), (200, "hello"))
        env = json.loads(self.invoke(port, {"X-Echo-Env": "1"})[1])
        self.assertEqual(env["TS_MAX_REQUEST_SIZE"], "100000000")
        self.assertEqual(env["TS_DEFAULT_RESPONSE_TIMEOUT"], "1000")
        self.assertEqual(env["SAGEMAKER_BIND_TO_PORT"], "8080")
        model = json.loads(self.invoke(port, {"X-Echo-Model": "1"})[1])
        self.assertEqual(model, {"dir": "/opt/ml/model", "writable": False,
                                 "files": {"model.bin": "weights", "code/x.py": "#"}})

        [container] = self.podman.containers(self.owner())
        self.assertEqual(container["Labels"]["io.inferd.endpoint"], name)
        status, info = self.podman.api("GET", f"/containers/{container['Id']}/json")
        self.assertEqual(status, 200)
        self.assertEqual(info["HostConfig"]["Memory"], 256 << 20)
        self.assertEqual(info["HostConfig"]["NanoCpus"], 1_000_000_000)
        self.assertTrue(info["HostConfig"]["Init"])
        self.assertEqual(info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostIp"], "127.0.0.1")

        # inferd dies without stopping anything: its container keeps running. Started again, it
        # removes the leftover and brings the endpoint's instance back in a new container.
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        self.assertEqual([c["Id"] for c in self.podman.containers(self.owner())],
                         [container["Id"]])
        self.server.start()
        sm = self.sm()

        def replaced():
            ids = [c["Id"] for c in self.podman.containers(self.owner())]
            return len(ids) == 1 and ids[0] != container["Id"] and ids
        self.poll_until(replaced, timeout=30, what="the leftover replaced by a new container")
        self.assertEqual(sm.describe_endpoint(EndpointName=name)["EndpointStatus"], "InService")

        sm.delete_endpoint(EndpointName=name)
        sm.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        self.assertEqual(self.podman.containers(self.owner()), [])

    def test_missing_image_fails_naming_it(self):
        sm = self.sm()
        name = self.create("localhost/no-such-image:1")
        desc = self.poll_until(
            lambda: (lambda d: d["EndpointStatus"] == "Failed" and d)(
                sm.describe_endpoint(EndpointName=name)),
            timeout=60, what="the endpoint to fail")
        self.assertTrue(desc["FailureReason"].startswith(
            "image localhost/no-such-image:1 is not available: it is not on the engine and "
            "pulling it failed: "), desc["FailureReason"])


if __name__ == "__main__":
    unittest.main()
