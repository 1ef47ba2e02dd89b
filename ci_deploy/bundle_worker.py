"""The process that packs a DAG tarball early (see :mod:`ci_deploy.stages.prebuild`).

``python -m ci_deploy.bundle_worker DAGS_FOLDER SPOOL_FOLDER LEVEL`` packs the folder as
:func:`ci_deploy.bundle.build_dag_tarball` does, at ``compression-level`` ``LEVEL``, spooled
in ``SPOOL_FOLDER``, and prints the :class:`~ci_deploy.bundle.Bundle` as one JSON line
(:func:`to_json`). It imports nothing but the bundle's modules, so it starts fast, and it
runs beside the run's own process, on another core. Any failure exits non-zero with
nothing printed: the run then packs the folder itself, and reports what goes wrong as it
always does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ci_deploy.bundle import Bundle, Packing, build_dag_tarball
from ci_deploy.compression import Compression, compression_for


def to_json(tarball: Bundle) -> str:
    """``tarball`` as one JSON line (file names that are not UTF-8 survive: surrogates)."""
    compression = tarball.compression
    return json.dumps(
        {
            "path": str(tarball.path),
            "size": tarball.size,
            "sha256": tarball.sha256,
            "members": tarball.members,
            "member_sizes": tarball.member_sizes,
            "compression": [compression.level, compression.backend, compression.backend_level],
        }
    )


def from_json(line: str | bytes) -> Bundle:
    """The :class:`~ci_deploy.bundle.Bundle` :func:`to_json` wrote."""
    data = json.loads(line)
    level, backend, backend_level = data["compression"]
    return Bundle(
        path=Path(data["path"]),
        size=int(data["size"]),
        sha256=str(data["sha256"]),
        members=tuple(data["members"]),
        member_sizes=tuple(data["member_sizes"]),
        compression=Compression(int(level), backend, int(backend_level)),
    )


def main(argv: list[str]) -> int:
    """Pack ``argv``'s folder; print the tarball (see the module docstring)."""
    dags, spool, level = argv
    packing = Packing(compression_for(int(level)), spool)
    tarball = build_dag_tarball(Path(dags), packing)
    sys.stdout.write(to_json(tarball) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except BaseException:  # the run packs the folder itself and says what is wrong
        code = 1
    raise SystemExit(code)
