"""The images a run uploads, and the multipart bodies they go out in.

Generated once into bench/corpus/ (git-ignored) by examples/photo.rs, the same generator the
imaging bench (benches/imaging.rs) encodes its inputs with; `--corpus DIR` uses your photos
instead (the small, ingest and tiny files stay generated).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from PIL import Image

from . import log
from .stats import rnd

# Bump when the generator or the list below changes, so cached corpora are rebuilt.
CORPUS_VERSION = "v2-rust-photo"
PHOTO_SIZES = [(1152, 864), (1600, 1200), (2592, 1944), (3264, 2448), (4000, 3000), (3000, 4000), (5472, 3648)]
SMALL_SIZE = (640, 480)
# MozJPEG q88 of this generator gives ~0.28 bytes/pixel (a 12 MP photo ~3.4 MB, a 640x480 one
# ~96 KB), the density of a phone photo and of the corpus before the generator was shared.
JPEG_QUALITY = 88
# The form fields of every end-to-end upload: fit 800x800, keep the format.
FIELDS = {"width": "800", "height": "800"}


def generate(cache: Path, photo_tool: Path):
    """Writes the corpus with `photo_tool` (WIDTHxHEIGHT SEED QUALITY OUT)."""

    def photo(name, w, h, seed, quality=JPEG_QUALITY, into=cache):
        subprocess.run([str(photo_tool), f"{w}x{h}", str(seed), str(quality), str(into / name)], check=True)
        return into / name

    for i, (w, h) in enumerate(PHOTO_SIZES):
        for k in range(2):
            photo(f"photo-{w}x{h}-{k}.jpg", w, h, 100 + 10 * i + k)
    for k in range(8):
        photo(f"small-640x480-{k}.jpg", *SMALL_SIZE, 500 + k)
    # ~100 KB upload for the ingest test: the quality that lands closest to 100 000 bytes
    with tempfile.TemporaryDirectory(prefix="bench-corpus.") as d:
        tries = [photo(f"ingest-q{q}.jpg", 720, 540, 900, q, Path(d)) for q in range(80, 99, 2)]
        best = min(tries, key=lambda p: abs(p.stat().st_size - 100_000))
        (cache / "ingest-100k.jpg").write_bytes(best.read_bytes())
    photo("tiny-16x16.png", 16, 16, 7)


def build_corpus(cache: Path, photo_dir: str | None, photo_tool: Callable[[], Path]):
    """The corpus, generated into `cache` unless it is there already; `photo_tool()` gives the
    generator's path (building it) only when it is needed."""
    cache.mkdir(parents=True, exist_ok=True)
    stamp = cache / CORPUS_VERSION
    if not stamp.exists():
        tool = photo_tool()
        log(f"generating the corpus in {cache} (once; cached)")
        for f in cache.glob("*"):
            if f.is_file():
                f.unlink()
        generate(cache, tool)
        stamp.write_text("ok\n")
    if photo_dir:
        exts = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
        photos = sorted(p for p in Path(photo_dir).iterdir() if p.suffix.lower() in exts and p.is_file())
        if not photos:
            sys.exit(f"bench: no images in {photo_dir}")
    else:
        photos = sorted(cache.glob("photo-*.jpg"))
    corpus = {
        "photos": [(p.name, p.read_bytes()) for p in photos],
        "small": [(p.name, p.read_bytes()) for p in sorted(cache.glob("small-*.jpg"))],
        "ingest": ("ingest-100k.jpg", (cache / "ingest-100k.jpg").read_bytes()),
        "tiny": ("tiny-16x16.png", (cache / "tiny-16x16.png").read_bytes()),
        "photo_paths": photos,
    }
    mp_list = []
    for p in photos:
        with Image.open(p) as im:
            mp_list.append(im.width * im.height / 1e6)
    corpus["photo_desc"] = {
        "files": len(photos), "source": photo_dir or "generated",
        "megapixels_min": rnd(min(mp_list), 1), "megapixels_max": rnd(max(mp_list), 1),
        "megapixels_mean": rnd(statistics.mean(mp_list), 1),
        "bytes_mean": int(statistics.mean(len(b) for _, b in corpus["photos"])),
    }
    return corpus


def multipart(filename: str, data: bytes, fields: dict[str, str]):
    boundary = "benchboundary" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    ctype = "image/png" if filename.endswith(".png") else "image/jpeg"
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
