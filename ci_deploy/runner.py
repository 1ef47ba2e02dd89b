"""Runner I/O: masks, log lines, groups, annotations, step outputs and the job summary.

Inside GitHub Actions (``GITHUB_ACTIONS=true``) this speaks the runner's workflow commands through
github_action_utils; elsewhere it prints readable lines. Every line goes to the Runner's stream and
is flushed at once, so the log keeps its order even when stdout is not a TTY.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Literal, TextIO

import github_action_utils as gha

from ci_deploy.text import printable

__all__ = ["SUMMARY_MAX_BYTES", "Runner", "file_command_record"]

SUMMARY_MAX_BYTES = 1_000_000
"""The most this process lets the step summary file grow to; the runner drops one over 1 MiB."""

SUMMARY_CUT_NOTE = (
    "\n\n> The rest of this summary was cut: GitHub drops a step summary over 1 MiB.\n"
)

# A log line the runner would take for a workflow command (it trims leading whitespace).
_COMMAND_LIKE = re.compile(r"^\s*(::|##\[)", re.MULTILINE)


class Runner:
    """Where the action talks to the runner, or to a terminal when run outside GitHub."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, stream: TextIO | None = None
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.stream: TextIO = sys.stdout if stream is None else stream
        self.in_github: bool = self.environ.get("GITHUB_ACTIONS") == "true"
        self.show_debug: bool = self.environ.get("RUNNER_DEBUG") == "1"
        """Outside GitHub, whether :meth:`debug` prints (the runner decides inside it)."""
        self._summary_cut = False
        self._secrets: list[str] = []

    # --- log lines ------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def _commands(self) -> Iterator[None]:
        """Send github_action_utils' stdout writes to our stream."""
        with contextlib.redirect_stdout(self.stream):
            yield
        self.stream.flush()

    def mask(self, secret: str) -> None:
        """Ask the runner to mask ``secret`` (and each of its lines) in the log from now on.

        Outside GitHub nothing is printed: printing the command would show the secret.
        """
        if not secret.strip():
            return
        values = [secret, *(line for line in secret.splitlines() if line.strip())]
        self._secrets.extend(value for value in values if value not in self._secrets)
        if not self.in_github:
            return
        with self._commands():
            for value in dict.fromkeys(values):
                gha.add_mask(value)

    def redact(self, text: str) -> str:
        """``text`` with every secret masked so far replaced by ``***``, as the runner masks
        the log: for text that leaves the log (a PR comment), which no runner masks."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def info(self, message: str) -> None:
        """Print a plain log line. Inside GitHub, text that looks like a command stays text."""
        if self.in_github and _COMMAND_LIKE.search(message):
            with self._commands(), gha.stop_commands():
                self._print(message)
        else:
            self._print(message)

    def debug(self, message: str) -> None:
        """Print a debug line: shown by GitHub only with step debug logging on."""
        if self.in_github:
            with self._commands():
                gha.debug(message)
        elif self.show_debug:
            self._print(f"Debug: {message}")

    def notice(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        """Show a notice annotation."""
        self._annotate("notice", message, title, file, line)

    def warning(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        """Show a warning annotation."""
        self._annotate("warning", message, title, file, line)

    def error(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        """Show an error annotation. It does not change the exit status."""
        self._annotate("error", message, title, file, line)

    def _annotate(
        self,
        kind: Literal["notice", "warning", "error"],
        message: str,
        title: str | None,
        file: str | None,
        line: int | None,
    ) -> None:
        """Write one annotation: the one place they are written.

        Terminal escapes and control characters are dropped from the message and the title
        (a build's output comes with colour codes); the message keeps its newlines and tabs,
        the title is one line.
        """
        message = printable(message)
        title = printable(title, one_line=True) if title else title
        if self.in_github:
            command = {"notice": gha.notice, "warning": gha.warning, "error": gha.error}[kind]
            with self._commands():
                command(message, title=title, file=file, line=line)
            return
        text = f"{kind.capitalize()}: "
        if title:
            text += f"{title}: "
        text += message
        if file:
            text += f" ({file}, line {line})" if line is not None else f" ({file})"
        self._print(text)

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        """Fold the lines printed inside into a titled group; it is closed even on error."""
        if not self.in_github:
            self._print(f"== {title} ==")
            yield
            return
        with self._commands():
            gha.start_group(title)
        try:
            yield
        finally:
            with self._commands():
                gha.end_group()

    # --- files ----------------------------------------------------------------------------

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """Set step outputs in ``GITHUB_OUTPUT``, or print them when it is not set.

        Each is written as a heredoc with a random delimiter, so any value survives. Names
        holding ``=``, ``<<``, CR, LF or NUL raise ValueError before anything is written.
        """
        if not outputs:
            return
        path = self.environ.get("GITHUB_OUTPUT")
        if not path:
            self._print("Outputs:")
            for name, value in outputs.items():
                self._print(f"{name}={value}")
            return
        # Every record is built (and every name checked) before the file is opened.
        data = b"".join(file_command_record(name, value) for name, value in outputs.items())
        with open(path, "ab") as file:
            file.write(data)

    def append_summary(self, markdown: str) -> None:
        """Append Markdown to ``GITHUB_STEP_SUMMARY``, or print it when that is not set.

        The file is kept under :data:`SUMMARY_MAX_BYTES`: text that does not fit is cut at a line
        end with a note, and later appends are dropped.
        """
        path = self.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            self._print("Summary:")
            self._print(markdown)
            return
        if self._summary_cut:
            return
        data = (markdown + "\n").encode("utf-8")
        try:
            used = os.path.getsize(path)
        except FileNotFoundError:
            used = 0
        room = SUMMARY_MAX_BYTES - used
        if len(data) > room:
            self._summary_cut = True
            data = _cut(data, room)
            self.warning(
                "The job summary was cut to stay under GitHub's 1 MiB limit.", title="Summary cut"
            )
        if data:
            with open(path, "ab") as file:
                file.write(data)


_BAD_NAME_PARTS = ("=", "<<", "\r", "\n", "\0")


def _new_delimiter() -> str:
    return f"ghadelimiter_{uuid.uuid4()}"


def file_command_record(name: str, value: str) -> bytes:
    """One ``GITHUB_OUTPUT`` (or ``GITHUB_ENV``) record, UTF-8: ``name<<DELIM``, value, ``DELIM``.

    The runner reads the lines after ``name<<DELIM`` up to the first line equal to ``DELIM``,
    joined with LF, as the value; ``DELIM`` is ``ghadelimiter_`` and a random UUID, drawn
    again until it occurs nowhere in the value, so no line of the value can end the record and
    any text (newlines, ``=``, ``<<``, carriage returns) comes back unchanged. Lines end with
    LF, as the Linux runner that runs this container action reads them.

    Raises ValueError for a name the record could not carry: empty, or holding ``=``, ``<<``,
    CR, LF or NUL.
    """
    if not name or any(part in name for part in _BAD_NAME_PARTS):
        raise ValueError(
            f"invalid output name {name!r}: a name must be nonempty and hold no =, <<, CR, "
            "LF or NUL"
        )
    delimiter = _new_delimiter()
    while delimiter in value:  # a value that holds it by chance, or one that was made to
        delimiter = _new_delimiter()
    # A name starting with U+FEFF would lose it as a byte order mark at the start of the file.
    lead = "\n" if name.startswith("\ufeff") else ""
    return f"{lead}{name}<<{delimiter}\n{value}\n{delimiter}\n".encode()


def _cut(data: bytes, room: int) -> bytes:
    """The start of ``data``, ended at a line end, plus the note; at most ``room`` bytes."""
    note = SUMMARY_CUT_NOTE.encode("utf-8")
    if room < len(note):
        return b""
    head = data[: room - len(note)]
    end = head.rfind(b"\n")
    head = head[: end + 1] if end >= 0 else head.decode("utf-8", "ignore").encode("utf-8")
    return head + note
