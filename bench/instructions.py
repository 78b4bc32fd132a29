"""Benchmark 6: ``django.setup()`` start-up counted in CPU instructions, under callgrind.

The projects are benchmark 4's (:func:`bench.startup.generate`): the plugin
variant against the same project written by hand (every alias in
``DATABASES``, a dict-based router, no ``django_appdb``).

Wall-clock start-up times on a shared machine spread by more than the margin
being measured; instruction counts do not (they repeat to within a few
thousandths of a percent). Each count is one fresh interpreter run under
``valgrind --tool=callgrind``. The instructions of ``django.setup()`` are the
count of ``import django; django.setup()`` minus the count of ``import django``
alone, so the interpreter's own start-up and shutdown are left out of both
sides of the ratio.

The cost per app is the difference between the variants divided by the number
of apps; "marginal" is the growth of that difference between two sizes, divided
by the apps added: if it is no larger than the average, the cost per app is
flat (nothing grows faster than the number of apps).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .project import Project
from .report import Context, Row, unavailable
from .startup import GOAL, SIZES, generate

WHAT = "django.setup() start-up, instructions (callgrind)"
PRELUDE = "import django"
SETUP = "import django; django.setup()"
VARIANTS = {"ours": "bench_settings", "plain": "bench_settings_plain"}


def unavailable_reason() -> str | None:
    """Return why callgrind cannot be used here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed"
    return None


def count(project: Project, settings: str, code: str, out: Path) -> int:
    """Return the instructions one fresh interpreter running ``code`` executes, under callgrind."""
    env = project.environ()
    env["DJANGO_SETTINGS_MODULE"] = settings
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{code!r} failed under callgrind with {settings}:\n{done.stderr[-4000:]}")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def measure(ctx: Context, size: int) -> dict[str, int]:
    """Return ``{variant: instructions of django.setup()}`` at ``size`` apps."""
    project = generate(ctx, size)
    out = ctx.tmp / f"callgrind-{size}"
    out.mkdir(exist_ok=True)
    for settings in VARIANTS.values():  # bytecode caches, as for a deployed project
        subprocess.run(
            [sys.executable, "-c", SETUP],
            cwd=project.root,
            env={**project.environ(), "DJANGO_SETTINGS_MODULE": settings},
            check=True,
            capture_output=True,
        )
    jobs = {"prelude": ("bench_settings", PRELUDE)}
    jobs.update({variant: (settings, SETUP) for variant, settings in VARIANTS.items()})
    # Instruction counts do not depend on what else runs, so the runs can share the cores.
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        futures = {
            name: pool.submit(count, project, settings, code, out / f"{name}.out")
            for name, (settings, code) in jobs.items()
        }
        totals = {name: future.result() for name, future in futures.items()}
    return {variant: totals[variant] - totals["prelude"] for variant in VARIANTS}


def fmt_count(instructions: float) -> str:
    """Format an instruction count in millions."""
    return f"{instructions / 1e6:.1f} M"


def run(ctx: Context) -> list[Row]:
    """Runner side: one row per size, with the cost per app."""
    reason = unavailable_reason()
    sizes = getattr(ctx, "sizes", None) or SIZES
    if reason:
        return [unavailable("6", f"{WHAT}, {size} apps", reason, f"<= {GOAL:.2f}x") for size in sizes]
    rows = []
    previous: tuple[int, int] | None = None
    for size in sorted(sizes):
        ctx.log(f"6: start-up instructions with {size} apps (callgrind)")
        result = measure(ctx, size)
        ours, plain = result["ours"], result["plain"]
        extra = ours - plain
        per_app = f"{extra / size / 1e6:+.3f} M/app"
        if previous is not None:
            marginal = (extra - previous[1]) / (size - previous[0])
            per_app += f", marginal {marginal / 1e6:+.3f} M/app from {previous[0]} apps"
        previous = (size, extra)
        ratio = ours / plain
        rows.append(
            Row(
                "6",
                f"{WHAT}, {size} apps",
                f"{fmt_count(ours)} ({'+' if extra >= 0 else '-'}{fmt_count(abs(extra))}, {per_app})",
                f"{fmt_count(plain)} (same project by hand: DATABASES and a router, no django_appdb)",
                f"{ratio:.3f}x",
                f"<= {GOAL:.2f}x",
                "yes" if ratio <= GOAL else "no",
            )
        )
    return rows
