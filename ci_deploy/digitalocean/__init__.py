"""DigitalOcean App Platform, the second platform: one app and its deployments."""
