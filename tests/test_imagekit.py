"""scripts/imagekit.py's plain parts: where debootstrap fetches from, what the base is given,
what a run outside ``make image-demo`` is told. The builds themselves run in
``make image-demo`` against a real engine and registry."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import imagekit


def test_the_mirror_is_read_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    )
    assert imagekit.apt_mirror([deb822]) == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# deb http://old/debian bookworm main\ndeb http://m.example/debian bookworm main\n"
    )
    assert imagekit.apt_mirror([tmp_path / "missing", one_line]) == "http://m.example/debian"


def test_without_a_debian_mirror_the_error_says_what_debootstrap_needs(tmp_path: Path) -> None:
    other = tmp_path / "nodesource.sources"
    other.write_text("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\n")
    with pytest.raises(imagekit.ImageKitError, match="debootstrap needs one"):
        imagekit.apt_mirror([other])


def test_the_base_gets_what_the_dockerfile_expects_of_python_slim(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    stdlib = rootfs / "usr" / "lib" / "python3.11"
    stdlib.mkdir(parents=True)
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]")
    (rootfs / "etc" / "ssl" / "certs").mkdir(parents=True)
    (rootfs / "var" / "cache" / "apt" / "archives").mkdir(parents=True)
    (rootfs / "var" / "cache" / "apt" / "archives" / "git.deb").write_bytes(b"deb")
    imagekit.fit_base(rootfs)
    python = rootfs / "usr" / "local" / "bin" / "python"
    assert python.is_symlink() and str(python.readlink()) == "/usr/bin/python3"
    assert not (stdlib / "EXTERNALLY-MANAGED").exists()
    assert not (rootfs / "var" / "cache" / "apt" / "archives" / "git.deb").exists()
    if imagekit.HOST_CA_BUNDLE.is_file():
        copied = rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt"
        assert copied.read_bytes() == imagekit.HOST_CA_BUNDLE.read_bytes()
    imagekit.fit_base(rootfs)  # again: the cache is remade over an old one
    assert python.is_symlink()


def test_outside_make_image_demo_the_missing_variables_are_named() -> None:
    with pytest.raises(imagekit.ImageKitError) as caught:
        imagekit.registry_from({"DOCKER_HOST": "unix:///d.sock", "CI_DEPLOY_TEST_REGISTRY": "h"})
    message = str(caught.value)
    assert message.startswith("CI_DEPLOY_TEST_REGISTRY_USER, CI_DEPLOY_TEST_REGISTRY_TOKEN not set")
    assert "make image-demo" in message and "services.py run --only docker,registry" in message
    registry = imagekit.registry_from(
        {
            "DOCKER_HOST": "unix:///d.sock",
            "CI_DEPLOY_TEST_REGISTRY": "127.0.0.1:5000",
            "CI_DEPLOY_TEST_REGISTRY_USER": "cli",
            "CI_DEPLOY_TEST_REGISTRY_TOKEN": "t0ken",
        }
    )
    assert registry == imagekit.Registry("127.0.0.1:5000", "cli", "t0ken")
    assert "t0ken" not in repr(registry)
