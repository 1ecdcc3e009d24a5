"""Open-loop HTTP load generator: fixed arrival rate, latency from the intended send time."""
