"""Scenario files: what to deploy, how to roll it, what load to send, what to expect."""

from testbed.scenario.loader import (
    ScenarioError,
    builtin_names,
    load_builtin,
    load_scenario,
    parse_scenario,
)
from testbed.scenario.model import Scenario

__all__ = ["Scenario", "ScenarioError", "builtin_names", "load_builtin", "load_scenario",
           "parse_scenario"]
