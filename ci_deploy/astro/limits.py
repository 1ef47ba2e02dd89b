"""The Astro API's limits that the inputs borrow, as plain numbers.

Kept apart from :mod:`ci_deploy.astro.wire` so that validating the inputs never loads the
API's pydantic models: a run with a bad input exits before anything of the client is imported.
"""

DESCRIPTION_MAX = 500
"""The most characters CreateDeploy takes in a deploy's ``description``."""
