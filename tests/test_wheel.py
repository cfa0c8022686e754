"""The built package alone serves a working map: wheel -> clean venv -> ingest the sample -> /map in Chromium.

The venv gets the wheel with `--no-deps` and reaches its dependencies through a `.pth` naming this
interpreter's site-packages (offline and fast); nothing of the checkout (node_modules, the sources)
is importable from it, so MapLibre must come from the wheel itself. Building the wheel needs the
build backend from PyPI once (pip caches it), as `make setup` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests

from bench.processes import free_port
from tests.support.national import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STARTUP_SECONDS = 60


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A venv holding the freshly built wheel and nothing else of this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # from a copy: pip builds in the tree, and a stale build/ there would ship modules deleted since
    source = shutil.copytree(REPO, root / "source", symlinks=True,
                             ignore=shutil.ignore_patterns(".*", "node_modules", "var", "build", "*.egg-info"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)])
    (wheel,) = (root / "dist").glob("ecarto_server-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")])
    python = root / "venv" / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    Path(site, "shared-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)])
    return root / "venv"


def run(command: list[str], **kwargs) -> str:
    """Run a command outside the checkout, with no PYTHONPATH; its output, or its log in the failure."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ECARTO_DATABASE")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=kwargs.pop("cwd", "/"), **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_installed_package_serves_the_map_with_maplibre(venv, tmp_path):
    where = run([str(venv / "bin" / "python"), "-c", "import tileserver; print(tileserver.__file__)"])
    assert where.startswith(str(venv)), where
    database = str(tmp_path / "ecarto.gpkg")
    run([str(venv / "bin" / "ecarto"), "-q", "ingest", "--sources", str(REPO / "sources" / "sample.toml"),
         "--database", database, "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen([str(venv / "bin" / "ecarto"), "serve", "--database", database,
                                   "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                                  env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server, tmp_path / "serve.log")
        seen = json.loads(run(["node", str(REPO / "tests" / "browser" / "loads.mjs"), base], cwd=REPO, timeout=300))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert seen["errors"] == []
    assert seen["counts"].get("etablissements-clusters", 0) + seen["counts"].get("etablissements-points", 0) > 0
    assert seen["counts"].get("departements-fill", 0) > 0


def wait_until_up(base: str, server: subprocess.Popen, log: Path) -> None:
    """Wait for the server to answer (or to die, showing its log)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(f"{base}/health", timeout=10).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"the installed server did not answer; its log:\n{log.read_text()[-3000:]}")
