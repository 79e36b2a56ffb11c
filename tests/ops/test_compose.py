"""docker-compose.yml, its scripts, .env.example and the Dockerfile, checked without a Docker
engine: parsed (PyYAML) and compared with what the code needs."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from temporalio.api.enums.v1 import IndexedValueType

from core.temporal import SEARCH_ATTRIBUTES
from tests.ops.conftest import REPO

SERVICES = {
    "postgresql",
    "temporal-admin-tools",
    "temporal",
    "temporal-create-namespace",
    "temporal-ui",
    "migrate",
    "api",
    "worker",
}
ONE_SHOT = {"temporal-admin-tools", "temporal-create-namespace", "migrate"}
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|_KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def upstream(services: dict[str, dict[str, Any]], name: str) -> dict[str, set[str]]:
    """Every service `name` waits for, transitively, with the conditions it waits on."""
    found: dict[str, set[str]] = {}
    todo = [name]
    while todo:
        for dep, condition in depends(services[todo.pop()]).items():
            if condition not in found.setdefault(dep, set()):
                found[dep].add(condition)
                todo.append(dep)
    return found


def script(path: str) -> str:
    return (REPO / path).read_text()


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_dependencies_use_conditions_and_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert isinstance(service.get("depends_on", {}), dict), (
            f"{name}: depends_on needs conditions"
        )
        for dep, condition in depends(service).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert condition == wanted, f"{name} waits for {dep} with {condition}"


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert depends(services["temporal-admin-tools"]) == {"postgresql": "service_healthy"}
    assert depends(services["temporal"]) == {
        "temporal-admin-tools": "service_completed_successfully"
    }
    assert depends(services["temporal-create-namespace"]) == {"temporal": "service_healthy"}
    assert depends(services["migrate"]) == {"postgresql": "service_healthy"}
    for app in ("api", "worker"):
        waits = upstream(services, app)
        # The search attributes exist before any worker (or API) starts, and so do the tables.
        assert waits["temporal-create-namespace"] == {"service_completed_successfully"}
        assert waits["migrate"] == {"service_completed_successfully"}
        assert "service_healthy" in waits["temporal"]
        assert "service_healthy" in waits["postgresql"]


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgresql", "temporal", "api", "worker"):
        check = services[name]["healthcheck"]
        assert check["test"] and not check.get("disable"), name
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert services["temporal"]["healthcheck"]["test"] == ["CMD", "nc", "-z", "localhost", "7233"]
    assert "/healthz" in services["api"]["healthcheck"]["test"][-1]
    worker_port = services["worker"]["environment"]["DESKCLONE_METRICS_PORT"]
    assert f":{worker_port}/metrics" in services["worker"]["healthcheck"]["test"][-1]
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_one_shot_jobs_are_not_restarted_forever(services: dict[str, dict[str, Any]]) -> None:
    for name in ONE_SHOT:
        assert services[name]["restart"] in ("no", "on-failure:5", "on-failure:6"), name


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    assert services["api"]["ports"] == ["${API_PUBLISH:-127.0.0.1:8000}:8000"]
    assert services["temporal-ui"]["ports"] == ["${TEMPORAL_UI_PUBLISH:-127.0.0.1:8080}:8080"]
    assert services["temporal"]["ports"] == ["${TEMPORAL_PUBLISH:-127.0.0.1:7233}:7233"]
    assert services["api"]["environment"]["DESKCLONE_API_PORT"] == 8000
    for name in ("postgresql", "temporal-admin-tools", "temporal-create-namespace", "migrate"):
        assert "ports" not in services[name], name


def test_worker_scales_and_drains(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert not any("container_name" in s for s in services.values())
    # Docker's SIGKILL comes after the worker's graceful shutdown (20 s in worker.py).
    assert int(worker["stop_grace_period"].removesuffix("s")) >= 25


def test_one_image_for_the_app(services: dict[str, dict[str, Any]]) -> None:
    images = {services[n]["image"] for n in ("migrate", "api", "worker")}
    assert len(images) == 1
    assert [services[n]["command"] for n in ("migrate", "api", "worker")] == [
        ["deskclone", "migrate"],
        ["deskclone", "api"],
        ["deskclone", "worker"],
    ]
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert env["DESKCLONE_ENVIRONMENT"] == "production"
        assert env["DESKCLONE_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["DESKCLONE_DATABASE_URL"].endswith("@postgresql:5432/deskclone")


def test_third_party_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"


def test_temporal_runs_on_postgresql_as_samples_server_does(
    services: dict[str, dict[str, Any]],
) -> None:
    server = services["temporal"]
    assert server["image"].startswith("temporalio/server:")
    env = server["environment"]
    assert (env["DB"], env["POSTGRES_SEEDS"], env["POSTGRES_USER"]) == (
        "postgres12",
        "postgresql",
        "temporal",
    )
    config = env["DYNAMIC_CONFIG_FILE_PATH"].removeprefix("config/dynamicconfig/")
    dynamic = yaml.safe_load(script(f"deploy/temporal/dynamicconfig/{config}"))
    assert dynamic["limit.maxIDLength"][0]["value"] == 255
    setup = script("deploy/temporal/setup-postgres.sh")
    assert "temporal-sql-tool --plugin postgres12" in setup
    for database, folder in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {database} create" in setup
        assert f"--db {database} setup-schema -v 0.0" in setup
        assert f'--db {database} update-schema -d "$SCHEMA/{folder}/versioned"' in setup
    init = script("deploy/postgres/init-databases.sh")
    for database in ("deskclone", "temporal", "temporal_visibility"):
        assert f"CREATE DATABASE {database} OWNER" in init


def test_bind_mounts_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_scripts_are_valid_shell() -> None:
    shell = shutil.which("sh")
    assert shell is not None
    for path in sorted((REPO / "deploy").rglob("*.sh")):
        done = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f"{path}: {done.stderr}"


def test_the_search_attribute_job_registers_all_five_as_keyword() -> None:
    text = script("deploy/temporal/create-namespace.sh")
    created = dict(re.findall(r"search-attribute create .*--name (\w+) --type (\w+)", text))
    assert created == dict.fromkeys(SEARCH_ATTRIBUTES, "Keyword")
    assert set(SEARCH_ATTRIBUTES.values()) == {IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
    assert "temporal operator namespace create" in text
    assert text.index("namespace create") < text.index("search-attribute create")


def test_no_secret_is_written_inline(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            value = str(value)
            if SECRET_NAME.search(key):
                assert REFERENCE.fullmatch(value), f"{name}.{key} must be a ${{VAR}} reference"
                default = REFERENCE.fullmatch(value).group(3)  # type: ignore[union-attr]
                op = REFERENCE.fullmatch(value).group(2)  # type: ignore[union-attr]
                assert op in (None, ":?", "?") or not default, f"{name}.{key} has a default"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                password = userinfo.split(":", 1)[1]
                assert REFERENCE.fullmatch(password), f"{name}.{key}: inline password"


def test_required_secrets_stop_compose_when_missing() -> None:
    text = script("docker-compose.yml")
    for var in (
        "POSTGRES_PASSWORD",
        "DESKCLONE_DB_PASSWORD",
        "TEMPORAL_DB_PASSWORD",
        "DESKCLONE_SECRET_KEY",
        "DESKCLONE_PUBLIC_URL",
    ):
        assert f"${{{var}:?" in text, var


def strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_env_example_lists_every_variable_and_no_secret_value(compose: dict[str, Any]) -> None:
    used = {m.group(1) for value in strings(compose) for m in REFERENCE.finditer(value)}
    example: dict[str, str] = {}
    for line in script(".env.example").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    assert set(example) <= used, f"unused in compose: {sorted(set(example) - used)}"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "", f".env.example must not carry a value for {key}"


def test_env_file_stays_out_of_the_image() -> None:
    ignored = script(".dockerignore").splitlines()
    assert ".env" in ignored and ".env.*" in ignored and ".git" in ignored


def dockerfile_final_stage() -> list[str]:
    lines = [
        line.strip()
        for line in script("Dockerfile").replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def test_dockerfile_runs_as_a_user_with_a_healthcheck() -> None:
    final = dockerfile_final_stage()
    assert final[0].startswith("FROM python:3.11-slim")
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert any(line.startswith("CMD ") for line in final)


def test_dockerfile_bakes_in_no_secret() -> None:
    text = script("Dockerfile").replace("\\\n", " ")
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if words and words[0].upper() in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", words[1]) or [words[1].split()[0]]
            for name in names:
                assert not SECRET_NAME.search(name), f"Dockerfile sets {name}"
    assert not re.search(r"COPY[^\n]*\.env\b", text)


def test_dockerfile_installs_without_test_extras_and_copies_every_package() -> None:
    text = script("Dockerfile")
    assert "pip install ." in text and "[test]" not in text
    pyproject = tomllib.loads(script("pyproject.toml"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns} - {"bench"}
    copied = set(re.findall(r"^COPY (\w+) ", text, re.MULTILINE))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        assert f"COPY {module}.py" in text
