"""Demo workload rolled by scenarios: every shutdown/readiness knob a rollout bug depends on."""
