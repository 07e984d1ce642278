"""`make bench`: every figure in one run against one local control plane (or the cluster
AIDEPLOY_TEST_KUBECONFIG names). Prints one JSON line per figure, then a summary table.
It asserts nothing and CI does not run it.

Sizes come from the environment: BENCH_ROUNDS (5: strategy rounds and approval
latencies), BENCH_OBJECTS (1000: cold start), BENCH_BURST (300: approvals at once, at
most BENCH_OBJECTS), BENCH_IDLE_SECONDS (30: the idle window). BENCH_FIGURES picks some
of: latency, strategy, scale, lifecycle (all by default).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aideploy.kube.crds import apply_crds
from aideploy.kube.rest import Rest
from tests.bench import scale, strategy
from tests.support.aid import CRDS_DIR
from tests.support.cluster import api_client


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


class Figures:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, figure: str, value: float, unit: str, shown: str, **extra: Any) -> None:
        line = {"figure": figure, "value": round(value, 4), "unit": unit, **extra}
        print(json.dumps(line), flush=True)
        self.rows.append((figure, shown))

    def series(self, figure: str, seconds: list[float], **extra: Any) -> float:
        median = statistics.median(seconds)
        self.add(
            figure,
            median,
            "s",
            f"median {median * 1000:.0f} ms (min {min(seconds) * 1000:.0f}, "
            f"max {max(seconds) * 1000:.0f}, n={len(seconds)})",
            min=round(min(seconds), 4),
            max=round(max(seconds), 4),
            n=len(seconds),
            **extra,
        )
        return median

    def table(self) -> None:
        width = max(len(f) for f, _ in self.rows)
        print()
        print(f"aideploy bench, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
        for figure, shown in self.rows:
            print(f"  {figure.ljust(width)}  {shown}")


def main() -> int:
    rounds = _int("BENCH_ROUNDS", 5)
    objects = _int("BENCH_OBJECTS", 1000)
    burst = min(_int("BENCH_BURST", 300), objects)
    idle = float(_int("BENCH_IDLE_SECONDS", 30))
    chosen = set((os.environ.get("BENCH_FIGURES") or "latency,strategy,scale,lifecycle").split(","))
    figures = Figures()
    with (
        tempfile.TemporaryDirectory(prefix="aideploy-bench-") as tmp,
        strategy.cluster(Path(tmp)) as handle,
    ):
        workdir = Path(tmp)
        api = api_client(handle)
        rest = Rest(api)
        apply_crds(rest, CRDS_DIR)

        if "latency" in chosen:
            _latency(figures, handle, api, rest, workdir, rounds)
        if "strategy" in chosen:
            _strategy(figures, handle, api, rest, workdir, rounds)
        if "scale" in chosen:
            _scale(figures, handle, api, rest, workdir, objects, burst, idle)
        if "lifecycle" in chosen:
            _lifecycle(figures, handle, api, rest, workdir)
    figures.table()
    return 0


def _latency(
    figures: Figures, handle: Any, api: Any, rest: Rest, workdir: Path, rounds: int
) -> None:
    ours = scale.approval_latencies(handle, api, rest, workdir, rounds * 2, bare=False)
    floor = scale.approval_latencies(handle, api, rest, workdir, rounds * 2, bare=True)
    one = scale.approval_latencies(handle, api, rest, workdir, rounds * 2, bare=True, records=1)
    ours_median = figures.series("approval -> Deployment", ours)
    floor_median = figures.series(
        "approval -> Deployment, bare kopf writing the same two records, then the apply (floor)",
        floor,
    )
    one_median = figures.series(
        "approval -> Deployment, bare kopf writing the approval record only, then the apply",
        one,
    )
    figures.add(
        "approval -> Deployment, ratio to the floor",
        ours_median / floor_median,
        "x",
        f"{ours_median / floor_median:.1f}x ({ours_median / one_median:.1f}x to the "
        "one-record operator)",
    )


def _strategy(
    figures: Figures, handle: Any, api: Any, rest: Rest, workdir: Path, rounds: int
) -> None:
    results = [strategy.one_round(handle, api, rest, workdir, n) for n in range(rounds)]
    figures.series(
        "GREEN reported -> stable Service switched", [r["green_to_switch"] for r in results]
    )
    figures.series(
        "monitoring RED -> stable Service switched back", [r["red_to_switch"] for r in results]
    )
    served: Counter[str | None] = Counter()
    for result in results:
        served.update(result["served"])
    figures.add(
        "user requests that reached an unverified release",
        served.get("2.0.0", 0) + sum(r["before_green"] for r in results),
        "requests",
        f"{served.get('2.0.0', 0) + sum(r['before_green'] for r in results)} "
        f"of {sum(served.values())}",
    )


def _scale(
    figures: Figures,
    handle: Any,
    api: Any,
    rest: Rest,
    workdir: Path,
    objects: int,
    burst: int,
    idle: float,
) -> None:
    scaled = scale.cold_start_idle_and_burst(handle, api, rest, workdir, objects, burst, idle)
    figures.add(
        f"cold start, {objects} objects, until all have a phase",
        scaled["cold_start_seconds"],
        "s",
        f"{scaled['cold_start_seconds']:.1f} s, peak RSS {scaled['peak_rss_mib']:.0f} MiB",
        objects=objects,
        peak_rss_mib=round(scaled["peak_rss_mib"], 1),
    )
    figures.add(
        f"the same writes from a bare client (the floor: a list, {objects} status writes "
        f"and {objects} Events)",
        scaled["cold_start_floor_seconds"],
        "s",
        f"{scaled['cold_start_floor_seconds']:.1f} s (ratio "
        f"{scaled['cold_start_seconds'] / scaled['cold_start_floor_seconds']:.1f}x)",
    )
    figures.add(
        "the same writes from a bare kopf operator (its list, watch and handler per object)",
        scaled["cold_start_bare_kopf_seconds"],
        "s",
        f"{scaled['cold_start_bare_kopf_seconds']:.1f} s (ratio "
        f"{scaled['cold_start_seconds'] / scaled['cold_start_bare_kopf_seconds']:.1f}x)",
    )
    figures.add(
        f"idle writes to {objects} settled objects in {idle:.0f} s",
        scaled["idle_writes"],
        "writes",
        f"{scaled['idle_writes']:.0f}",
    )
    figures.add(
        f"burst of {burst} approvals: last annotation -> all Deployments",
        scaled["burst_after_last_seconds"],
        "s",
        f"{scaled['burst_after_last_seconds']:.1f} s (annotating took "
        f"{scaled['burst_annotate_seconds']:.1f} s; first -> all "
        f"{scaled['burst_total_seconds']:.1f} s)",
        burst=burst,
    )


def _lifecycle(figures: Figures, handle: Any, api: Any, rest: Rest, workdir: Path) -> None:
    writes, reads = scale.writes_per_lifecycle(handle, api, rest, workdir)
    figures.add(
        "API writes for one object, approval -> Succeeded",
        sum(writes.values()),
        "writes",
        f"{sum(writes.values())}: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(writes.items()))
        + f"; {sum(reads.values())} reads",
        writes=dict(writes),
        reads=dict(reads),
    )


if __name__ == "__main__":
    raise SystemExit(main())
