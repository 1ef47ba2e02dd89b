"""The one living comment on a pull request, per target: its marker and its body (pure).

A run on a pull request keeps one comment per PR and *target* (the Deployment it is about:
``deployment-id``, or a preview's id): found by :func:`marker` on its first line, created once,
then updated in place by each run. Its body is the run's job summary (what changed, by class;
the plan or the result; the rollback if one happened; the Deployment's link) followed by the
run's link and the commit, and any ``notes`` a caller adds (a preview's link, for example).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from ci_deploy.github import GitHubContext
from ci_deploy.report import summary
from ci_deploy.result import RunResult

COMMENT_MAX = 65536
"""The most characters GitHub takes in a comment's body."""
_CUT = "\n\n… (cut: GitHub takes at most 65536 characters; the run's job summary has it all)\n"


def marker(target: str) -> str:
    """The hidden HTML comment that names the comment's target on its first line."""
    return f"<!-- ci-deploy:pr-comment target={quote(target, safe='')} -->"


def is_ours(body: str | None, target: str) -> bool:
    """Whether a comment's ``body`` is the living comment of ``target``."""
    return body is not None and body.split("\n", 1)[0].strip() == marker(target)


def body(result: RunResult, context: GitHubContext, target: str, notes: Sequence[str] = ()) -> str:
    """The comment's Markdown for ``result``: marker, summary, notes, then run and commit."""
    footer = []
    if context.run_url:
        footer.append(f"[Workflow run]({context.run_url})")
    head = result.detection.head if result.detection is not None else None
    if head is not None:
        footer.append(f"commit `{head.sha[:12]}`")
    footer.append("updated in place by ci-deploy on each run")
    tail = "\n".join([*notes, "", f"<sub>{' · '.join(footer)}</sub>", ""])
    text = summary(result, context).rstrip("\n")
    room = COMMENT_MAX - len(marker(target)) - len(tail) - len(_CUT) - 4
    if len(text) > room:
        text = text[: text.rfind("\n", 0, room)] + _CUT
    return f"{marker(target)}\n{text}\n\n{tail}"
