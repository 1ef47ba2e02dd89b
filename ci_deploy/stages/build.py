"""Build: everything a release ships, made before anything touches the environment.

The DAG tarball (and the syntax check of its Python files), the bundle archive, the image.
A failure here leaves the environment exactly as it was. A submodule the checkout did not
fetch under what ships is warned of: its files would be missing from the release.

The tarballs are spooled to files in ``RUNNER_TEMP`` (else the system's temp folder); the
caller closes them once they are uploaded (:func:`discard`), and a failure here closes those
already made. The log summarises each tarball; its files are listed, in a collapsed group,
only when there are few.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ci_deploy import bundle as bundling
from ci_deploy import gitrepo
from ci_deploy.bundle import Bundle
from ci_deploy.changeset import count_files
from ci_deploy.errors import SyntaxCheckError
from ci_deploy.inputs import Inputs
from ci_deploy.plan import ReleasePlan
from ci_deploy.platform import Artifact
from ci_deploy.result import Built
from ci_deploy.runner import Runner
from ci_deploy.syntax import check_python_files, syntax_summary
from ci_deploy.text import human_size

if TYPE_CHECKING:
    from ci_deploy.image import BuiltImage, ImageBuilder
    from ci_deploy.stages.prebuild import Prebuild


def build(
    release: ReleasePlan,
    inputs: Inputs,
    runner: Runner,
    images: Callable[[], ImageBuilder],
    *,
    root_folder: str,
    image_tag: str,
    prebuilt: Prebuild | None = None,
) -> Built:
    """Make what ``release`` ships. ``root_folder`` is repository-relative (for annotations);
    ``image_tag`` names an image built here; the DAG tarball is ``prebuilt``'s when it is the
    same one."""
    packing = bundling.Packing.of_run(inputs.compression_level, runner.environ)
    dags = bundle = image = None
    try:
        if Artifact.BUNDLE in release.artifacts:
            bundle = bundling.build_bundle_tarball(inputs.root_path, packing)
            _describe(bundle, f"{inputs.root_folder}/ ({inputs.bundle_type})", runner)
        if Artifact.DAGS in release.artifacts:
            dags = prebuilt.take(inputs.dags_path, packing) if prebuilt else None
            if dags is not None and prebuilt is not None:
                runner.debug(f"The DAG tarball was packed early, beside the run: {prebuilt.how}.")
            if dags is None:
                dags = bundling.build_dag_tarball(inputs.dags_path, packing)
            _describe(dags, f"{inputs.dags_folder}/", runner)
        elif prebuilt is not None:  # not wanted: stopped now, not after an image build
            prebuilt.discard()
        _warn_of_unfetched_submodules(release, inputs, runner)
        if dags is not None and inputs.syntax_check:
            prefix = bundling.member_prefix(root_folder, inputs.dags_folder)
            _syntax_check(release, dags, inputs, runner, prefix)
        if Artifact.IMAGE in release.artifacts:
            image = _image(inputs, runner, images(), image_tag)
    except BaseException:
        discard(Built(dags=dags, bundle=bundle))
        raise
    return Built(dags=dags, bundle=bundle, image=image)


def discard(built: Built) -> None:
    """Delete the spool files of ``built``'s tarballs (their record stays)."""
    for tarball in (built.dags, built.bundle):
        if tarball is not None:
            tarball.close()


def _warn_of_unfetched_submodules(release: ReleasePlan, inputs: Inputs, runner: Runner) -> None:
    """A warning for each submodule the checkout lacks under the folder the release ships
    (the project folder for a bundle or an image, else the DAGs folder)."""
    whole_project = release.artifacts & {Artifact.BUNDLE, Artifact.IMAGE}
    folder = inputs.root_path if whole_project else inputs.dags_path
    repo = gitrepo.open_repo(folder)
    try:
        lacking = gitrepo.unfetched_submodules(repo, folder)
    finally:
        repo.close()
    for path in lacking:
        runner.warning(
            f"Submodule {path} is not checked out (its folder is empty), so this deploy ships "
            "none of its files. Set submodules: true (or recursive, for nested submodules) "
            "on actions/checkout to deploy them.",
            title="Submodule not checked out",
        )


LISTED_MEMBERS = 200
"""A tarball of at most this many files has them listed in a collapsed group."""
LARGEST_SHOWN = 5
"""How many of the largest files the summary names."""


def _describe(tarball: Bundle, folder: str, runner: Runner) -> None:
    """The tarball of ``folder`` in the log: its files in a group when there are few, then a
    summary (counts, sizes, sha256, compression, the largest files) outside it."""
    count = count_files(len(tarball.members))
    if len(tarball.members) <= LISTED_MEMBERS:
        with runner.group(f"Bundled {folder}: {count}"):
            for member, size in zip(tarball.members, tarball.member_sizes, strict=True):
                runner.info(f"  {bundling.shown(member)} ({human_size(size)})")
    runner.info(
        f"Bundled {folder}: {count}, {human_size(tarball.content_size)}, gzip "
        f"{tarball.compression.label} to {human_size(tarball.size)}, sha256 {tarball.sha256}"
    )
    if len(tarball.members) > 1:
        largest = tarball.largest(LARGEST_SHOWN)
        shown = ", ".join(f"{bundling.shown(m)} ({human_size(size)})" for m, size in largest)
        runner.info(f"Largest: {shown}")


def _syntax_check(
    release: ReleasePlan, tarball: Bundle, inputs: Inputs, runner: Runner, prefix: str
) -> None:
    deployed: dict[str, str] = {}
    if release.unchanged_since is not None:  # files as the environment runs them: not again
        repo = gitrepo.open_repo(inputs.dags_path)
        try:
            folder = gitrepo.repo_relative(repo, inputs.dags_path)
            deployed = gitrepo.blob_ids(repo, release.unchanged_since, folder)
        finally:
            repo.close()
    check = check_python_files(
        inputs.dags_path, tarball.members, path_prefix=prefix, deployed=deployed
    )
    for problem in check.problems:
        runner.error(
            problem.message, title="Python syntax error", file=problem.path, line=problem.line
        )
    if check.problems:
        files = ", ".join(f"{p.path}:{p.line}" for p in check.problems)
        raise SyntaxCheckError(
            f"{count_files(len(check.problems))} in the DAG bundle do not compile ({files}); "
            "nothing was deployed. Fix them, or set syntax-check: false to skip this check."
        )
    runner.info(syntax_summary(check, release.unchanged_since))


def _image(inputs: Inputs, runner: Runner, builder: ImageBuilder, tag: str) -> BuiltImage:
    if inputs.image_name:
        image = builder.existing(inputs.image_name)
        runner.info(f"Using the image {inputs.image_name} built earlier in the workflow.")
    else:
        image = builder.build(inputs.root_path, tag=tag)
    if inputs.platform == "astro":  # an App Platform image runs anything
        version = builder.check_runtime(image)
        runner.info(f"Image {image.reference}: Astro Runtime {version}.")
    return image
