"""docs/prometheus-rules.yml: valid (promtool when installed), one rule per portal rule, only metrics we export."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from billing.alert_rules import RULES

RULES_FILE = Path(__file__).resolve().parents[2] / "docs" / "prometheus-rules.yml"


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules_when_it_is_installed():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; the rules are parsed by the other tests")
    result = subprocess.run([promtool, "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_portal_rule_has_its_prometheus_twin_with_a_runbook():
    rules = _rules()
    assert {rule["labels"]["rule"] for rule in rules} >= set(RULES) | {"reconciliation_divergence"}
    runbook = (RULES_FILE.parent / "runbooks" / "alerts.md").read_text().lower()
    for rule in rules:
        assert rule["alert"] and rule["expr"] and rule["labels"]["severity"] in ("critical", "warning")
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f"## {anchor}" in runbook, f"docs/runbooks/alerts.md has no section for {anchor}"


def test_the_rules_read_only_metrics_the_portal_exports(client):
    families = {family.name: family.type for family in
                text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    exported = set(families)
    exported |= {f"{name}_total" for name, kind in families.items() if kind == "counter"}
    exported |= {f"{name}_bucket" for name, kind in families.items() if kind == "histogram"}
    for rule in _rules():
        for name in set(re.findall(r"\bkernel_billing_[a-z_]+", rule["expr"])):
            assert name in exported, (rule["alert"], name)
