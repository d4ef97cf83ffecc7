"""bench/report.py's arithmetic and verdicts on hand-made results: the end-to-end ceiling, the
ratios, and each target's met / not met at its boundary (the figures in docs/performance.md come
from this table)."""
import copy
import unittest

import report

MACHINE = {"cpus": 2, "cpu": "test CPU", "memory_gib": 8, "kernel": "6.0", "load": [0.5, 0, 0]}


def results(**extra):
    r = {"machine": MACHINE, "load_after": [1.0, 0, 0], "quick": False, "duration_s": 20,
         "log_level": "warn", "concurrency": 64, "instances": 1}
    r.update(extra)
    return r


def lat(p50, p99, p999=None):
    return {"p50": p50, "p99": p99, "p999": p999 if p999 is not None else p99}


DIRECT = {"connections": 64, "accepted_per_s": 20000.0, "machine_busy_cores": 1.0,
          "accept_latency_ms": lat(1.0, 4.0)}
ACCEPT = {"connections": 256, "accepted_per_s": 18000.0, "errors": 0, "inferd_cores": 1.2,
          "loadgen_cores": 0.4, "machine_busy_cores": 1.8}
E2E = {"results_per_s_window": 1000.0, "completed_per_s_window": 990.0,
       "processed_per_s_window": 1000.0, "notify_lag_ms": {"p50": 20.0}, "inferd_cores": 1.5,
       "machine_busy_cores": 1.9, "max_outstanding": 10000}


def floor_run(sync_ms, sign_ms, p50=2.5, pair_ms=None, **extra):
    """A run with what the invoke → result floor is made of: the open loop at 150/s, direct
    calls at that rate (p50 0.34 ms), the disk back to back (0.2 ms) and at that pace
    (`sync_ms`), two files at once (`pair_ms`, if any), and a signature of `sign_ms`."""
    r = results(e2e_open_rate=150,
                e2e_1k_open={"result_latency_ms": lat(p50, 8.0), "event_latency_ms": lat(1.0, 3.0)},
                direct_1k_open={"accept_latency_ms": lat(0.34, 1.0)},
                fsync_floor={"per_s": 2000.0, "p50_ms": 0.2, "p99_ms": 1.0},
                fsync_floor_paced={"per_s": 150.0, "p50_ms": sync_ms, "p99_ms": 1.2, "rate": 150},
                rsa_sign={"sign_per_s": 1000 / sign_ms, "ms_per_sign": sign_ms}, **extra)
    if pair_ms is not None:
        r["fsync_pair_paced"] = {"per_s": 150.0, "p50_ms": pair_ms, "p99_ms": 2.0, "rate": 150,
                                 "files": 2}
    return r


def rows(r):
    """The table's rows as lists of cells, keyed by their scenario's first words."""
    out = {}
    for line in report.table(r).splitlines():
        if not line.startswith("| ") or line.startswith("| scenario") or line.startswith("| ---"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        out[cells[0]] = cells
    return out


def find(table, prefix):
    hits = [cells for name, cells in table.items() if name.startswith(prefix)]
    assert len(hits) == 1, f"{prefix!r}: {list(table)}"
    return hits[0]


class CeilingTest(unittest.TestCase):
    def test_ceiling_is_cores_over_machine_time_per_accept_call_signature_and_post(self):
        # accept 1.8 / 18,000 = 100 µs, model call 1.0 / 20,000 = 50 µs, signature 300 µs,
        # the notification's POST as a model call 50 µs: 2 cores / 500 µs = 4,000/s.
        r = results(direct_1k=DIRECT, accept=ACCEPT, e2e_1k=E2E,
                    rsa_sign={"sign_per_s": 3333.3, "ms_per_sign": 0.3})
        cells = find(rows(r), "end-to-end ceiling on 2 cores")
        self.assertIn("accept (100 µs) + model call (50.0 µs) + signature (300 µs) + the "
                      "notification's POST (as a model call, 50.0 µs)", cells[0])
        self.assertEqual(cells[1], "4,000/s")
        self.assertEqual(cells[3], "0.25")  # 1,000 results/s of a 4,000/s ceiling
        self.assertEqual(cells[5], "no: ceiling below 5,000/s")

    def test_a_ceiling_of_5000_or_more_allows_the_target(self):
        r = results(direct_1k=DIRECT, accept=ACCEPT, e2e_1k=E2E,
                    rsa_sign={"sign_per_s": 5000.0, "ms_per_sign": 0.2})
        cells = find(rows(r), "end-to-end ceiling")
        self.assertEqual(cells[1], "5,000/s")  # 2 / (100 + 50 + 200 + 50 µs)
        self.assertEqual(cells[5], "ceiling allows it")


class VerdictTest(unittest.TestCase):
    def test_accept_only_is_met_from_20000_per_second(self):
        for rate, verdict in ((20000.0, "met"), (19999.0, "**not met**")):
            a = dict(ACCEPT, accepted_per_s=rate)
            cells = find(rows(results(direct_1k=DIRECT, accept=a)), "accept-only")
            self.assertEqual(cells[5], verdict, rate)
            self.assertEqual(cells[3], f"{rate / 20000:.3g}")  # ÷ direct 1 KiB

    def test_accept_latency_needs_p99_under_10ms_at_10000_per_second(self):
        direct = dict(DIRECT, accepted_per_s=9999.0, accept_latency_ms=lat(0.2, 0.8))
        for rate, p99, verdict in ((10000, 9.9, "met"), (10000, 10.0, "**not met**"),
                                   (9000, 1.0, "**not met**")):
            r = results(accept_open_rate=rate, direct_1k_10k=direct,
                        accept_open={"accept_latency_ms": lat(1.0, p99, 20.0)})
            cells = find(rows(r), "accept latency")
            self.assertEqual(cells[5], verdict, (rate, p99))
            self.assertEqual(cells[3], f"{p99 / 0.8:.3g}")

    def test_vcpu_freezes_beside_the_accept_latency(self):
        def probe(share, freezes, longest):
            return {"frozen_share": share, "freezes": freezes, "max_ms": longest, "fifo": True,
                    "per_cpu": []}
        direct = dict(DIRECT, accepted_per_s=9999.0, accept_latency_ms=lat(0.2, 0.8),
                      frozen=probe(0.0, 0, 0.0))
        ao = {"accept_latency_ms": lat(2.0, 12.0, 20.0), "frozen": probe(0.0312, 57, 9.5),
              "syncs": {"syncs_per_s": 1700.0, "items_per_sync": 5.9}}
        cells = find(rows(results(accept_open_rate=10000, direct_1k_10k=direct,
                                  accept_open=ao)), "… the VM's vCPUs frozen")
        self.assertEqual(cells[1], "3.12 % of the time (57 freezes, the longest 9.5 ms); inferd "
                                   "synced 1,700 times/s, 5.9 accepts per sync")
        self.assertEqual(cells[2], "direct at the same rate: 0 % (0 freezes, the longest 0 ms)")
        # Older results have no probe: no row.
        ao.pop("frozen")
        self.assertFalse([name for name in rows(results(accept_open_rate=10000, accept_open=ao))
                          if "vCPUs frozen" in name])

    def test_end_to_end_needs_5000_per_second_and_035_of_direct(self):
        e = dict(E2E, results_per_s_window=7000.0)
        t = rows(results(direct_1k=DIRECT, e2e_1k=e))
        self.assertEqual(find(t, "end to end 1 KiB")[5], "met")
        self.assertEqual(find(t, "end to end ÷ direct")[1], "0.35")
        self.assertEqual(find(t, "end to end ÷ direct")[5], "met")
        e = dict(E2E, results_per_s_window=4999.0)
        t = rows(results(direct_1k=DIRECT, e2e_1k=e))
        self.assertEqual(find(t, "end to end 1 KiB")[5], "**not met**")
        self.assertEqual(find(t, "end to end ÷ direct")[5], "**not met**")

    def test_invoke_to_result_is_judged_on_the_notifications_p50(self):
        for p50, verdict in ((1.99, "met"), (2.0, "**not met**")):
            r = results(e2e_open_rate=150, e2e_1k_open={"result_latency_ms": lat(p50, 5.0),
                                                         "event_latency_ms": lat(1.0, 3.0)})
            self.assertEqual(find(rows(r), "invoke → result")[5], verdict, p50)

    def test_the_invoke_to_result_floor_is_three_paced_syncs_and_a_post(self):
        # max(sync, call) + sync + max(sync, signature) + call, at the paced disk's p50.
        for sync_ms, shown, verdict in ((0.55, "1.99 ms", "floor allows it"),
                                        (0.56, "2.02 ms", "no: the floor is 2 ms or more")):
            r = floor_run(sync_ms, 0.3, p50=4.0)
            t = rows(r)
            cells = find(t, "… its floor with inferd's durability")
            self.assertEqual(cells[1], shown)  # 3 × sync + 0.34
            self.assertEqual(cells[3], f"{4.0 / (3 * sync_ms + 0.34):.3g}")
            self.assertEqual(cells[5], verdict)
            paced = find(t, "disk at the open loop's pace")
            self.assertIn("every 1/150 s", paced[0])
            self.assertEqual(paced[2], "back to back p50 0.2 ms")
            self.assertEqual(paced[3], f"{sync_ms / 0.2:.3g}")

    def test_a_slow_signature_or_model_call_sticks_out_of_the_syncs(self):
        # sync 0.3: the call (0.5) outlasts the accept's sync and the signature (0.6) the
        # publish's: 0.5 + 0.3 + 0.6 + 0.5 = 1.9. Without a paced figure the back-to-back one
        # is used.
        r = results(e2e_open_rate=150,
                    e2e_1k_open={"result_latency_ms": lat(3.8, 8.0),
                                 "event_latency_ms": lat(2.0, 3.0)},
                    direct_1k_open={"accept_latency_ms": lat(0.5, 1.0)},
                    fsync_floor={"per_s": 2000.0, "p50_ms": 0.3, "p99_ms": 1.0},
                    rsa_sign={"sign_per_s": 1666.7, "ms_per_sign": 0.6})
        t = rows(r)
        self.assertEqual(find(t, "… its floor with inferd's durability")[1], "1.9 ms")
        self.assertFalse([n for n in t if n.startswith("disk at the open loop's pace")])

    def test_with_the_pair_figure_the_floor_is_the_accepts_sync_then_both_syncs_at_once(self):
        # Held notifications: max(sync, call) + max(pair, signature) + call.
        for pair_ms, sign_ms, shown, verdict in (
                (1.2, 0.3, "2.14 ms", "no: the floor is 2 ms or more"),
                (0.9, 1.0, "1.94 ms", "floor allows it")):
            r = floor_run(0.6, sign_ms, pair_ms=pair_ms)
            t = rows(r)
            cells = find(t, "… its floor with inferd's durability: the accept's sync")
            self.assertEqual(cells[1], shown)  # 0.6 + max(pair, sign) + 0.34
            self.assertEqual(cells[5], verdict)
            both = find(t, "… two files at once")
            self.assertEqual(both[1], f"p50 {pair_ms} ms, p99 2 ms")
            self.assertEqual(both[2], "one file p50 0.6 ms")
            self.assertEqual(both[3], f"{pair_ms / 0.6:.3g}")

    def test_with_the_notification_sent_while_committed_the_floor_is_two_syncs_and_a_post(self):
        # Since the ninth round: max(sync, call) + max(sync, signature) + call; the pair figure
        # is still shown but not part of the floor.
        for sync_ms, sign_ms, shown, verdict in (
                (0.8, 0.3, "1.94 ms", "floor allows it"),
                (0.6, 1.4, "2.34 ms", "no: the floor is 2 ms or more")):
            r = floor_run(sync_ms, sign_ms, pair_ms=1.5, notification_path="sent while committed")
            t = rows(r)
            cells = find(t, "… its floor with inferd's durability: the accept's sync")
            self.assertIn("then the output's sync", cells[0])
            self.assertEqual(cells[1], shown)  # sync + max(sync, sign) + 0.34
            self.assertEqual(cells[5], verdict)
            self.assertEqual(find(t, "… two files at once")[1], "p50 1.5 ms, p99 2 ms")

    def test_with_the_result_written_while_the_accept_syncs_the_syncs_overlap(self):
        # Since the thirteenth round: max(call + max(sync, signature), both at once) + call.
        for sync_ms, sign_ms, pair_ms, shown, verdict in (
                (0.6, 0.3, 1.0, "1.34 ms", "floor allows it"),  # both at once bound it
                (0.6, 0.3, 0.7, "1.28 ms", "floor allows it"),  # call + sync bound it
                (0.6, 1.4, 1.0, "2.08 ms", "no: the floor is 2 ms or more"),  # the signature
                (0.6, 0.3, None, "1.28 ms", "floor allows it")):  # no two-file figure: one sync
            r = floor_run(sync_ms, sign_ms, pair_ms=pair_ms,
                          notification_path="result with the accept")
            cells = find(rows(r), "… its floor with inferd's durability: the accept's sync and")
            self.assertEqual(cells[1], shown)
            self.assertEqual(cells[5], verdict)

    def test_a_1gb_payload_must_grow_rss_by_less_than_64mb(self):
        def run(growth_kib, completed=1):
            g = {"bytes": 10**9, "completed": completed, "failed": 0, "rss_growth_kib": growth_kib,
                 "rss_peak_kib": 100 * 1024 + growth_kib, "rss_before_kib": 100 * 1024,
                 "result_latency_ms": {"max": 30000.0}}
            return find(rows(results(large_1g=g)), "one 1 GB payload")
        self.assertEqual(run(62_000)[5], "met")  # 63.5 MB
        self.assertEqual(run(62_600)[5], "**not met**")  # 64.1 MB
        failed = run(10, completed=0)
        self.assertEqual(failed[5], "**not met**")
        self.assertIn("FAILED", failed[1])

    def test_the_backlog_targets_are_judged_only_at_a_million(self):
        backlog = {"queued": 1_000_000, "rss_kib": 240_000, "rss_after_restart_kib": 50_000,
                   "disk_bytes": 4 << 30, "queue_db_bytes": 375_000_000, "stop_s": 0.2,
                   "start_to_listening_s": 0.8, "start_to_first_accept_s": 2.9,
                   "drain": {"completed": 1000, "completed_per_s": 1500.0, "timed_out": True},
                   "drain_processed_per_s": 1500.0}
        t = rows(results(backlog=backlog, rss_before_backlog_kib=80_000))
        self.assertEqual(find(t, "backlog of 1,000,000 queued")[5], "met")  # 245.8 MB
        self.assertEqual(find(t, "… restart to serving")[5], "met")
        self.assertEqual(find(t, "… data dir on disk")[1], "4,096 MiB (375 B/invocation in "
                         "queue.db*)")
        slow = copy.deepcopy(backlog)
        slow["rss_kib"], slow["start_to_first_accept_s"] = 250_001, 3.0
        t = rows(results(backlog=slow, rss_before_backlog_kib=80_000))
        self.assertEqual(find(t, "backlog of 1,000,000 queued")[5], "**not met**")
        self.assertEqual(find(t, "… restart to serving")[5], "**not met**")
        small = dict(backlog, queued=10_000)
        t = rows(results(backlog=small, rss_before_backlog_kib=80_000))
        self.assertEqual(find(t, "backlog of 10,000 queued")[5], "— (smaller backlog)")


class DurableFloorTest(unittest.TestCase):
    def test_the_loaded_disk_floor_is_judged_against_10ms(self):
        quiet = {"per_s": 3000.0, "p50_ms": 0.3, "p99_ms": 0.5, "busy_cores": 0,
                 "arrival_p99_ms": 0.9}
        for floor, shown, verdict in ((10.0, "10.0 ms", "no: the loaded disk alone is above 10 ms"),
                                      (9.9, "9.9 ms", "floor allows it")):
            busy = dict(quiet, busy_cores=1, arrival_p99_ms=floor)
            r = results(fsync_floor=quiet, fsync_floor_busy=busy, accept_open_rate=10000,
                        accept_open={"accept_latency_ms": lat(2.0, 20.0, 30.0)})
            t = rows(r)
            cells = find(t, "durable floor under load")
            self.assertIn("with 1 other core(s) kept busy", cells[0])
            self.assertTrue(cells[1].startswith(shown), cells[1])
            self.assertEqual(cells[2], "0.9 ms quiet")
            self.assertEqual(cells[3], f"{20.0 / floor:.3g}")  # the accept p99 over the floor
            self.assertEqual(cells[5], verdict)
            self.assertIn("arrival → durable p99 0.9 ms", find(t, "disk floor")[1])
            # Beside the durable floor at the accept's load it is a figure only.
            r["durable_1k_10k"] = {"accepted_per_s": 9990.0, "syncs_per_s": 950.0,
                                   "accept_latency_ms": lat(0.8, 6.0, 9.0),
                                   "machine_busy_cores": 1.3}
            cells = find(rows(r), "durable floor under load")
            self.assertTrue(cells[1].startswith(shown), cells[1])
            self.assertEqual((cells[4], cells[5]), ("—", "—"))


    def test_the_durable_echo_floor_is_judged_against_10ms(self):
        for p99, shown, verdict in ((10.0, "10.0", "no: the durable floor alone is above 10 ms"),
                                    (9.9, "9.9", "floor allows it")):
            df = {"accepted_per_s": 9990.0, "accept_latency_ms": lat(0.8, p99, 18.0),
                  "syncs_per_s": 950.0, "machine_busy_cores": 1.2,
                  "frozen": {"frozen_share": 0.0025, "freezes": 3, "max_ms": 6.0, "fifo": True}}
            r = results(accept_open_rate=10000, durable_1k_10k=df,
                        accept_open={"accept_latency_ms": lat(2.0, 15.0, 30.0)})
            cells = find(rows(r), "durable floor at the accept's load")
            self.assertIn("open loop at 9,990/s", cells[0])
            self.assertEqual(cells[1], f"p50 0.8 ms, p99 {shown} ms, p99.9 18.0 ms (950 "
                                       "syncs/s; the machine 1.2 of 2 cores busy; vCPUs frozen "
                                       "0.25 %)")
            self.assertEqual(cells[2], "inferd's accept p99 15.0 ms")
            self.assertEqual(cells[3], f"{15.0 / p99:.3g}")
            self.assertEqual(cells[5], verdict)
        # Older results have no such run: no row.
        self.assertFalse([name for name in rows(results(accept_open_rate=10000))
                          if "durable floor at" in name])


class ThreadCostTest(unittest.TestCase):
    def test_the_per_thread_figure_sums_all_threads_and_names_the_costliest_first(self):
        threads = [{"thread": "dispatch-run", "cpu_us_per_item": 330.0, "switches_per_item": 6.8},
                   {"thread": "sns-deliver", "cpu_us_per_item": 250.0, "switches_per_item": 1.8},
                   {"thread": "io", "cpu_us_per_item": 70.0, "switches_per_item": 0.6}]
        e2e = dict(E2E, syncs={"syncs_per_item": 0.4, "syncs_per_s": 400.0,
                               "disk_write_bytes_per_item": 30000, "threads": threads})
        cells = find(rows(results(e2e_1k=e2e)), "… inferd's threads")
        self.assertEqual(cells[1], "650 µs of CPU and 9.2 context switches per invocation: "
                         "dispatch-run 330 µs (6.8 switches), sns-deliver 250 µs (1.8 switches), "
                         "io 70.0 µs (0.6 switches)")
        self.assertIn("…", report.by_thread(threads * 3, "accept"))  # more than six: elided

    def test_no_row_without_a_per_thread_figure(self):
        e2e = dict(E2E, syncs={"syncs_per_item": 0.4, "syncs_per_s": 400.0,
                               "disk_write_bytes_per_item": 30000})
        self.assertFalse([n for n in rows(results(e2e_1k=e2e)) if n.startswith("… inferd's")])


class PathTest(unittest.TestCase):
    def test_the_path_row_lists_the_stages_beside_the_two_syncs(self):
        path = {"invocations": 480, "receive_to_queue_write": 0.19, "queue_sync": 0.65,
                "durable_to_202": 0.12, "receive_to_model": 0.5, "model_call": 0.27,
                "answer_to_output_write": 0.3, "output_sync": 0.45, "durable_to_post": 0.31,
                "receive_to_post": 2.2}
        cells = find(rows(floor_run(0.5, 0.25, notification_path="sent while committed",
                                    e2e_path=path)), "… where its time goes")
        self.assertIn("480 invocations", cells[0])
        self.assertEqual(cells[1], "receive → queue write 0.19, queue sync 0.65, durable → 202 "
                         "0.12; receive → model request 0.5, model call 0.27; answer → output "
                         "write 0.3, output sync 0.45, both durable → POST 0.31; receive → POST "
                         "2.2 ms")
        self.assertEqual(cells[2], "its two syncs 1.1 ms")
        self.assertEqual(cells[3], "2")

    def test_no_path_row_without_a_trace(self):
        t = rows(floor_run(0.5, 0.25, notification_path="sent while committed"))
        self.assertFalse([n for n in t if n.startswith("… where its time goes")])


class FormatTest(unittest.TestCase):
    def test_numbers(self):
        self.assertEqual(report.fmt(None), "—")
        self.assertEqual(report.fmt(3.14159, " ms"), "3.14 ms")
        self.assertEqual(report.fmt(42.25), "42.2")
        self.assertEqual(report.fmt(12345.6, "/s"), "12,346/s")
        self.assertEqual(report.ratio(0, 5), "—")
        self.assertEqual(report.ratio(1, 3), "0.333")

    def test_a_run_with_only_some_scenarios_still_renders(self):
        text = report.table(results())
        self.assertIn("| scenario | figure |", text)
        self.assertIn("Machine: 2 × test CPU", text)


if __name__ == "__main__":
    unittest.main()
