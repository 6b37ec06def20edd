"""The container entrypoint (`staticsite-operator`): its configuration, kopf's arguments and its identity.

The identity test runs as UID 65532 with no passwd entry, as the image does. Before
the fix, kopf's start-up raised `KeyError: 'getpwuid(): uid not found: 65532'` there,
and every real install crash-looped (kwok never ran the container, so nothing noticed).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

import pytest

from staticsite_operator.__main__ import kopf_args, prepare
from staticsite_operator.api import models
from staticsite_operator.config import Config, ConfigError

UID = 65532
IDENTITY = "from kopf._core.engines.peering import detect_own_id; print(detect_own_id(manual=False))"


def test_scope_is_all_namespaces_by_default() -> None:
    args = kopf_args(Config.from_env({}))
    assert "--all-namespaces" in args
    assert "--standalone" in args
    # The operator serves /healthz and /readyz itself (runtime.health), not kopf's --liveness.
    assert not [a for a in args if a.startswith("--liveness")]


def test_namespaces_are_listed_exactly() -> None:
    args = kopf_args(Config.from_env({"STATICSITE_NAMESPACES": " team-a, ,team-b "}), ["--verbose"])
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--all-namespaces" not in args
    assert args[-1] == "--verbose"


def test_configuration_is_typed_and_names_the_bad_variable() -> None:
    config = Config.from_env({"STATICSITE_WORKERS": "3", "STATICSITE_METRICS_PORT": "0", "HOME": "/root"})
    assert config.workers == 3 and config.metrics_port == 0
    with pytest.raises(ConfigError, match="STATICSITE_WORKERS"):
        Config.from_env({"STATICSITE_WORKERS": "many"})
    with pytest.raises(ConfigError, match="STATICSITE_LOG_FORMAT"):
        Config.from_env({"STATICSITE_LOG_FORMAT": "xml"})


def test_empty_image_settings_mean_the_pinned_defaults() -> None:
    """The chart passes "" when sites.nginxImage is not set."""
    config = Config.from_env({"STATICSITE_NGINX_IMAGE": "", "STATICSITE_FETCHER_IMAGE": ""})
    assert (config.nginx_image, config.fetcher_image) == (models.DEFAULT_NGINX_IMAGE, models.DEFAULT_FETCHER_IMAGE)


def test_prepare_keeps_a_pod_id_that_is_set() -> None:
    env = {"POD_ID": "operator-abc"}
    prepare(env)
    assert env == {"POD_ID": "operator-abc"}


def _as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("this test runs a process as UID 65532: it needs root and setpriv (util-linux)")
    try:
        pwd.getpwuid(UID)
        pytest.fail(f"UID {UID} has a passwd entry here, so the test would prove nothing")
    except KeyError:
        pass
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME", "POD_ID")}
    return subprocess.run(["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups",
                           sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=False, cwd="/")


def test_kopf_identity_fails_for_a_uid_without_passwd_entry() -> None:
    """The defect, reproduced: what the image hit before the entrypoint set POD_ID."""
    result = _as_nobody(IDENTITY)
    assert result.returncode != 0
    assert "getpwuid(): uid not found: 65532" in result.stderr


def test_entrypoint_gives_kopf_an_identity_as_uid_65532() -> None:
    result = _as_nobody("import os; from staticsite_operator.__main__ import prepare; prepare(os.environ); " + IDENTITY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "kopf computed an empty identity"


def test_the_configuration_docs_are_generated_from_the_config() -> None:
    from pathlib import Path

    from staticsite_operator.config import markdown

    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert markdown() in docs, "docs/configuration.md is stale: regenerate its table with " \
                               "`python -m staticsite_operator.config`"


def test_every_data_file_of_the_package_ships() -> None:
    """A regular install (the image's) holds only .py files and the package-data globs: a
    data file the globs miss works in the editable dev install and breaks the image."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "staticsite_operator"]
    package = root / "operator" / "staticsite_operator"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "the package has data files"
    missing = [f for f in data if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert missing == [], f"not shipped by [tool.setuptools.package-data]: {missing}"
