"""The README shows exactly the two commands CI runs in fresh clones (``.ci/commands``)."""

from __future__ import annotations

from tests.conftest import ROOT

COMMENTS = {
    "demo": "# Install and run the demo",
    "tests": "# Install and run the tests",
}


def ci_commands() -> dict[str, str]:
    lines = (ROOT / ".ci" / "commands").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return dict(pairs)


def test_ci_runs_the_two_commands_the_readme_shows():
    commands = ci_commands()
    assert set(commands) == set(COMMENTS)
    readme = (ROOT / "README.md").read_text().splitlines()
    for name, comment in COMMENTS.items():
        shown = [readme[index + 1] for index, line in enumerate(readme) if line.startswith(comment)]
        assert shown == [commands[name]], (name, shown)
