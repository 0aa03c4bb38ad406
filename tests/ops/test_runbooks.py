"""The runbooks name commands and options that exist: a renamed command makes this fail, not an incident."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal import create_app

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
FLASK = re.compile(r"`flask ((?:billing|release|db|reconcile|sync-plans|create-superadmin)[^`]*)`")


def _commands():
    for path in sorted(RUNBOOKS.glob("*.md")):
        for line in FLASK.findall(path.read_text()):
            yield path.name, line


@pytest.mark.parametrize("runbook,line", list(_commands()), ids=lambda value: value)
def test_each_flask_command_in_a_runbook_exists_with_its_options(app_config, runbook, line):
    app = create_app(app_config)
    words = line.split()
    command = app.cli.get_command(None, words[0])
    assert command is not None, f"{runbook}: no `flask {words[0]}`"
    rest = words[1:]
    if hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        command = command.commands.get(rest[0])
        assert command is not None, f"{runbook}: no `flask {words[0]} {rest[0]}`"
    options = {opt for param in command.params for opt in param.opts}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{runbook}: `flask {line}` has no option {word}"


def test_the_runbooks_use_the_backup_script_and_the_probes():
    text = "\n".join(path.read_text() for path in RUNBOOKS.glob("*.md"))
    assert "python -m scripts.backup dump" in text and "python -m scripts.backup restore" in text
    assert "/readyz" in text and "/healthz" in text and "/login" not in text
    assert len(list(_commands())) >= 8


def test_the_deploy_runbook_reloads_with_the_reload_command_and_its_options():
    from scripts import reload

    text = (RUNBOOKS / "deploy.md").read_text()
    command = re.search(r"python -m scripts\.reload ([^`\n]*)", text)
    assert command is not None
    options = {opt for action in reload.parser()._actions for opt in action.option_strings}
    assert {word for word in command.group(1).split() if word.startswith("--")} <= options
    # A bare SIGHUP skips the check that the release loads; the runbooks name only the command.
    assert "kill -HUP" not in "\n".join(path.read_text() for path in RUNBOOKS.glob("*.md"))
