"""Mutation testing of the routing, discovery, merge, masking and replica modules.

``python -m mutation`` (or ``nox -s mutation``) changes one small thing at a
time in a module (a comparison, a boolean operator, a constant, a returned
value), runs the test files that exercise that module against the changed
copy, and counts the mutants the tests kill. A mutant that survives and is not
in ``mutation/accepted.txt`` fails the run. See ``docs/mutation.md``.
"""
