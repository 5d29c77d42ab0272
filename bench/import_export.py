"""Import and export throughput and peak memory, one fresh subprocess per measurement.

    .venv/bin/python bench/import_export.py                       # 100k and 1M pairs, SQLite and PostgreSQL
    .venv/bin/python bench/import_export.py --sizes 100000 --backends sqlite --repeats 1   # a quick look

For each backend and size it writes a synthetic pairwise JSONL file (one
vote per pair, 50 annotators), then, per repeat:

1. migrates a fresh database (not timed);
2. `import`: `labeling.importing.pairs_import` over the file, both passes
   (validate, then write) - pairs/s and the child's peak RSS;
3. `export`: `export_to_path(fmt="pairwise")` to JSONL - rows/s, peak RSS;
4. `baseline`: the same file read line by line, `json.loads`, and a raw
   `executemany` of (prompt, response_a, response_b) into one plain table
   (sqlite3, or psycopg on PostgreSQL) - the floor any importer pays.

Each measurement runs in its own process so peak RSS is its own. It prints
medians, the import/baseline ratio, and peak RSS at 1M over 100k (the issue
asks for at most 1.2). Results also go to bench/out/import_export.json.
Needs PostgreSQL at --pg-url for the postgres backend (it creates and drops
the database `bench_import_export`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_DB = "bench_import_export"


# --------------------------------------------------------------------------- #
# Children: each measures one thing and prints one JSON line
# --------------------------------------------------------------------------- #
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_import(path: str) -> dict:
    import django

    django.setup()
    from labeling import services
    from labeling.importing import pairs_import
    from preferences.readers import source_from_path

    project = services.project_create(slug="bench")
    rss_ready = _peak_rss_mb()
    start, cpu = time.perf_counter(), _cpu_seconds()
    summary = pairs_import(project=project, source=source_from_path(path))
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    assert summary.created == summary.rows, summary
    return {
        "rows": summary.rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_ready_mb": rss_ready,
    }


def child_export(out: str) -> dict:
    import django

    django.setup()
    from labeling.exporting import export_to_path
    from labeling.models import Project

    project = Project.objects.get(slug="bench")
    rss_ready = _peak_rss_mb()
    start = time.perf_counter()
    summary = export_to_path(project=project, fmt="pairwise", path=out, overwrite=True)
    seconds = time.perf_counter() - start
    return {"rows": summary.rows, "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "rss_ready_mb": rss_ready}


def child_baseline(path: str, target: str) -> dict:
    """Read, decode and insert the same rows with the database driver alone."""
    start = time.perf_counter()
    sql = "INSERT INTO pairs (prompt, response_a, response_b) VALUES ({0}, {0}, {0})"
    if target.startswith("postgres"):
        import psycopg

        conn = psycopg.connect(target)
        conn.execute("CREATE TABLE pairs (id bigserial PRIMARY KEY, prompt text, response_a text, response_b text)")
        sql = sql.format("%s")
    else:
        import sqlite3

        conn = sqlite3.connect(target)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE pairs (id INTEGER PRIMARY KEY, prompt TEXT, response_a TEXT, response_b TEXT)")
        sql = sql.format("?")
    rows = 0
    batch: list[tuple] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            batch.append((r["prompt"], r["response_a"], r["response_b"]))
            if len(batch) == 5000:
                conn.cursor().executemany(sql, batch)
                conn.commit()
                rows += len(batch)
                batch = []
    if batch:
        conn.cursor().executemany(sql, batch)
        conn.commit()
        rows += len(batch)
    conn.close()
    return {"rows": rows, "seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}


# --------------------------------------------------------------------------- #
# Parent: data, databases, subprocesses, report
# --------------------------------------------------------------------------- #
def write_dataset(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "id": f"syn-{i}",
                        "prompt": f"Synthetic prompt {i}: explain topic {i % 9973} to a curious reader, briefly.",
                        "response_a": f"A careful answer to question {i}, with an example and a short justification.",
                        "response_b": f"A sloppier answer to question {i}.",
                        "votes": [{"annotator": f"annotator-{i % 50}", "choice": "ab"[i % 2]}],
                    }
                )
                + "\n"
            )


def run_child(args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_database(backend: str, workdir: Path, pg_url: str) -> dict[str, str]:
    """Environment for a new, migrated database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "APP_DATA_DIR": str(workdir / "var"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "WARNING",
    }
    if backend == "sqlite":
        db = workdir / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        env["SQLITE_PATH"] = str(db)
        env.pop("DATABASE_URL", None)
    else:
        import psycopg

        with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        env["DATABASE_URL"] = f"{pg_url}/{PG_DB}"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
    return env


def baseline_target(backend: str, workdir: Path, pg_url: str) -> str:
    if backend == "sqlite":
        db = workdir / "baseline.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return str(db)
    import psycopg

    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB}_raw WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}_raw")
    return f"{pg_url}/{PG_DB}_raw"


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch space (default: a temp folder).")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "out" / "import_export.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        result = {"import": child_import, "export": child_export, "baseline": child_baseline}[kind](*rest)
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-import-export-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    report: dict = {"machine": machine(), "results": []}
    for size in args.sizes:
        data = workdir / f"pairs-{size}.jsonl"
        if not data.exists():
            write_dataset(data, size)
        for backend in args.backends:
            runs: dict[str, list[dict]] = {"import": [], "export": [], "baseline": []}
            for _ in range(args.repeats):
                env = fresh_database(backend, workdir, args.pg_url)
                runs["import"].append(run_child(["import", str(data)], env))
                runs["export"].append(run_child(["export", str(workdir / "export.jsonl")], env))
                runs["baseline"].append(
                    run_child(["baseline", str(data), baseline_target(backend, workdir, args.pg_url)], env)
                )
            row = {"backend": backend, "size": size, "repeats": args.repeats}
            for kind, results in runs.items():
                row[f"{kind}_rows_per_s"] = round(median([{"r": r["rows"] / r["seconds"]} for r in results], "r"))
                row[f"{kind}_seconds"] = round(median(results, "seconds"), 2)
                row[f"{kind}_peak_rss_mb"] = round(median(results, "peak_rss_mb"), 1)
            row["import_vs_baseline"] = round(row["import_rows_per_s"] / row["baseline_rows_per_s"], 3)
            # This process's CPU time: on a shared, loaded machine it shows the
            # rate an idle one would give (SQLite runs in-process; for
            # PostgreSQL the server's own CPU is not in it).
            per_cpu = [{"r": r["rows"] / r["cpu_seconds"]} for r in runs["import"]]
            row["import_rows_per_cpu_s"] = round(median(per_cpu, "r"))
            report["results"].append(row)
            print(json.dumps(row), flush=True)
    report["load_average_after"] = os.getloadavg()[0]

    print(
        "\n| backend | pairs | import pairs/s | import pairs per CPU-s | import peak RSS MB | export rows/s "
        "| export peak RSS MB | raw executemany rows/s | import / raw |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["results"]:
        print(
            f"| {r['backend']} | {r['size']:,} | {r['import_rows_per_s']:,} | {r['import_rows_per_cpu_s']:,} "
            f"| {r['import_peak_rss_mb']} "
            f"| {r['export_rows_per_s']:,} | {r['export_peak_rss_mb']} | {r['baseline_rows_per_s']:,} "
            f"| {r['import_vs_baseline']} |"
        )
    by = {(r["backend"], r["size"]): r for r in report["results"]}
    for backend in args.backends:
        small, large = by.get((backend, min(args.sizes))), by.get((backend, max(args.sizes)))
        if small and large and small is not large:
            for kind in ("import", "export"):
                ratio = large[f"{kind}_peak_rss_mb"] / small[f"{kind}_peak_rss_mb"]
                report[f"{backend}_{kind}_rss_ratio"] = round(ratio, 3)
                print(
                    f"{backend} {kind}: peak RSS at {large['size']:,} / at {small['size']:,} = {ratio:.2f} "
                    f"({'within' if ratio <= 1.2 else 'OVER'} the 1.2x bound)"
                )
    print(f"load average after: {report['load_average_after']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
