"""ELBv2 API: moto for the control plane, the engine for targets and health."""
