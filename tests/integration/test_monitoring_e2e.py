"""The monitoring chain with the real parts (issue 24): the status playbook writes each host's textfile, Debian's
prometheus-node-exporter serves them with only its textfile collector, Debian's prometheus scrapes it and loads the
shipped alert rules. Every dashboard query returns data, the textfiles parse, and an alert caused in the simulator
shows up in Prometheus's /api/v1/alerts. Every process binds 127.0.0.1 and is stopped (tests/helpers/prom.py).

SELFHOST_BW_DASHBOARD_PNG=<path> also keeps the dashboard picture drawn from this Prometheus (the docs' PNG).
"""

import os
import shutil
import time
from pathlib import Path

from helpers import dashboard
from helpers.ansible_run import run_playbook
from helpers.prom import node_exporter, prometheus, wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docs" / "examples" / "prometheus" / "selfhost_bitwarden.rules.yml"


def status(fleet, textfiles, report):
    return run_playbook(REPO / "playbooks" / "status.yml", fleet.inventory, extra_vars={
        "billing_sync_report_dir": str(report), "billing_sync_metrics": True,
        "billing_sync_metrics_path": str(textfiles) + "/{{ inventory_hostname }}.prom"})


def test_status_metrics_through_real_node_exporter_and_prometheus(sim_fleet, tmp_path):
    fleet = sim_fleet([{"name": "vault-eu", "region": "EU", "sponsorships": 2}, {"name": "vault-us", "subscription_days": 20},
                       {"name": "lite-us", "deployment": "lite"}], restart_delay=0.2, warmup=0.1)
    run_playbook(REPO / "playbooks" / "rollout.yml", fleet.inventory).assert_ok()
    for name in ("vault-eu", "vault-us"):
        fleet.client.run_job(name)  # the daily sponsorship job, as its trigger would fire it
    textfiles, report = tmp_path / "textfiles", tmp_path / "report"
    textfiles.mkdir()
    report.mkdir()
    status(fleet, textfiles, report).assert_ok()
    start = time.time()

    with node_exporter(textfiles, tmp_path / "node_exporter") as exporter, \
            prometheus(tmp_path / "prometheus", [exporter.address], rule_files=[RULES]) as prom:
        prom.wait_for_scrape()
        board = dashboard.load()
        for title, ref, expr in dashboard.panel_queries(board):
            prom.wait_for(lambda expr=expr: prom.query(expr), what="data for %s %s: %s" % (title, ref, expr))
        assert [sample["value"][1] for sample in prom.query("node_textfile_scrape_error")] == ["0"]
        hosts = {sample["metric"]["host"] for sample in prom.query("selfhost_bitwarden_info")}
        assert hosts == set(fleet.names)
        columns, rows = dashboard.fleet_table(prom, board)
        table = {row[columns.index("host")]: dict(zip(columns, row)) for row in rows}
        assert table["lite-us"]["kind"] == "lite" and table["vault-eu"]["region (wanted)"] == "EU"
        assert table["vault-us"]["days left"] in (19, 20) and table["vault-eu"]["sponsorship sync"] == "synced"
        assert all(row["drift"] == 0 and row["read error"] == 0 for row in table.values())
        # pending only (vault-us ends in 20 days: for 1h; lite-us has no sponsorship run yet: for 48h)
        assert [alert for alert in prom.alerts() if alert["state"] != "pending"] == []

        # The simulator takes vault-eu's server down: the next status run cannot read it.
        fleet.client.bitwarden_sh("vault-eu", "stop")
        assert status(fleet, textfiles, report).rc != 0
        alerts = prom.wait_for(lambda: [alert for alert in prom.alerts()
                                        if alert["labels"]["alertname"] == "BitwardenHostUnreadable"],
                               what="BitwardenHostUnreadable in /api/v1/alerts")
        assert [alert["labels"]["host"] for alert in alerts] == ["vault-eu"]
        assert wait_for(lambda: prom.query('ALERTS{alertname="BitwardenHostUnreadable",alertstate="firing"}'),
                        what="the alert firing")
        assert [sample["value"][1] for sample in prom.query("node_textfile_scrape_error")] == ["0"]

        picture = tmp_path / "dashboard.png"
        dashboard.render_png(prom, picture, start - 5, time.time())
        assert picture.stat().st_size > 10000
        if os.environ.get("SELFHOST_BW_DASHBOARD_PNG"):
            shutil.copy(picture, os.environ["SELFHOST_BW_DASHBOARD_PNG"])
    assert exporter.process.poll() is not None and prom.process.poll() is not None
