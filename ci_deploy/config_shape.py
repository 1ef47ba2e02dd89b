"""The config file's shape (:mod:`ci_deploy.config`), checked with pydantic's models.

Its own module so that pydantic loads only when a config file is parsed: a run without one,
or with a bad input, never imports it. Each function returns the shaped data and one
:class:`~ci_deploy.errors.ConfigProblem` per field of the wrong shape; the options' values are
checked after, by their inputs' rules (``config.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, create_model
from pydantic import ValidationError as PydanticValidationError

from ci_deploy.config import OPTION_INPUTS
from ci_deploy.errors import ConfigProblem
from ci_deploy.inputs import INPUT_RULES

_OptionValue = StrictStr | StrictBool | StrictInt | list[StrictStr]
_Text = Annotated[StrictStr, Field(max_length=1024)]


class _EntryModel(BaseModel):
    """One entry's shape. The options are checked after, by their inputs' rules."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    deployment_id: _Text = Field("", alias="deployment-id")
    deployment_name: _Text = Field("", alias="deployment-name")
    branches: list[_Text] | _Text = Field(default_factory=list)


_OPTION_FIELDS: dict[str, Any] = {
    name.replace("-", "_"): (_OptionValue | None, Field(None, alias=name)) for name in OPTION_INPUTS
}
_EntryWithOptions: type[_EntryModel] = create_model("Entry", __base__=_EntryModel, **_OPTION_FIELDS)
"""An entry's shape: the Deployment, its branches and one optional field per option input."""


class _ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    deployments: Annotated[list[Any], Field(min_length=1, max_length=256)]


def deployments(data: Mapping[str, object]) -> tuple[list[Any], list[ConfigProblem]]:
    """The file's entries, still unchecked, and the problems of the file's own fields."""
    try:
        return _ConfigModel.model_validate(data).deployments, []
    except PydanticValidationError as exc:
        return [], _problems(exc, "")


def entry(raw: object, where: str) -> tuple[dict[str, Any] | None, list[ConfigProblem]]:
    """One entry's fields by name (every field, None or its default when absent) and the
    problems of the fields of the wrong shape, ``where`` (``deployments[1]``) before their
    names. An entry that is no mapping has no fields; a mapping's fields of the right shape
    are still returned, so that each bad field is one problem."""
    try:
        return _EntryWithOptions.model_validate(raw).model_dump(by_alias=True), []
    except PydanticValidationError as exc:
        found = _problems(exc, where)
        if not isinstance(raw, dict):
            return None, found
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        shaped = _EntryWithOptions.model_validate(
            {key: value for key, value in raw.items() if key not in bad}
        )
        return shaped.model_dump(by_alias=True), found


def _problems(exc: PydanticValidationError, prefix: str) -> list[ConfigProblem]:
    """pydantic's errors as problems: one per field, with its path in the file."""
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False, include_input=False):
        location = prefix
        for part in error["loc"]:
            if isinstance(part, str) and (part in _UNION_TAGS or "[" in part):
                break  # the union member pydantic tried: no place in the file after it
            if isinstance(part, int):
                location += f"[{part}]"
            else:
                location += f".{part}" if location else str(part)
        message = _accepted(error["type"], error["msg"], error["loc"], nested=bool(prefix))
        if all(p.field != location for p in problems):
            problems.append(ConfigProblem(location, message))
    return problems


_UNION_TAGS = frozenset({"str", "bool", "int", "constrained-str"})


def _accepted(kind: str, message: str, loc: tuple[int | str, ...], *, nested: bool) -> str:
    """What a field accepts, for the error pydantic found in it."""
    if kind == "extra_forbidden" and not nested:
        return "is not a known field; the file has one field, deployments: a list of entries"
    if kind == "extra_forbidden":
        name = loc[-1] if loc else ""
        if name in INPUT_RULES:
            return (
                f"{name} cannot be set per Deployment; entries take deployment-id,"
                f" deployment-name, branches and {', '.join(OPTION_INPUTS)}"
            )
        return (
            "is not a known field; entries take deployment-id, deployment-name, branches and"
            f" the inputs {', '.join(OPTION_INPUTS)}"
        )
    if kind == "missing":
        return "is required: a list of Deployments, each a mapping such as {deployment-id: ...}"
    if loc and loc[0] == "deployments" and len(loc) == 1:
        return f"must be a list of 1 to 256 Deployments ({message})"
    if kind in ("model_type", "dict_type"):
        return "must be a mapping of fields, such as deployment-id: <id>, branches: [main]"
    if loc and loc[0] == "branches":
        return f"must be a branch name or a list of branch names such as [main] ({message})"
    if loc and loc[0] in ("deployment-id", "deployment-name"):
        return f"must be text ({message})"
    return f"must be text, true/false, a number or a list of texts ({message})"
