"""Peak memory on zip-bomb APKs (about 1 MB each, classes.dex inflating to 1 GB).

    .venv/bin/python bench/hostile_apk.py [--inflate-mb 1024] [--crawl-apps 0]

Builds the APK in a temporary folder (deflate-compressed zeros after a real manifest), runs
`python -m finmon.cli apk FILE` in a subprocess and prints its exit code, its error line and its peak RSS.
With ``--crawl-apps N`` it then crawls a simulator of N apps in which every APK is such a bomb (the
simulator's host:port allowed) and prints the crawl's peak RSS and its apk_invalid error lines.
Peak RSS is the child's, read with ``/usr/bin/time``-free ``resource.getrusage`` through a wrapper process.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where bench/market.py hides the simulator package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from market.apk import ApkSpec, zip_bomb  # noqa: E402

WRAPPER = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr.strip())")


def measured(cmd: list[str]) -> tuple[int, float, str, float]:
    """Run ``cmd`` in a wrapper process → (exit code, peak RSS in MB, stderr, seconds)."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True).stdout
    first, _, stderr = out.partition("\n")
    code, peak_kb = map(int, first.split())
    return code, peak_kb / 1024, stderr.strip(), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inflate-mb", type=int, default=1024, help="what classes.dex inflates to")
    parser.add_argument("--crawl-apps", type=int, default=0, help="also crawl a simulator of this many apps")
    args = parser.parse_args()
    inflated = args.inflate_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.apk"
        path.write_bytes(zip_bomb(ApkSpec(package="com.example.bomb"), inflated))
        code, peak, stderr, seconds = measured([sys.executable, "-m", "finmon.cli", "apk", str(path)])
        print(f"finmon apk: {path.stat().st_size:,}-byte APK, {args.inflate_mb} MB inflated; exit {code} in "
              f"{seconds:.1f} s; peak RSS {peak:.0f} MB")
        print(f"  {stderr}")
        if args.crawl_apps:
            crawl(args.crawl_apps, inflated, Path(tmp) / "crawl")


def crawl(apps: int, inflated: int, out: Path) -> None:
    from market.server import MarketApp, MarketServer

    MarketApp.hostile_link = lambda self, app: ("apk", "apk_bomb") if app.apk is not None else None
    with MarketServer(apps=apps, seed=7, hostile=1.0, bomb_bytes=inflated) as market:
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--log-level", "WARNING",
               "--allow-host", market.base_url.split("//", 1)[1]]
        for name, url in market.store_urls.items():
            cmd += ["--store", f"{name}={url}"]
        code, peak, _, seconds = measured(cmd)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    bombs = [e for e in errors if e["kind"] == "apk_invalid" and "inflates beyond" in e["reason"]]
    print(f"crawl of {apps} apps, every APK a bomb: exit {code} in {seconds:.1f} s; peak RSS {peak:.0f} MB; "
          f"{len(bombs)} APKs refused as bombs, {len(errors)} error lines")


if __name__ == "__main__":
    main()
