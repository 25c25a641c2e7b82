"""The platforms' dependency graphs as Mermaid or Graphviz text. Arrows point from a template
to the templates that read it, i.e. in deploy order."""

from __future__ import annotations

from .platform import Platform

GRAPH_FORMATS = ("mermaid", "dot")


def _node(platform: Platform, template: str) -> str:
    return f"{platform.name}/{template}"


def mermaid(platforms: list[Platform]) -> str:
    lines = ["flowchart LR"]
    for p in platforms:
        ids = {t.name: f"{p.name}__{t.name}".replace("-", "_") for t in p.templates}
        lines.append(f'  subgraph {p.name.replace("-", "_")}["{p.name} ({p.cloud})"]')
        for name in p.deploy_order():
            lines.append(f'    {ids[name]}["{name}<br/>{p[name].kind}"]')
        lines.append("  end")
        for name, deps in p.edges().items():
            lines += [f"  {ids[dep]} --> {ids[name]}" for dep in deps]
    return "\n".join(lines) + "\n"


def dot(platforms: list[Platform]) -> str:
    lines = ["digraph mlops {", "  rankdir=LR;", "  node [shape=box];"]
    for p in platforms:
        lines.append(f'  subgraph "cluster_{p.name}" {{')
        lines.append(f'    label="{p.name} ({p.cloud})";')
        for name in p.deploy_order():
            lines.append(f'    "{_node(p, name)}" [label="{name}\\n{p[name].kind}"];')
        lines.append("  }")
        for name, deps in p.edges().items():
            lines += [f'  "{_node(p, dep)}" -> "{_node(p, name)}";' for dep in deps]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(platforms: list[Platform], fmt: str) -> str:
    return mermaid(platforms) if fmt == "mermaid" else dot(platforms)
