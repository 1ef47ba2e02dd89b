"""ci-deploy: deploy Apache Airflow projects to Astronomer's Astro from CI, verified."""

__version__ = "0.1.0"
