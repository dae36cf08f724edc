"""Base install of forgeml (no extras) before and after: seconds, MB on disk, packages, start-up times.

For each source (a git ref, exported with ``git archive``, and the working tree, copied without its
ignored files) a fresh venv under a temporary folder gets ``pip install --no-cache-dir -c
constraints.txt <source>``, non-editable, with the source's own constraints.txt. Measured:
  - seconds pip takes, wall and CPU (user + system; steadier on a shared machine); the venv's
    creation is not counted,
  - MB of the venv's site-packages (``du -sm``) and the number of installed distributions,
  - median of N runs of ``forgeml --help`` and of ``python -c "import forgeml"`` (wall seconds),
  - the ten heaviest top-level imports of ``import forgeml`` from one ``-X importtime`` run.
pip reads the machine's package index (a local mirror here), so the seconds mostly measure unpacking.

Run: .venv/bin/python benchmarks/install_size.py [--ref HEAD] [--tree DIR | --no-tree] [--repeats 5] [--keep]
Prints a markdown table; writes benchmarks/results/install_size.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


def export_ref(ref: str, folder: Path) -> Path:
    """The files of commit ``ref`` in ``folder/source`` (git archive: no .git, no build leftovers)."""
    source = folder / "source"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    return source


def copy_tree(tree: Path, folder: Path) -> Path:
    """A checkout's tracked and untracked-but-not-ignored files in ``folder/source``, as a commit would hold them."""
    source = folder / "source"
    listed = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        origin = tree / name
        if origin.is_file():  # a deleted but still indexed file is listed too
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    return source


def median_seconds(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` over ``repeats`` runs, after one unmeasured run warms the disk cache."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heaviest_imports(python: Path, count: int = 10) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time (ms) in one ``python -X importtime -c 'import forgeml'``."""
    stderr = subprocess.run(
        [str(python), "-X", "importtime", "-c", "import forgeml"], check=True, capture_output=True, text=True
    ).stderr
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        # One space of indent: imported by the script itself. Deeper ones are inside those, so not summed.
        if len(name) - len(name.lstrip()) == 1:
            top = name.strip().split(".")[0]
            totals[top] = totals.get(top, 0.0) + int(cumulative) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of finished child processes: steadier than wall time on a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, source: Path, folder: Path, repeats: int) -> dict[str, object]:
    """Install ``source`` into a fresh venv in ``folder`` and measure it."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, pip = venv / "bin" / "python", venv / "bin" / "pip"
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    subprocess.run(
        [str(pip), "install", "--no-cache-dir", "-q", "-c", str(source / "constraints.txt"), str(source)],
        check=True,
    )
    install_seconds = time.perf_counter() - start
    install_cpu_seconds = _children_cpu_seconds() - cpu_start
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    megabytes = int(
        subprocess.run(["du", "-sm", str(site)], check=True, capture_output=True, text=True).stdout.split()[0]
    )
    installed = json.loads(
        subprocess.run([str(pip), "list", "--format=json"], check=True, capture_output=True, text=True).stdout
    )
    return {
        "source": label,
        "install_seconds": round(install_seconds, 1),
        "install_cpu_seconds": round(install_cpu_seconds, 1),
        "site_packages_mb": megabytes,
        "packages": len([p for p in installed if p["name"] not in ("pip", "setuptools")]),
        "installed": sorted(p["name"] for p in installed),
        "help_seconds": round(median_seconds([str(venv / "bin" / "forgeml"), "--help"], repeats), 3),
        "import_seconds": round(median_seconds([str(python), "-c", "import forgeml"], repeats), 3),
        "heaviest_imports_ms": heaviest_imports(python),
    }


def table(rows: list[dict[str, object]]) -> str:
    """The measurements as a markdown table, one row per source."""
    lines = [
        "| source | install s (CPU s) | site-packages MB | packages | forgeml --help s | import forgeml s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['source']} | {row['install_seconds']} ({row['install_cpu_seconds']}) "
            f"| {row['site_packages_mb']} | {row['packages']} "
            f"| {row['help_seconds']} | {row['import_seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ref", default="HEAD", help="git ref measured as 'before' (default HEAD); '' skips it"
    )
    parser.add_argument(
        "--tree", type=Path, default=ROOT, help="checkout measured as 'after' (default: this one)"
    )
    parser.add_argument("--no-tree", action="store_true", help="skip the working tree ('after')")
    parser.add_argument("--repeats", type=int, default=5, help="runs per start-up time (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venvs and print where")
    args = parser.parse_args()
    rows = []
    sources = ([(f"git {args.ref}", lambda f: export_ref(args.ref, f))] if args.ref else []) + (
        [] if args.no_tree else [("working tree", lambda f: copy_tree(args.tree, f))]
    )
    for label, prepare in sources:
        folder = Path(tempfile.mkdtemp(prefix="forgeml-install-"))
        try:
            rows.append(measure(label, prepare(folder), folder, args.repeats))
        finally:
            if args.keep:
                print(f"{label}: kept {folder}", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
    print(table(rows))
    for row in rows:
        heaviest = ", ".join(f"{name} {ms:.0f}" for name, ms in row["heaviest_imports_ms"])
        print(f"\n{row['source']}: heaviest imports (ms, cumulative): {heaviest}")
    if len(rows) == 2:
        before, after = (set(row["installed"]) for row in rows)
        print(f"\nremoved from the base install: {', '.join(sorted(before - after)) or '-'}")
        print(f"added to the base install: {', '.join(sorted(after - before)) or '-'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "install_size.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
