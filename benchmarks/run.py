"""Speed and memory of enricher, each figure a ratio against a baseline measured in the same run.

Run from the repository root:

    pip install -e '.[bench]'
    python benchmarks/run.py

It reads the real process-creation events and SigmaHQ rules beside the
repository (``../shared/data``, or ``ENRICHER_SHARED_DATA``), prints a
report, writes ``benchmarks/results.json`` and draws
``benchmarks/rules-scaling.png``. Every time is the best of ``--repeat``
runs on one core (one Python process), except the HTTP runs.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import http.client
import json
import multiprocessing
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ENRICHER_SHARED_DATA", REPO.parent / "shared" / "data"))
ECS_EVENTS = DATA / "events" / "ecs" / "process_creation.ecs.ndjson.gz"
RULE_FOLDERS = [DATA / "sigma-rules" / "process_creation", DATA / "sigma-rules" / "other_process_creation"]

sys.path.insert(0, str(REPO))

from enricher.detector import Detector  # noqa: E402
from enricher.rules.fieldmap import FieldMapping  # noqa: E402
from enricher.rules.loader import RuleSet, load_rules  # noqa: E402
from enricher.rules.logsource import LogsourceTable  # noqa: E402


def best_time(function: Callable[[], Any], repeat: int) -> float:
    """Return the shortest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def decode_each(documents: list[bytes]) -> None:
    # Results are dropped as they come, as a server drops each batch after
    # responding. Keeping 8,000 dicts alive would time the garbage collector.
    for document in documents:
        orjson.loads(document)


def match_each(detector: Detector, events: list[dict[str, Any]], pass_size: int | None = None) -> None:
    """Match every event, forgetting the detector's per-value caches every ``pass_size`` events.

    The caches remember literal hits per field value. The real events repeat
    values as real streams do, but a replicated list would repeat every value
    exactly, so each pass over the real events starts with empty caches.
    """
    pass_size = pass_size or len(events)
    for start in range(0, len(events), pass_size):
        detector.clear_caches()
        for event in events[start : start + pass_size]:
            detector.match(event)


def replicate(items: list[Any], count: int) -> list[Any]:
    return [items[index % len(items)] for index in range(count)]


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def bench_matching(lines: list[bytes], repeat: int, replicated: int, naive_sample: int) -> dict[str, Any]:
    events = [orjson.loads(line) for line in lines]
    # The benchmark keeps hundreds of thousands of events alive. Without
    # freezing them, every full collection would walk them and slow the timed code.
    gc.freeze()
    decode_seconds = best_time(lambda: decode_each(lines), repeat)
    mapping = FieldMapping.default()
    logsources = LogsourceTable.load()
    results: dict[str, Any] = {"events": len(events), "decode_events_per_second": len(events) / decode_seconds}

    default = Detector(load_rules(), mapping, logsources)
    default_seconds = best_time(lambda: match_each(default, events), repeat)
    results["default_rule"] = {
        "decode_seconds": decode_seconds,
        "match_seconds": default_seconds,
        "match_to_decode": default_seconds / decode_seconds,
    }

    started = time.perf_counter()
    corpus = load_rules(RULE_FOLDERS)
    load_seconds = time.perf_counter() - started
    results["load"] = {"rules": len(corpus.rules), "rejected": len(corpus.errors), "seconds": load_seconds}

    indexed = Detector(corpus, mapping, logsources, indexed=True)
    naive = Detector(corpus, mapping, logsources, indexed=False)
    many = replicate(events, replicated)
    gc.freeze()
    cpu_started = time.process_time()
    indexed_seconds = best_time(lambda: match_each(indexed, many, len(events)), 1)
    cpu_seconds = time.process_time() - cpu_started
    sample = events[:naive_sample]
    naive_seconds = best_time(lambda: match_each(naive, sample), 1)
    results["all_rules"] = {
        "rules": len(corpus.rules),
        "indexed_events": len(many),
        "indexed_events_per_second": len(many) / indexed_seconds,
        "indexed_events_per_cpu_second": len(many) / cpu_seconds,
        "naive_events": len(sample),
        "naive_events_per_second": len(sample) / naive_seconds,
        "speedup": (len(many) / indexed_seconds) / (len(sample) / naive_seconds),
    }

    scaling = []
    for count in (1, 10, 100, len(corpus.rules)):
        step = max(1, len(corpus.rules) // count)
        subset = RuleSet(rules=corpus.rules[::step][:count])
        indexed_subset = Detector(subset, mapping, logsources, indexed=True)
        naive_subset = Detector(subset, mapping, logsources, indexed=False)
        naive_events = events if count <= 100 else sample
        indexed_rate = len(events) / best_time(lambda: match_each(indexed_subset, events), repeat)
        naive_rate = len(naive_events) / best_time(lambda: match_each(naive_subset, naive_events), 1)
        scaling.append({"rules": len(subset.rules), "indexed_events_per_second": indexed_rate, "naive_events_per_second": naive_rate})
    results["scaling"] = scaling
    return results


def plot_scaling(scaling: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = [row["rules"] for row in scaling]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(rules, [row["indexed_events_per_second"] for row in scaling], marker="o", label="indexed (candidate rules)")
    axes.plot(rules, [row["naive_events_per_second"] for row in scaling], marker="s", label="naive (every rule)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("Sigma rules loaded")
    axes.set_ylabel("events per second, one core")
    axes.set_title("enricher matching throughput")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONNECTIONS_PER_CLIENT = 4
"""Keep-alive connections per client process; several let the kernel spread them over the workers."""


def _post_loop(port: int, body: bytes, seconds: float, queue: Any) -> None:
    import threading

    counts = [0] * CONNECTIONS_PER_CLIENT
    deadline = time.monotonic() + seconds

    def post(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < deadline:
            connection.request("POST", "/ingest", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"/ingest returned {response.status}")
            counts[slot] += 1
        connection.close()

    threads = [threading.Thread(target=post, args=(slot,)) for slot in range(CONNECTIONS_PER_CLIENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(sum(counts))


def _worker_peak_rss_kib(server: subprocess.Popen) -> list[int]:
    """Return VmHWM of the server's worker processes (or the server itself with one worker)."""
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    pids = [int(pid) for pid in children] or [server.pid]
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        except FileNotFoundError:
            continue
    # uvicorn's supervisor also forks a resource tracker; workers are the large ones.
    return sorted(peaks, reverse=True)


def start_server(workers: int, workdir: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENRICHER_")}
    env.update(env_extra)
    server = subprocess.Popen(
        [sys.executable, "-m", "enricher", "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("enricher serve did not become ready")


_DECODE_SCRIPT = """
import sys, time, orjson
body = open(sys.argv[1], "rb").read()
times = []
for _ in range(7):
    started = time.perf_counter()
    for _ in range(100):
        orjson.loads(body)
    times.append((time.perf_counter() - started) / 100)
print(min(times))
"""


def body_decode_seconds(body: bytes) -> float:
    """Time orjson decoding of one body in a fresh process, as a worker decodes it.

    A fresh process has a small heap, like a worker. This process keeps all
    the benchmark's events alive, which would slow allocation-heavy decoding.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(body)
        handle.flush()
        output = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, handle.name], capture_output=True, text=True, check=True)
    return float(output.stdout)


def bench_ingest(lines: list[bytes], seconds: float, clients: int) -> dict[str, Any]:
    results: dict[str, Any] = {"clients": clients, "seconds": seconds, "runs": []}
    for batch in (125, 500):
        body = b"[" + b",".join(lines[:batch]) + b"]"
        decode_rate = batch / body_decode_seconds(body)
        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as workdir:
                server, port = start_server(workers, Path(workdir), {})
                try:
                    queue: Any = multiprocessing.Queue()
                    processes = [
                        multiprocessing.Process(target=_post_loop, args=(port, body, seconds, queue)) for _ in range(clients)
                    ]
                    for process in processes:
                        process.start()
                    requests = sum(queue.get(timeout=seconds + 120) for _ in processes)
                    for process in processes:
                        process.join()
                    peaks = _worker_peak_rss_kib(server)
                finally:
                    server.terminate()
                    server.wait(timeout=30)
            rate = requests * batch / seconds
            results["runs"].append(
                {
                    "batch": batch,
                    "workers": workers,
                    "events_per_second": rate,
                    "decode_events_per_second": decode_rate,
                    "to_decode": rate / decode_rate,
                    "worker_peak_rss_mib": [round(peak / 1024, 1) for peak in peaks[:workers]],
                }
            )
    return results


def bench_memory_all_rules() -> dict[str, Any]:
    """Peak RSS of one worker with the whole corpus loaded."""
    with tempfile.TemporaryDirectory() as workdir:
        rules = os.pathsep.join(str(folder) for folder in RULE_FOLDERS)
        server, _port = start_server(1, Path(workdir), {"ENRICHER_RULES": rules})
        try:
            peaks = _worker_peak_rss_kib(server)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"rules": "whole corpus", "worker_peak_rss_mib": round(peaks[0] / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best counts")
    parser.add_argument("--replicated", type=int, default=200_000, help="events for the all-rules indexed run")
    parser.add_argument("--naive-sample", type=int, default=1000, help="events for naive runs with the whole corpus")
    parser.add_argument("--http-seconds", type=float, default=10.0, help="duration of each /ingest run")
    parser.add_argument("--http-clients", type=int, default=2, help="client processes posting to /ingest")
    parser.add_argument("--skip-http", action="store_true", help="skip the /ingest and memory runs")
    args = parser.parse_args()

    if not ECS_EVENTS.exists():
        print(f"benchmarks need the real events at {ECS_EVENTS}; set ENRICHER_SHARED_DATA", file=sys.stderr)
        return 2
    with gzip.open(ECS_EVENTS, "rb") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]

    report: dict[str, Any] = {"machine": machine()}
    report["matching"] = bench_matching(lines, args.repeat, args.replicated, args.naive_sample)
    plot_scaling(report["matching"]["scaling"], REPO / "benchmarks" / "rules-scaling.png")
    if not args.skip_http:
        report["ingest"] = bench_ingest(lines, args.http_seconds, args.http_clients)
        report["memory"] = bench_memory_all_rules()
    report["benchmark_process_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    (REPO / "benchmarks" / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
