"""The mutation run's own rules: which mutants it makes, how it names them, and when its report fails."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mutation.mutants import mutants, unmutated
from mutation.runner import TARGETS, Tally, load_accepted, load_pending, report

ROOT = Path(__file__).resolve().parent.parent

SOURCE = textwrap.dedent(
    '''
    """A module docstring."""
    from typing import TYPE_CHECKING

    if TYPE_CHECKING:
        from collections.abc import Mapping

    LIMIT: int = 3


    def pick(values: "Mapping[str, int]", key: str) -> int | None:
        """A docstring."""
        if key in values and not values[key] == 0:
            return values[key] + 1
        for value in values:
            if value:
                break
        return None
    '''
)


def names(source: str = SOURCE) -> list[str]:
    return [mutant.name for mutant in mutants(source, "m.py")]


def test_each_operator_makes_its_mutant_named_by_function_and_change():
    assert names() == [
        "m.py:<module>: 3 -> 4",
        "m.py:pick: key in values and (not values[key] == 0) -> key in values or not values[key] == 0",
        "m.py:pick: key in values -> key not in values",
        "m.py:pick: not values[key] == 0 -> not not values[key] == 0",
        "m.py:pick: values[key] == 0 -> values[key] != 0",
        "m.py:pick: 0 -> 1",
        "m.py:pick: return values[key] + 1 -> return None",
        "m.py:pick: values[key] + 1 -> values[key] - 1",
        "m.py:pick: 1 -> 2",
        "m.py:pick: break -> continue",
    ]


def test_docstrings_annotations_strings_and_type_checking_blocks_are_left_alone():
    changed = " ".join(names())
    assert "docstring" not in changed
    assert "Mapping" not in changed
    assert "int | None" not in changed


def test_each_mutant_changes_exactly_what_its_name_says():
    base = unmutated(SOURCE)
    for mutant in mutants(SOURCE, "m.py"):
        assert mutant.source != base
        compile(mutant.source, "m.py", "exec")
    by_name = {mutant.name: mutant.source for mutant in mutants(SOURCE, "m.py")}
    assert "values[key] - 1" in by_name["m.py:pick: values[key] + 1 -> values[key] - 1"]
    assert "continue" in by_name["m.py:pick: break -> continue"]


def test_the_same_change_twice_in_a_function_gets_a_number_and_names_survive_edits_above():
    twice = "def f(a, b):\n    return a == 1 or b == 1\n"
    assert "m.py:f: 1 -> 2 #2" in names(twice)
    moved = "\n\nX = 'x'\n\n" + twice
    assert set(names(twice)) <= set(names(moved))


def accepted_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accepted.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_accepted_survivor_needs_a_reason(tmp_path):
    with pytest.raises(SystemExit, match="expected '<mutant name> ## <why it is equivalent>'"):
        load_accepted(accepted_file(tmp_path, "m.py:f: 1 -> 2\n"))
    assert load_accepted(accepted_file(tmp_path, "# a comment\n\nm.py:f: 1 -> 2 ## same result\n")) == {
        "m.py:f: 1 -> 2": "same result"
    }


def test_the_report_fails_on_an_unlisted_survivor():
    tally = Tally("django_appdb/m.py", mutants=3, killed=2, survived=["m.py:f: 1 -> 2"])
    text, passed = report([tally], {}, wall=1.0)
    assert not passed
    assert "1 mutant(s) survived that neither mutation/accepted.txt nor pending.txt lists" in text
    assert "m.py:f: 1 -> 2" in text


def test_the_report_passes_on_listed_survivors_only():
    tally = Tally("django_appdb/m.py", mutants=3, killed=2, survived=["m.py:f: 1 -> 2"])
    text, passed = report([tally], {"m.py:f: 1 -> 2": "same result"}, wall=1.0)
    assert passed, text
    assert text.splitlines()[2].split() == ["m.py", "3", "2", "1", "1", "0", "0"]


def test_the_report_fails_on_a_listed_survivor_that_is_now_killed_or_gone():
    tally = Tally("django_appdb/m.py", mutants=3, killed=3)
    text, passed = report([tally], {"m.py:f: 1 -> 2": "same result"}, wall=1.0)
    assert not passed
    assert "no longer survive or no longer exist" in text


def test_every_target_and_its_test_files_exist():
    for module, tests in TARGETS.items():
        assert (ROOT / module).is_file(), module
        for test in tests:
            assert (ROOT / test).is_file(), test


def test_every_accepted_survivor_names_a_mutant_that_exists():
    existing = {
        mutant.name
        for module in TARGETS
        for mutant in mutants((ROOT / module).read_text(encoding="utf-8"), module.removeprefix("django_appdb/"))
    }
    assert set(load_accepted()) <= existing


def test_a_pending_survivor_is_counted_apart_and_must_go_once_killed():
    tally = Tally("django_appdb/m.py", mutants=3, killed=2, survived=["m.py:f: 1 -> 2"])
    text, passed = report([tally], {}, wall=1.0, pending={"m.py:f: 1 -> 2": "pending"})
    assert passed, text
    assert text.splitlines()[2].split() == ["m.py", "3", "2", "1", "0", "1", "0"]
    killed = Tally("django_appdb/m.py", mutants=3, killed=3)
    text, passed = report([killed], {}, wall=1.0, pending={"m.py:f: 1 -> 2": "pending"})
    assert not passed
    assert "no longer survive or no longer exist" in text


def test_every_pending_survivor_names_a_mutant_that_exists_and_is_not_also_accepted():
    existing = {
        mutant.name
        for module in TARGETS
        for mutant in mutants((ROOT / module).read_text(encoding="utf-8"), module.removeprefix("django_appdb/"))
    }
    assert set(load_pending()) <= existing
    assert not set(load_pending()) & set(load_accepted())
