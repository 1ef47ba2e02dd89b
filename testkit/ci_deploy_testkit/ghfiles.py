"""Strict readers of what the runner reads: file commands and workflow commands.

The tests and the local runner simulation (:mod:`ci_deploy_testkit.localrun`) read what a step wrote
with these, as the GitHub runner would.

File commands (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE) follow the grammar of the Linux runner
(actions/runner): the file is UTF-8 (a leading BOM is dropped), lines end with LF, empty lines
are skipped, and a record is either ``name=value`` or ``name<<DELIM``, value lines, then a line
equal to ``DELIM``. Where the runner would fail, this
raises ValueError, and it is stricter on one point: a record may not have an empty name.

:func:`parse_workflow_command` reads one log line like the runner's ``::command`` parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

__all__ = [
    "WorkflowCommand",
    "parse_file_commands",
    "parse_output_file",
    "parse_output_text",
    "parse_workflow_command",
]


def parse_output_file(path: Path | str) -> dict[str, str]:
    """Return the outputs in a GITHUB_OUTPUT file; a later record of a name wins."""
    return parse_output_text(Path(path).read_bytes().decode("utf-8"))


def parse_output_text(text: str) -> dict[str, str]:
    """Return the outputs in a file command text; a later record of a name wins."""
    return dict(parse_file_commands(text))


def parse_file_commands(text: str) -> list[tuple[str, str]]:
    """Return every ``(name, value)`` record in file order. Malformed text raises ValueError."""
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    # Every element but the last ended with LF; a last "" is no line at all.
    records: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        equals = line.find("=")
        heredoc = line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line.split("=", 1)
            if not name:
                raise ValueError(f"invalid record {line!r}: the name is empty")
            records.append((name, value))
            continue
        if heredoc < 0:
            raise ValueError(f"invalid record {line!r}: expected name=value or name<<DELIMITER")
        name, delimiter = line.split("<<", 1)
        if not name or not delimiter:
            raise ValueError(f"invalid record {line!r}: empty name or delimiter")
        value_lines: list[str] = []
        while True:
            if i >= len(lines) or (i == len(lines) - 1 and lines[i] == ""):
                raise ValueError(f"record {name!r}: the delimiter {delimiter!r} never comes")
            current = lines[i]
            i += 1
            if current == delimiter:
                break
            if i == len(lines):  # the last line, without LF, and not the delimiter
                raise ValueError(f"record {name!r}: a value line is missing its newline")
            value_lines.append(current)
        records.append((name, "\n".join(value_lines)))
    return records


class WorkflowCommand(NamedTuple):
    """A decoded ``::command key=value,...::message`` line."""

    command: str
    properties: dict[str, str]
    message: str


def _unescape(text: str, *, is_property: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")]
    if is_property:
        pairs += [("%3A", ":"), ("%2C", ",")]
    for escaped, plain in [*pairs, ("%25", "%")]:
        text = text.replace(escaped, plain)
    return text


def parse_workflow_command(line: str) -> WorkflowCommand | None:
    """Decode a log line the way the runner does; None when it is not a command.

    Leading whitespace is ignored, the command name ends at a space, properties are
    ``key=value`` pairs split on ``,``; a property without ``=`` raises ValueError.
    """
    text = line.lstrip()
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    section = text[2:end]
    command, _, props = section.partition(" ")
    properties: dict[str, str] = {}
    for pair in filter(None, props.strip().split(",")):
        key, equals, value = pair.partition("=")
        if not key or not equals:
            raise ValueError(f"invalid property {pair!r} in {line!r}")
        properties[key] = _unescape(value, is_property=True)
    return WorkflowCommand(command, properties, _unescape(text[end + 2 :], is_property=False))
