"""Peak memory of `finmon apk` on a zip bomb: an APK of about 1 MB whose classes.dex inflates to 1 GB.

    .venv/bin/python bench/hostile_apk.py [--inflate-mb 1024]

Builds the APK in a temporary folder (deflate-compressed zeros after a real manifest), runs
`python -m finmon.cli apk FILE` in a subprocess and prints its exit code, its error line and its peak RSS
(from the child's resource usage).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from market.apk import ApkSpec, zip_bomb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inflate-mb", type=int, default=1024, help="what classes.dex inflates to")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.apk"
        path.write_bytes(zip_bomb(ApkSpec(package="com.example.bomb"), args.inflate_mb * 1024 * 1024))
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "finmon.cli", "apk", str(path)], capture_output=True, text=True)
        seconds = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"APK {path.name}: {args.inflate_mb} MB inflated; exit {proc.returncode} in {seconds:.1f} s; "
          f"peak RSS {peak_mb:.0f} MB")
    print(f"stderr: {proc.stderr.strip()}")


if __name__ == "__main__":
    main()
