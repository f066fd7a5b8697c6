"""Promises the project makes to a new user: the README's commands and the compose file."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_quick_start_has_a_demo_and_a_test_command() -> None:
    blocks = _quick_start_blocks()
    assert len(blocks) == 2
    assert blocks[0].endswith("truce demo")
    assert "pytest" in blocks[1] and "python3 -m venv" in blocks[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start_blocks()[1] in ci
    assert "TRUCE_TEST_DATABASE_URL" in ci and "postgresql" in ci


def test_every_compose_command_exists_in_the_cli() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command")
        if not command:
            continue
        assert command[0] == "truce", name
        words = [w for w in command[1:] if not w.startswith("-")][:2]
        help_text = subprocess.run([sys.executable, "-m", "service.cli", *words[:1], "--help"],
                                   capture_output=True, text=True, timeout=60)
        assert help_text.returncode == 0, (name, help_text.stderr)
        if len(words) > 1 and not words[1][0].isdigit() and "." not in words[1]:
            assert words[1] in help_text.stdout, (name, words)
