"""The project's Dockerfile, read as Docker reads it, without any Docker engine.

Which base images it names (is pulling the newest Astro Runtime worth it?), and whether it
uses what only BuildKit understands: the Docker Engine API build that
:class:`ci_deploy.image.ImageBuilder` runs is Docker's classic builder, which cannot take
build secrets and fails on every ``RUN --mount``/``--network``/``--security`` flag, so such
Dockerfiles are refused before anything is sent, with a pointer to building the image in
an earlier step (docker/build-push-action with ``load: true``) and passing its name in
``image-name``.

Plain text processing: importing this module imports neither the Docker SDK nor
``requests``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_deploy.errors import ImageError

__all__ = [
    "RUNTIME_IMAGE_REPOSITORIES",
    "buildkit_only_flags",
    "refuse_buildkit_only",
    "runtime_base_images_only",
]

RUNTIME_IMAGE_REPOSITORIES = (
    "quay.io/astronomer/astro-runtime",
    "astrocrpublic.azurecr.io/runtime",
    "images.astronomer.cloud/baseimages/astro-runtime",
)
"""The repositories of Astronomer's runtime images (any tag or digest)."""


# --- reading a Dockerfile -----------------------------------------------------------------


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    """Upper-cased, like ``FROM``."""
    rest: str
    """The instruction's arguments, continuation lines joined."""


_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


def _instructions(text: str) -> list[_Instruction]:
    """The instructions of a Dockerfile, as Docker reads them.

    Parser directives (``# escape=``) are honoured, comments and blank lines dropped, line
    continuations joined (comment lines inside them skipped), heredoc bodies skipped.
    """
    lines = text.splitlines()
    escape = "\\"
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
        index += 1

    result: list[_Instruction] = []
    pending: list[str] = []
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and (not stripped or stripped.startswith("#")):
            continue  # blank and comment lines inside a continuation
        body = line.rstrip()
        if body.endswith(escape):
            pending.append(body[: -len(escape)])
            continue
        pending.append(body)
        logical = " ".join(part.strip() for part in pending).strip()
        pending = []
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        result.append(_Instruction(keyword, rest))
        if keyword in _HEREDOC_KEYWORDS:
            for heredoc in _HEREDOC.finditer(rest):
                dash, name = heredoc.group(1), heredoc.group(3)
                while index < len(lines):
                    body_line = lines[index]
                    index += 1
                    if (body_line.lstrip("\t") if dash else body_line) == name:
                        break
    if pending:
        logical = " ".join(part.strip() for part in pending).strip()
        keyword, _, rest = logical.partition(" ")
        result.append(_Instruction(keyword.upper(), rest.strip()))
    return result


# --- ARG substitution ---------------------------------------------------------------------


def _global_args(rest: str) -> dict[str, str | None]:
    """``ARG A=1 B`` -> ``{"A": "1", "B": None}`` (None: no default)."""
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    found: dict[str, str | None] = {}
    for word in words:
        name, equals, value = word.partition("=")
        found[name] = value if equals else None
    return found


_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+])?(?P<word>[^}]*)\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def _substitute(word: str, args: Mapping[str, str | None]) -> str | None:
    """``word`` with the global ARG defaults substituted; None when that cannot be known."""
    unknown = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group("braced") or match.group("plain")
        value = args.get(name)
        op, alternative = match.group("op"), match.group("word") or ""
        if op is None:
            if alternative or value is None:
                unknown = True  # ${A%x} and friends, or an ARG without a default
                return ""
            return value
        if "$" in alternative:
            unknown = True
            return ""
        if op == ":-":
            return value if value else alternative
        if op == "-":
            return value if value is not None else alternative
        if op == ":+":
            return alternative if value else ""
        return alternative if value is not None else ""  # "+"

    result = _VARIABLE.sub(replace, word)
    if unknown or "$" in result:
        return None
    return result


# --- the base images ----------------------------------------------------------------------


def _is_runtime_image(reference: str) -> bool:
    reference = reference.lower()
    return any(
        reference == repository or reference.startswith((f"{repository}:", f"{repository}@"))
        for repository in RUNTIME_IMAGE_REPOSITORIES
    )


def runtime_base_images_only(dockerfile_text: str) -> bool:
    """Whether every ``FROM`` names an Astronomer runtime image (so ``pull`` is worth it).

    A ``FROM`` naming an earlier stage counts as fine. ``FROM --platform=... image AS name``
    is understood; ``$ARG`` names are resolved from the ARG defaults declared before the
    first ``FROM``, and anything that cannot be resolved counts as not a runtime image.
    A Dockerfile without ``FROM`` gives False.
    """
    args: dict[str, str | None] = {}
    stages: set[str] = set()
    seen_from = False
    for instruction in _instructions(dockerfile_text):
        if instruction.keyword == "ARG" and not seen_from:
            args.update(_global_args(instruction.rest))
            continue
        if instruction.keyword != "FROM":
            continue
        seen_from = True
        words = instruction.rest.split()
        while words and words[0].startswith("--"):
            words.pop(0)
        if not words:
            return False
        image = _substitute(words[0], args)
        if image is None:
            return False
        if image.lower() not in stages and not _is_runtime_image(image):
            return False
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
    return seen_from


# --- what only BuildKit understands -------------------------------------------------------


def buildkit_only_flags(dockerfile_text: str) -> list[str]:
    """The ``RUN`` flags of a Dockerfile that only BuildKit understands, like ``--mount=...``.

    The Engine API build (the classic builder) fails on every one of them.
    """
    flags: list[str] = []
    for instruction in _instructions(dockerfile_text):
        if instruction.keyword != "RUN":
            continue
        for word in instruction.rest.split():
            if not word.startswith("--"):
                break
            flags.append(word)
    return flags


def _mount_type(flag: str) -> str:
    """``--mount=type=secret,id=x`` -> ``secret``; bind is Docker's default type."""
    _, _, spec = flag.partition("=")
    for field in spec.split(","):
        key, _, value = field.partition("=")
        if key.strip().lower() == "type":
            return value.strip().strip("\"'").lower()
    return "bind"


def refuse_buildkit_only(dockerfile_text: str, dockerfile: Path) -> None:
    """Raise ImageError when the Dockerfile uses a ``RUN`` flag only BuildKit understands.

    Build secrets (``RUN --mount=type=secret``) get their own title, "Build secrets not
    supported"; any other such flag gets "BuildKit feature not supported". ``dockerfile``
    is the file's path, for the message.
    """
    flags = buildkit_only_flags(dockerfile_text)
    if not flags:
        return
    mounts = [_mount_type(flag) for flag in flags if flag.lower().startswith("--mount")]
    if "secret" in mounts:
        raise ImageError(
            f"{dockerfile} uses build secrets (RUN --mount=type=secret), which the Docker "
            "Engine API build this action runs cannot provide. Build the image in an earlier "
            "step with docker/build-push-action (its 'secrets' input, and load: true) and "
            "pass its name in the 'image-name' input.",
            title="Build secrets not supported",
        )
    names = list(dict.fromkeys(flag.partition("=")[0] for flag in flags))
    need = "needs" if len(names) == 1 else "need"
    raise ImageError(
        f"{dockerfile} uses RUN {', '.join(names)}, which {need} BuildKit; the Docker Engine "
        "API build this action runs is Docker's classic builder, which fails on them. Remove "
        "them, or "
        "build the image in an earlier step (for example docker/build-push-action with "
        "load: true) and pass its name in the 'image-name' input.",
        title="BuildKit feature not supported",
    )
