"""The kind cluster: kind binary and config, cluster lifecycle, containers beside it."""
