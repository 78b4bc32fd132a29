"""``appdb_graph``: the project's apps, aliases, servers, replicas and poolers, as Mermaid and as Graphviz DOT."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pydot
import pytest
from django.apps import apps
from django.core.management import CommandError
from hypothesis import given, strategies as st

from django_appdb import checks, state as state_module
from django_appdb.operations.graphing import Edge, Graph, Node, node_id, project_graph, to_dot, to_mermaid
from django_appdb.state import state

from .conftest import MANAGE, call_output, project_env, run_manage

ROOT = Path(__file__).resolve().parents[2]

# The lines a Mermaid flowchart of appdb_graph may hold, and nothing else. A
# label is quoted and holds no quote; what Mermaid would read in it (HTML, #,
# |, backquotes, %) is an entity code, and <br/> the only tag.
_ID = r"[A-Za-z0-9_]+"
_LABEL = r'[^"]*'
_MERMAID_NODE = re.compile(
    rf'^    (?P<id>{_ID})(?:\("(?P<a>{_LABEL})"\)|\[\("(?P<b>{_LABEL})"\)\]|\[\["(?P<c>{_LABEL})"\]\]|'
    rf'\{{\{{"(?P<d>{_LABEL})"\}}\}})$'
)
_MERMAID_EDGE = re.compile(
    rf'^    (?P<source>{_ID}) (?P<arrow>-->|-\.->|==>)(?:\|"(?P<label>{_LABEL})"\|)? (?P<target>{_ID})$'
)
_MERMAID_CLASSDEF = re.compile(rf"^    classDef {_ID} [\w#:,.\- ]+$")
_MERMAID_CLASS = re.compile(rf"^    class {_ID}(?:,{_ID})* {_ID}$")
_MERMAID_LINKSTYLE = re.compile(r"^    linkStyle (?P<edges>\d+(?:,\d+)*) [\w#:,.\-]+$")


def mermaid_structure(text: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str, str]], set[int]]:
    """Check ``text`` line by line; return its nodes (decoded label lines), edges and red edge positions."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert text.endswith("\n") and not text.endswith("\n\n")
    nodes: dict[str, list[str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    red: set[int] = set()
    for line in lines[1:]:
        if node := _MERMAID_NODE.match(line):
            label = next(group for group in node.group("a", "b", "c", "d") if group is not None)
            assert node["id"] not in nodes, line
            nodes[node["id"]] = [_decoded(part) for part in label.split("<br/>")]
        elif edge := _MERMAID_EDGE.match(line):
            edges.append((edge["source"], edge["arrow"], _decoded(edge["label"] or ""), edge["target"]))
        elif style := _MERMAID_LINKSTYLE.match(line):
            red.update(int(position) for position in style["edges"].split(","))
        else:
            assert _MERMAID_CLASSDEF.match(line) or _MERMAID_CLASS.match(line), line
    for source, _, _, target in edges:
        assert source in nodes and target in nodes, (source, target)
    assert all(position < len(edges) for position in red)
    return nodes, edges, red


def _decoded(label: str) -> str:
    # Nothing Mermaid reads is left but entity codes.
    assert not re.search(r"[<>|`%&]", label), label
    assert not re.search(r"#(?!\d+;)", label), label
    return re.sub(r"#(\d+);", lambda match: chr(int(match.group(1))), label)


def dot_structure(text: str) -> pydot.Dot:
    """Parse ``text`` with pydot (a DOT grammar): one digraph, else fail."""
    with warnings.catch_warnings():
        # pydot 4.0 calls pyparsing's pre-3.0 names, which pyparsing 3.3 deprecates.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pydot")
        warnings.filterwarnings("ignore", message=".* deprecated - use ", category=DeprecationWarning)
        graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, text
    (graph,) = graphs
    assert graph.get_type() == "digraph"
    return graph


def dot_nodes(graph: pydot.Dot) -> list[pydot.Node]:
    """Return the graph's nodes, without its ``node [...]`` and ``edge [...]`` defaults."""
    return [node for node in graph.get_nodes() if node.get_name() not in ("node", "edge")]


def _dot_unquoted(value: str) -> str:
    assert value.startswith('"') and value.endswith('"'), value
    return re.sub(r"\\(.)", lambda match: "\n" if match.group(1) == "n" else match.group(1), value[1:-1])


def _call(*args: str) -> str:
    return call_output("appdb_graph", *args)


def test_every_app_uses_its_alias_and_every_alias_is_on_a_server():
    graph = project_graph()
    app_nodes = [node for node in graph.nodes if node.kind == "app"]
    assert [node.lines for node in app_nodes] == [(config.label,) for config in apps.get_app_configs()]
    uses = {(edge.source, edge.target) for edge in graph.edges if edge.kind == "uses"}
    assert uses == {(node_id("app", label), node_id("db", alias)) for label, alias in state.aliases.items()}
    databases = [node for node in graph.nodes if node.kind in ("database", "replica")]
    assert [node.lines[0] for node in databases][:3] == ["default", "inventory", "orders"]
    on = {edge.source for edge in graph.edges if edge.kind == "on"}
    assert on == {node.id for node in databases}
    assert graph.node("server_sqlite").lines == ("sqlite", "local files")
    # No relation of the test project crosses databases.
    assert [edge for edge in graph.edges if edge.kind == "crosses"] == []


def test_the_same_project_gives_the_same_bytes():
    assert _call() == _call()
    assert _call("--format", "dot") == _call("--format", "dot")


def test_both_formats_draw_the_same_graph():
    graph = project_graph()
    nodes, edges, red = mermaid_structure(to_mermaid(graph))
    assert nodes == {node.id: list(node.lines) for node in graph.nodes}
    assert [(source, target) for source, _, _, target in edges] == [(edge.source, edge.target) for edge in graph.edges]
    assert red == set()
    dot = dot_structure(to_dot(graph))
    assert [_dot_unquoted(node.get_name()) for node in dot_nodes(dot)] == [node.id for node in graph.nodes]
    assert [(_dot_unquoted(e.get_source()), _dot_unquoted(e.get_destination())) for e in dot.get_edges()] == [
        (edge.source, edge.target) for edge in graph.edges
    ]


def test_the_relations_e003_reports_are_red_edges_labelled_with_model_and_field(monkeypatch):
    monkeypatch.setitem(state.aliases, "contenttypes", "orders")
    monkeypatch.setitem(state.routes, "contenttypes", "orders")
    reported = sorted(str(message.obj) for message in checks.check_relations() if message.id == "django_appdb.E003")
    assert reported == ["admin.LogEntry.content_type", "auth.Permission.content_type"]
    graph = project_graph()
    crossing = [edge for edge in graph.edges if edge.kind == "crosses"]
    assert sorted(edge.label for edge in crossing) == [
        "admin.LogEntry.content_type → contenttypes.ContentType",
        "auth.Permission.content_type → contenttypes.ContentType",
    ]
    assert {(edge.source, edge.target) for edge in crossing} == {
        ("app_admin", "app_contenttypes"),
        ("app_auth", "app_contenttypes"),
    }

    _, edges, red = mermaid_structure(to_mermaid(graph))
    assert {edges[position][2] for position in red} == {edge.label for edge in crossing}
    assert all(edges[position][1] == "==>" for position in red)
    assert len(red) == len(crossing)

    dot = dot_structure(to_dot(graph))
    red_dot = [edge for edge in dot.get_edges() if edge.get("color") == "red"]
    assert sorted(_dot_unquoted(edge.get("label")) for edge in red_dot) == sorted(edge.label for edge in crossing)
    assert all(edge.get("color") != "red" for edge in dot.get_edges() if edge not in red_dot)


def test_a_pooler_stands_between_its_alias_and_the_server_reached_directly(monkeypatch):
    direct = {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "db.internal", "PORT": 5432}
    monkeypatch.setattr(
        state_module, "pooler_of", lambda alias: "pgbouncer-transaction" if alias == "orders" else None, raising=False
    )
    monkeypatch.setattr(
        state_module, "direct_settings", lambda alias: direct if alias == "orders" else None, raising=False
    )
    graph = project_graph()
    (pooler,) = [node for node in graph.nodes if node.kind == "pooler"]
    assert pooler.lines[0] == "pgbouncer-transaction"
    server = node_id("server", "postgresql db.internal:5432")
    assert graph.node(server).lines == ("postgresql", "db.internal:5432")
    kinds = {(edge.source, edge.target): edge.kind for edge in graph.edges}
    assert kinds[("db_orders", pooler.id)] == "on"
    assert kinds[(pooler.id, server)] == "pools"
    assert kinds[("db_orders", server)] == "direct"
    mermaid_structure(to_mermaid(graph))
    dot_structure(to_dot(graph))

    # Without a pooler, a direct URL to another server is still drawn; to the same server, it is not.
    monkeypatch.setattr(state_module, "pooler_of", lambda alias: None)
    graph = project_graph()
    assert not [node for node in graph.nodes if node.kind == "pooler"]
    assert [(edge.source, edge.target) for edge in graph.edges if edge.kind == "direct"] == [("db_orders", server)]
    own = state.records["orders"].settings
    monkeypatch.setattr(state_module, "direct_settings", lambda alias: own if alias == "orders" else None)
    assert [edge for edge in project_graph().edges if edge.kind == "direct"] == []


ODD = [
    'we"ird <b>x</b> #35; & | `tick` %% end',
    "back\\slash \\n \\N",
    "line\nbreak\ttab",
    "a]--> b{{c}}",
    "naïve 世界",
]


def test_odd_names_cannot_break_either_format():
    nodes = tuple(Node(node_id(kind, name), kind, (name, name + "!")) for name in ODD for kind in ("app", "database"))
    nodes += (
        Node(node_id("server", ODD[0]), "server", (ODD[0],)),
        Node(node_id("pooler", ODD[3]), "pooler", (ODD[3],)),
    )
    edges = tuple(
        Edge(nodes[i].id, nodes[i + 1].id, kind, ODD[i % len(ODD)])
        for i, kind in enumerate(["crosses", "uses", "direct", "replicates"])
    )
    graph = Graph(nodes, edges)
    shown = {node.id: [" ".join(line.splitlines()) for line in node.lines] for node in nodes}

    found, mermaid_edges, red = mermaid_structure(to_mermaid(graph))
    assert found == shown
    assert [label for _, _, label, _ in mermaid_edges] == [" ".join(edge.label.splitlines()) for edge in edges]
    assert red == {0}

    dot = dot_structure(to_dot(graph))
    labels = {_dot_unquoted(node.get_name()): _dot_unquoted(node.get("label")) for node in dot_nodes(dot)}
    assert labels == {node_id: "\n".join(lines) for node_id, lines in shown.items()}
    assert [_dot_unquoted(edge.get("label")) for edge in dot.get_edges()] == [
        " ".join(edge.label.splitlines()) for edge in edges
    ]


@given(st.text(max_size=20), st.text(max_size=20))
def test_node_ids_are_safe_and_differ_for_different_names(first: str, second: str):
    assert re.fullmatch(r"app_[A-Za-z0-9_]*", node_id("app", first))
    assert (node_id("app", first) == node_id("app", second)) == (first == second)


def test_output_writes_the_file(tmp_path: Path):
    target = tmp_path / "graph.dot"
    assert _call("--format", "dot", "--output", str(target)) == f"Wrote the dot graph to {target}.\n"
    assert target.read_text(encoding="utf-8") == _call("--format", "dot")


def test_an_unwritable_output_is_a_command_error(tmp_path: Path):
    with pytest.raises(CommandError, match=r"Cannot write the graph to .*missing.*graph.mmd: No such file"):
        _call("--output", str(tmp_path / "missing" / "graph.mmd"))


def test_an_unknown_format_lists_the_choices():
    with pytest.raises(CommandError, match=r"invalid choice: 'svg' \(choose from '?mermaid'?, '?dot'?\)"):
        _call("--format", "svg")


@pytest.mark.subprocess
def test_sqlite_and_postgresql_aliases_with_a_replica_and_no_password_shown(sqlite_project, closed_port):
    password = "S3cr3t-p@ss:word"
    encoded = "S3cr3t-p%40ss%3Aword"
    env = sqlite_project(
        ORDERS_DATABASE_URL=f"postgresql://shopper:{encoded}@127.0.0.1:{closed_port}/shop",
        ORDERS_DATABASE_REPLICA_URLS=f"postgresql://shopper:{encoded}@replica.internal/shop",
        NOTES_DATABASE_URL=f"mysql://scribe:{encoded}@127.0.0.1:{closed_port}/notes",
    )
    mermaid = run_manage(env, "appdb_graph")
    dot = run_manage(env, "appdb_graph", "--format", "dot")
    for output in (mermaid.stdout, mermaid.stderr, dot.stdout, dot.stderr):
        for secret in (password, encoded, "shopper", "scribe"):
            assert secret not in output

    nodes, edges, _ = mermaid_structure(mermaid.stdout)
    primary = f"postgresql 127.0.0.1:{closed_port}"
    assert nodes[node_id("server", primary)] == ["postgresql", f"127.0.0.1:{closed_port}"]
    assert nodes[node_id("server", "postgresql replica.internal:5432")] == ["postgresql", "replica.internal:5432"]
    assert nodes[node_id("server", f"mysql 127.0.0.1:{closed_port}")] == ["mysql", f"127.0.0.1:{closed_port}"]
    assert nodes["db_orders"] == ["orders", "shop"]
    assert nodes["db_orders_5f_replica_5f_1"] == ["orders_replica_1", "shop"]
    assert nodes["db_inventory"][0] == "inventory" and nodes["db_inventory"][1].endswith("inventory.sqlite3")
    links = {(source, target): (arrow, label) for source, arrow, label, target in edges}
    assert links[("db_orders_5f_replica_5f_1", "db_orders")] == ("-.->", "replica of")
    assert links[("db_orders", node_id("server", primary))] == ("-->", "")
    assert links[("db_inventory", "server_sqlite")] == ("-->", "")
    assert links[("app_notes", "db_notes")] == ("-->", "")
    assert "    class db_orders_5f_replica_5f_1 replica" in mermaid.stdout.splitlines()

    graph = dot_structure(dot.stdout)
    styles = {
        (_dot_unquoted(e.get_source()), _dot_unquoted(e.get_destination())): e.get("style") for e in graph.get_edges()
    }
    assert styles[("db_orders_5f_replica_5f_1", "db_orders")] == "dashed"


@pytest.mark.subprocess
def test_a_project_whose_checks_fail_is_drawn_with_its_red_edges(sqlite_project, tmp_path: Path):
    env = sqlite_project(AUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    run_manage(env, "check", returncode=1)
    result = run_manage(env, "appdb_graph", "--format", "dot")
    red = [edge for edge in dot_structure(result.stdout).get_edges() if edge.get("color") == "red"]
    assert sorted(_dot_unquoted(edge.get("label")) for edge in red) == [
        "admin.LogEntry.user → auth.User",
        "auth.Permission.content_type → contenttypes.ContentType",
        "catalog.Product.created_by → auth.User",
    ]


ODD_SETTINGS = """
from testproject.settings import *

DATABASES = {
    **DATABASES,
    'odd "alias" <b>#1</b> | end': {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": 'name with "quotes" and \\\\ and %% and `ticks`',
        "HOST": 'h"ost]-->x',
        "PORT": "5432",
        "PASSWORD": "pw-Secret",
    },
}
"""


@pytest.mark.subprocess
def test_an_alias_name_and_host_with_odd_characters_keep_both_formats_valid(sqlite_project, tmp_path: Path):
    (tmp_path / "odd_settings.py").write_text(textwrap.dedent(ODD_SETTINGS))
    env = sqlite_project(tmp_path, DJANGO_SETTINGS_MODULE="odd_settings")
    mermaid = run_manage(env, "appdb_graph").stdout
    dot = run_manage(env, "appdb_graph", "--format", "dot").stdout
    assert "pw-Secret" not in mermaid + dot
    alias = 'odd "alias" <b>#1</b> | end'
    nodes, _, _ = mermaid_structure(mermaid)
    assert nodes[node_id("db", alias)] == [alias, 'name with "quotes" and \\ and %% and `ticks`']
    assert nodes[node_id("server", 'postgresql h"ost]-->x:5432')] == ["postgresql", 'h"ost]-->x:5432']
    labels = {_dot_unquoted(n.get_name()): _dot_unquoted(n.get("label")) for n in dot_nodes(dot_structure(dot))}
    assert labels[node_id("db", alias)] == f'{alias}\nname with "quotes" and \\ and %% and `ticks`'


def _documented(heading: str) -> tuple[str, dict[str, str], str]:
    """Return the command, its environment and the Mermaid block under ``heading`` in docs/deployment.md."""
    page = (ROOT / "docs" / "deployment.md").read_text()
    section = page.split(heading, 1)[1].split("\n#", 1)[0]
    command = re.search(r"^\$ (.*appdb_graph.*)$", section, re.M)
    block = re.search(r"^```\{mermaid\}\n(.*?)^```$", section, re.M | re.S)
    assert command and block, heading
    *assignments, _python, _manage, _name = command.group(1).split()
    variables = dict(assignment.split("=", 1) for assignment in assignments)
    return command.group(1), variables, block.group(1)


@pytest.mark.subprocess
@pytest.mark.parametrize("heading", ["### The test project", "### A relation across databases"])
def test_the_pictures_in_the_deployment_page_are_the_commands_output(heading: str):
    command, variables, block = _documented(heading)
    # From testproject/, as the page says: its SQLite files are shown relative to there.
    result = subprocess.run(
        [sys.executable, str(MANAGE), "appdb_graph"],
        env=project_env(**variables),
        cwd=MANAGE.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert block == result.stdout, f"run `{command}` in testproject/ and paste its output into docs/deployment.md"


MERMAID_DIR = os.environ.get("APPDB_TEST_MERMAID_DIR", "").strip()


@pytest.mark.skipif(not MERMAID_DIR, reason="APPDB_TEST_MERMAID_DIR is not set (npm ci --prefix tests/mermaid)")
def test_mermaid_itself_parses_the_output(monkeypatch):
    """Mermaid's own parser (tests/mermaid, run by node) accepts the test project, red edges and odd names."""
    script = Path(MERMAID_DIR) / "parse.mjs"
    if not script.is_file():
        pytest.fail(f"APPDB_TEST_MERMAID_DIR is set, but {script} does not exist")
    plain = to_mermaid(project_graph())
    monkeypatch.setitem(state.aliases, "contenttypes", "orders")
    monkeypatch.setitem(state.routes, "contenttypes", "orders")
    crossing = to_mermaid(project_graph())
    assert "linkStyle" in crossing
    nodes = tuple(Node(node_id(kind, name), kind, (name, name)) for name in ODD for kind in _ALL_KINDS)
    edges = tuple(Edge(nodes[i].id, nodes[i + 1].id, kind, ODD[i % len(ODD)]) for i, kind in enumerate(_EDGE_KINDS))
    odd = to_mermaid(Graph(nodes, edges))
    for text in (plain, crossing, odd):
        result = subprocess.run(
            ["node", str(script)], input=text, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{text}"
        assert result.stdout.strip() == "flowchart-v2"
    broken = subprocess.run(
        ["node", str(script)],
        input='flowchart LR\n    a["x" --> b\n',
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert broken.returncode == 1 and "Parse error" in broken.stdout


_ALL_KINDS = ("app", "database", "replica", "server", "pooler")
_EDGE_KINDS = ("crosses", "uses", "on", "pools", "direct", "replicates") * 2
