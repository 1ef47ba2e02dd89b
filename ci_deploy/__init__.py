"""ci-deploy: deploy Apache Airflow projects to Astronomer's Astro from CI, verified."""

import os

__version__ = "0.1.0"

# No pydantic plugins: any installed package may register one, and it would see every model
# validated here (the API's answers, the config file); looking for them also scans every installed
# distribution's entry points at start-up (about 25 ms before the first API request).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
