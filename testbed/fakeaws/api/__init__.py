"""The API process: ELBv2 on moto (WSGI, threads), the validation moto lacks, `/_testbed/*`,
and the client of the engine process it spawns. Nothing here imports the engine's code; the
shared contract is testbed/fakeaws/settings.py and testbed/fakeaws/wire.py."""
