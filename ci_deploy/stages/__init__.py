"""The stages of a run, in order: detect, build, ship, verify, recover.

Each stage is a function over the run's inputs and its collaborators (git, the image
engine, the platform, the runner) that adds its records to the run's
:class:`~ci_deploy.result.Journal` and returns what the next stage needs. The sequence
itself is :func:`ci_deploy.run.run`.
"""
