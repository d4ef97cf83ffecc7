"""benchlib's measurement arithmetic that feeds the table's floors (no server; one short disk
loop)."""
import os
import sqlite3
import tempfile
import time
import unittest

import benchlib


def back_to_back(durations_ms):
    """Syncs one after another, as the disk-floor loop runs them: (start s, duration s)."""
    syncs, t = [], 0.0
    for d in durations_ms:
        syncs.append((t, d / 1000))
        t += d / 1000
    return syncs


class ArrivalP99Test(unittest.TestCase):
    def test_an_arrival_waits_for_the_end_of_the_next_sync_that_starts_after_it(self):
        # Syncs of 0.5 ms starting every 1 ms: an arrival in (k, k + 1] ms waits until k + 1.5,
        # so waits are spread over [0.5, 1.5) ms and the p99 is just under 1.5 ms.
        syncs = [(k / 1000, 0.0005) for k in range(1000)]
        self.assertAlmostEqual(benchlib.arrival_p99(syncs) * 1000, 1.49, delta=0.02)

    def test_one_stall_of_a_few_percent_of_the_time_sets_the_p99(self):
        quiet = back_to_back([0.2] * 1000)  # 200 ms of 0.2 ms syncs
        self.assertAlmostEqual(benchlib.arrival_p99(quiet) * 1000, 0.4, delta=0.01)
        # One 10 ms sync among them (10 of 210 ms): arrivals in the 0.2 ms before it wait for it
        # (10–10.2 ms), arrivals during it until the end of the next one (up to 10.2 ms). The
        # slowest 1 % of arrivals (≈ 2.1 ms of them) are those 0.2 ms and the first ≈ 1.9 ms of
        # the stall: p99 ≈ 10.4 − 2.1 = 8.3 ms (arrivals are sampled every 0.1 ms).
        stalled = back_to_back([0.2] * 500 + [10.0] + [0.2] * 500)
        self.assertAlmostEqual(benchlib.arrival_p99(stalled) * 1000, 8.3, delta=0.15)

    def test_fewer_than_two_syncs_give_no_figure(self):
        self.assertEqual(benchlib.arrival_p99([]), 0.0)
        self.assertEqual(benchlib.arrival_p99([(0.0, 0.001)]), 0.0)



class ThreadCostsTest(unittest.TestCase):
    # `perf stat -x , --per-thread` as perf 6 prints it (name-tid,value,unit,event,…).
    PERF = "\n".join([
        "dispatch-run-901,30.00,msec,task-clock,30000000,100.00,0.030,CPUs utilized",
        "dispatch-run-902,10.00,msec,task-clock,10000000,100.00,0.010,CPUs utilized",
        "sns-deliver-950,25.00,msec,task-clock,25000000,100.00,0.025,CPUs utilized",
        "queue-writer-875,<not counted>,msec,task-clock,0,100.00,,",
        "dispatch-run-901,500,,context-switches,30000000,100.00,16.667,K/sec",
        "dispatch-run-902,180,,context-switches,10000000,100.00,18.000,K/sec",
        "sns-deliver-950,90,,context-switches,25000000,100.00,3.600,K/sec",
        "queue-writer-875,<not counted>,,context-switches,0,100.00,,",
        "dispatch-run-901,40,,syscalls:sys_enter_fdatasync,30000000,100.00,,",
    ])

    def test_threads_of_one_name_are_summed_per_item_costliest_first(self):
        got = benchlib.thread_costs(self.PERF, items=100)
        self.assertEqual(got, [
            {"thread": "dispatch-run", "cpu_us_per_item": 400.0, "switches_per_item": 6.8},
            {"thread": "sns-deliver", "cpu_us_per_item": 250.0, "switches_per_item": 0.9}])

    def test_nothing_measured_gives_no_threads(self):
        self.assertEqual(benchlib.thread_costs(self.PERF, items=0), [])
        self.assertEqual(benchlib.thread_costs("", items=100), [])


class PathStagesTest(unittest.TestCase):
    # `perf script -F comm,tid,time,event,trace` of PATH_EVENTS: one invocation at rest (times in
    # seconds; the queue's WAL open as fds 23 and 30, the object index's as fd 7), then a request
    # whose output is never written (not followed), then a second whole invocation 10 ms later.
    @staticmethod
    def one(t0, answer_after=0.00060):
        def at(dt):
            return f"{t0 + dt:.6f}:"
        return [
            f"io  100 {at(0)}  syscalls:sys_exit_recvmsg: 0x2bb",
            f"queue-writer  200 {at(0.00020)}  syscalls:sys_enter_pwrite64: fd: 0x00000017, buf: "
            "0x7f, count: 0x00000018, pos: 0x00010000",
            f"queue-writer  200 {at(0.00025)}  syscalls:sys_enter_fdatasync: fd: 0x00000017",
            f"dispatch-run  301 {at(0.00040)}  syscalls:sys_enter_sendmsg: fd: 0x0000002b, "
            "msg: 0x7f, flags: 0x00004000",
            f"dispatch-run  301 {at(0.00041)}  syscalls:sys_exit_recvmsg: 0xfffffffffffffff5",
            f"dispatch-run  301 {at(answer_after)}  syscalls:sys_exit_recvmsg: 0xf3",
            f"sns-outcomes  400 {at(0.00070)}  syscalls:sys_enter_fdatasync: fd: 0x0000000c",
            f"queue-writer  200 {at(0.00085)}  syscalls:sys_exit_fdatasync: 0x0",
            f"io  100 {at(0.00095)}  syscalls:sys_enter_sendmsg: fd: 0x00000027, msg: 0x7f, flags: "
            "0x00004000",
            f"dispatch-run  301 {at(0.00105)}  syscalls:sys_enter_pwrite64: fd: 0x00000007, buf: "
            "0x7f, count: 0x00000018, pos: 0x00020000",
            f"dispatch-run  301 {at(0.00110)}  syscalls:sys_enter_fdatasync: fd: 0x00000007",
            f"sns-outcomes  400 {at(0.00120)}  syscalls:sys_exit_fdatasync: 0x0",
            f"dispatch-run  301 {at(0.00160)}  syscalls:sys_exit_fdatasync: 0x0",
            f"sns-deliver  500 {at(0.00190)}  syscalls:sys_enter_sendmsg: fd: 0x0000002f, "
            "msg: 0x7f, flags: 0x00004000",
        ]

    def test_each_invocation_is_followed_from_its_request_to_its_post(self):
        script = "\n".join(self.one(10.0) + [
            "io  100 10.005000:  syscalls:sys_exit_recvmsg: 0x2bb",
            "io  100 10.006000:  syscalls:sys_exit_recvmsg: 0xfffffffffffffff5",
        ] + self.one(10.010, answer_after=0.00100))
        got = benchlib.path_stages(script, {23, 30}, {7})
        self.assertEqual(got["invocations"], 2)
        self.assertEqual(set(got) - {"invocations"}, set(benchlib.PATH_STAGES))
        # Medians of two are the second (upper) value; the stages of the first and second are
        # equal except where the answer came after the queue was durable.
        self.assertEqual(got["receive_to_queue_write"], 0.2)
        self.assertEqual(got["queue_sync"], 0.6)  # its own thread's exit, not sns-outcomes'
        self.assertEqual(got["durable_to_202"], 0.1)
        self.assertEqual(got["receive_to_model"], 0.4)
        self.assertEqual(got["model_call"], 0.6)  # 0.2 ms and 0.6 ms: the upper one
        # From the answer: 0.45 ms after the first's (0.6 ms), 0.05 ms after the second's.
        self.assertEqual(got["answer_to_output_write"], 0.45)
        self.assertEqual(got["output_sync"], 0.5)
        # From the later of the two durabilities: the output's (1.6 ms; the queue's was 0.85).
        self.assertEqual(got["durable_to_post"], 0.3)
        self.assertEqual(got["receive_to_post"], 1.9)

    def test_requests_read_with_recvfrom_are_followed_too(self):
        # inferd's server reads with recv(2) (one buffer) since the twentieth round.
        script = "\n".join(line.replace(
            "syscalls:sys_exit_recvmsg: 0x2bb", "syscalls:sys_exit_recvfrom: 0x2bb")
            for line in self.one(10.0))
        self.assertIn("syscalls:sys_exit_recvfrom", script)
        got = benchlib.path_stages(script, {23, 30}, {7})
        self.assertEqual(got["invocations"], 1)
        self.assertEqual(got["receive_to_post"], 1.9)

    def test_nothing_followed_gives_no_stages(self):
        self.assertEqual(benchlib.path_stages("", {23}, {7}), {"invocations": 0})


class WalFdsTest(unittest.TestCase):
    def test_every_fd_open_on_a_wal_is_found_by_its_file_name(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "queue.db")
            writer, reader = sqlite3.connect(path), sqlite3.connect(path)
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("CREATE TABLE t (x)")
            writer.commit()
            reader.execute("SELECT * FROM t").fetchall()  # opens the WAL on this connection too
            fds = benchlib.wal_fds(os.getpid())
            writer.close()
            reader.close()
        self.assertIn("queue.db-wal", fds)
        self.assertEqual(len(fds["queue.db-wal"]), 2)  # one per connection
        for fd in fds["queue.db-wal"]:
            self.assertIsInstance(fd, int)


class PacedFloorTest(unittest.TestCase):
    def test_paced_syncs_follow_the_rate_and_give_no_arrival_figure(self):
        with tempfile.TemporaryDirectory() as d:
            f = benchlib.fsync_floor(d, seconds=0.5, rate=100)
        # One sync due every 10 ms: about 50 in 0.5 s (a back-to-back loop does thousands).
        self.assertGreaterEqual(f["per_s"], 80)
        self.assertLessEqual(f["per_s"], 102)
        self.assertEqual(f["rate"], 100)
        self.assertIsNone(f["arrival_p99_ms"])
        self.assertGreater(f["p50_ms"], 0)


class FreezeProbeTest(unittest.TestCase):
    def test_reports_every_vcpu(self):
        with benchlib.FreezeProbe(0.3) as probe:
            time.sleep(0.1)
        r = probe.result
        self.assertIsNotNone(r)
        self.assertEqual(sorted(c["cpu"] for c in r["per_cpu"]), sorted(os.sched_getaffinity(0)))
        self.assertGreaterEqual(r["frozen_share"], 0)
        self.assertLess(r["frozen_share"], 1)
        self.assertEqual(r["freezes"], sum(c["freezes"] for c in r["per_cpu"]))


if __name__ == "__main__":
    unittest.main()
