"""The DAG tarball and the BUNDLE archive: members, metadata, determinism, symlink rules."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import resource
import signal
import subprocess
import tarfile
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from ci_deploy import bundle as bundling
from ci_deploy.bundle import Bundle, Packing, build_bundle_tarball, build_dag_tarball, shown
from ci_deploy.compression import choose
from ci_deploy.errors import BundleError


def _write(path: Path, text: str = "x = 1\n", *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp folder the default packing spools to: a folder of this test's own."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    root = tmp_path / "project" / "dags"
    _write(root / "b_dag.py", "B = 2\n")
    _write(root / "a_dag.py", "A = 1\n")
    _write(root / "run.sh", "#!/bin/sh\necho hi\n", mode=0o754)
    _write(root / "sub" / "deeper" / "helper.py", "def f():\n    return 1\n")
    _write(root / "sub" / "data.sql", "select 1;\n")
    _write(root / "sub" / "compiled.pyc", "not kept")
    _write(root / "__pycache__" / "a_dag.cpython-311.pyc", "cache")
    _write(root / "sub" / "__pycache__" / "helper.cpython-311.pyc", "cache")
    _write(root / "sub" / "__pycache__" / "notes.txt", "inside a cache folder")
    _write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    _write(root / "sub" / ".git" / "config", "[core]\n")
    _write(root / ".airflowignore", "sub/data.sql\n")
    (root / "empty_folder").mkdir()
    return root


def _open(bundle: Bundle) -> tarfile.TarFile:
    return tarfile.open(bundle.path, mode="r:gz")


def test_members_are_all_files_sorted_without_caches_or_git(dags: Path) -> None:
    bundle = build_dag_tarball(dags)

    expected = (
        "dags/.airflowignore",
        "dags/a_dag.py",
        "dags/b_dag.py",
        "dags/run.sh",
        "dags/sub/data.sql",
        "dags/sub/deeper/helper.py",
    )
    assert bundle.members == expected
    with _open(bundle) as tar:
        infos = tar.getmembers()
        assert tuple(i.name for i in infos) == expected
        assert all(i.isreg() for i in infos)  # no directory entries
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        modes = {i.name: i.mode for i in infos}
        assert modes["dags/run.sh"] == 0o755
        assert modes["dags/a_dag.py"] == 0o644
        helper = tar.extractfile("dags/sub/deeper/helper.py")
        assert helper is not None
        assert helper.read() == b"def f():\n    return 1\n"
    assert bundle.size == len(bundle.path.read_bytes())
    assert bundle.sha256 == hashlib.sha256(bundle.path.read_bytes()).hexdigest()


def test_prefix_is_the_folders_own_name(tmp_path: Path) -> None:
    _write(tmp_path / "my_dags" / "x.py")
    assert build_dag_tarball(tmp_path / "my_dags").members == ("my_dags/x.py",)
    # A relative "." still gets the folder's real name.
    cwd = os.getcwd()
    os.chdir(tmp_path / "my_dags")
    try:
        assert build_dag_tarball(Path()).members == ("my_dags/x.py",)
    finally:
        os.chdir(cwd)


def test_same_tree_gives_identical_bytes_even_after_touching_files(dags: Path) -> None:
    first = build_dag_tarball(dags)
    for path in dags.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890), follow_symlinks=False)
    second = build_dag_tarball(dags)
    assert second.path.read_bytes() == first.path.read_bytes()
    assert second.sha256 == first.sha256


def test_same_content_in_another_place_gives_identical_bytes(tmp_path: Path) -> None:
    for base in ("one", "two"):
        # Created in a different order, so directory listing order differs too.
        names = ["z.py", "a.py", "m/n.py"] if base == "one" else ["m/n.py", "a.py", "z.py"]
        for name in names:
            _write(tmp_path / base / "dags" / name, f"# {name}\n")
    one = build_dag_tarball(tmp_path / "one" / "dags")
    two = build_dag_tarball(tmp_path / "two" / "dags")
    assert one.path.read_bytes() == two.path.read_bytes()


def test_a_different_tree_gives_different_bytes(dags: Path) -> None:
    before = build_dag_tarball(dags)
    _write(dags / "a_dag.py", "A = 2\n")
    changed = build_dag_tarball(dags)
    assert changed.sha256 != before.sha256
    (dags / "run.sh").chmod(0o644)
    assert build_dag_tarball(dags).sha256 != changed.sha256


def test_gzip_header_has_no_mtime_and_no_name(dags: Path) -> None:
    data = build_dag_tarball(dags).path.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    flags = data[3]
    assert flags & 0x08 == 0  # FNAME not set
    assert int.from_bytes(data[4:8], "little") == 0  # MTIME
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        gz.read()
        assert gz.mtime == 0


def test_symlinks_inside_the_folder_are_stored_as_content(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "common" / "util.py", "U = 1\n")
    _write(root / "common" / "tool.sh", "#!/bin/sh\n", mode=0o755)
    (root / "util_link.py").symlink_to("common/util.py")
    (root / "nested").mkdir()
    (root / "nested" / "shared").symlink_to("../common", target_is_directory=True)

    bundle = build_dag_tarball(root)

    assert bundle.members == (
        "dags/common/tool.sh",
        "dags/common/util.py",
        "dags/nested/shared/tool.sh",
        "dags/nested/shared/util.py",
        "dags/util_link.py",
    )
    with _open(bundle) as tar:
        link = tar.getmember("dags/util_link.py")
        assert link.isreg()
        assert tar.getmember("dags/nested/shared/tool.sh").mode == 0o755
        content = tar.extractfile(link)
        assert content is not None
        assert content.read() == b"U = 1\n"


def test_symlink_escaping_the_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "ok.py")
    _write(tmp_path / "secret.txt", "password")
    (root / "sub").mkdir()
    (root / "sub" / "leak.txt").symlink_to("../../secret.txt")

    with pytest.raises(BundleError) as err:
        build_dag_tarball(root)
    assert "sub/leak.txt" in err.value.message
    assert "../../secret.txt" in err.value.message
    assert "outside" in err.value.message


def test_symlink_to_a_folder_outside_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(tmp_path / "elsewhere" / "x.py")
    root.mkdir()
    (root / "elsewhere").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(BundleError, match=r"'elsewhere'.*outside"):
        build_dag_tarball(root)


def test_broken_symlink_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "ok.py")
    (root / "gone.py").symlink_to("missing.py")
    with pytest.raises(BundleError, match=r"'gone\.py' -> 'missing\.py'.*broken"):
        build_dag_tarball(root)


def test_symlink_cycle_is_an_error_not_a_hang(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "sub" / "x.py")
    (root / "sub" / "again").symlink_to("..", target_is_directory=True)
    with pytest.raises(BundleError, match="sub/again"):
        build_dag_tarball(root)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        build_dag_tarball(tmp_path / "nope")


def test_folder_that_is_a_file(tmp_path: Path) -> None:
    _write(tmp_path / "dags")
    with pytest.raises(BundleError, match="not a directory"):
        build_dag_tarball(tmp_path / "dags")


def test_empty_folder_gives_a_valid_empty_archive(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    bundle = build_dag_tarball(tmp_path / "dags")
    assert bundle.members == ()
    with _open(bundle) as tar:
        assert tar.getmembers() == []


def test_unicode_and_long_names_survive(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    long_name = "d" * 120 + ".py"
    _write(root / "größe ünd späce.py")
    _write(root / "deep" / long_name)
    bundle = build_dag_tarball(root)
    with _open(bundle) as tar:
        assert sorted(tar.getnames()) == sorted(
            ["dags/größe ünd späce.py", f"dags/deep/{long_name}"]
        )
    assert bundle.members == tuple(sorted(bundle.members))


# --- the BUNDLE archive: the project folder's contents, no prefix -----------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "jaffle_shop"
    _write(root / "dbt_project.yml", "name: jaffle_shop\n")
    _write(root / "models" / "orders.sql", "select 1\n")
    _write(root / "models" / "staging" / "stg_orders.sql", "select 2\n")
    _write(root / "macros" / "m.py", "X = 1\n")
    _write(root / "bin" / "run.sh", "#!/bin/sh\n", mode=0o755)
    _write(root / ".astro" / "config.yaml", "project: x\n")  # kept: only the listed names go
    _write(root / ".gitignore", "target/\n")  # kept: only .git itself is left out
    _write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    _write(root / ".venv" / "bin" / "python", "#!/bin/sh\n", mode=0o755)
    _write(root / "models" / ".venv" / "lib" / "site.py", "x = 1\n")
    _write(root / "macros" / "__pycache__" / "m.cpython-311.pyc", "cache")
    _write(root / "macros" / "stale.pyc", "old")
    return root


PROJECT_MEMBERS = (
    ".astro/config.yaml",
    ".gitignore",
    "bin/run.sh",
    "dbt_project.yml",
    "macros/m.py",
    "models/orders.sql",
    "models/staging/stg_orders.sql",
)


def test_bundle_members_have_no_prefix_and_skip_git_caches_and_venvs(project: Path) -> None:
    bundle = build_bundle_tarball(project)

    assert bundle.members == PROJECT_MEMBERS
    with _open(bundle) as tar:
        infos = tar.getmembers()
        assert tuple(i.name for i in infos) == PROJECT_MEMBERS
        assert all(i.isreg() for i in infos)
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        assert tar.getmember("bin/run.sh").mode == 0o755
        assert tar.getmember("dbt_project.yml").mode == 0o644
        content = tar.extractfile("models/staging/stg_orders.sql")
        assert content is not None
        assert content.read() == b"select 2\n"
    assert bundle.sha256 == hashlib.sha256(bundle.path.read_bytes()).hexdigest()


def test_bundle_of_a_relative_folder_has_no_prefix_either(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert build_bundle_tarball(Path()).members == PROJECT_MEMBERS
    monkeypatch.chdir(project / "models")
    assert build_bundle_tarball(Path("..")).members == PROJECT_MEMBERS


def test_the_dag_tarball_keeps_venv_folders(tmp_path: Path) -> None:
    _write(tmp_path / "dags" / ".venv" / "x.py")
    assert build_dag_tarball(tmp_path / "dags").members == ("dags/.venv/x.py",)


def test_bundle_is_deterministic(project: Path, tmp_path: Path) -> None:
    first = build_bundle_tarball(project)
    for path in project.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890), follow_symlinks=False)
    assert build_bundle_tarball(project).path.read_bytes() == first.path.read_bytes()

    # The same contents under another folder name give the same bytes: there is no prefix.
    other = tmp_path / "elsewhere" / "another_name"
    for member in reversed(PROJECT_MEMBERS):
        source = project / member
        _write(other / member, source.read_text(), mode=source.stat().st_mode & 0o777)
    assert build_bundle_tarball(other).path.read_bytes() == first.path.read_bytes()

    _write(project / "models" / "orders.sql", "select 3\n")
    assert build_bundle_tarball(project).sha256 != first.sha256


def test_bundle_gzip_header_has_no_mtime_and_no_name(project: Path) -> None:
    data = build_bundle_tarball(project).path.read_bytes()
    assert data[3] & 0x08 == 0
    assert int.from_bytes(data[4:8], "little") == 0


def test_bundle_stores_symlinks_inside_as_content(project: Path) -> None:
    (project / "models" / "alias.sql").symlink_to("orders.sql")
    (project / "shared").symlink_to("models/staging", target_is_directory=True)
    bundle = build_bundle_tarball(project)
    assert "models/alias.sql" in bundle.members
    assert "shared/stg_orders.sql" in bundle.members
    with _open(bundle) as tar:
        assert tar.getmember("models/alias.sql").isreg()


def test_bundle_symlink_escaping_the_project_is_an_error(project: Path, tmp_path: Path) -> None:
    _write(tmp_path / "secret.txt", "password")
    (project / "models" / "leak.sql").symlink_to("../../secret.txt")
    with pytest.raises(BundleError) as err:
        build_bundle_tarball(project)
    assert err.value.message.startswith(
        "symlink 'models/leak.sql' -> '../../secret.txt' points outside the project folder"
    )


def test_bundle_broken_symlink_and_cycle_are_errors(project: Path) -> None:
    (project / "gone.sql").symlink_to("missing.sql")
    with pytest.raises(
        BundleError, match=r"'gone\.sql' -> 'missing\.sql' in the project folder is broken"
    ):
        build_bundle_tarball(project)
    (project / "gone.sql").unlink()
    (project / "models" / "loop").symlink_to("..", target_is_directory=True)
    with pytest.raises(BundleError, match=r"models/loop.*parent folders"):
        build_bundle_tarball(project)


def test_bundle_of_a_missing_folder_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"^the project folder .*nope does not exist$"):
        build_bundle_tarball(tmp_path / "nope")
    _write(tmp_path / "file")
    with pytest.raises(BundleError, match=r"^the project folder .* is not a directory$"):
        build_bundle_tarball(tmp_path / "file")


def test_bundle_of_an_empty_folder_is_a_valid_empty_archive(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    bundle = build_bundle_tarball(tmp_path / "empty")
    assert bundle.members == ()
    with _open(bundle) as tar:
        assert tar.getmembers() == []


# --- names that are not UTF-8 -----------------------------------------------------------------


def test_a_name_that_is_not_utf8_keeps_its_bytes_and_is_shown_escaped(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    root.mkdir()
    raw = os.path.join(os.fsencode(root), b"caf\xe9.py")
    Path(os.fsdecode(raw)).write_bytes(b"X = 1\n")
    _write(root / "caf\u00e9_utf8.py")

    bundle = build_dag_tarball(root)

    assert sorted(shown(m) for m in bundle.members) == [
        "dags/caf\\xe9.py",
        "dags/caf\u00e9_utf8.py",
    ]
    [odd] = [m for m in bundle.members if os.fsencode(m) == b"dags/caf\xe9.py"]
    # The name is stored as its bytes (a PAX record), not re-encoded or replaced.
    assert b" path=dags/caf\xe9.py\n" in gzip.decompress(bundle.path.read_bytes())
    with _open(bundle) as tar:
        assert tar.getnames() == list(bundle.members)
        member = tar.extractfile(odd)
        assert member is not None and member.read() == b"X = 1\n"


def test_shown_leaves_valid_names_alone() -> None:
    assert shown("dags/ünïcødé dag.py") == "dags/ünïcødé dag.py"
    assert shown("dags/caf\udce9.py") == "dags/caf\\xe9.py"


# --- Git LFS pointers -------------------------------------------------------------------------

POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


def test_git_lfs_pointers_are_an_error_naming_every_one(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _write(root / "dags" / "dag.py")
    _write(root / "dags" / "model.pkl", POINTER)
    _write(root / "dags" / "sub" / "generated.py", POINTER)
    _write(root / "include" / "seed.csv", POINTER)

    with pytest.raises(BundleError) as dags_error:
        build_dag_tarball(root / "dags")
    with pytest.raises(BundleError) as bundle_error:
        build_bundle_tarball(root)

    assert dags_error.value.title == "Git LFS files not downloaded"
    message = dags_error.value.message
    assert "The DAG folder holds Git LFS pointers" in message
    assert "dags/model.pkl, dags/sub/generated.py." in message
    assert "Set lfs: true on actions/checkout" in message
    assert "dags/model.pkl, dags/sub/generated.py, include/seed.csv." in bundle_error.value.message


def test_what_is_not_a_git_lfs_pointer(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    # As large as the spec allows no pointer to be, and the line further down a file.
    _write(root / "big.txt", POINTER + "x" * (1024 - len(POINTER)))
    _write(root / "doc.md", "# Notes\n" + POINTER)
    _write(root / "empty.py", "")
    assert build_dag_tarball(root).members == ("dags/big.txt", "dags/doc.md", "dags/empty.py")


# --- the spool file ---------------------------------------------------------------------------


def test_the_tarball_is_spooled_to_a_file_that_close_deletes(dags: Path, spool: Path) -> None:
    with build_dag_tarball(dags) as bundle:
        assert list(spool.iterdir()) == [bundle.path]
        assert bundle.path.stat().st_size == bundle.size
    assert list(spool.iterdir()) == []
    bundle.close()  # again is fine
    assert bundle.members and bundle.sha256  # the record stays


def test_the_spool_folder_is_runner_temp_when_this_process_can_write_there(
    tmp_path: Path,
) -> None:
    assert bundling.spool_folder({"RUNNER_TEMP": str(tmp_path)}) == str(tmp_path)
    assert bundling.spool_folder({"RUNNER_TEMP": ""}) == tempfile.gettempdir()
    assert bundling.spool_folder({}) == tempfile.gettempdir()
    # A container action may be given the host's path, which the container does not have.
    host = str(tmp_path / "home" / "runner" / "work" / "_temp")
    assert bundling.spool_folder({"RUNNER_TEMP": host}) == tempfile.gettempdir()


def test_nothing_is_left_behind_when_packing_fails(tmp_path: Path, spool: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "big.bin", "x" * 100_000)
    _write(root / "weights.bin", POINTER)  # found after the whole archive was written

    with pytest.raises(BundleError, match="Git LFS pointers"):
        build_dag_tarball(root)
    assert list(spool.iterdir()) == []


def test_a_failed_write_is_a_bundle_error_naming_the_folder_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "dags"
    root.mkdir()
    (root / "model.bin").write_bytes(os.urandom(1_000_000))
    folder = tmp_path / "runner_temp"
    folder.mkdir()
    # A file size limit makes the spool's writes fail for real (EFBIG), as a full disk would.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    try:
        with pytest.raises(BundleError, match=f"cannot write the tarball to {folder}: .*large"):
            build_dag_tarball(root, Packing(choose(3, isal=True), str(folder)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert list(folder.iterdir()) == []


def test_a_missing_spool_folder_is_a_bundle_error_saying_what_to_do(
    dags: Path, tmp_path: Path
) -> None:
    packing = Packing(choose(3, isal=True), str(tmp_path / "gone"))
    with pytest.raises(BundleError, match=r"cannot create the tarball in .*Set RUNNER_TEMP"):
        build_dag_tarball(dags, packing)


def test_memory_stays_bounded_whatever_the_archives_size(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    root.mkdir()
    for i in range(6):  # 48 MB that does not compress: the archive is as large
        (root / f"model_{i}.bin").write_bytes(os.urandom(8_000_000))

    tracemalloc.start()
    try:
        with build_dag_tarball(root) as bundle:
            _, peak = tracemalloc.get_traced_memory()
            size = bundle.size
    finally:
        tracemalloc.stop()
    assert size > 48_000_000
    # The chunks waiting for the compressing thread and the one being gathered: a few MiB,
    # whatever the archive's size.
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte archive"


# --- compression ------------------------------------------------------------------------------


def _tar_stream(bundle: Bundle) -> bytes:
    return gzip.decompress(bundle.path.read_bytes())


@pytest.mark.parametrize("isal", [True, False])
@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_each_compression_and_level_is_deterministic(
    dags: Path, tmp_path: Path, level: int, isal: bool
) -> None:
    packing = Packing(choose(level, isal=isal), str(tmp_path))
    with build_dag_tarball(dags, packing) as one, build_dag_tarball(dags, packing) as two:
        assert one.path.read_bytes() == two.path.read_bytes()
        assert one.sha256 == two.sha256 == hashlib.sha256(one.path.read_bytes()).hexdigest()
        assert one.compression == choose(level, isal=isal)
        with _open(one) as tar:
            assert tuple(tar.getnames()) == one.members


def test_compression_changes_the_gzip_bytes_never_the_tar_inside(
    dags: Path, tmp_path: Path
) -> None:
    made = [
        build_dag_tarball(dags, Packing(choose(level, isal=isal), str(tmp_path)))
        for level, isal in ((0, False), (1, False), (9, False), (1, True), (6, True))
    ]
    assert len({bundle.sha256 for bundle in made}) == len(made)
    assert len({_tar_stream(bundle) for bundle in made}) == 1
    stored, fastest, smallest = made[0], made[1], made[2]
    assert stored.size > fastest.size >= smallest.size


def test_big_files_cross_chunk_boundaries_intact(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    root.mkdir()
    data = os.urandom(1024 * 1024 * 2 + 777) + b"tail" * 300_000
    (root / "big.bin").write_bytes(data)
    _write(root / "small.py")
    for isal in (True, False):
        with build_dag_tarball(root, Packing(choose(6, isal=isal), str(tmp_path))) as bundle:
            with _open(bundle) as tar:
                member = tar.extractfile("dags/big.bin")
                assert member is not None and member.read() == data
            assert bundle.member_sizes == (len(data), 6)


# --- tar headers ------------------------------------------------------------------------------

LONG_DIRS = "/".join(["folder_with_a_long_name_" + str(i) for i in range(5)])  # 129 chars
LONG_NAMES = {
    "short": "a.py",
    "utf8": "caf\u00e9_\u00fcber.py",
    "split": f"{LONG_DIRS}/dag.py",  # over 100 bytes: ustar's prefix and name fields
    "long_component": "x" * 120 + ".py",  # no cut fits: PAX
    "too_deep": "/".join(["d" * 90] * 3) + "/f.py",  # the prefix would pass 155: PAX
}


@pytest.fixture
def named(tmp_path: Path) -> Path:
    root = tmp_path / "dags"
    for name in LONG_NAMES.values():
        _write(root / name, f"# {name}\n")
    raw = os.path.join(os.fsencode(root), b"caf\xe9.py")
    Path(os.fsdecode(raw)).write_bytes(b"X = 1\n")
    return root


def _headers(bundle: Bundle) -> dict[str, tarfile.TarInfo]:
    with _open(bundle) as tar:
        return {info.name: info for info in tar.getmembers()}


def test_ustar_headers_where_the_name_fits_pax_only_where_needed(named: Path) -> None:
    bundle = build_dag_tarball(named)
    infos = _headers(bundle)
    pax = {name for name, info in infos.items() if info.pax_headers}
    assert pax == {
        f"dags/{LONG_NAMES['long_component']}",
        f"dags/{LONG_NAMES['too_deep']}",
        "dags/caf\udce9.py",
    }
    stream = _tar_stream(bundle)
    # The long name's folders went into ustar's prefix field, its file into the name field.
    assert f"{LONG_NAMES['split'].rsplit('/', 1)[0]}".encode() in stream
    assert stream.count(b"path=") == 3
    assert b"hdrcharset=BINARY" in stream  # the name that is not UTF-8, as before


def test_gnu_tar_lists_and_extracts_the_same_files(named: Path, tmp_path: Path) -> None:
    bundle = build_dag_tarball(named)
    listed = subprocess.run(
        ["tar", "--quoting-style=literal", "-tzf", str(bundle.path)],
        check=True,
        capture_output=True,
    ).stdout.splitlines()
    assert listed == [os.fsencode(member) for member in bundle.members]

    out = tmp_path / "extracted"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(bundle.path), "-C", str(out)], check=True)
    for member in bundle.members:
        source = named.parent / member
        assert (out / member).read_bytes() == source.read_bytes(), shown(member)
    assert (out / "dags" / LONG_NAMES["short"]).stat().st_mode & 0o777 == 0o644


def test_a_ustar_header_reads_back_as_tarfile_reads_it() -> None:
    for name in ("dags/a.py", f"dags/{LONG_DIRS}/dag.py", "dags/" + "n" * 95):
        header = bundling._ustar_header(name, 1234, executable=True)
        assert header is not None and len(header) == tarfile.BLOCKSIZE
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")  # checks the sum
        assert (info.name, info.size, info.mode, info.mtime) == (name, 1234, 0o755, 0)
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.type == tarfile.REGTYPE


def test_sizes_past_ustars_limit_get_a_pax_header() -> None:
    size = 8**11  # 8 GiB: 12 octal digits, one more than ustar holds
    assert bundling._ustar_header("dags/huge.bin", size, executable=False) is None
    header = bundling._header("dags/huge.bin", size, executable=False)
    assert b"size=8589934592" in header
    assert bundling._ustar_header("dags/huge.bin", size - 1, executable=False) is not None
