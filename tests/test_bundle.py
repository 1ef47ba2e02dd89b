"""The DAG tarball: members, metadata, determinism and symlink rules."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from ci_deploy.bundle import Bundle, build_dag_tarball
from ci_deploy.errors import BundleError


def _write(path: Path, text: str = "x = 1\n", *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


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
    return tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz")


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
    assert bundle.size == len(bundle.data)
    assert bundle.sha256 == hashlib.sha256(bundle.data).hexdigest()


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
    assert second.data == first.data
    assert second.sha256 == first.sha256


def test_same_content_in_another_place_gives_identical_bytes(tmp_path: Path) -> None:
    for base in ("one", "two"):
        # Created in a different order, so directory listing order differs too.
        names = ["z.py", "a.py", "m/n.py"] if base == "one" else ["m/n.py", "a.py", "z.py"]
        for name in names:
            _write(tmp_path / base / "dags" / name, f"# {name}\n")
    one = build_dag_tarball(tmp_path / "one" / "dags")
    two = build_dag_tarball(tmp_path / "two" / "dags")
    assert one.data == two.data


def test_a_different_tree_gives_different_bytes(dags: Path) -> None:
    before = build_dag_tarball(dags)
    _write(dags / "a_dag.py", "A = 2\n")
    changed = build_dag_tarball(dags)
    assert changed.sha256 != before.sha256
    (dags / "run.sh").chmod(0o644)
    assert build_dag_tarball(dags).sha256 != changed.sha256


def test_gzip_header_has_no_mtime_and_no_name(dags: Path) -> None:
    data = build_dag_tarball(dags).data
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
