"""The Kubernetes manifests of deploy/kubernetes/, loaded for the tests that hold them to the
server and to its image."""

from pathlib import Path

import yaml

from tests.processes import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"


def resources(folder: Path = MANIFESTS) -> dict[str, dict]:
    """Every resource of every manifest, by kind (one of each kind here)."""
    found: dict[str, dict] = {}
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"a second {document['kind']} in {path.name}"
            found[document["kind"]] = document
    return found


def server_container(found: dict[str, dict]) -> dict:
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def probe_paths(found: dict[str, dict]) -> dict[str, str]:
    """The HTTP path of each probe of the server's container, by probe."""
    container = server_container(found)
    return {
        probe: container[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")
    }
