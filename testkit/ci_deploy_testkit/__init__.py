"""ci-deploy's test kit: the Astro emulator, the local runner, and readers of runner files.

Not part of the action: the tests, ``make demo`` and ``ci-deploy emulator`` use it, and the
action's image does not install it.
"""
