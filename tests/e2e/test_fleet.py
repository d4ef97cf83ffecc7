"""Model hosting with the `process` runtime, driven with boto3: CreateEndpoint fetches and unpacks
the artifact from inferd's own S3, starts `inferd-echo` instances (the built-in contract server in
inferd's bin directory), health-checks them and moves the endpoint to InService, or to Failed with
a FailureReason the user can act on; DeleteEndpoint stops them (spec §1.4, §7.1; src/fleet).
"""

import re
import signal
import subprocess
import unittest
import urllib.error
import urllib.request

import botocore.exceptions

from harness import ROLE, InferdTestCase, inferd_bin, model_tar_gz, unique_name

STARTUP_TIMEOUT = 3  # container_startup_timeout_seconds in the server config below


class FleetTestCase(InferdTestCase):
    """One server per class, a bucket holding the echo artifact (and a broken one), and helpers
    creating endpoints on inferd-echo and finding their instances. No tests of its own."""

    server_config = {
        "container_startup_timeout_seconds": STARTUP_TIMEOUT,
        "instance_stop_grace_seconds": 5,
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3, cls.bucket = cls.server.s3_bucket("models", {
            "echo/model.tar.gz": model_tar_gz({"model.bin": b"weights", "code/inference.py": b"#"}),
            "broken/model.tar.gz": b"not a tar.gz"})

    def setUp(self):
        super().setUp()
        self.client = self.sm()

    def create_config(self, image="inferd-echo", key="echo/model.tar.gz", count=1,
                      environment=None):
        """A model and an endpoint configuration, both named as returned."""
        name = unique_name("fleet")
        container = {"Image": image, "ModelDataUrl": f"s3://{self.bucket}/{key}"}
        if environment:
            container["Environment"] = environment
        self.client.create_model(ModelName=name, PrimaryContainer=container,
                                 ExecutionRoleArn=ROLE)
        self.client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": count}])
        return name

    def create_endpoint(self, **config):
        name = self.create_config(**config)
        self.client.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return name

    def wait_in_service(self, name):
        self.client.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return self.client.describe_endpoint(EndpointName=name)

    def wait_failed(self, name):
        with self.assertRaises(botocore.exceptions.WaiterError):
            self.client.get_waiter("endpoint_in_service").wait(
                EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        desc = self.client.describe_endpoint(EndpointName=name)
        self.assertEqual(desc["EndpointStatus"], "Failed", desc)
        return desc

    def delete_and_wait(self, name):
        self.client.delete_endpoint(EndpointName=name)
        self.client.get_waiter("endpoint_deleted").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def instance_dirs(self, name):
        root = self.server.data_dir / "instances"
        return sorted(p for p in root.glob(name.lower() + "-*")) if root.exists() else []

    def instance_ports(self, name):
        """Ports of the endpoint's instances so far, from each one's log."""
        ports = []
        for d in self.instance_dirs(name):
            m = re.search(r"inferd-echo listening on 127\.0\.0\.1:(\d+)", (d / "log").read_text())
            if m:
                ports.append(int(m.group(1)))
        return ports

    @staticmethod
    def pings(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False


class FleetTest(FleetTestCase):

    # ---- tests -----------------------------------------------------------------------------------

    def test_endpoint_in_service_then_deleted(self):
        name = self.create_endpoint(count=2, environment={"ECHO_DELAY_MS": "0"})
        self.assertEqual(self.client.describe_endpoint(EndpointName=name)["EndpointStatus"],
                         "Creating")
        desc = self.wait_in_service(name)
        self.assertEqual(desc["EndpointStatus"], "InService")
        self.assertNotIn("FailureReason", desc)
        variant = desc["ProductionVariants"][0]
        self.assertEqual(variant["VariantName"], "AllTraffic")
        self.assertEqual(variant["CurrentInstanceCount"], 2)
        self.assertEqual(variant["DesiredInstanceCount"], 2)
        self.assertEqual(variant["CurrentWeight"], 1.0)
        self.assertNotIn("VariantStatus", variant)
        image = variant["DeployedImages"][0]
        self.assertEqual(image["SpecifiedImage"], "inferd-echo")
        self.assertTrue(image["ResolvedImage"].endswith("/inferd-echo"), image)
        self.assertIn("ResolutionTime", image)
        # Each instance logs in its own directory: the contract server announced its port.
        dirs = self.instance_dirs(name)
        self.assertEqual(len(dirs), 2, dirs)
        for d in dirs:
            self.assertIn("inferd-echo listening on 127.0.0.1:", (d / "log").read_text())
        # `inferd logs ENDPOINT` shows both instances' logs, while the server runs.
        logs = subprocess.run([inferd_bin(), "logs", name, "--data-dir", str(self.server.data_dir)],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(logs.returncode, 0, logs.stderr)
        self.assertEqual(logs.stdout.count("==> "), 2, logs.stdout)
        self.assertEqual(logs.stdout.count("inferd-echo listening on 127.0.0.1:"), 2, logs.stdout)
        missing = subprocess.run([inferd_bin(), "logs", "no-such-endpoint", "--data-dir",
                                  str(self.server.data_dir)], capture_output=True, text=True,
                                 timeout=30)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no endpoint named no-such-endpoint", missing.stderr)

        self.delete_and_wait(name)
        self.assertEqual(self.client.list_endpoints(NameContains=name)["Endpoints"], [])

    def test_failing_ping_fails_the_endpoint(self):
        name = self.create_endpoint(environment={"ECHO_FAIL_PING": "1"})
        desc = self.wait_failed(name)
        self.assertEqual(desc["FailureReason"],
                         f"/ping did not pass within {STARTUP_TIMEOUT} s")
        self.delete_and_wait(name)

    def test_missing_artifact_is_named(self):
        name = self.create_endpoint(key="nope/model.tar.gz")
        desc = self.wait_failed(name)
        self.assertTrue(desc["FailureReason"].startswith(
            f"model artifact s3://{self.bucket}/nope/model.tar.gz could not be fetched: "),
            desc["FailureReason"])
        self.delete_and_wait(name)

    def test_broken_artifact_is_named(self):
        name = self.create_endpoint(key="broken/model.tar.gz")
        desc = self.wait_failed(name)
        self.assertTrue(desc["FailureReason"].startswith(
            f"model artifact s3://{self.bucket}/broken/model.tar.gz is not a valid .tar.gz: "),
            desc["FailureReason"])

    def test_unknown_image_is_named(self):
        name = self.create_endpoint(image="registry.example.com/pytorch:2")
        desc = self.wait_failed(name)
        self.assertEqual(desc["FailureReason"],
                         "no runtime for image registry.example.com/pytorch:2 "
                         "(configure one in image_runtimes)")

    def test_updates_roll_out(self):
        name = self.create_endpoint()
        self.wait_in_service(name)
        self.client.update_endpoint_weights_and_capacities(
            EndpointName=name,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                          "DesiredInstanceCount": 2}])
        self.assertEqual(self.client.describe_endpoint(EndpointName=name)["EndpointStatus"],
                         "Updating")
        desc = self.wait_in_service(name)
        self.assertEqual(desc["ProductionVariants"][0]["CurrentInstanceCount"], 2)

        # UpdateEndpoint to another configuration: blue/green, then the new one is current.
        other = self.create_config()
        self.client.update_endpoint(EndpointName=name, EndpointConfigName=other)
        desc = self.wait_in_service(name)
        self.assertEqual(desc["EndpointConfigName"], other)
        self.assertNotIn("PendingDeploymentSummary", desc)
        self.assertEqual(desc["ProductionVariants"][0]["CurrentInstanceCount"], 1)

        # An update that cannot start leaves the endpoint InService on its current configuration.
        broken = self.create_config(key="broken/model.tar.gz")
        self.client.update_endpoint(EndpointName=name, EndpointConfigName=broken)
        desc = self.wait_in_service(name)
        self.assertEqual(desc["EndpointConfigName"], other)
        self.assertIn("is not a valid .tar.gz", desc["FailureReason"])
        self.delete_and_wait(name)

    def test_scale_to_zero_and_back(self):
        name = self.create_endpoint()
        self.wait_in_service(name)
        self.poll_until(lambda: self.instance_ports(name), what="the instance's port")
        [first] = self.instance_ports(name)
        self.assertTrue(self.pings(first))

        def scale(count):
            self.client.update_endpoint_weights_and_capacities(
                EndpointName=name,
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                              "DesiredInstanceCount": count}])
            return self.wait_in_service(name)

        desc = scale(0)
        self.assertEqual(desc["EndpointStatus"], "InService")
        self.assertEqual(desc["ProductionVariants"][0]["CurrentInstanceCount"], 0)
        self.assertEqual(desc["ProductionVariants"][0]["DesiredInstanceCount"], 0)
        self.poll_until(lambda: not self.pings(first), timeout=15, what="the instance to stop")

        desc = scale(1)
        self.assertEqual(desc["ProductionVariants"][0]["CurrentInstanceCount"], 1)
        self.assertEqual(desc["ProductionVariants"][0]["DesiredInstanceCount"], 1)
        self.poll_until(lambda: len(self.instance_ports(name)) == 2, what="a new instance")
        second = [p for p in self.instance_ports(name) if p != first]
        self.assertEqual(len(second), 1)
        self.assertTrue(self.pings(second[0]))
        self.delete_and_wait(name)


class FleetRestartTest(FleetTestCase):
    """A restarted inferd brings back the instances of its InService endpoints; a killed one takes
    its instances along (they die with it, never left orphaned)."""

    server_config = {"instance_stop_grace_seconds": 5}

    def test_killed_inferd_takes_its_instances_along(self):
        name = self.create_endpoint()
        self.wait_in_service(name)
        [port] = self.poll_until(lambda: self.instance_ports(name), what="the instance's port")
        self.assertTrue(self.pings(port))
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        self.poll_until(lambda: not self.pings(port), timeout=10,
                        what="the instance to die with inferd")
        self.server.start()  # the next test gets a running server

    def test_restart_restarts_instances(self):
        name = self.create_endpoint()
        self.wait_in_service(name)
        root = self.server.data_dir / "instances"
        before = set(root.iterdir())
        self.server.restart()
        sm = self.sm()

        def restarted():
            new = [d for d in root.iterdir() if d not in before]
            return new and "listening on" in (new[0] / "log").read_text()
        self.poll_until(restarted, timeout=30, what="the instance to be started again")
        self.assertEqual(sm.describe_endpoint(EndpointName=name)["EndpointStatus"], "InService")


if __name__ == "__main__":
    unittest.main()
