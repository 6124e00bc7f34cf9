"""deploy/kubernetes/: the manifests agree with the server (routes, drain, port), with the
image (user) and with each other (names, labels). kubernetes-validate checks their schema in CI.
"""

from django.urls import resolve

from realtime.operate import health
from tests.deploy.dockerfile import arguments, final_stage
from tests.deploy.manifests import probe_paths, resources, server_container

FOUND = resources()
POD = FOUND["Deployment"]["spec"]["template"]["spec"]
CONFIG = FOUND["ConfigMap"]["data"]


def test_the_probes_ask_the_servers_own_health_routes():
    paths = probe_paths(FOUND)
    assert resolve(paths["readinessProbe"]).func is health.readyz
    assert resolve(paths["livenessProbe"]).func is health.healthz


def test_the_probes_and_the_service_reach_the_port_the_server_listens_on():
    container = server_container(FOUND)
    (port,) = container["ports"]
    assert port["containerPort"] == int(CONFIG["PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    assert [p["targetPort"] for p in FOUND["Service"]["spec"]["ports"]] == [port["name"]]


def test_the_grace_period_outlasts_the_pre_stop_pause_and_the_drain():
    pause = server_container(FOUND)["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(CONFIG["DRAIN_SECONDS"])
    assert POD["terminationGracePeriodSeconds"] > pause + drain


def test_the_pods_run_as_the_images_unprivileged_user():
    (user,) = arguments(final_stage(), "USER")
    uid, gid = (int(part) for part in user.split(":"))
    context = POD["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid) != (0, 0)
    container = server_container(FOUND)["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]
    # The only places the server writes to are volumes of the pod: /data (the image's
    # DATABASE_URL) and /tmp.
    (database_url,) = (
        value
        for env in arguments(final_stage(), "ENV")
        for value in env.split()
        if value.startswith("DATABASE_URL=")
    )
    mounts = {mount["mountPath"] for mount in server_container(FOUND)["volumeMounts"]}
    assert database_url == "DATABASE_URL=sqlite:////data/db.sqlite3"
    assert mounts == {"/data", "/tmp"}


def test_the_settings_come_from_the_config_map_and_the_secret():
    sources = server_container(FOUND)["envFrom"]
    assert [s["configMapRef"]["name"] for s in sources if "configMapRef" in s] == [
        FOUND["ConfigMap"]["metadata"]["name"]
    ]
    assert [s["secretRef"]["name"] for s in sources if "secretRef" in s] == [
        FOUND["Secret"]["metadata"]["name"]
    ]
    assert CONFIG["REDIS_URL"].startswith("redis://")  # a fleet delivers through Redis
    secrets = set(FOUND["Secret"]["stringData"])
    assert {"SECRET_KEY", "WS_TOKEN_SECRET", "API_TOKENS"} <= secrets
    assert not secrets & set(CONFIG)  # no setting in both places


def test_the_service_and_the_budget_select_the_deployments_pods():
    labels = FOUND["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert FOUND["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert FOUND["Service"]["spec"]["selector"].items() <= labels.items()
    budget = FOUND["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] < FOUND["Deployment"]["spec"]["replicas"]
    assert POD["serviceAccountName"] == FOUND["ServiceAccount"]["metadata"]["name"]


def test_a_resource_request_and_a_memory_limit():
    resources_ = server_container(FOUND)["resources"]
    assert {"cpu", "memory"} <= set(resources_["requests"])
    assert "memory" in resources_["limits"]
