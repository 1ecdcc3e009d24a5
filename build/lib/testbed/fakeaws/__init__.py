"""Fake AWS: ELBv2 API on moto, the project's target store and health model, health checker,
ALB data plane and event log.

Two processes: the API process (moto, WSGI, threads) and the engine process (asyncio: target
store, health checker, data plane, event log). moto burns ~11 ms of CPU per call under the GIL;
keeping it out of the engine's process keeps data-plane latency independent of API load.
"""
