"""The upload-memory phase of scripts/bench alone, A/B: API memory per upload in flight for each
binary, alternating, with the bench's own cluster, corpus and clients (issue 21's "API memory per
in-flight upload", target <= 2x its size).

    .venv-bench/driver/bin/python bench/memory_phase.py A=/tmp/ip-before B=target/release/image-processor
    ROUNDS=5 CLIENTS=8 SECS=5 .venv-bench/driver/bin/python bench/memory_phase.py BIN
    MIMALLOC_PURGE_DELAY=0 .venv-bench/driver/bin/python bench/memory_phase.py BIN   # as API pods run
"""
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT  # noqa: E402
from harness.build import build_photo_tool  # noqa: E402
from harness.cluster import start_postgres  # noqa: E402
from harness.corpus import build_corpus  # noqa: E402
from harness.phases import run_upload_memory  # noqa: E402
from harness.services import Service  # noqa: E402
from harness.stack import Stack  # noqa: E402


def main():
    bins = [a.split("=", 1) if "=" in a else (a, a) for a in sys.argv[1:]]
    if not bins:
        sys.exit(__doc__)
    rounds, clients, secs = (int(os.environ.get(k, d)) for k, d in (("ROUNDS", 3), ("CLIENTS", 8), ("SECS", 5)))
    corpus = build_corpus(ROOT / "bench" / "corpus", None, build_photo_tool)
    stack = Stack()
    got = {label: [] for label, _ in bins}
    try:
        pg = start_postgres(stack, True)
        for r in range(rounds):
            for label, binary in (bins if r % 2 == 0 else bins[::-1]):
                service = Service(stack, binary, pg.url, "info", "text", corpus["tiny"][1])
                ctx = {"pg_pid": pg.pid, "service": service, "corpus": corpus, "seed": None}
                out = run_upload_memory(ctx, service, clients, secs)
                got[label].append(out["per_upload_x"])
                print(f"round {r} {label}: {out['per_upload_x']}x (peak {out['peak_mib']} MiB, rest "
                      f"{out['rest_mib']} MiB, after {out['after_mib']} MiB, {out['accepted']} accepted)", flush=True)
                stack.stop(service.api)
    finally:
        stack.close()
    for label, xs in got.items():
        print(f"{label}: median {statistics.median(xs)}x of {xs}")


if __name__ == "__main__":
    main()
