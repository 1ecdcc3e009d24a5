"""`testbed check`: the static rules a rolling update behind an ALB needs, read from
Kubernetes manifests plus the target group / ALB settings (no cluster). docs/check.md has
every rule, why it exists and its upstream references."""

from testbed.check.facts import (
    Facts,
    Settings,
    facts_from_manifests,
    facts_from_scenario,
    settings_from_scenario,
)
from testbed.check.rules import RULES, Finding, evaluate

__all__ = ["RULES", "Facts", "Finding", "Settings", "evaluate", "facts_from_manifests",
           "facts_from_scenario", "settings_from_scenario"]
