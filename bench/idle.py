"""What the receiver costs when it has nothing to do: CPU (% of one core) and memory (RSS).

A real `aurous-receiver serve` (SQLite, default settings: RECEIVER_TICK_S 5 s, sweeps every
60 s) runs twice: webhooks only (no AUROUS_API_KEY), and with the simulator as Aurous, holding
no jobs. Each is left alone for --settle seconds, then measured over --seconds: its CPU time
(utime + stime from /proc/PID/stat, its children included) as a % of one core, its wake-ups
(context switches, all threads), and VmRSS / VmHWM. Targets (issue 16): <= 1% of a core,
<= 100 MiB.

When a figure is over its target (or with --breakdown) the script says where it goes:
- memory: RSS at each step of start-up (interpreter, CLI, `import receiver.web.app`,
  `create_app`, lifespan, serving), anonymous vs file-backed, the largest mappings, what each
  package loaded at start costs alone (RSS, import time) and who imports it first
  (`python -X importtime`), what our own modules add layer by layer, what making each group
  of rarely needed packages a lazy import would save (marginal RSS), and the idle server
  started otherwise (--no-migrate, MALLOC_ARENA_MAX=2);
- CPU: the same server with each periodic job of the ticker timed (one at a time, CPU and
  wall), and the CPU and wake-ups of each thread, so what wakes up can be named.

    .venv/bin/python bench/idle.py [--settle 10] [--seconds 60] [--breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _proc
from ingest import free_port, receiver_env, start_serve

CPU_TARGET = 0.01  # of one core
RSS_TARGET_MIB = 100
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Idle:
    label: str
    seconds: float
    cpu_s: float
    wakeups: int
    rss_kib: dict[str, int]  # VmRSS, VmHWM, RssAnon, RssFile at the end of the window
    rss_min_kib: int
    rss_max_kib: int
    threads: list[tuple[int, float, int]]  # (tid, CPU seconds, context switches) in the window
    mappings: list[tuple[str, int]]  # (file or kind, Rss KiB), largest first
    aurous_calls: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, list[float]] = field(default_factory=dict)  # profiled: name -> stats

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.seconds


# --- reading the process -------------------------------------------------------------------


def thread_counters(pid: int) -> dict[int, tuple[int, int]]:
    """Per thread: CPU ticks (utime + stime) and context switches (voluntary + not)."""
    found: dict[int, tuple[int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = sum(int(n) for n in re.findall(r"ctxt_switches:\s+(\d+)", status))
        found[int(task.name)] = (int(fields[11]) + int(fields[12]), switches)
    return found


def memory(pid: int) -> dict[str, int]:
    return {f: _proc.status_kib(pid, f) for f in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}


def largest_mappings(pid: int, count: int = 8) -> list[tuple[str, int]]:
    """Rss by mapped file (shared libraries, their data) or kind ([heap], anonymous)."""
    sizes: dict[str, int] = {}
    name = "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = parts[5] if len(parts) > 5 else "[anonymous]"
            if ".venv/" in name or "site-packages/" in name:
                name = name.split("site-packages/")[-1]
        elif parts[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(parts[1])
    return sorted(sizes.items(), key=lambda item: -item[1])[:count]


# --- the server ------------------------------------------------------------------------------


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Default settings (none of the caller's RECEIVER_/AUROUS_ variables): a data directory,
    the admin token, the master key and the webhook secret, none of which starts background
    work; plus `extra`."""
    return receiver_env(data_dir) | extra


def start(
    env: dict[str, str], port: int, log: Path, profile: Path | None, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    serve = ["serve", "--port", str(port), *extra]
    command = (
        [sys.executable, __file__, "--profiled-serve", str(profile), *serve]
        if profile
        else [sys.executable, "-m", "receiver", *serve]
    )
    return start_serve(command, env, port, log)


def measure(
    label: str,
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
    *,
    sim: Any = None,
    profile: bool = False,
) -> Idle:
    port = free_port()
    profile_file = workdir / f"jobs-{port}.json" if profile else None
    process = start(env, port, workdir / f"serve-{port}.log", profile_file)
    try:
        time.sleep(args.settle)
        if profile_file:
            process.send_signal(signal.SIGUSR1)  # start counting the jobs' runs now
        if sim is not None:
            sim.client.post("/_sim/stats/reset")
        threads0, cpu0, t0 = (
            thread_counters(process.pid),
            _proc.cpu_seconds(process.pid),
            time.monotonic(),
        )
        low = high = _proc.status_kib(process.pid, "VmRSS")
        while (left := t0 + args.seconds - time.monotonic()) > 0:
            time.sleep(min(5.0, left))
            now = _proc.status_kib(process.pid, "VmRSS")
            low, high = min(low, now), max(high, now)
        cpu1, t1 = _proc.cpu_seconds(process.pid), time.monotonic()
        threads1 = thread_counters(process.pid)
        mem, mappings = memory(process.pid), largest_mappings(process.pid)
        calls = sim.stats() if sim is not None else {}
        jobs: dict[str, list[float]] = {}
        if profile_file:
            process.send_signal(signal.SIGUSR2)  # write what was counted
            deadline = time.monotonic() + 10
            while not profile_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            jobs = json.loads(profile_file.read_text())
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    threads = []
    for tid, (ticks, switches) in threads1.items():
        ticks0, switches0 = threads0.get(tid, (0, 0))
        threads.append((tid, (ticks - ticks0) / _TICK, switches - switches0))
    threads.sort(key=lambda t: (-t[1], -t[2]))
    return Idle(
        label,
        t1 - t0,
        cpu1 - cpu0,
        sum(t[2] for t in threads),
        mem,
        low,
        high,
        threads,
        mappings,
        calls,
        jobs,
    )


# --- the profiled server: each periodic job timed -------------------------------------------


def profiled_serve(out: Path, argv: list[str]) -> None:
    """`aurous-receiver serve` with each ticker job timed. The jobs run one at a time here (a
    lock), so that the process CPU spent during a run is that job's: its database work in the
    worker thread included. SIGUSR1 starts the count afresh; SIGUSR2 writes it to `out`."""
    import asyncio

    import receiver.scheduler as scheduler
    from receiver.cli import cli

    counted: dict[str, list[float]] = {}  # name -> [interval s, runs, CPU s, wall s]
    one_at_a_time = asyncio.Lock()
    every = scheduler.Ticker.every

    def timed_every(self: Any, seconds: float, name: str, work: Any, *rest: Any, **kw: Any) -> None:
        async def timed() -> object:
            async with one_at_a_time:
                cpu, wall = time.process_time(), time.perf_counter()
                try:
                    return await work()
                finally:
                    entry = counted.setdefault(name, [seconds, 0, 0.0, 0.0])
                    entry[1] += 1
                    entry[2] += time.process_time() - cpu
                    entry[3] += time.perf_counter() - wall

        every(self, seconds, name, timed, *rest, **kw)

    def reset(*_: object) -> None:
        for entry in counted.values():
            entry[1:] = [0, 0.0, 0.0]

    def write(*_: object) -> None:
        partial = out.with_suffix(".tmp")
        partial.write_text(json.dumps(counted))
        partial.rename(out)

    scheduler.Ticker.every = timed_every  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, write)
    cli(args=argv, prog_name="aurous-receiver")


# --- where the memory goes -------------------------------------------------------------------

_STAGES = r"""
import json, sys, tracemalloc
from pathlib import Path
def mem():
    d = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            d[k] = int(v.split()[0])
    return d
def third_party():
    loaded = {m.split(".")[0] for m, module in sys.modules.items() if module is not None}
    names = loaded - set(sys.stdlib_module_names)
    return sorted(m for m in names - {"receiver", "storage", "simulator"} if m[0] != "_")
trace = "--trace" in sys.argv
if trace:
    tracemalloc.start()
stages = [("interpreter (python -c pass)", mem())]
import receiver.cli.main
stages.append(("import receiver.cli (what every command loads)", mem()))
import receiver.web.app
stages.append(("import receiver.web.app", mem()))
from receiver.settings import Settings
from receiver.web.app import create_app
app = create_app(Settings.from_env())
stages.append(("create_app(settings)", mem()))
traced = tracemalloc.get_traced_memory()[0] if trace else None
import asyncio
async def started():
    async with app.lifespan():
        await asyncio.sleep(1)
        return mem(), third_party(), len(sys.modules)
up, packages, modules = asyncio.run(started())
stages.append(("lifespan started (runtime open, no HTTP server)", up))
print(json.dumps({"stages": stages, "packages": packages, "modules": modules, "traced": traced}))
"""

_ALONE = r"""
import importlib, json, sys, time
from pathlib import Path
import receiver  # what it marks unused (receiver/__init__.py) stays unloaded here too
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before, started = rss(), time.perf_counter()
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:  # a name in sys.modules that is no importable package (cython_runtime)
        pass
print(json.dumps([rss() - before, time.perf_counter() - started]))
"""


_OURS = r"""
import importlib, json, sys, time
from pathlib import Path
import receiver  # what it marks unused (receiver/__init__.py) stays unloaded here too
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
third, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in third:
    try:
        importlib.import_module(name)
    except Exception:
        pass
steps = []
for name in ours:
    loaded, before, started = set(sys.modules), rss(), time.perf_counter()
    importlib.import_module(name)
    grown, took = rss() - before, time.perf_counter() - started
    news = {m.split(".")[0] for m in set(sys.modules) - loaded} - {"receiver", "storage"}
    steps.append([name, grown, took, sorted(m for m in news if m[0] != "_")])
print(json.dumps(steps))
"""
# Our own modules, the lower layers first: each row is what importing it adds on top of the
# third-party packages and the rows above it.
OUR_LAYERS = [
    "storage.records",
    "storage.models",
    "storage.gateway",
    "storage.migrate",
    "receiver.jobs.tracker",
    "receiver.webhooks.intake",
    "receiver.archive.archiver",
    "receiver.spend.audit",
    "receiver.relay.push",
    "receiver.runtime",
    "receiver.web.routes",
    "receiver.web.app",
]


def python(
    code: str, *args: str, flags: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(
        [sys.executable, *flags, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    if process.returncode:
        raise SystemExit(f"{code[:200]}...\nfailed:\n{process.stderr[-3000:]}")
    return process


def serving_variants(args: argparse.Namespace, workdir: Path) -> None:
    """VmRSS after --settle seconds of the same idle server, started in other ways that need no
    change to the code (the database of the first run, already at head)."""
    variants = [
        ("serve, as above", {}, ()),
        ("serve --no-migrate", {}, ("--no-migrate",)),
        ("MALLOC_ARENA_MAX=2 (fewer glibc arenas)", {"MALLOC_ARENA_MAX": "2"}, ()),
    ]
    print(f"  the idle server started otherwise (VmRSS after {args.settle:g} s, MiB):")
    for label, env, extra in variants:
        port = free_port()
        process = start(
            clean_env(workdir / "a", **env), port, workdir / f"v-{port}.log", None, extra
        )
        try:
            time.sleep(args.settle)
            mem = memory(process.pid)
        finally:
            process.terminate()
            process.wait(30)
        print(
            f"    {mem['VmRSS'] / 1024:>6.1f}  {label} (anon {mem['RssAnon'] / 1024:.1f}, "
            f"file {mem['RssFile'] / 1024:.1f})"
        )


def memory_breakdown(workdir: Path, served: Idle) -> None:
    env = clean_env(workdir / "a")  # the first run's data: the database is at head
    staged = json.loads(python(_STAGES, env=env).stdout)
    traced = json.loads(python(_STAGES, "--trace", env=env).stdout)
    print("\nwhere the memory goes (MiB)")
    print(f"  {'step':<52}{'VmRSS':>8}{'anon':>8}{'file':>8}")
    for label, mem in staged["stages"]:
        print(
            f"  {label:<52}{mem['VmRSS'] / 1024:>8.1f}{mem['RssAnon'] / 1024:>8.1f}"
            f"{mem['RssFile'] / 1024:>8.1f}"
        )
    end = served.rss_kib
    print(
        f"  {'serving, idle (' + served.label + ')':<52}{end['VmRSS'] / 1024:>8.1f}"
        f"{end['RssAnon'] / 1024:>8.1f}{end['RssFile'] / 1024:>8.1f}"
    )
    print(
        f"  {staged['modules']} modules loaded once started; Python objects traced by "
        f"tracemalloc after create_app: {traced['traced'] / 2**20:.1f} MiB"
    )
    print("  largest mappings of the idle server (Rss, MiB):")
    for name, kib in served.mappings:
        print(f"    {kib / 1024:>7.1f}  {name}")

    packages = staged["packages"]
    alone: list[tuple[str, int, float]] = []
    for name in packages:
        rss, seconds = json.loads(python(_ALONE, name).stdout)
        alone.append((name, rss, seconds))
    everything = json.loads(python(_ALONE, *packages).stdout)
    with_ours = json.loads(python(_ALONE, *packages, "receiver.web.app").stdout)
    alone.sort(key=lambda row: -row[1])
    print(
        "  each third-party package loaded at start (>= 2 MiB), imported alone in a fresh "
        "interpreter (its own dependencies included, so the rows overlap):"
    )
    print(f"    {'package':<22}{'RSS MiB':>9}{'import s':>10}")
    for name, rss, seconds in alone:
        if rss >= 2048:
            print(f"    {name:<22}{rss / 1024:>9.1f}{seconds:>10.3f}")
    print(
        f"  all {len(packages)} together: {everything[0] / 1024:.1f} MiB, {everything[1]:.2f} s; "
        f"then receiver.web.app on top (our own modules): "
        f"{(with_ours[0] - everything[0]) / 1024:.1f} MiB, {with_ours[1] - everything[1]:.2f} s"
    )
    layers = json.loads(python(_OURS, json.dumps(packages), json.dumps(OUR_LAYERS)).stdout)
    print(
        "  our own modules, imported on top of those packages, lower layers first (each row: "
        "what it adds, with the parts of packages it is the first to load):"
    )
    for name, rss, seconds, news in layers:
        also = f"  (+ {', '.join(news)})" if news else ""
        print(f"    {name:<28}{rss / 1024:>6.1f} MiB{seconds * 1000:>6.0f} ms{also}")
    importtime = python(_STAGES, flags=("-X", "importtime"), env=env).stderr
    by_package: dict[str, int] = {}
    tree: list[tuple[int, str]] = []  # (depth, module), children printed before their parent
    for line in importtime.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)", line)
        if match:
            top = match.group(3).split(".")[0]
            by_package[top] = by_package.get(top, 0) + int(match.group(1))
            tree.append(((len(match.group(2)) - 1) // 2, match.group(3)))
    total = sum(by_package.values())
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:12]
    print(
        f"  import time by package, start-up included (python -X importtime, self times, "
        f"total {total / 1e6:.2f} s): "
        + ", ".join(f"{name} {us / 1e3:.0f} ms" for name, us in ranked)
    )
    print("  who first imports each package that costs >= 2 MiB alone (python -X importtime):")
    for name, rss, _ in alone:
        if rss >= 2048:
            print(f"    {name}: {' <- '.join(first_importers(tree, name))}")
    cut_candidates(packages)


def first_importers(tree: list[tuple[int, str]], package: str) -> list[str]:
    """The chain of imports that first brought `package` in, one module per package crossed
    (the first of each), up to the first of our own modules, then the top."""
    for index, (depth, module) in enumerate(tree):
        if module.split(".")[0] != package:
            continue
        chain, want = [module], depth - 1
        for parent_depth, parent in tree[index + 1 :]:
            if parent_depth == want:
                chain.append(parent)
                want -= 1
        shown: list[str] = []
        for position, name in enumerate(chain):
            top = name.split(".")[0]
            if shown and top == shown[-1].split(".")[0] and top != package:
                continue  # deeper in a package already named: only its first module shows
            if top == package:
                shown = [name]  # the package's own outermost module starts the chain
                continue
            shown.append(name)
            if top in ("receiver", "storage"):
                rest = len(chain) - position - 1
                if rest:
                    shown.append(f"({rest - 1} more) {chain[-1]}" if rest > 1 else chain[-1])
                break
        if len(shown) == 1:
            shown.append("(imported while starting, not by an import statement of ours)")
        return shown
    return ["(not found in the import tree)"]


# Groups of packages that the service loads at start but needs only for some settings or some
# work; what each would save is measured as a marginal: every package loaded at start, then the
# same without the group (whatever else still imports part of it stays counted). Already left
# out until needed: alembic and mako (upgrades run in a child of `serve`), aiohttp (the first
# push), jinja2 (the first page), obstore (the first archive read or write), httpx's CLI and
# uvicorn's watchfiles reloader (never: receiver/__init__.py).
CUT_CANDIDATES = {
    "httpx + httpcore + h11 (clients made at start: the archiver's, and the Aurous client's "
    "with AUROUS_API_KEY; made at their first request instead)": [
        "httpx",
        "httpcore",
        "h11",
    ],
    "sqlmodel + pydantic (tables as SQLAlchemy Core instead, and Litestar's pydantic plugin, "
    "which Litestar() adds whenever pydantic is installed, left out)": [
        "sqlmodel",
        "pydantic",
        "pydantic_core",
        "annotated_types",
        "typing_inspection",
    ],
}


def cut_candidates(packages: list[str]) -> None:
    everything = json.loads(python(_ALONE, *packages).stdout)[0]
    print("  what each candidate would save if imported only when used (marginal RSS, MiB):")
    for label, group in CUT_CANDIDATES.items():
        rest = [name for name in packages if name not in group]
        without = json.loads(python(_ALONE, *rest).stdout)[0]
        saved = (everything - without) / 1024
        print(f"    {saved if abs(saved) >= 0.05 else 0.0:>6.1f}  {label}")
    groups = list(CUT_CANDIDATES.values())
    for label, cut in (
        ("all of them together", [name for group in groups for name in group]),
        ("all but sqlmodel + pydantic", [name for group in groups[:-1] for name in group]),
    ):
        rest = [name for name in packages if name not in cut]
        saved = (everything - json.loads(python(_ALONE, *rest).stdout)[0]) / 1024
        print(f"    {saved:>6.1f}  {label}")


# --- the report ------------------------------------------------------------------------------


def report(runs: list[Idle]) -> None:
    print(
        f"\n{'idle aurous-receiver serve':<40}{'CPU %core':>10}{'wakeups/s':>10}{'VmRSS':>8}"
        f"{'min..max':>14}{'VmHWM':>8}{'anon':>7}{'file':>7}{'threads':>8}"
    )
    for run in runs:
        m = run.rss_kib
        span = f"{run.rss_min_kib / 1024:.1f}..{run.rss_max_kib / 1024:.1f}"
        print(
            f"{run.label:<40}{run.cpu_share:>10.2%}{run.wakeups / run.seconds:>10.1f}"
            f"{m['VmRSS'] / 1024:>8.1f}{span:>14}{m['VmHWM'] / 1024:>8.1f}"
            f"{m['RssAnon'] / 1024:>7.1f}{m['RssFile'] / 1024:>7.1f}{len(run.threads):>8}"
        )
    print(f"(MiB; targets: CPU <= {CPU_TARGET:.0%} of a core, RSS <= {RSS_TARGET_MIB} MiB)")
    for run in runs:
        busy = ", ".join(
            f"{tid}: {cpu / run.seconds:.2%} {switches / run.seconds:.1f}/s"
            for tid, cpu, switches in run.threads[:6]
        )
        print(f"  {run.label}: threads (CPU, wake-ups): {busy}")
        if run.aurous_calls:
            calls = {k: v for k, v in run.aurous_calls.items() if k != "state" and v}
            print(f"  {run.label}: what it asked of Aurous in the window: {json.dumps(calls)}")
        if run.jobs:
            print(f"  {run.label}: periodic jobs in the window (one at a time):")
            print(
                f"    {'job':<18}{'every s':>8}{'runs':>6}{'CPU ms/run':>12}{'wall ms/run':>12}"
                f"{'% of a core':>12}"
            )
            for name, (every, runs_, cpu, wall) in sorted(
                run.jobs.items(), key=lambda item: -item[1][2]
            ):
                per = 1000 / runs_ if runs_ else 0
                print(
                    f"    {name:<18}{every:>8g}{runs_:>6.0f}{cpu * per:>12.2f}{wall * per:>12.2f}"
                    f"{cpu / run.seconds:>12.2%}"
                )
            in_jobs = sum(entry[2] for entry in run.jobs.values())
            outside = (run.cpu_s - in_jobs) / run.seconds
            print(
                f"    in the jobs {in_jobs / run.seconds:.2%} of a core, outside them "
                f"(the HTTP server's own timers, other loops) {outside:.2%}"
            )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--profiled-serve":
        profiled_serve(Path(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=10, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=60, help="the measured window")
    parser.add_argument(
        "--breakdown", action="store_true", help="say where memory and CPU go, even within target"
    )
    parser.add_argument(
        "--no-breakdown", action="store_true", help="only the figures, even over target"
    )
    args = parser.parse_args()
    from tests.support.harness import API_KEY, start_simulator

    print(
        f"idle: settle {args.settle:g} s, then {args.seconds:g} s measured; "
        f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        runs = [
            measure("webhooks only (no AUROUS_API_KEY)", clean_env(workdir / "a"), args, workdir)
        ]
        sim = start_simulator(stack)
        with_sim = clean_env(workdir / "b", AUROUS_API_KEY=API_KEY, AUROUS_BASE_URL=sim.url)
        runs.append(measure("simulator as Aurous, no jobs", with_sim, args, workdir, sim=sim))
        report(runs)
        over_cpu = [run for run in runs if run.cpu_share > CPU_TARGET]
        over_rss = [run for run in runs if run.rss_kib["VmRSS"] > RSS_TARGET_MIB * 1024]
        if args.no_breakdown:
            over_cpu = over_rss = []
        if over_cpu or args.breakdown:
            print(
                "\nCPU over target: the same servers again, each periodic job timed"
                if over_cpu
                else "\nthe same servers again, each periodic job timed"
                + " (RSS here includes the bench's wrapper)"
            )
            profiled = [
                measure(runs[0].label, clean_env(workdir / "c"), args, workdir, profile=True),
                measure(
                    runs[1].label,
                    clean_env(workdir / "d", AUROUS_API_KEY=API_KEY, AUROUS_BASE_URL=sim.url),
                    args,
                    workdir,
                    sim=sim,
                    profile=True,
                ),
            ]
            report(profiled)
        if over_rss or args.breakdown:
            memory_breakdown(workdir, (over_rss or runs)[0])
            serving_variants(args, workdir)
    for run in runs:
        print(
            f"idle, {run.label}: CPU {run.cpu_share:.2%} of a core (target <= {CPU_TARGET:.0%}), "
            f"VmRSS {run.rss_kib['VmRSS'] / 1024:.1f} MiB, VmHWM {run.rss_kib['VmHWM'] / 1024:.1f}"
            f" MiB (target <= {RSS_TARGET_MIB})"
        )


if __name__ == "__main__":
    main()
