"""ci_deploy.runner: workflow commands, step outputs and the summary, in and outside GitHub."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_deploy import runner as runner_module
from ci_deploy.runner import SUMMARY_CUT_NOTE, SUMMARY_MAX_BYTES, Runner, file_command_record
from ci_deploy_testkit.ghfiles import (
    WorkflowCommand,
    parse_file_commands,
    parse_output_file,
    parse_output_text,
    parse_workflow_command,
)


class Stream(io.StringIO):
    """A text stream that remembers how much of it was flushed."""

    flushed = 0

    def flush(self) -> None:
        super().flush()
        self.flushed = len(self.getvalue())

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


@pytest.fixture(autouse=True)
def _not_in_github(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runner reads the environ it is given; make sure nothing comes from the test process's own.
    for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "RUNNER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def github(tmp_path: Path, **extra: str) -> tuple[Runner, Stream]:
    stream = Stream()
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **extra,
    }
    return Runner(environ, stream), stream


def local(**environ: str) -> tuple[Runner, Stream]:
    stream = Stream()
    return Runner(environ, stream), stream


# --- the file-command parser itself ---------------------------------------------------------


def test_ghfiles_reads_both_record_forms() -> None:
    text = "\ufeffa=1\n\nb=x=y<<z\nc<<EOF\nline 1\n\nline 3\nEOF\nd<<E\nE\ne<<E\n\nE\na=2"
    assert parse_file_commands(text) == [
        ("a", "1"),
        ("b", "x=y<<z"),
        ("c", "line 1\n\nline 3"),
        ("d", ""),
        ("e", ""),
        ("a", "2"),
    ]
    assert parse_output_text(text)["a"] == "2"


def test_ghfiles_keeps_carriage_returns_like_the_linux_runner() -> None:
    assert parse_output_text("a<<D\nx\r\ny\r\nD\r\nD\n") == {"a": "x\r\ny\r\nD\r"}


@pytest.mark.parametrize(
    "text",
    [
        "novalue\n",
        "=value\n",
        "<<EOF\nx\nEOF\n",
        "name<<\nx\n\n",
        "name<<EOF\nx\n",
        "name<<EOF\nx\nEOF2\n",
        "name<<EOF\nx",
        "name<<EOF\n",
        "name<<EOF",
    ],
)
def test_ghfiles_refuses_malformed_content(text: str) -> None:
    with pytest.raises(ValueError):
        parse_file_commands(text)


def test_ghfiles_refuses_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_bytes(b"a=\xff\n")
    with pytest.raises(UnicodeDecodeError):
        parse_output_file(path)


# --- outputs --------------------------------------------------------------------------------


OUTPUTS = {
    "plain": "value",
    "empty": "",
    "multi": "line 1\nline 2\n\nline 4",
    "trailing-newline": "ends with a newline\n",
    "equals": "a=b=c",
    "heredoc-looking": "x<<EOF",
    "delimiter-looking": "ghadelimiter_0\nEOF\n",
    "percent": "100% %0A done",
    "carriage": "a\r\nb\r",
    "unicode": "déploiement ✓",
}


def test_outputs_round_trip_through_github_output(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    (tmp_path / "output").write_text("earlier=kept\n")
    runner.set_outputs(OUTPUTS)
    assert parse_output_file(tmp_path / "output") == {"earlier": "kept", **OUTPUTS}
    assert stream.getvalue() == ""


def test_outputs_use_random_heredoc_delimiters(tmp_path: Path) -> None:
    runner, _ = github(tmp_path)
    runner.set_outputs({"a": "1", "b": "2"})
    runner.set_outputs({"a": "3"})
    heads = [line for line in (tmp_path / "output").read_text().splitlines() if "<<" in line]
    assert [h.split("<<")[0] for h in heads] == ["a", "b", "a"]
    assert len({h.split("<<")[1] for h in heads}) == 3
    assert parse_output_file(tmp_path / "output") == {"a": "3", "b": "2"}


@pytest.mark.parametrize("name", ["a=b", "a<<b", "a\nb", ""])
def test_a_bad_output_name_writes_nothing(tmp_path: Path, name: str) -> None:
    runner, _ = github(tmp_path)
    with pytest.raises(ValueError):
        runner.set_outputs({"good": "1", name: "2"})
    assert not (tmp_path / "output").exists()


def test_outputs_go_to_github_output_even_outside_actions(tmp_path: Path) -> None:
    runner, stream = local(GITHUB_OUTPUT=str(tmp_path / "out"))
    runner.set_outputs({"a": "1"})
    assert parse_output_file(tmp_path / "out") == {"a": "1"}
    assert stream.getvalue() == ""


def test_outputs_are_printed_without_github_output() -> None:
    runner, stream = local(GITHUB_ACTIONS="true")
    runner.set_outputs({"status": "deployed", "deploy-id": "cl1"})
    assert stream.lines() == ["Outputs:", "status=deployed", "deploy-id=cl1"]
    runner.set_outputs({})
    assert stream.lines() == ["Outputs:", "status=deployed", "deploy-id=cl1"]


# --- one GITHUB_OUTPUT record ---------------------------------------------------------------

TRICKY_VALUES = [
    *OUTPUTS.values(),
    "\n",
    "\n\n",
    "\nleading newline",
    "name<<EOF\nEOF\n",
    "other=1\nother<<X\nX",
    "ghadelimiter_\nghadelimiter_00000000-0000-0000-0000-000000000000",
    "\r",
    "tab\tand nul \0 inside",
    "\ufeffbom first",
    "emoji 🚀 and CJK 部署",
    "x" * 10_000,
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_a_record_round_trips_any_value(value: str) -> None:
    record = file_command_record("out", value)
    assert parse_file_commands(record.decode("utf-8")) == [("out", value)]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_the_delimiter_is_never_inside_the_value(value: str) -> None:
    head, *_, last = file_command_record("out", value).decode("utf-8").split("\n")[:-1]
    name, delimiter = head.split("<<")
    assert (name, last) == ("out", delimiter)
    assert delimiter.startswith("ghadelimiter_")
    assert len(delimiter) > len("ghadelimiter_") + 30
    assert delimiter not in value


def test_a_delimiter_found_in_the_value_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["ghadelimiter_A", "ghadelimiter_AB", "ghadelimiter_C"])
    monkeypatch.setattr(runner_module, "_new_delimiter", lambda: next(drawn))
    value = "x\nghadelimiter_A\nghadelimiter_AB\ny"
    record = file_command_record("out", value)
    assert record == f"out<<ghadelimiter_C\n{value}\nghadelimiter_C\n".encode()
    assert parse_output_text(record.decode()) == {"out": value}


def test_each_record_gets_its_own_delimiter() -> None:
    heads = {file_command_record("a", "1").split(b"\n")[0] for _ in range(50)}
    assert len(heads) == 50


def test_a_record_is_utf8_with_lf_line_ends() -> None:
    record = file_command_record("status", "déployé\r\nok")
    text = record.decode("utf-8")
    assert text.count("\n") == 4
    assert text.endswith("\n")
    assert parse_output_text(text) == {"status": "déployé\r\nok"}


def test_a_name_starting_with_a_bom_keeps_it_at_the_start_of_a_file(tmp_path: Path) -> None:
    runner, _ = github(tmp_path)
    runner.set_outputs({"\ufeffname": "v"})
    assert parse_output_file(tmp_path / "output") == {"\ufeffname": "v"}


@pytest.mark.parametrize("name", ["", "a=b", "a<<b", "a\nb", "a\rb", "a\0b", "=", "<<"])
def test_a_record_refuses_a_name_it_cannot_carry(name: str) -> None:
    with pytest.raises(ValueError, match="nonempty and hold no"):
        file_command_record(name, "value")


def test_names_may_hold_other_punctuation_and_unicode() -> None:
    for name in ("deploy-id", "a.b_c", "déploiement", "a<b", "a>b", "a < b"):
        assert parse_output_text(file_command_record(name, "1").decode()) == {name: "1"}


def test_no_private_github_action_utils_api_is_used() -> None:
    package = Path(runner_module.__file__).parent
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "github_action_utils._" not in source, path
        assert not re.search(r"from github_action_utils(\.\w+)* import .*\b_", source), path
        assert not re.search(r"\bgha\._", source), path  # through the usual alias


# --- summary --------------------------------------------------------------------------------


def test_summary_is_appended(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.append_summary("## Deploy\n\n| a | b |\n|---|---|")
    runner.append_summary("done ✓")
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == (
        "## Deploy\n\n| a | b |\n|---|---|\ndone ✓\n"
    )
    assert stream.getvalue() == ""


def test_summary_is_printed_without_github_step_summary() -> None:
    runner, stream = local()
    runner.append_summary("## Deploy\nok")
    assert stream.lines() == ["Summary:", "## Deploy", "ok"]


def test_an_oversized_summary_is_cut_at_a_line_end_with_a_note(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    summary = tmp_path / "summary.md"
    runner.append_summary("# Deploy")
    row = "| file | é |\n"
    runner.append_summary(row * (2 * SUMMARY_MAX_BYTES // len(row.encode())))
    data = summary.read_bytes()
    assert len(data) <= SUMMARY_MAX_BYTES
    assert len(data) > SUMMARY_MAX_BYTES - 100
    text = data.decode("utf-8")
    assert text.startswith("# Deploy\n| file | é |\n")
    assert text.endswith(SUMMARY_CUT_NOTE)
    assert text.removesuffix(SUMMARY_CUT_NOTE).removeprefix("# Deploy\n").replace(row, "") == ""
    assert "::warning title=Summary cut::" in stream.getvalue()

    runner.append_summary("late")
    assert summary.read_bytes() == data


def test_an_oversized_line_is_cut_on_a_character_boundary(tmp_path: Path) -> None:
    runner, _ = github(tmp_path)
    runner.append_summary("é" * SUMMARY_MAX_BYTES)
    data = (tmp_path / "summary.md").read_bytes()
    assert len(data) <= SUMMARY_MAX_BYTES
    assert data.decode("utf-8").endswith(SUMMARY_CUT_NOTE)


def test_a_summary_exactly_at_the_limit_is_kept_whole(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.append_summary("x" * (SUMMARY_MAX_BYTES - 1))
    assert (tmp_path / "summary.md").stat().st_size == SUMMARY_MAX_BYTES
    assert stream.getvalue() == ""


def test_the_summary_limit_counts_what_the_file_already_holds(tmp_path: Path) -> None:
    runner, _ = github(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * (SUMMARY_MAX_BYTES - 10))
    runner.append_summary("a line that does not fit")
    assert summary.stat().st_size == SUMMARY_MAX_BYTES - 10


# --- workflow commands ------------------------------------------------------------------------


def test_annotations_escape_the_message_and_properties(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.error("100% done\nnext line", title="Deploy: failed, badly", file="dags/a,b.py", line=3)
    runner.warning("50%", title="T")
    runner.notice("a:b,c")
    assert stream.lines() == [
        "::error title=Deploy%3A failed%2C badly,file=dags/a%2Cb.py,line=3"
        "::100%25 done%0Anext line",
        "::warning title=T::50%25",
        "::notice ::a:b,c",
    ]
    assert [parse_workflow_command(line) for line in stream.lines()] == [
        WorkflowCommand(
            "error",
            {"title": "Deploy: failed, badly", "file": "dags/a,b.py", "line": "3"},
            "100% done\nnext line",
        ),
        WorkflowCommand("warning", {"title": "T"}, "50%"),
        WorkflowCommand("notice", {}, "a:b,c"),
    ]


BUILD_OUTPUT = (
    "Step 3/5 : RUN pip install -r requirements.txt\r\n"
    "\x1b[91mERROR: No matching distribution found for nope\x1b[0m\r\n"
    "\x1b]0;title\x07\tdone\x00\x7f\x1b(B"
)
CLEAN_OUTPUT = (
    "Step 3/5 : RUN pip install -r requirements.txt\n"
    "ERROR: No matching distribution found for nope\n"
    "\tdone"
)


@pytest.mark.parametrize("kind", ["error", "warning", "notice"])
def test_annotations_drop_terminal_escapes_and_control_characters(
    tmp_path: Path, kind: str
) -> None:
    runner, stream = github(tmp_path)
    getattr(runner, kind)(BUILD_OUTPUT, title="Image\x1b[1m build\nfailed\r")
    [command] = [parse_workflow_command(line) for line in stream.lines()]
    assert command == WorkflowCommand(kind, {"title": "Image build failed"}, CLEAN_OUTPUT)


def test_annotations_outside_github_drop_terminal_escapes_too() -> None:
    runner, stream = local()
    runner.error(BUILD_OUTPUT, title="Image\x1b[1m build")
    assert stream.getvalue() == f"Error: Image build: {CLEAN_OUTPUT}\n"


def test_workflow_command_parser() -> None:
    assert parse_workflow_command("plain") is None
    assert parse_workflow_command("::no end") is None
    assert parse_workflow_command("  ::group::a%250A") == WorkflowCommand("group", {}, "a%0A")
    with pytest.raises(ValueError):
        parse_workflow_command("::error title::x")


def test_mask_in_github(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.mask("s3cr%t")
    runner.mask("")
    runner.mask("  ")
    runner.mask("line1\nline2")
    assert stream.lines() == [
        "::add-mask ::s3cr%25t",
        "::add-mask ::line1%0Aline2",
        "::add-mask ::line1",
        "::add-mask ::line2",
    ]


def test_mask_outside_github_prints_nothing() -> None:
    runner, stream = local()
    runner.mask("s3cret")
    assert stream.getvalue() == ""


def test_debug_in_github(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.debug("Traceback:\n  50%")
    assert stream.lines() == ["::debug ::Traceback:%0A  50%25"]


def test_debug_outside_github_shows_only_with_runner_debug() -> None:
    runner, stream = local()
    runner.debug("hidden")
    assert stream.getvalue() == ""
    runner, stream = local(RUNNER_DEBUG="1")
    runner.debug("shown")
    assert stream.lines() == ["Debug: shown"]


def test_group_in_github_is_closed_even_on_error(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    with runner.group("Bundling dags/"):
        runner.info("dags/a.py")
    with pytest.raises(RuntimeError), runner.group("Waiting: 50%"):
        raise RuntimeError("boom")
    assert stream.lines() == [
        "::group ::Bundling dags/",
        "dags/a.py",
        "::endgroup::",
        "::group ::Waiting: 50%25",
        "::endgroup::",
    ]


def test_info_is_plain_and_command_like_text_is_not_run(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    runner.info("Created deploy cl1: 100% ok")
    runner.info("commit subject\n  ::error::fake annotation")
    lines = stream.lines()
    assert lines[0] == "Created deploy cl1: 100% ok"
    assert lines[1].startswith("::stop-commands ::")
    token = lines[1].removeprefix("::stop-commands ::")
    assert len(token) >= 32
    assert lines[2:] == ["commit subject", "  ::error::fake annotation", f"::{token}::"]


def test_outside_github_lines_are_readable() -> None:
    runner, stream = local()
    runner.info("::not a command here")
    runner.error("it broke", title="Deploy failed", file="dags/a.py", line=3)
    runner.warning("careful", title="Input adjusted")
    runner.notice("fyi", file="dags/b.py")
    runner.notice("plain")
    with runner.group("Bundling"):
        runner.info("inside")
    assert stream.lines() == [
        "::not a command here",
        "Error: Deploy failed: it broke (dags/a.py, line 3)",
        "Warning: Input adjusted: careful",
        "Notice: fyi (dags/b.py)",
        "Notice: plain",
        "== Bundling ==",
        "inside",
    ]


def test_in_github_follows_the_given_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Runner({"GITHUB_ACTIONS": "true"}).in_github
    assert not Runner({"GITHUB_ACTIONS": "false"}).in_github
    assert not Runner({}).in_github
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert Runner().in_github
    assert not Runner({}).in_github


def test_every_line_is_flushed_at_once(tmp_path: Path) -> None:
    runner, stream = github(tmp_path)
    calls: list[Callable[[], None]] = [
        lambda: runner.info("a"),
        lambda: runner.info("::x"),
        lambda: runner.debug("b"),
        lambda: runner.warning("c"),
        lambda: runner.mask("d"),
        lambda: runner.set_outputs({"x": "1"}),
    ]
    for call in calls:
        call()
        assert stream.flushed == len(stream.getvalue()) > 0 or call is calls[-1]
    runner, stream = local()
    for call in (lambda: runner.info("a"), lambda: runner.warning("b")):
        call()
        assert stream.flushed == len(stream.getvalue()) > 0


def test_commands_keep_their_order_on_a_byte_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In Actions, github_action_utils writes UTF-8 bytes to stdout's buffer; keep the order.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
    runner = Runner({"GITHUB_ACTIONS": "true"}, stream)
    runner.info("first é")
    runner.warning("second é")
    runner.info("third")
    with runner.group("g"):
        runner.info("inside")
    assert raw.getvalue().decode("utf-8").splitlines() == [
        "first é",
        "::warning ::second é",
        "third",
        "::group ::g",
        "inside",
        "::endgroup::",
    ]


def test_text_leaving_the_log_is_redacted_as_the_runner_masks_the_log() -> None:
    runner = Runner({}, io.StringIO())  # outside GitHub too: the values are still known
    runner.mask("s3cr3t-value")
    runner.mask("line-one\nline-two")
    assert runner.redact("a s3cr3t-value and line-two here") == "a *** and *** here"
    assert runner.redact("nothing secret") == "nothing secret"
