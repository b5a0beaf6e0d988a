"""latest.svg: the scaling curves against the seed and the targets, and pickup latency per
worker configuration, drawn with matplotlib (pinned in scripts/bench)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from . import NPROC  # noqa: E402

OURS = "#2a6fb0"
GOAL = "#c33"
PICKUP_COLORS = {"p50_ms": "#2a6fb0", "p95_ms": "#7aa6d6", "p99_ms": "#c4d7ee"}
STYLE = {
    "font.family": "sans-serif",
    "font.size": 8,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    # Text stays text (a small file, searchable); the same run renders to the same bytes.
    "svg.fonttype": "none",
    "svg.hashsalt": "image-processor-bench",
}


def scaling_panel(ax, title, xs, ys, ref=None, ref_label=None, x_label=""):
    """One y per worker count on a log2 axis, each point labelled, with a dashed reference."""
    ax.set_title(title, loc="left")
    ax.set_xlabel(x_label)
    if ref:
        ax.axhline(ref, color=GOAL, linestyle=(0, (5, 4)), linewidth=1)
        ax.annotate(f"{ref_label} {ref:.1f}", (1, ref), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", ha="right", color=GOAL)
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if pts:
        ax.plot([x for x, _ in pts], [y for _, y in pts], color=OURS, linewidth=2, marker="o", markersize=5)
        for x, y in pts:
            ax.annotate(f"{y:.0f}", (x, y), xytext=(0, 6), textcoords="offset points", ha="center")
    if xs:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
    vals = [y for _, y in pts] + ([ref] if ref else [])
    ax.set_ylim(0, max(vals) * 1.15 if vals else 1)
    ax.grid(axis="y", color="#eee")


def pickup_panel(ax, groups):
    """p50/p95/p99 bars of the idle pickup latency per configuration, goals dashed."""
    ax.set_title("pickup latency, idle (ms)", loc="left")
    width = 0.8 / 3
    for j, key in enumerate(PICKUP_COLORS):
        xs = [i + (j - 1) * width for i, (_, p) in enumerate(groups) if p.get(key) is not None]
        ys = [p[key] for _, p in groups if p.get(key) is not None]
        ax.bar(xs, ys, width * 0.95, color=PICKUP_COLORS[key], label=key.removesuffix("_ms"))
    for goal in (5, 25):
        ax.axhline(goal, color=GOAL, linestyle=(0, (4, 3)), linewidth=1)
    vals = [p.get(k) for _, p in groups for k in PICKUP_COLORS if p.get(k) is not None]
    ymax = max(vals + [25]) * 1.1
    ax.set_ylim(0, ymax)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups])
    ax.set_xlabel("procs × threads")
    # Hung from the 25 ms goal line, where the bars rarely reach.
    ax.legend(loc="upper left", bbox_to_anchor=(0, 25 / ymax), frameon=False, ncol=3, fontsize=7,
              title="dashed: goals p50 ≤ 5, p99 ≤ 25 ms", title_fontsize=7, alignment="left")
    ax.grid(axis="y", color="#eee")


def write_chart(r, path: Path):
    sc = r.get("scaling") or []
    h = r["headline"]
    xs = [row["workers"] for row in sc]
    x_label = f"worker processes × {sc[0]['threads'] if sc else 1} thread"
    seed_photos, seed_small = h["photos"].get("seed"), h["small"].get("seed")
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 4, figsize=(11, 3.4), layout="constrained")
        scaling_panel(axes[0], "photos/s", xs, [row["photos"].get("per_s") for row in sc],
                      seed_photos.get("per_s") if seed_photos else None, "seed", x_label)
        scaling_panel(axes[1], "small images/s", xs, [row["small"].get("per_s") for row in sc],
                      seed_small.get("per_s") if seed_small else None, "seed", x_label)
        scaling_panel(axes[2], "queue jobs/s (tiny)", xs, [row["queue"].get("jobs_per_s") for row in sc],
                      2000, "target", x_label)
        groups = [(f"{h['workers']}×{h['threads']}", h["pickup"])] + \
                 [(f"{row['workers']}×{row['threads']}", row["pickup"]) for row in sc]
        pickup_panel(axes[3], groups)
        fig.get_layout_engine().set(h_pad=0.1)
        fig.supxlabel(f"image-processor bench {r['started']} · git {r['git']['rev']} · {NPROC} cores · "
                      f"load {r['machine']['loadavg_start'][0]:.1f}→{r['machine']['loadavg_end'][0]:.1f}",
                      fontsize=7, color="#666", x=0.01, ha="left")
        fig.savefig(path, format="svg", metadata={"Date": None})
        plt.close(fig)
