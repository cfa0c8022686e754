"""README's generated settings table, and the defaults every subcommand's --help gives."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.national import REPO
from tileserver.cli import main


def test_the_readme_lists_every_setting_of_settings_py():
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "settings_table.py"), "--check",
                            str(REPO / "README.md")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # it says: run `make settings-table`


@pytest.mark.parametrize(("command", "default"), [
    ("ingest", "(default: var/cache)"), ("serve", "(default: 2)"), ("seed", "(default: all)"), ("warm", "(default: 0)"),
])
def test_every_subcommand_help_gives_defaults(command, default, capsys, monkeypatch):
    monkeypatch.delenv("ECARTO_DATABASE", raising=False)
    monkeypatch.delenv("ECARTO_CACHE_DIR", raising=False)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert default in text and "(default: var/ecarto.gpkg)" in text
