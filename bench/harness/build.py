"""Cargo builds the run needs: the release service binary, and the photo generator
(examples/photo.rs) the corpus is made with. Both land in cargo's own target directory, which
`CARGO_TARGET_DIR` or a cargo config may move."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from . import ROOT, log


def target_dir() -> Path:
    r = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(json.loads(r.stdout)["target_directory"])


def build_service() -> tuple[str, float]:
    """`cargo build --release` of the service; (binary path, seconds the build took)."""
    log("cargo build --release --locked (waits if another build holds the lock)")
    t = time.monotonic()
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "image-processor"], cwd=ROOT, check=True)
    return str(target_dir() / "release" / "image-processor"), time.monotonic() - t


def default_service_binary() -> str:
    """Where `build_service` puts the binary, for `--no-build`."""
    return str(target_dir() / "release" / "image-processor")


def build_photo_tool() -> Path:
    """The release build of examples/photo.rs (the shared generator of benches/support/photo.rs)."""
    log("cargo build --release --locked --example photo (the corpus generator)")
    subprocess.run(["cargo", "build", "--release", "--locked", "--example", "photo"], cwd=ROOT, check=True)
    return target_dir() / "release" / "examples" / "photo"
