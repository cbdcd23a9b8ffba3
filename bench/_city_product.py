"""``bench/pairing.py --city-product URL``: the product's own ``gridsvc pair`` on a loaded city.

Every figure is the command a district runs, on the database at URL (load it first with
``gridsvc demo --households 100000``), with the load average beside it (the machine is shared):

1. the same per-community time limit on one process (GRIDSVC_WORKERS=1, the baseline) and on
   ``--workers`` processes: wall seconds, speed-up, peak memory summed over all processes;
2. ``--budget SECONDS`` on ``--workers`` processes: wall seconds and the median cost and gap,
   then a sample of communities solved again at the 10 s default (``--time-limit 10``) to show
   what the budget gave up (median cost ratio);
3. ``--queue`` with two ``gridsvc worker`` processes (started here, stopped after);
4. the same with one worker killed (SIGKILL) when half the communities have ended: the run
   completes; the recovery time is from the kill to the killed worker's community running
   again on the other worker.

Each run uses ``--force`` (every community solved, none skipped) and ``--level all`` (each
community's households, then each street's members); parts 2-4 run the same ``--budget``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

GRIDSVC = str(Path(sys.executable).with_name("gridsvc"))


def add_options(parser) -> None:
    """The options of this part (bench/pairing.py calls it)."""
    parser.add_argument(
        "--city-product",
        metavar="URL",
        help="run the product's own gridsvc pair on the city loaded at URL (and stop)",
    )
    parser.add_argument("--product-limit", type=float, default=2.0, help="part 1: --time-limit")
    parser.add_argument("--product-budget", type=float, default=60.0, help="part 2: --budget")
    parser.add_argument("--product-sample", type=int, default=20, help="part 2: communities")
    parser.add_argument(
        "--product-parts", default="1234", help="which parts to run (digits), e.g. 13"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


class Peak:
    """Peak resident memory summed over a process and its children, sampled every 0.2 s."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.peak, self._stop = roots, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self.roots:
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                for p in procs:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**30


def pair(url: str, args: list[str], *, workers: int, extra_roots=()) -> tuple[float, float, str]:
    """Run ``gridsvc pair ARGS``: wall seconds, peak GB over it (and ``extra_roots``), output."""
    env = {**os.environ, "GRIDSVC_DATABASE_URL": url, "GRIDSVC_WORKERS": str(workers)}
    start = time.monotonic()
    proc = subprocess.Popen(
        [GRIDSVC, "pair", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    peak = Peak([proc.pid, *extra_roots])
    out, _ = proc.communicate()
    wall = time.monotonic() - start
    gb = peak.stop()
    if proc.returncode:
        raise SystemExit(f"gridsvc pair {' '.join(args)} failed:\n{out[-2000:]}")
    return wall, gb, out


def costs(out: str) -> dict[str, float]:
    """Per-community household cost (m) from the summary."""
    got = {}
    for m in re.finditer(r"households (\d{12}): .*?cost ([\d,]+) m", out):
        got[m.group(1)] = float(m.group(2).replace(",", ""))
    return got


def median_line(out: str) -> str:
    return next((ln for ln in out.splitlines() if ln.startswith("median")), "")


def part_processes(url: str, workers: int, limit: float) -> None:
    args = ["--force", "--time-limit", str(limit)]
    print(f"1. same --time-limit {limit} per community, one process vs {workers}")
    before = load()
    w1, gb1, _ = pair(url, args, workers=1)
    print(f"   GRIDSVC_WORKERS=1: {w1:.1f} s wall, peak {gb1:.2f} GB ({before})")
    before = load()
    wn, gbn, out = pair(url, args, workers=workers)
    print(f"   GRIDSVC_WORKERS={workers}: {wn:.1f} s wall, peak {gbn:.2f} GB ({before})")
    print(f"   speed-up {w1 / wn:.2f}; {median_line(out)}")


def median_cost(out: str) -> float:
    return statistics.median(costs(out).values())


def part_budget(url: str, workers: int, budget: float, sample: int) -> tuple[float, float]:
    """``--budget`` on ``workers`` processes: (wall seconds, median community cost)."""
    print(f"2. --budget {budget:g} on {workers} processes (--level all)")
    before = load()
    wall, gb, out = pair(url, ["--force", "--budget", str(budget)], workers=workers)
    print(f"   {wall:.1f} s wall, peak {gb:.2f} GB ({before}); {median_line(out)}")
    got = costs(out)
    if sample <= 0:
        return wall, median_cost(out)
    codes = sorted(got)[:: max(1, len(got) // max(sample, 1))][:sample]
    base = {}
    before = load()
    start = time.monotonic()
    for code in codes:
        _, _, o = pair(
            url,
            ["--community", code, "--level", "households", "--force", "--time-limit", "10"],
            workers=1,
        )
        base.update(costs(o))
    ratios = [got[c] / base[c] for c in codes if c in base and base[c] > 0]
    print(
        f"   sample of {len(ratios)} communities at the 10 s default "
        f"({time.monotonic() - start:.0f} s, {before}): median cost ratio budget/default "
        f"{statistics.median(ratios):.4f}"
        f" (max {max(ratios):.4f})"
    )
    return wall, median_cost(out)


def _workers(url: str, n: int) -> list[subprocess.Popen]:
    env = {**os.environ, "GRIDSVC_DATABASE_URL": url}
    return [
        subprocess.Popen(
            [GRIDSVC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def part_queue(url: str, budget: float, direct: tuple[float, float] | None) -> None:
    args = ["--force", "--budget", str(budget), "--queue"]
    print(f"3. the same --budget {budget:g} through --queue with two gridsvc worker processes")
    procs = _workers(url, 2)
    try:
        time.sleep(3)
        before = load()
        wall, gb, out = pair(url, args, workers=2, extra_roots=[p.pid for p in procs])
        print(f"   {wall:.1f} s wall, peak {gb:.2f} GB with the workers ({before})")
        print(f"   {median_line(out)}")
        if direct:
            print(
                f"   vs the direct run (part 2): wall {wall / direct[0] - 1:+.1%}, "
                f"median cost {median_cost(out) / direct[1] - 1:+.2%} (target: within 15 %)"
            )
    finally:
        _stop(procs)


def part_kill(url: str, budget: float) -> None:
    args = ["--force", "--budget", str(budget), "--queue"]
    print("4. --queue, one of two workers killed (SIGKILL) when half the communities ended")
    engine = create_engine(url)
    procs = _workers(url, 2)
    try:
        time.sleep(3)
        with engine.connect() as conn:
            last = conn.scalar(text("SELECT coalesce(max(id), 0) FROM jobs")) or 0
        before = load()
        env = {**os.environ, "GRIDSVC_DATABASE_URL": url}
        start = time.monotonic()
        runner = subprocess.Popen(
            [GRIDSVC, "pair", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        parent = None
        killed_at = None
        lost: set[int] = set()
        while killed_at is None and runner.poll() is None:
            time.sleep(0.3)
            with engine.connect() as conn:
                parent = parent or conn.scalar(
                    text("SELECT min(id) FROM jobs WHERE parent_id IS NULL AND id > :l"),
                    {"l": last},
                )
                rows = conn.execute(
                    text("SELECT id, status FROM jobs WHERE parent_id = :p"), {"p": parent}
                ).all()
            ended = sum(r.status in ("done", "failed") for r in rows)
            if rows and ended * 2 >= len(rows):
                victim = procs[0]
                with engine.connect() as conn:  # the victim's running units
                    lost = set(
                        conn.scalars(
                            text(
                                "SELECT (j.args->>'job_id')::int FROM procrastinate_jobs j "
                                "WHERE j.status = 'doing' AND j.task_name = 'gridsvc:run_job'"
                            )
                        )
                    )
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed_at = time.monotonic()
        recovered = None
        while runner.poll() is None:
            time.sleep(0.3)
            if recovered is None and lost:
                with engine.connect() as conn:
                    n = conn.scalar(
                        text(
                            "SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1 "
                            "AND (args->>'job_id')::int = ANY(:ids)"
                        ),
                        {"ids": list(lost)},
                    )
                if n:
                    recovered = time.monotonic() - killed_at
        out = runner.stdout.read() if runner.stdout else ""
        wall = time.monotonic() - start
        print(
            f"   completed: {wall:.1f} s wall ({before}); killed after "
            f"{(killed_at or start) - start:.1f} s with {len(lost)} jobs running; "
            f"back on the other worker after {_seconds(recovered)}"
        )
        print(f"   {median_line(out)}")
    finally:
        _stop(procs)
        engine.dispose()


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def run(url: str, args) -> None:
    """Parts 1-4 on the city at ``url`` (all communities)."""
    with create_engine(url).connect() as conn:
        n = conn.execute(
            text("SELECT (SELECT count(*) FROM communities), (SELECT count(*) FROM households)")
        ).one()
    print(f"city: {n[0]} communities, {n[1]:,} households; {os.cpu_count()} cores; {load()}")
    parts = args.product_parts
    if "1" in parts:
        part_processes(url, args.workers, args.product_limit)
    direct = None
    if "2" in parts:
        direct = part_budget(url, args.workers, args.product_budget, args.product_sample)
    if "3" in parts:
        part_queue(url, args.product_budget, direct)
    if "4" in parts:
        part_kill(url, args.product_budget)
