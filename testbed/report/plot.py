"""The timeline picture: failed requests above, the states that explain them below."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and containers have no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from testbed.report.model import Report  # noqa: E402
from testbed.report.timeline import BIN_SECONDS, Span, build_lanes, error_bins, ok_bins  # noqa: E402

POD_COLORS = {"pending": "#c7c7c7", "not_ready": "#ffd966", "ready": "#6aa84f",
              "terminating": "#e69138"}
TARGET_COLORS = {"initial": "#ffd966", "healthy": "#6aa84f", "unhealthy": "#cc0000",
                 "draining": "#e69138", "unused": "#999999", "unavailable": "#674ea7"}
CLASS_COLORS = ["#cc0000", "#3d85c6", "#e69138", "#674ea7", "#000000", "#a64d79", "#45818e",
                "#bf9000"]
POD_MARKS = {"gate_true": ("*", "black")}
ACTION_MARKS = {"register": ("^", "#38761d"), "deregister": ("v", "#cc0000"),
                "gate": ("o", "#3d85c6"), "skip": ("x", "#999999")}


def _bars(ax: plt.Axes, spans: list[Span], colors: dict[str, str],
          labels: dict[str, str]) -> list[str]:
    rows = sorted({s.row for s in spans})
    for i, row in enumerate(rows):
        for s in (s for s in spans if s.row == row):
            ax.broken_barh([(s.start, s.end - s.start)], (i - 0.4, 0.8),
                           facecolors=colors.get(s.state, "#dddddd"))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([labels.get(r, r) for r in rows], fontsize=7)
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=6,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return rows


def _legend(ax: plt.Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def plot_timeline(report: Report, path: str | Path) -> Path:
    """Write the PNG and return its path."""
    lanes = build_lanes(report.pod_events, report.aws_events, report.actions, report.t0,
                        report.t_end)
    n_pods = len({s.row for s in lanes.pods})
    n_tgts = len({s.row for s in lanes.targets})
    heights = [3.0, max(1.0, 0.3 * n_pods), max(1.0, 0.3 * n_tgts), 1.2]
    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(12, sum(heights) + 1.5),
                             gridspec_kw={"height_ratios": heights})
    ax_req, ax_pod, ax_tgt, ax_ctl = axes

    bottom: dict[int, int] = {}
    for i, (cls, bins) in enumerate(sorted(error_bins(report.records, report.t0).items())):
        xs = sorted(bins)
        ax_req.bar([b * BIN_SECONDS for b in xs], [bins[b] for b in xs], width=BIN_SECONDS,
                   align="edge", bottom=[bottom.get(b, 0) for b in xs],
                   color=CLASS_COLORS[i % len(CLASS_COLORS)], label=cls)
        for b in xs:
            bottom[b] = bottom.get(b, 0) + bins[b]
    oks = ok_bins(report.records, report.t0)  # stacked above the errors: height = sent rate
    if oks:
        xs = sorted(oks)
        ax_req.bar([b * BIN_SECONDS for b in xs], [oks[b] for b in xs], width=BIN_SECONDS,
                   align="edge", bottom=[bottom.get(b, 0) for b in xs], color="#d9ead3",
                   label="ok")
    for n, (start, end) in enumerate(report.fault_windows()):
        for ax in axes:  # a fault's window across every lane, as the error windows are
            ax.axvspan(start - report.t0, end - report.t0, color="#8e7cc3", alpha=0.15,
                       label="fault window" if n == 0 and ax is ax_req else None)
    ax_req.set_ylabel(f"requests / {int(BIN_SECONDS * 1000)} ms")
    ax_req.set_title(f"{report.name}: {report.summary.errors} failed of "
                     f"{report.summary.requests} requests")
    _legend(ax_req)

    _bars(ax_pod, lanes.pods, POD_COLORS, {})
    pod_rows = sorted({s.row for s in lanes.pods})
    for row, t, kind in lanes.pod_marks:
        if row in pod_rows:
            marker, color = POD_MARKS.get(kind, ("|", "black"))
            ax_pod.plot(t, pod_rows.index(row), marker=marker, color=color, markersize=8)
    ax_pod.set_ylabel("pods")

    tgt_labels = {t: f"{t} ({p})" for t, p in lanes.target_pods.items()}
    _bars(ax_tgt, lanes.targets, TARGET_COLORS, tgt_labels)
    ax_tgt.set_ylabel("targets")

    if lanes.routing:
        ts = [t for t, _ in lanes.routing] + [report.t_end - report.t0]
        ns = [n for _, n in lanes.routing] + [lanes.routing[-1][1]]
        ax_ctl.step(ts, ns, where="post", color="#3d85c6", label="routing set size")
    for kind, (marker, color) in ACTION_MARKS.items():
        pts = [t for t, k, _ in lanes.actions if k == kind]
        if pts:
            ax_ctl.plot(pts, [0] * len(pts), linestyle="none", marker=marker, color=color,
                        label=f"controller {kind}")
    ax_ctl.set_ylabel("routing")
    ax_ctl.set_xlabel("seconds since the load started")
    _legend(ax_ctl)
    # shade the error bins across the state panels so causes line up with effects
    err_bins = sorted({b for bins in error_bins(report.records, report.t0).values() for b in bins})
    for ax in (ax_pod, ax_tgt, ax_ctl):
        for b in err_bins:
            ax.axvspan(b * BIN_SECONDS, (b + 1) * BIN_SECONDS, color="#cc0000", alpha=0.12,
                       linewidth=0)
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
