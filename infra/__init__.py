"""mirrorcast's Pulumi program: components for primaries, paused mirrors and weighted balancers.

``infra.config`` holds the configuration contract and imports no cloud SDK, so the planner and
the driver can use it without loading the providers. The components live in ``infra.aws``,
``infra.azure``, ``infra.gcp`` and ``infra.dns``; ``infra/__main__.py`` is the program Pulumi runs.
"""
