"""Pieces of bench/run: the inferd under test and its echo endpoint (set up with boto3), the
native load generator (bench/loadgen, run as a process), and figures read from /proc.

Only the control plane goes through boto3; every measured request is sent by inferd-loadgen.
"""

import bisect
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import harness  # noqa: E402  (the e2e suite's InferdServer: start/stop, clients)
from async_support import echo_instances, echo_stats  # noqa: E402
from harness import ROLE, free_port, model_tar_gz  # noqa: E402

harness.READY_TIMEOUT = 300.0  # a restart over a deep backlog is measured, not refused
harness.STOP_TIMEOUT = 120.0

KEY, SECRET = harness.DEFAULT_KEY, harness.DEFAULT_SECRET
ENDPOINT = "bench-echo"


# ---- /proc ---------------------------------------------------------------------------------------

def proc_status(pid):
    """{'VmRSS': KiB, 'VmHWM': KiB, ...} of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def children(pid):
    """Direct children of a process."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def machine_cpu():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before, after):
    """Cores busy (anything, any process) between two machine_cpu() readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(os.cpu_count() * busy / total, 2) if total else 0.0


def proc_io(pid):
    """/proc/<pid>/io as a dict (write_bytes: what the process sent to the block layer)."""
    out = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value)
    return out


def cpu_seconds(pid):
    """user + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's VmRSS every 20 ms (and VmHWM at the end); peak in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            time.sleep(0.02)

    def __enter__(self):
        reset_hwm(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, proc_status(self.pid)["VmHWM"])
        except OSError:
            pass
        return False


def disk_usage(path):
    """(bytes allocated on disk, apparent bytes) of everything under path."""
    allocated = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def fsync_floor(directory, seconds=2.0, busy_cores=0, rate=None, files=1):
    """The disk's durable-write floor: 4 KiB appends each followed by fdatasync, one at a time,
    for `seconds`, while `busy_cores` other processes spin (the machine as loaded as a benchmark
    keeps it). Returns {'per_s', 'p50_ms', 'p99_ms'} per sync and 'arrival_p99_ms': for requests
    arriving evenly over the window, the time until the first sync that starts after each one
    has finished — what a durable acknowledgement can cost at best on this disk.
    `rate`: one sync due every 1/rate s instead of back to back (an open loop's pace: on these
    VMs a sync after the disk was idle for a few ms costs more than one right after another);
    then there is no 'arrival_p99_ms' (None).
    `files` > 1: each round syncs that many files at once (one thread each, as separate SQLite
    databases commit), and its duration is until the last is durable."""
    paths = [os.path.join(directory, f"fsync-probe-{i}") for i in range(files)]
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(busy_cores)]
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) for p in paths]
    block = os.urandom(4096)
    syncs = []  # (start, duration)

    def one(fd):
        os.write(fd, block)
        os.fdatasync(fd)

    pool = ThreadPoolExecutor(max_workers=files) if files > 1 else None
    try:
        time.sleep(0.1 if burners else 0)
        end = time.monotonic() + seconds
        due = time.perf_counter()
        while time.monotonic() < end:
            if rate:
                due += 1.0 / rate
                time.sleep(max(0.0, due - time.perf_counter()))
            t = time.perf_counter()
            if pool:
                for f in [pool.submit(one, fd) for fd in fds]:
                    f.result()
            else:
                one(fds[0])
            syncs.append((t, time.perf_counter() - t))
    finally:
        if pool:
            pool.shutdown()
        for fd, p in zip(fds, paths):
            os.close(fd)
            os.unlink(p)
        for b in burners:
            b.kill()
            b.wait()
    lat = sorted(d for _, d in syncs)
    return {"per_s": round(len(lat) / seconds, 1), "p50_ms": round(lat[len(lat) // 2] * 1e3, 3),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1e3, 3), "busy_cores": busy_cores,
            "rate": rate, "files": files,
            # Paced syncs leave gaps no acknowledgement would wait through: not a floor then.
            "arrival_p99_ms": None if rate else round(arrival_p99(syncs) * 1e3, 3)}


def arrival_p99(syncs, step=1e-4):
    """p99 over arrivals every `step` seconds of the wait until the end of the first sync that
    starts at or after the arrival (`syncs`: (start, duration) in start order)."""
    if len(syncs) < 2:
        return 0.0
    starts = [t for t, _ in syncs]
    waits = []
    t = starts[0]
    while t < starts[-1]:
        i = bisect.bisect_left(starts, t)
        waits.append(starts[i] + syncs[i][1] - t)
        t += step
    waits.sort()
    return waits[int(len(waits) * 0.99)] if waits else 0.0


# One vCPU's freeze probe (FreezeProbe): a SCHED_FIFO thread pinned to the vCPU sleeps 1 ms at a
# time; a wake-up more than 2 ms late means the vCPU did not run at all meanwhile (no thread of
# the guest can hold off a real-time one that long): the host had taken the vCPU away.
_FREEZE_PROBE = r"""
import json, os, sys, time
cpu, seconds = int(sys.argv[1]), float(sys.argv[2])
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    fifo = True
except OSError:
    fifo = False
lates, end = [], time.monotonic() + seconds
while (t := time.monotonic()) < end:
    time.sleep(0.001)
    late = time.monotonic() - t - 0.001
    if late > 0.002:
        lates.append(late)
print(json.dumps({"cpu": cpu, "fifo": fifo, "seconds": seconds, "freezes": len(lates),
                  "frozen_ms": round(sum(lates) * 1e3, 1),
                  "max_ms": round(max(lates, default=0) * 1e3, 1)}))
"""


class FreezeProbe:
    """How long the VM's vCPUs were frozen by the host during the `with` block (at most
    `seconds`): one probe per vCPU (_FREEZE_PROBE). `result`: per-vCPU figures, and
    `frozen_share` (frozen time ÷ vCPU time), `freezes`, `max_ms` over all; None if a probe
    failed. `fifo` is False when the probes could not run real-time (not root): then a busy
    vCPU's other threads delay them too, and the figure is an upper bound."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.result = None
        self._procs = []

    def __enter__(self):
        self._procs = [subprocess.Popen([sys.executable, "-c", _FREEZE_PROBE, str(cpu),
                                         str(self.seconds)], stdout=subprocess.PIPE, text=True)
                       for cpu in sorted(os.sched_getaffinity(0))]
        return self

    def __exit__(self, *exc):
        per_cpu = []
        for p in self._procs:
            if exc[0] is not None:
                p.terminate()
            out, _ = p.communicate()
            if p.returncode == 0 and out.strip():
                per_cpu.append(json.loads(out))
        if per_cpu and len(per_cpu) == len(self._procs):
            total = sum(c["seconds"] for c in per_cpu) * 1e3
            self.result = {"per_cpu": per_cpu, "fifo": all(c["fifo"] for c in per_cpu),
                           "freezes": sum(c["freezes"] for c in per_cpu),
                           "frozen_share": round(sum(c["frozen_ms"] for c in per_cpu) / total, 4),
                           "max_ms": max(c["max_ms"] for c in per_cpu)}
        return False


def rsa_sign_floor(seconds=2):
    """RSA-2048 private-key operations per second on one core (`openssl speed`, the OpenSSL
    library inferd signs SNS messages with): every notification delivered over HTTP carries one
    such signature. Returns {'sign_per_s', 'ms_per_sign'}, or None without the openssl tool."""
    try:
        res = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "-mr", "rsa2048"],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in res.stdout.splitlines():
        # +F2:<index>:<bits>:<signs per second>:<verifies per second>
        parts = line.split(":")
        if line.startswith("+F2:") and len(parts) >= 5 and parts[2] == "2048":
            per_s = float(parts[3])
            return {"sign_per_s": round(per_s, 1), "ms_per_sign": round(1000 / per_s, 3)}
    return None


def perf_available():
    try:
        return subprocess.run(["perf", "--version"], capture_output=True).returncode == 0
    except OSError:
        return False


def thread_costs(perf_csv, items):
    """inferd's CPU time and context switches per item, by thread name, from `perf stat -x ,
    --per-thread -e task-clock,context-switches,...` output (lines `name-tid,value,unit,event,…`):
    threads of one name (a pool) are summed. A list of dicts, most CPU first."""
    by_name = {}
    for line in perf_csv.splitlines():
        parts = line.split(",")
        if len(parts) < 4 or "-" not in parts[0] or parts[3] not in ("task-clock",
                                                                     "context-switches"):
            continue
        try:
            value = float(parts[1])
        except ValueError:  # "<not counted>": the thread did not run
            continue
        name = parts[0].rsplit("-", 1)[0]
        t = by_name.setdefault(name, {"thread": name, "cpu_ms": 0.0, "switches": 0.0})
        t["cpu_ms" if parts[3] == "task-clock" else "switches"] += value
    out = [{"thread": t["thread"], "cpu_us_per_item": round(t["cpu_ms"] * 1000 / items, 1),
            "switches_per_item": round(t["switches"] / items, 2)}
           for t in by_name.values() if items > 0 and t["cpu_ms"] > 0]
    return sorted(out, key=lambda t: -t["cpu_us_per_item"])


# The tracepoints path_stages reads (a few syscalls, no scheduler events: cheap enough to record
# while the open loop runs without moving its latency much).
PATH_EVENTS = ("syscalls:sys_exit_recvmsg,syscalls:sys_exit_recvfrom,syscalls:sys_enter_sendmsg,"
               "syscalls:sys_enter_pwrite64,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync")
# A socket read returning: recvmsg (scatter reads) or recvfrom (a single buffer, as inferd's server
# reads since the twentieth round).
RECEIVE_EVENTS = ("syscalls:sys_exit_recvmsg", "syscalls:sys_exit_recvfrom")

# path_stages's keys, in the order of an invocation's path (report.path_row says what each
# spans): receive → queue write, the queue's sync, durable → 202; receive → model request, the
# model call; answer → output write, the output's sync, both durable (the queue's write and the
# output) → POST; and the whole, receive → POST.
PATH_STAGES = ("receive_to_queue_write", "queue_sync", "durable_to_202", "receive_to_model",
               "model_call", "answer_to_output_write", "output_sync", "durable_to_post",
               "receive_to_post")


def path_stages(script, queue_fds, output_fds):
    """Where an invocation's time goes at rest, from `perf script -F comm,tid,time,event,trace`
    of PATH_EVENTS recorded on inferd while invocations arrive one at a time (the open loop at
    10 %): each one starts at a request the `io` thread receives and is followed through the
    queue's WAL (`queue_fds`: every fd inferd has it open on), the `dispatch-run` thread's model
    call, the object index's WAL (`output_fds`) and the `sns-deliver` thread's POST. Returns
    {stage: median ms} for PATH_STAGES and `invocations` (how many were followed whole)."""
    events = []
    for line in script.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 4 or not parts[2].endswith(":"):
            continue
        try:
            t = float(parts[2][:-1]) * 1000
        except ValueError:
            continue
        events.append((t, parts[0], parts[1], parts[3].rstrip(":"),
                       parts[4] if len(parts) > 4 else ""))

    def fd_of(rest):
        field = rest.split("fd: ", 1)
        return int(field[1].split(",")[0].strip(), 16) if len(field) > 1 else None

    def positive(rest):  # a return value of more than 0 bytes (errors are -errno, as u64)
        try:
            return 0 < int(rest.strip(), 16) < 1 << 63
        except ValueError:
            return False

    segments, current = [], None
    for e in events:
        if e[1] == "io" and e[3] in RECEIVE_EVENTS and positive(e[4]):
            current = [e]
            segments.append(current)
        elif current is not None:
            current.append(e)
    samples = {name: [] for name in PATH_STAGES}
    for seg in segments:
        t0 = seg[0][0]
        marks = {}
        syncing = {}  # tid → fd whose fdatasync it is in
        for t, comm, tid, event, rest in seg:
            if event == "syscalls:sys_enter_pwrite64":
                fd = fd_of(rest)
                if fd in queue_fds:
                    marks.setdefault("queue_write", t)
                elif fd in output_fds and "answer" in marks:
                    marks.setdefault("output_write", t)
            elif event == "syscalls:sys_enter_fdatasync":
                fd = fd_of(rest)
                syncing[tid] = fd
                if fd in queue_fds and "queue_write" in marks:
                    marks.setdefault("queue_sync", t)
                elif fd in output_fds and "output_write" in marks:
                    marks.setdefault("output_sync", t)
            elif event == "syscalls:sys_exit_fdatasync":
                fd = syncing.pop(tid, None)
                if fd in queue_fds and "queue_sync" in marks:
                    marks.setdefault("queue_durable", t)
                elif fd in output_fds and "output_sync" in marks:
                    marks.setdefault("output_durable", t)
            elif event == "syscalls:sys_enter_sendmsg":
                if comm == "io" and "queue_durable" in marks:
                    marks.setdefault("sent_202", t)
                elif comm == "dispatch-run" and "model" not in marks:
                    marks["model"], marks["model_tid"] = t, tid
                elif comm == "sns-deliver" and "output_durable" in marks:
                    marks.setdefault("post", t)
            elif event in RECEIVE_EVENTS:
                if tid == marks.get("model_tid") and positive(rest):
                    marks.setdefault("answer", t)
        need = ("queue_write", "queue_sync", "queue_durable", "sent_202", "model", "answer",
                "output_write", "output_sync", "output_durable", "post")
        if not all(k in marks for k in need):
            continue
        m = marks
        for name, value in (
                ("receive_to_queue_write", m["queue_write"] - t0),
                ("queue_sync", m["queue_durable"] - m["queue_sync"]),
                ("durable_to_202", m["sent_202"] - m["queue_durable"]),
                ("receive_to_model", m["model"] - t0),
                ("model_call", m["answer"] - m["model"]),
                ("answer_to_output_write", m["output_write"] - m["answer"]),
                ("output_sync", m["output_durable"] - m["output_sync"]),
                ("durable_to_post", m["post"] - max(m["queue_durable"], m["output_durable"])),
                ("receive_to_post", m["post"] - t0)):
            samples[name].append(value)
    out = {"invocations": len(samples["receive_to_post"])}
    for name, values in samples.items():
        if values:
            values.sort()
            out[name] = round(values[len(values) // 2], 3)
    return out


def wal_fds(pid):
    """{file name: {fds}} of the SQLite WALs inferd has open (queue.db-wal, index.db-wal, …;
    one fd per connection)."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith("-wal"):
            out.setdefault(os.path.basename(target), set()).add(int(fd))
    return out


class BackgroundPerf:
    """A perf measurement of inferd (`_run`, in a subclass) on its own thread from the `with`
    block's start, after `delay` s, for `seconds`; joined when the block ends. Does nothing when
    perf is missing; `result` stays None when nothing was measured."""

    def __init__(self, pid, delay, seconds):
        self.pid, self.delay, self.seconds = pid, delay, seconds
        self.result = None
        self._thread = None

    def __enter__(self):
        if perf_available() and self.seconds > 0:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread:
            self._thread.join()
        return False


class PathTrace(BackgroundPerf):
    """Records PATH_EVENTS on inferd (perf record) and follows the invocations of that time
    through their path (path_stages)."""

    def _run(self):
        time.sleep(self.delay)
        fds = wal_fds(self.pid)
        if "queue.db-wal" not in fds or "index.db-wal" not in fds:
            return
        with tempfile.TemporaryDirectory(prefix="inferd-path-") as tmp:
            data = os.path.join(tmp, "path.data")
            rec = subprocess.run(["perf", "record", "-q", "-e", PATH_EVENTS, "-o", data,
                                  "-p", str(self.pid), "--", "sleep", str(self.seconds)],
                                 capture_output=True, text=True)
            if rec.returncode != 0:
                return
            script = subprocess.run(["perf", "script", "-i", data, "-F",
                                     "comm,tid,time,event,trace"],
                                    capture_output=True, text=True)
        stages = path_stages(script.stdout, fds["queue.db-wal"], fds["index.db-wal"])
        if stages["invocations"] > 0:
            self.result = stages


class SyncCounter(BackgroundPerf):
    """Counts inferd's fsync + fdatasync calls (perf stat on the syscall tracepoints) for a few
    seconds in the background, and how far `progress()` (e.g. invocations processed) moved in the
    same interval; with them inferd's CPU time and context switches per item by thread
    (`thread_costs`)."""

    def __init__(self, pid, progress, delay, seconds):
        super().__init__(pid, delay, seconds)
        self.progress = progress

    def _run(self):
        time.sleep(self.delay)
        before = self.progress()
        io_before = proc_io(self.pid)
        t = time.monotonic()
        res = subprocess.run(["perf", "stat", "-x", ",", "--per-thread", "-e",
                              "task-clock,context-switches,"
                              "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                              "-p", str(self.pid), "--", "sleep", str(self.seconds)],
                             capture_output=True, text=True)
        elapsed = time.monotonic() - t
        io_after = proc_io(self.pid)
        moved = self.progress() - before
        syncs = 0
        for line in res.stderr.splitlines():
            parts = line.split(",")
            if len(parts) > 3 and parts[3].startswith("syscalls:") and parts[1].isdigit():
                syncs += int(parts[1])
        if res.returncode == 0 and moved > 0:
            self.result = {"syncs": syncs, "seconds": round(elapsed, 3), "progress": moved,
                           "syncs_per_s": round(syncs / elapsed, 1),
                           "syncs_per_item": round(syncs / moved, 3),
                           "items_per_sync": round(moved / syncs, 1) if syncs else None,
                           "disk_write_bytes_per_item":
                               round((io_after["write_bytes"] - io_before["write_bytes"]) / moved),
                           "disk_write_mib_per_s":
                               round((io_after["write_bytes"] - io_before["write_bytes"]) /
                                     elapsed / 2**20, 1),
                           "threads": thread_costs(res.stderr, moved)}


class RateSampler:
    """How fast `value()` grows between `start` and `end` seconds after entering (a background
    thread reads it at both moments); .rate per second, None if the block ended earlier."""

    def __init__(self, value, start, end):
        self.value, self.start, self.end = value, start, end
        self.rate = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        if self._done.wait(self.start):
            return
        a, t = self.value(), time.monotonic()
        if self._done.wait(self.end - self.start):
            return
        self.rate = round((self.value() - a) / (time.monotonic() - t), 1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()  # a block shorter than `end` gets no rate
        self._thread.join()
        return False


def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gib": round(mem_gib, 1),
            "kernel": platform.release(), "load": [round(x, 2) for x in os.getloadavg()]}


# ---- the load generator --------------------------------------------------------------------------

class LoadgenError(RuntimeError):
    pass


class Loadgen:
    """Runs inferd-loadgen; every run prints one JSON line, returned as a dict."""

    def __init__(self, binary, sink_port, verbose=False):
        self.binary = str(binary)
        self.sink = f"127.0.0.1:{sink_port}"
        self.verbose = verbose

    def command(self, args):
        return [self.binary] + [str(a) for a in args] + (["-v"] if self.verbose else [])

    def run(self, *args, timeout=3600):
        res = subprocess.run(self.command(args), capture_output=True, text=True, timeout=timeout)
        return self._result(res.returncode, res.stdout, res.stderr, args)

    def start(self, *args):
        """In the background (e.g. --sink-only while the endpoint scales); see finish()."""
        proc = subprocess.Popen(self.command(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # Wait for the sink to listen before anything is sent to it.
        line = proc.stderr.readline()
        if "sink listening" not in line:
            out, err = proc.communicate(timeout=10)
            raise LoadgenError(f"inferd-loadgen {args}: {line}{err}{out}")
        proc.args_ = args
        return proc

    def finish(self, proc, timeout=3600):
        out, err = proc.communicate(timeout=timeout)
        return self._result(proc.returncode, out, err, proc.args_)

    @staticmethod
    def _result(code, out, err, args):
        lines = [x for x in out.splitlines() if x.startswith("{")]
        if code != 0 or not lines:
            raise LoadgenError(f"inferd-loadgen {' '.join(map(str, args))} exited {code}:\n"
                               f"{err[-2000:]}{out[-2000:]}")
        return json.loads(lines[-1])


# ---- inferd and the echo endpoint ----------------------------------------------------------------

class DurableEcho:
    """An inferd-echo of its own (not inferd's instance) that answers each invocation once its
    body is durable in a ring file in `directory` (ECHO_DURABLE_FILE): the floor of a durable
    acknowledgement on this machine, with inferd's HTTP stack and nothing else. `port` while in
    the `with` block; `syncs()` its fdatasyncs so far."""

    def __init__(self, build_dir, directory):
        self.binary = Path(build_dir) / "bin" / "inferd-echo"
        self.ring = Path(directory) / "durable-floor.ring"
        self.log = Path(directory) / "durable-floor.log"  # its stderr (nothing read it otherwise)
        self.port = None
        self._proc = None

    def __enter__(self):
        env = dict(os.environ, SAGEMAKER_BIND_TO_PORT="0", SAGEMAKER_BIND_HOST="127.0.0.1",
                   ECHO_DURABLE_FILE=str(self.ring))
        with open(self.log, "w") as log:
            self._proc = subprocess.Popen([str(self.binary), "serve"], env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=log)
        line = self._proc.stdout.readline()  # its only line on stdout
        if "listening on" not in line:
            self._proc.kill()
            self._proc.wait()
            raise RuntimeError("inferd-echo with ECHO_DURABLE_FILE did not start: "
                               + self.log.read_text(errors="replace"))
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def syncs(self):
        return echo_stats(self.port)["durable_syncs"]

    def __exit__(self, *exc):
        self._proc.terminate()
        self._proc.communicate(timeout=30)
        self.ring.unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)
        return False


def server_config(concurrency):
    """inferd's config for the bench: credentials (signatures are verified, as in a deployment),
    notifications auto-confirmed, the default 4 SNS delivery threads all allowed to deliver to
    the one sink at once (its default of 1 in flight per subscription would make the sink's
    round trip what is measured), and the invocation threads sized for the endpoint's
    concurrency. (8 delivery threads, as before the sixteenth round, cost context switches on
    2 cores: end to end ran ≈ 15 % slower, docs/performance-rounds.md, sixteenth round.)"""
    return {
        "credentials": [{"access_key_id": KEY, "secret_access_key": SECRET}],
        "sns_auto_confirm": True,
        "sns_delivery_threads": 4,
        "sns_max_inflight_per_subscription": 4,
        "dispatch_threads": max(64, concurrency),
        "instance_stop_grace_seconds": 5,
        "container_startup_timeout_seconds": 30,
        "health_check_interval_seconds": 1,
        "shutdown_grace_seconds": 30,
    }


class BenchServer:
    """One inferd on a fixed port (kept across restarts) with one async echo endpoint."""

    def __init__(self, build_dir, log_level, concurrency, instances, sink_port):
        os.environ["INFERD_BIN"] = str(Path(build_dir) / "bin" / "inferd")
        self.port = free_port()
        self.concurrency = concurrency
        self.instances = instances
        self.sink_url = f"http://127.0.0.1:{sink_port}/sns"
        self.server = harness.InferdServer(config=server_config(concurrency),
                                           listen=f"127.0.0.1:{self.port}", log_level=log_level)
        self.bucket = "bench"
        self._big_files = tempfile.mkdtemp(prefix="inferd-bench-")

    @property
    def url(self):
        return self.server.url

    @property
    def pid(self):
        return self.server.proc.pid

    def start(self):
        self.server.start()
        self._clients()

    def _clients(self):
        self.sm = self.server.client("sagemaker")
        self.s3 = self.server.client("s3", s3={"addressing_style": "path"})
        self.sns = self.server.client("sns")
        self.runtime = self.server.client("sagemaker-runtime")

    def restart_timed(self):
        """SIGTERM → exit, then start → listening; returns (stop seconds, start seconds)."""
        t0 = time.monotonic()
        self.server.stop()
        t1 = time.monotonic()
        self.server.start()
        t2 = time.monotonic()
        self._clients()
        return t1 - t0, t2 - t1

    def close(self):
        try:
            if self.server.alive():
                self.server.stop(expect_code=None)
        finally:
            self.server.close()
            for f in Path(self._big_files).iterdir():
                f.unlink()
            os.rmdir(self._big_files)

    def setup(self):
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_object(Bucket=self.bucket, Key="model/model.tar.gz",
                           Body=model_tar_gz({"model.bin": b"echo"}))
        self.success = self.sns.create_topic(Name="bench-ok")["TopicArn"]
        self.error = self.sns.create_topic(Name="bench-err")["TopicArn"]
        for topic in (self.success, self.error):
            self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=self.sink_url)
        # inferd-echo buffers bodies; 1 GiB lets it take the 1 GB payload.
        self.sm.create_model(ModelName=ENDPOINT, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "inferd-echo", "ModelDataUrl": f"s3://{self.bucket}/model/model.tar.gz",
            "Environment": {"ECHO_MAX_BODY": str(1 << 30)}})
        self.sm.create_endpoint_config(
            EndpointConfigName=ENDPOINT,
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": ENDPOINT,
                                 "InstanceType": "ml.m5.large",
                                 "InitialInstanceCount": self.instances}],
            AsyncInferenceConfig={
                "OutputConfig": {
                    "S3OutputPath": f"s3://{self.bucket}/out",
                    "S3FailurePath": f"s3://{self.bucket}/failed",
                    "NotificationConfig": {"SuccessTopic": self.success,
                                           "ErrorTopic": self.error}},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": self.concurrency}})
        self.sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
        self.wait_in_service()

    def wait_in_service(self):
        self.sm.get_waiter("endpoint_in_service").wait(
            EndpointName=ENDPOINT, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})

    def scale(self, count):
        """UpdateEndpointWeightsAndCapacities to `count` instances; waits for InService (and,
        scaling to 0, for the instances to be gone). Returns the time of the call (time.time())."""
        before = set(children(self.pid))
        t = time.time()
        self.sm.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                          "DesiredInstanceCount": count}])
        self.wait_in_service()
        if count == 0:
            deadline = time.monotonic() + 60
            while set(children(self.pid)) & before and time.monotonic() < deadline:
                time.sleep(0.1)
        return t

    def echo_port(self):
        ports = echo_instances(self.server, ENDPOINT)
        if not ports:
            raise RuntimeError("no inferd-echo instance of the bench endpoint found in its logs")
        return ports[-1]

    def put_input(self, key, size):
        """An input object of `size` bytes (random for small ones; a sparse file read as zeros for
        large ones, uploaded in parts). Returns its s3:// URI."""
        if size <= 8 << 20:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=os.urandom(size))
        else:
            path = Path(self._big_files) / key.replace("/", "_")
            with open(path, "wb") as f:
                f.truncate(size)
            self.s3.upload_file(str(path), self.bucket, key)
            path.unlink()
        return f"s3://{self.bucket}/{key}"

    def queued(self):
        """inferd's ApproximateBacklogSize of the bench endpoint."""
        return self.metrics().get(
            f'inferd_approximate_backlog_size{{endpoint="{ENDPOINT}"}}', 0)

    def metrics(self):
        """inferd's /metrics as {series{labels}: value} (unsigned GET)."""
        import urllib.request
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out
