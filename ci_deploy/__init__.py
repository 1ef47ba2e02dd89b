"""ci-deploy: deploy Apache Airflow projects to Astronomer's Astro from CI, with verified rollouts."""

__version__ = "0.1.0"
