"""The engine process: target store, routing algorithms, health checker, ALB data plane and
event log on one asyncio loop, driven by the API process over a loopback JSON control port.

Run as `python -m testbed.fakeaws.engine --control-port 0 ...` (the API process does; flags:
`--help`). Nothing here imports the API process's code; the shared contract is
testbed/fakeaws/settings.py and testbed/fakeaws/wire.py.
"""
