"""A fake GitHub REST API on 127.0.0.1: issue comments, Deployments and their statuses."""

from ci_deploy_testkit.github.server import ALL_PERMISSIONS, FakeGitHub, GitHubRequest

__all__ = ["ALL_PERMISSIONS", "FakeGitHub", "GitHubRequest"]
