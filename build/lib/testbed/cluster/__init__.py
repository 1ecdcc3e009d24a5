"""The kind cluster: Docker engine, kind binary, cluster lifecycle."""
