"""The shipped Grafana dashboard (docs/examples/grafana), its queries, and a PNG of it drawn from a real Prometheus.

Grafana is not run here: `render_png` asks Prometheus's HTTP API the dashboard's own queries and draws the stat
panels, the fleet table (merged by host and renamed as the dashboard's transformations say) and two time series
with matplotlib. The docs picture comes from it (tests/integration/test_monitoring_e2e.py, SELFHOST_BW_DASHBOARD_PNG).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "examples" / "grafana" / "selfhost_bitwarden.dashboard.json"
PLOTTED = ("License days left", "Hours since the last license sync")


def load():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def expand(expr, host=".*"):
    """A panel query as Prometheus gets it from Grafana for the `host` variable (All: .*)."""
    return expr.replace("$host", host)


def panel_queries(dashboard):
    """[(panel title, refId, expr)] of every panel target."""
    return [(panel["title"], target["refId"], expand(target["expr"])) for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def _panel(dashboard, kind, title=None):
    return next(panel for panel in dashboard["panels"] if panel["type"] == kind and (title is None or panel["title"] == title))


def fleet_table(prom, dashboard):
    """(columns, rows) of the fleet table: the targets merged on host, organized as its transformations say."""
    panel = _panel(dashboard, "table")
    organize = next(step["options"] for step in panel["transformations"] if step["id"] == "organize")
    merged = {}
    for target in panel["targets"]:
        for sample in prom.query(expand(target["expr"])):
            fields = dict(sample["metric"])
            fields["Value #%s" % target["refId"]] = float(sample["value"][1])
            merged.setdefault(fields["host"], {}).update(fields)
    names = sorted(organize["indexByName"], key=organize["indexByName"].get)
    columns = [organize["renameByName"].get(name, name) for name in names]
    rows = [[row.get(name) for name in names] for _host, row in sorted(merged.items())]
    return columns, rows


def _cell(column, value, now):
    if value is None:
        return "-"
    if column == "last license sync":
        return "never" if not value else "%.0f min ago" % ((now - value / 1000) / 60)
    if isinstance(value, float):
        return "%d" % value
    return str(value)


def render_png(prom, path, start, end, dashboard=None):
    """Draw the dashboard from Prometheus data between start and end (Unix seconds) into path."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    dashboard = dashboard or load()
    now = end
    figure = plt.figure(figsize=(15, 8.5), dpi=80)
    moment = datetime.datetime.fromtimestamp(end, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    figure.suptitle("%s  -  %s UTC" % (dashboard["title"], moment), fontsize=15, x=0.01, ha="left")
    grid = figure.add_gridspec(3, 4, height_ratios=[0.9, 1.2, 2.4], hspace=0.4, wspace=0.3)
    for index, panel in enumerate(panel for panel in dashboard["panels"] if panel["type"] == "stat"):
        axes = figure.add_subplot(grid[0, index])
        result = prom.query(expand(panel["targets"][0]["expr"]))
        value = float(result[0]["value"][1]) if result else 0
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        color = [step["color"] for step in steps if step["value"] is None or value >= step["value"]][-1]
        axes.set_facecolor({"green": "#56a64b", "red": "#e02f44", "blue": "#3274d9"}.get(color, color))
        axes.text(0.5, 0.42, "%d" % value, ha="center", va="center", fontsize=28, color="white", weight="bold")
        axes.set_title(panel["title"], fontsize=11)
        axes.set_xticks([])
        axes.set_yticks([])
    columns, rows = fleet_table(prom, dashboard)
    axes = figure.add_subplot(grid[1, :])
    axes.axis("off")
    axes.set_title("Fleet", loc="left", fontsize=12)
    cells = [[_cell(column, value, now) for column, value in zip(columns, row)] for row in rows]
    table = axes.table(cellText=cells or [["-"] * len(columns)], colLabels=columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(list(range(len(columns))))
    table.scale(1, 1.4)
    for (line, column), cell in table.get_celld().items():
        name = columns[column]
        text = cell.get_text().get_text()
        if line == 0:
            cell.set_facecolor("#d8d9da")
        elif name in ("drift", "read error") and text not in ("0", "-"):
            cell.set_facecolor("#f2a6ae")
        elif name == "days left" and text != "-":
            cell.set_facecolor("#f2a6ae" if int(text) < 30 else "#b5dfae" if int(text) >= 60 else "#ffd59b")
    for index, title in enumerate(PLOTTED):
        panel = _panel(dashboard, "timeseries", title)
        axes = figure.add_subplot(grid[2, index * 2:index * 2 + 2])
        for target in panel["targets"]:
            for serie in prom.query_range(expand(target["expr"]), start, end, max(1, int((end - start) / 200))):
                label = target["legendFormat"].replace("{{host}}", serie["metric"].get("host", ""))
                times = [datetime.datetime.fromtimestamp(float(t), datetime.timezone.utc) for t, _v in serie["values"]]
                axes.plot(times, [float(v) for _t, v in serie["values"]], label=label, linewidth=2)
        axes.set_title(title, loc="left", fontsize=12)
        axes.set_ylabel(panel["fieldConfig"]["defaults"]["unit"])
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=3, frameon=False)
        axes.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%H:%M:%S"))
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return columns, rows
