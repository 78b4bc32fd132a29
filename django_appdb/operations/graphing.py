"""A picture of the project's databases (``appdb_graph``): a graph of them, written as Mermaid or Graphviz DOT.

The graph has a node for every installed app, every alias of ``DATABASES``
(the database it names; replicas apart), every server the aliases reach and
every connection pooler in front of one. Its edges say which alias each app
uses, which server (or pooler) each alias is on, which primary each replica
copies, and which relations between models cross two databases (the ones
``django_appdb.E003`` reports, found by :mod:`django_appdb.relations`).

What it shows is safe to paste anywhere: no URL is drawn, so neither
passwords nor user names appear (a server is its vendor, host and port; a
database its alias and name), and every label still goes through
:func:`~django_appdb.dburls.mask_text`. Nothing here connects. The same
project gives the same bytes: apps come in ``INSTALLED_APPS`` order,
aliases in ``DATABASES`` order (``default`` first), servers sorted, and node
ids are derived from names alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from django_appdb import state as state_module
from django_appdb.backends import vendor_of
from django_appdb.conf import conf
from django_appdb.dburls import builtin_vendor, is_file_engine, mask_text, sqlite_path
from django_appdb.operations.listing import list_app_databases
from django_appdb.relations import crossing_relations
from django_appdb.state import state

__all__ = ["FORMATS", "Edge", "Graph", "Node", "project_graph", "to_dot", "to_mermaid"]

_DEFAULT_PORTS = {"postgresql": "5432", "mysql": "3306", "oracle": "1521"}


@dataclass(frozen=True)
class Node:
    """One box of the picture."""

    #: ``[A-Za-z0-9_]`` only, the same for the same name in every run.
    id: str
    #: ``"app"``, ``"database"``, ``"replica"``, ``"server"`` or ``"pooler"``.
    kind: str
    #: The label, a line each, as shown (before each format's escaping).
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Edge:
    """One arrow of the picture, from :attr:`source` to :attr:`target` (node ids)."""

    source: str
    target: str
    #: ``"uses"`` (app to alias), ``"on"`` (alias to server or pooler),
    #: ``"pools"`` (pooler to server), ``"direct"`` (alias to the server it
    #: migrates on, past its pooler), ``"replicates"`` (replica to primary)
    #: or ``"crosses"`` (a relation across databases, from the app declaring
    #: it to the app of the model it reaches: drawn in red).
    kind: str
    label: str = ""


@dataclass(frozen=True)
class Graph:
    """The project's apps, databases, servers and poolers, and how they connect."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        """Return the node with id ``node_id`` (``KeyError`` if there is none)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def node_id(prefix: str, name: str) -> str:
    """Return an id for ``name`` made of ``[A-Za-z0-9_]`` only, different for every different name.

    Letters and digits stay; every other character becomes ``_`` and its
    code point in hex, then ``_`` (``_`` itself is ``_5f_``). The prefix keeps
    ids off every format's keywords (Mermaid's ``end``, DOT's ``node``).
    """
    encoded = "".join(char if char.isascii() and char.isalnum() else f"_{ord(char):x}_" for char in name)
    return f"{prefix}_{encoded}"


def _shown(text: object) -> str:
    # A label is one line of printable text: control characters are written
    # as repr() writes them, and any URL's password is masked.
    return mask_text("".join(char if char.isprintable() else repr(char)[1:-1] for char in str(text)))


def _pooler(alias: str) -> str | None:
    """Return the connection pooler in front of ``alias`` (``"pgbouncer-transaction"``...), or None."""
    return state_module.pooler_of(alias)


def _direct_settings(alias: str) -> Mapping[str, Any] | None:
    """Return the ``DATABASES`` entry of ``alias``'s direct connection (past its pooler), or None."""
    return state_module.direct_settings(alias)


@dataclass
class _Builder:
    """Collects the nodes and edges; a node added twice is kept once, where it first came."""

    base: Path | None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, kind: str, label: str = "") -> None:
        edge = Edge(source, target, kind, _shown(label) if label else "")
        if edge not in self.edges:
            self.edges.append(edge)

    def database(self, alias: str, settings_dict: Mapping[str, Any]) -> str:
        kind = "replica" if alias in state.primaries else "database"
        lines = (_shown(alias), self._name(settings_dict))
        return self.add(Node(node_id("db", alias), kind, tuple(line for line in lines if line)))

    def _name(self, settings_dict: Mapping[str, Any]) -> str:
        path = sqlite_path(settings_dict)
        if path is not None and self.base is not None and path.is_relative_to(self.base):
            return _shown(path.relative_to(self.base).as_posix())
        return _shown(path if path is not None else settings_dict.get("NAME") or "")

    def server(self, vendor: str, settings_dict: Mapping[str, Any]) -> str:
        if is_file_engine(str(settings_dict.get("ENGINE") or "")):
            return self.add(Node(node_id("server", vendor), "server", (_shown(vendor), "local files")))
        where = _host_port(vendor, settings_dict)
        return self.add(Node(node_id("server", f"{vendor} {where}"), "server", (_shown(vendor), where)))

    def pooler(self, kind: str, vendor: str, settings_dict: Mapping[str, Any]) -> str:
        where = _host_port(vendor, settings_dict)
        return self.add(Node(node_id("pooler", where), "pooler", (_shown(kind), where)))


def _host_port(vendor: str, settings_dict: Mapping[str, Any]) -> str:
    """Return a server's ``host:port`` as shown (a socket directory alone), from a ``DATABASES`` entry."""
    host = str(settings_dict.get("HOST") or "").strip().lower() or "local socket"
    port = str(settings_dict.get("PORT") or _DEFAULT_PORTS.get(vendor, ""))
    where = f"[{host}]" if ":" in host else host
    return _shown(f"{where}:{port}" if port and not host.startswith("/") else where)


def _ordered_aliases(databases: Mapping[str, Any]) -> list[str]:
    """Return every alias: the apps' in ``databases_by_alias`` order, the others in ``DATABASES`` order.

    Each primary's replicas follow it.
    """
    used = [alias for alias in state_module.databases_by_alias() if alias in databases]
    rest = [alias for alias in databases if alias not in used and alias not in state.primaries]
    ordered: list[str] = []
    for alias in sorted(used + rest, key=lambda alias: alias != DEFAULT_DB_ALIAS):
        if alias in ordered:
            continue
        ordered.append(alias)
        ordered.extend(replica for replica in state.replicas.get(alias, ()) if replica in databases)
    ordered.extend(alias for alias in databases if alias not in ordered)
    return ordered


def project_graph(base: Path | None = None) -> Graph:
    """Return the graph of this project's apps, databases, servers, replicas and poolers.

    SQLite files under ``base`` (the current directory, for the command)
    are shown relative to it. Opens no connection. The edges come by kind:
    apps to aliases, aliases to servers and poolers, replicas to primaries,
    then the relations across databases.
    """
    builder = _Builder(base.resolve() if base is not None else None)
    rows = list_app_databases()
    apps = {row.label: builder.add(Node(node_id("app", row.label), "app", (_shown(row.label),))) for row in rows}
    for row in rows:
        builder.link(apps[row.label], node_id("db", row.alias), "uses")
    databases = conf.DATABASES
    replicas: list[tuple[str, str]] = []
    for alias in _ordered_aliases(databases):
        settings_dict = databases[alias]
        database = builder.database(alias, settings_dict)
        vendor, pooler, direct = vendor_of(alias), _pooler(alias), _direct_settings(alias)
        on = builder.server(vendor, settings_dict) if pooler is None else builder.pooler(pooler, vendor, settings_dict)
        builder.link(database, on, "on")
        if direct is not None:
            engine = str(direct.get("ENGINE") or "")
            server = builder.server(builtin_vendor(engine) or engine.rsplit(".", 1)[-1] or vendor, direct)
            if pooler is not None:
                builder.link(on, server, "pools")
            if server != on:
                builder.link(database, server, "direct", "direct (migrations)")
        primary = state.primaries.get(alias)
        if primary is not None and primary in databases:
            replicas.append((database, node_id("db", primary)))
    for replica, primary_node in replicas:
        builder.link(replica, primary_node, "replicates", "replica of")
    for relation in crossing_relations():
        other = relation.elsewhere[0]
        source, target = apps.get(relation.model._meta.app_label), apps.get(other._meta.app_label)
        if source is not None and target is not None:
            builder.link(source, target, "crosses", f"{relation.name} → {other._meta.label}")
    kinds = ("app", "database", "replica", "pooler", "server")
    # Servers and poolers sorted by id, so that the order of DATABASES does not reorder them.
    nodes = sorted(
        builder.nodes.values(),
        key=lambda node: (kinds.index(node.kind), node.id if node.kind in ("pooler", "server") else ""),
    )
    return Graph(tuple(nodes), tuple(builder.edges))


# --- Mermaid ---------------------------------------------------------------

_MERMAID_SHAPES = {
    "app": ('("', '")'),
    "database": ('[("', '")]'),
    "replica": ('[("', '")]'),
    "server": ('[["', '"]]'),
    "pooler": ('{{"', '"}}'),
}
_MERMAID_ARROWS = {
    "uses": "-->",
    "on": "-->",
    "pools": "-->",
    "direct": "-.->",
    "replicates": "-.->",
    "crosses": "==>",
}
_MERMAID_CLASSES = {
    "app": "fill:#eef4ff,stroke:#4a6fa5",
    "database": "fill:#fff7e6,stroke:#b7791f",
    "replica": "fill:#fffdf5,stroke:#b7791f,stroke-dasharray:4 3",
    "server": "fill:#f2f2f2,stroke:#555",
    "pooler": "fill:#eefaf0,stroke:#2f855a",
}
# Mermaid reads these inside a quoted label (quotes, HTML, its own entity
# codes, a Markdown string, an edge label's end): each is written as Mermaid's
# decimal entity code, ``#35;`` for ``#`` and so on. ``#`` goes first.
_MERMAID_ESCAPES = {char: f"#{ord(char)};" for char in '#"&<>`|%'}


def mermaid_text(text: str) -> str:
    """Return ``text`` safe inside a quoted Mermaid label: one line, every special character an entity code."""
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in " ".join(text.splitlines()))


def to_mermaid(graph: Graph) -> str:
    """Return ``graph`` as a Mermaid ``flowchart``; cross-database relations drawn in red by ``linkStyle``."""
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        label = "<br/>".join(mermaid_text(line) for line in node.lines)
        lines.append(f"    {node.id}{opening}{label}{closing}")
    red = []
    for position, edge in enumerate(graph.edges):
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {_MERMAID_ARROWS[edge.kind]}{label} {edge.target}")
        if edge.kind == "crosses":
            red.append(str(position))
    for kind, style in _MERMAID_CLASSES.items():
        members = [node.id for node in graph.nodes if node.kind == kind]
        if members:
            lines.append(f"    classDef {kind} {style}")
            lines.append(f"    class {','.join(members)} {kind}")
    if red:
        lines.append(f"    linkStyle {','.join(red)} stroke:#d00,stroke-width:2px,color:#d00")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ----------------------------------------------------------

_DOT_NODES = {
    "app": 'shape=box, style="rounded,filled", fillcolor="#eef4ff", color="#4a6fa5"',
    "database": 'shape=cylinder, style=filled, fillcolor="#fff7e6", color="#b7791f"',
    "replica": 'shape=cylinder, style="filled,dashed", fillcolor="#fffdf5", color="#b7791f"',
    "server": 'shape=box3d, style=filled, fillcolor="#f2f2f2", color="#555555"',
    "pooler": 'shape=hexagon, style=filled, fillcolor="#eefaf0", color="#2f855a"',
}
_DOT_EDGES = {
    "uses": "",
    "on": "",
    "pools": "",
    "direct": "style=dashed",
    "replicates": "style=dashed",
    "crosses": "color=red, fontcolor=red, penwidth=2",
}


def dot_string(text: str) -> str:
    """Return ``text`` as a double-quoted DOT string that shows it as written (one line)."""
    # Backslashes first: DOT reads \n, \l, \N... in labels as escapes.
    escaped = " ".join(text.splitlines()).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def to_dot(graph: Graph) -> str:
    """Return ``graph`` as a Graphviz ``digraph``; cross-database relations drawn with ``color=red``."""
    lines = [
        "digraph appdb {",
        "    rankdir=LR;",
        '    node [fontname="Helvetica"];',
        '    edge [fontname="Helvetica"];',
    ]
    for node in graph.nodes:
        # Each line escaped on its own, then joined by DOT's own line break.
        label = "\\n".join(dot_string(line)[1:-1] for line in node.lines)
        lines.append(f'    {dot_string(node.id)} [label="{label}", {_DOT_NODES[node.kind]}];')
    for edge in graph.edges:
        attributes = [
            part for part in (f"label={dot_string(edge.label)}" if edge.label else "", _DOT_EDGES[edge.kind]) if part
        ]
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {dot_string(edge.source)} -> {dot_string(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


#: The formats ``appdb_graph --format`` writes, the first the default.
FORMATS: dict[str, Callable[[Graph], str]] = {"mermaid": to_mermaid, "dot": to_dot}
