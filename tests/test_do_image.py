"""An App Platform app whose component runs an image from DOCR, in process against the
emulator with its registry check on: the image is pushed with the token as the registry
password and set by digest, and the deployment that pulls it becomes ACTIVE."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from ci_deploy.digitalocean.platform import connect
from ci_deploy.image import BuiltImage
from ci_deploy_testkit.do_emulator import AppPlatformEmulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import change
from tests.fakes import FakeClock, FakeImages
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

SPEC = {
    "name": "image-app",
    "region": "fra",
    "services": [
        {
            "name": "web",
            "image": {"registry_type": "DOCR", "repository": "airflow", "tag": "v1"},
            "http_port": 8080,
        }
    ],
}


@dataclass
class RegistryImages(FakeImages):
    """Builds in memory; pushes into the emulator's registry."""

    emulator: AppPlatformEmulator | None = None
    pushed: list[tuple[str, str, str]] = field(default_factory=list)

    def push(self, image: BuiltImage, repository: str, tag: str, *, token: str) -> str:
        assert self.emulator is not None
        self.pushed.append((repository, tag, token))
        digest = "sha256:" + "7" * 64
        self.emulator.record_push(repository.rsplit("/", 1)[-1], tag, digest)
        return digest


def test_the_image_is_pushed_to_docr_and_deployed_by_digest(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.record_push("airflow", "v1")
    app_id = do_api.add_app(SPEC)
    do_api.require_pushed_images = True
    repo.write(".do/app.yaml", yaml.safe_dump(SPEC))
    repo.commit("the app spec")
    before = change(repo, "requirements.txt", "\nrequests\n")
    images = RegistryImages(emulator=do_api)
    step = run_in_process(
        repo.path,
        {
            "platform": "digitalocean",
            "api-url": do_api.api_url,
            "app-id": app_id,
            "docr-registry": "acme",
        },
        factory=connect,
        clock=clock,
        images=lambda runner: images,
        event=push_event(before, repo.head()),
        env={"DIGITALOCEAN_TOKEN": do_api.token},
    )
    assert step.result.returncode == 0, step.log
    assert images.pushed == [
        ("registry.digitalocean.com/acme/airflow", repo.head()[:12], do_api.token)
    ]
    app = do_api.app(app_id)
    assert app["spec"]["services"][0]["image"] == {
        "registry_type": "DOCR",
        "repository": "airflow",
        "digest": "sha256:" + "7" * 64,
    }
    assert app["active_deployment"]["id"] == step.outputs["deploy-id"]
    assert step.outputs["deploy-type"] == "image"
