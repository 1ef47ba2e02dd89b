"""An App Platform preview, pure: its app name, its spec made from the repository's (or the
template app's) spec, and the marker that owns it.

App Platform apps have no description, so a preview carries its marker in an app-level
environment variable, ``CI_DEPLOY_PREVIEW`` (``[ci-deploy-preview:owner/repo#12@<template
app id>]``): only apps carrying it are ever found, and so deleted, whatever their name.

The name follows digitalocean/app_action: ``<owner>-<repo>-<PR>`` lower-cased, every
character App Platform does not allow made ``-``, cut so that with ``-`` and the first eight
hex digits of a SHA-256 it fits App Platform's 32 characters (here the repository part is cut,
never the PR's number). The hash is of the repository,
the pull request and the template app, so two repositories' PR #12 never collide.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ci_deploy.digitalocean.rules import MARKER_ENV, components
from ci_deploy.preview import PullRequest

Json = dict[str, Any]

APP_NAME_MAX = 32
"""App Platform's limit on an app's name (``^[a-z][a-z0-9-]{0,30}[a-z0-9]$``)."""
_HASH_LENGTH = 8
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
_GIT_SOURCES = ("github", "gitlab", "bitbucket")
"""The sources that deploy on push; ``git`` (a clone URL) takes a branch only."""


def preview_app_name(pull_request: PullRequest) -> str:
    """``owner-repo-12-1a2b3c4d``: at most 32 characters, App Platform's name rule kept; the
    repository part is cut first, so the pull request's number always shows."""
    of = f"@{pull_request.template}" if pull_request.template else ""
    digest = hashlib.sha256(f"{pull_request.label}{of}".encode()).hexdigest()[:_HASH_LENGTH]
    tail = f"-{pull_request.number}-{digest}"
    head = _NOT_ALLOWED.sub("-", pull_request.repository.lower()).strip("-")
    if not head[:1].isalpha():  # the name must begin with a letter
        head = f"pr-{head}"
    return head[: max(APP_NAME_MAX - len(tail), 1)].rstrip("-") + tail


def preview_spec(
    spec: Mapping[str, Any],
    name: str,
    tag: str,
    branch: str,
    variables: Mapping[str, str],
    kept_envs: list[Json] | None = None,
) -> Json:
    """``spec`` made a preview's: named ``name``, its domains and alerts removed, every git
    component building ``branch`` without deploy on push, its secret app-level variables
    dropped (encrypted for another app), the marker ``tag`` and the secret ``variables`` as
    app-level variables, and ``kept_envs`` (the preview's own secrets, set when it was made)
    kept."""
    made: Json = copy.deepcopy(dict(spec))
    made["name"] = name
    made.pop("domains", None)
    made.pop("alerts", None)
    for component in components(made):  # the copy's own components, changed in place
        component.pop("alerts", None)
        for source in (*_GIT_SOURCES, "git"):
            if not isinstance(component.get(source), dict):
                continue
            if branch:
                component[source]["branch"] = branch
            if source in _GIT_SOURCES:
                component[source]["deploy_on_push"] = False
    given = {MARKER_ENV, *variables}
    envs = [  # another app's secrets are encrypted for it: preview-env or kept_envs set them
        env
        for env in made.get("envs") or ()
        if isinstance(env, dict) and env.get("key") not in given and env.get("type") != "SECRET"
    ]
    set_keys = {env.get("key") for env in envs}
    envs += [env for env in kept_envs or () if env.get("key") not in set_keys | given]
    envs += [
        {"key": key, "value": value, "type": "SECRET", "scope": "RUN_AND_BUILD_TIME"}
        for key, value in variables.items()
    ]
    envs.append({"key": MARKER_ENV, "value": tag, "type": "GENERAL", "scope": "RUN_TIME"})
    made["envs"] = envs
    return made
