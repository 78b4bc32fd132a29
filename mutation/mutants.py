"""The mutants of one module: each a small change to its syntax tree, named so the name survives unrelated edits.

A mutant's name is ``<module>:<function>: <original> -> <mutated>`` (with
``#2``, ``#3``... when the same change occurs more than once in a function),
not a line number, so the list of accepted survivors stays valid when code
above it moves. The operators are deliberately few, the ones whose survival
says a behaviour is untested:

- a comparison negated or moved across its boundary (``==``/``!=``,
  ``is``/``is not``, ``in``/``not in``, ``<``/``<=``, ``>``/``>=``);
- ``and``/``or`` swapped, a ``not`` undone;
- ``True``/``False`` swapped, an integer changed by one (string constants
  are left alone: most are messages or dictionary keys, whose tests are the
  tests of the messages and of the entries, and mutating them would double
  the run's time for little);
- a returned value replaced by ``None``, ``break``/``continue`` swapped;
- ``+``/``-`` swapped.

Type annotations and ``if TYPE_CHECKING:`` blocks are never mutated: they
change nothing at run time.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {ast.Add: ast.Sub, ast.Sub: ast.Add}
_SNIPPET = 70


@dataclass(frozen=True)
class Mutant:
    """One change to one module: its stable name, where it is, and the module's source with it applied."""

    name: str
    line: int
    source: str


def _short(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """Walks a module, recording for every mutable node its enclosing function's name and the changes to try."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        # (qualified scope, node, mutate-in-place, undo) for every candidate change.
        self.found: list[tuple[str, ast.AST, Callable[[], None], Callable[[], None]]] = []
        self._skip: set[int] = set()
        self.statement_swaps: dict[int, ast.stmt] = {}

    def _add(self, node: ast.AST, apply: Callable[[], None], undo: Callable[[], None]) -> None:
        self.found.append((".".join(self.scope) or "<module>", node, apply, undo))

    # Scopes ------------------------------------------------------------------

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self._skip.add(id(body[0].value))  # the docstring
        for decorator in node.decorator_list:
            self.visit(decorator)
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                self.visit(base)
        else:
            self._visit_defaults(node.args)
        for statement in body:
            self.visit(statement)
        self.scope.pop()

    def _visit_defaults(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)

    visit_FunctionDef = _visit_scope
    visit_AsyncFunctionDef = _visit_scope
    visit_ClassDef = _visit_scope

    def visit_Module(self, node: ast.Module) -> None:
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            self._skip.add(id(node.body[0].value))
        self.generic_visit(node)

    # What is never mutated ---------------------------------------------------

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        # A message: its literal parts are not mutated, the values it formats are.
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
            return
        self.generic_visit(node)

    # The operators -----------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                self._add(node, _setter(node.ops, index, swap()), _setter(node.ops, index, op))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        old = node.op
        new: ast.boolop = ast.Or() if isinstance(old, ast.And) else ast.And()
        self._add(node, _attr(node, "op", new), _attr(node, "op", old))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            old = node.op
            self._add(node, _attr(node, "op", swap()), _attr(node, "op", old))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            # `not x` -> `not not x`: the condition inverted, still a bool whatever `x` is.
            old_operand = node.operand
            wrapped = ast.UnaryOp(op=ast.Not(), operand=old_operand)
            self._add(node, _attr(node, "operand", wrapped), _attr(node, "operand", old_operand))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self._skip:
            return
        value = node.value
        new: object
        if isinstance(value, bool):
            new = not value
        elif isinstance(value, int):
            new = value + 1
        else:
            return
        self._add(node, _attr(node, "value", new), _attr(node, "value", value))

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
            none = ast.Constant(value=None)
            self._add(node, _attr(node, "value", none), _attr(node, "value", value))
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        self._add_statement_swap(node, ast.Continue())

    def visit_Continue(self, node: ast.Continue) -> None:
        self._add_statement_swap(node, ast.Break())

    def _add_statement_swap(self, node: ast.stmt, new: ast.stmt) -> None:
        # A statement is replaced in its parent's list of statements: see _swap_statement.
        self._add(node, lambda: None, lambda: None)
        self.statement_swaps[id(node)] = new


def _setter(items: list[ast.cmpop], index: int, value: ast.cmpop) -> Callable[[], None]:
    def apply() -> None:
        items[index] = value

    return apply


def _attr(node: ast.AST, name: str, value: object) -> Callable[[], None]:
    def apply() -> None:
        setattr(node, name, value)

    return apply


def mutants(source: str, module: str) -> Iterator[Mutant]:
    """Every mutant of ``source`` (the text of ``module``, a path used in the names), in source order."""
    tree = ast.parse(source)
    collector = _Collector()
    collector.visit(tree)
    seen: Counter[str] = Counter()
    for scope, node, apply, undo in collector.found:
        before = _short(node)
        swap = collector.statement_swaps.get(id(node))
        if swap is not None:
            assert isinstance(node, ast.stmt)
            text, after = _swap_statement(tree, node, swap), ast.unparse(swap)
        else:
            apply()
            try:
                after = _short(node)
                text = ast.unparse(tree)
            finally:
                undo()
        base = f"{module}:{scope}: {before} -> {after}"
        seen[base] += 1
        name = base if seen[base] == 1 else f"{base} #{seen[base]}"
        yield Mutant(name=name, line=getattr(node, "lineno", 0), source=text)


def _swap_statement(tree: ast.Module, node: ast.stmt, new: ast.stmt) -> str:
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(parent, field, None)
            if isinstance(statements, list) and any(s is node for s in statements):
                index = next(i for i, s in enumerate(statements) if s is node)
                statements[index] = new
                try:
                    return ast.unparse(tree)
                finally:
                    statements[index] = node
    raise LookupError(f"no parent holds the statement at line {node.lineno}")


def unmutated(source: str) -> str:
    """The source as the mutants are written (through :func:`ast.unparse`), with no change: the baseline."""
    return ast.unparse(ast.parse(source))
