"""`wfctl graph` end to end: Mermaid parsed structurally, DOT fed to Graphviz, the tree, and
each workflow's own compiled LangGraph graph.

What the drawing must show is derived from the workflow YAML itself (steps, dependencies,
conditional branches, parallel and loop containers, handlers), for tests/data/run/graph.yaml
(every shape, unnamed branches) and for every example in workflows/. All invocations are
real `python -m wfctl graph` subprocesses (started together by the `drawn` fixture) with a
temporary working directory.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import ANSI, DATA, ROOT, clean_env

from wfctl.validate._depends import depends_refs

EXAMPLES = sorted((ROOT / "workflows").glob("*.yaml"))
GRAPH_DEMO = DATA / "graph.yaml"
WORKFLOWS = [GRAPH_DEMO, *EXAMPLES]
IDS = [p.stem for p in WORKFLOWS]
# the terminal tree is drawn for the workflows with branches, containers and handlers
TREES = [
    GRAPH_DEMO,
    *(p for p in EXAMPLES if p.stem in ("approval-flow", "release", "retry-rollback")),
]
TIMEOUT = 60


# -- what the YAML says --------------------------------------------------------------------


@dataclass
class StepInfo:
    step_id: str
    step_type: str
    container: str | None
    dependencies: list[str]
    branches: list[tuple[str, list[str]]]  # (label the graph should show, next_steps)
    conditions: list[str]  # the `when` texts of the branches, "else" for the last one
    handlers: list[tuple[str, str]]  # (handler step, "rollback" | "on error")


def workflow_steps(path: Path) -> dict[str, StepInfo]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[str, StepInfo] = {}

    def walk(steps: list[dict[str, Any]], container: str | None) -> None:
        for s in steps:
            branches = []
            conditions = []
            for b in s.get("conditions") or ():
                when = b.get("when")
                conditions.append(when if when is not None else "else")
                branches.append((b.get("name") or when or "else", list(b["next_steps"])))
            handlers = [(h, "rollback") for h in s.get("rollback_actions") or ()]
            handlers += [(h, "on error") for h in s.get("error_handlers") or ()]
            found[s["step_id"]] = StepInfo(
                s["step_id"],
                s.get("step_type", "action"),
                container,
                # The steps a `depends` expression names are dependencies too.
                [*(s.get("dependencies") or ()), *depends_refs(s.get("depends"))],
                branches,
                conditions,
                handlers,
            )
            walk(s.get("parallel_steps") or [], s["step_id"])

    walk(doc["steps"], None)
    return found


# -- Mermaid, parsed -----------------------------------------------------------------------

M_HEADER = re.compile(r"^(flowchart|graph) (TD|TB|LR|RL|BT)\s*;?$")
M_NODE = re.compile(
    r"^(?P<id>[A-Za-z_]\w*)\s*"
    r"(?P<open>\[/|\[\\|\(\[|\[\(|\[\[|\(\(|\{\{|\[|\(|\{|>)"
    r'"(?P<label>[^"]*)"'
    r"(?P<close>/\]|\\\]|\]\)|\)\]|\]\]|\)\)|\}\}|\]|\)|\})$"
)
M_SUBGRAPH = re.compile(r'^subgraph (?P<id>[A-Za-z_]\w*)\s*\["(?P<label>[^"]*)"\]$')
M_EDGE = re.compile(
    r'^(?P<src>[A-Za-z_]\w*)\s*(?P<arrow>-->|-\.->|==>)\s*(?:\|"(?P<label>[^"]*)"\|\s*)?'
    r"(?P<dst>[A-Za-z_]\w*)$"
)


def unescape(label: str) -> str:
    return label.replace("#quot;", '"').replace("<br/>", "\n")


@dataclass
class Mermaid:
    direction: str = ""
    nodes: dict[str, str] = field(default_factory=dict)  # node id -> label
    subgraphs: dict[str, str] = field(default_factory=dict)  # subgraph id -> label
    parent: dict[str, str | None] = field(default_factory=dict)  # node/subgraph -> subgraph
    edges: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def node_of(self, step_id: str) -> str:
        """The node (or subgraph, for a parallel step or a call) that stands for a step."""
        hits = [n for n, label in self.nodes.items() if label.split("\n")[0] == step_id]
        hits += [g for g, label in self.subgraphs.items() if label == f"{step_id} (parallel)"]
        # A sub-workflow call is the box around its child's steps.
        hits += [g for g, label in self.subgraphs.items() if label.startswith(f"{step_id} (uses ")]
        assert len(hits) == 1, f"{step_id}: {len(hits)} nodes in {self}"
        return hits[0]

    def edge(self, src: str, dst: str) -> tuple[str, str, str, str | None]:
        hits = [e for e in self.edges if e[0] == src and e[1] == dst]
        assert len(hits) == 1, f"expected one edge {src} -> {dst}, got {hits}"
        return hits[0]


def parse_mermaid(text: str) -> Mermaid:
    """Every line must be a header, node, subgraph, `end` or edge: no stray text."""
    graph = Mermaid()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    m = M_HEADER.match(lines[0])
    assert m, f"not a Mermaid flowchart: {lines[0]!r}"
    graph.direction = m[2]
    stack: list[str] = []
    for line in lines[1:]:
        if line == "end":
            assert stack, "`end` without a subgraph"
            stack.pop()
        elif m := M_SUBGRAPH.match(line):
            assert m["id"] not in graph.subgraphs and m["id"] not in graph.nodes, line
            graph.subgraphs[m["id"]] = unescape(m["label"])
            graph.parent[m["id"]] = stack[-1] if stack else None
            stack.append(m["id"])
        elif m := M_EDGE.match(line):
            label = unescape(m["label"]) if m["label"] is not None else None
            graph.edges.append((m["src"], m["dst"], m["arrow"], label))
        elif m := M_NODE.match(line):
            assert m["id"] not in graph.nodes, f"node declared twice: {line}"
            graph.nodes[m["id"]] = unescape(m["label"])
            graph.parent[m["id"]] = stack[-1] if stack else None
        else:
            raise AssertionError(f"unparsable Mermaid line: {line!r}")
    assert not stack, f"unclosed subgraphs: {stack}"
    known = set(graph.nodes) | set(graph.subgraphs)
    for src, dst, _, _ in graph.edges:
        assert src in known and dst in known, f"edge to an undeclared node: {src} -> {dst}"
    return graph


# -- the invocations -----------------------------------------------------------------------


@dataclass
class Out:
    rc: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Out]:
    """(workflow stem, format) -> output, for mermaid / dot / tree / langgraph."""
    cwd = tmp_path_factory.mktemp("graph")
    jobs: dict[tuple[str, str], list[str]] = {}
    for path in WORKFLOWS:
        for fmt in ("mermaid", "dot", "tree") if path in TREES else ("mermaid", "dot"):
            jobs[(path.stem, fmt)] = ["graph", str(path), "--format", fmt]
    jobs[("default", "mermaid")] = ["graph", str(GRAPH_DEMO)]
    for stem in ("release", "data-pipeline", "research-agent"):
        jobs[(stem, "langgraph")] = [
            "graph",
            str(ROOT / "workflows" / f"{stem}.yaml"),
            "--langgraph",
        ]
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", "wfctl", *args],
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, args in jobs.items()
    }
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=TIMEOUT)
        results[key] = Out(proc.returncode, out, err)
    return results


def ok(out: Out) -> str:
    assert out.rc == 0, out
    assert out.stderr == "", out
    assert not ANSI.search(out.stdout), "escape codes in a pipe"
    return out.stdout


# -- Mermaid -------------------------------------------------------------------------------


def test_mermaid_is_the_default_format(drawn: dict[tuple[str, str], Out]) -> None:
    assert ok(drawn[("default", "mermaid")]) == ok(drawn[("graph", "mermaid")])


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_mermaid_has_every_step_and_dependency(
    drawn: dict[tuple[str, str], Out], path: Path
) -> None:
    graph = parse_mermaid(ok(drawn[(path.stem, "mermaid")]))
    steps = workflow_steps(path)
    for step in steps.values():
        graph.node_of(step.step_id)  # exactly one node each
    for step in steps.values():
        dst = graph.node_of(step.step_id)
        for dep in step.dependencies:
            _, _, arrow, _ = graph.edge(graph.node_of(dep), dst)
            assert arrow == "-->"
        for label, targets in step.branches:
            for target in targets:
                _, _, arrow, shown = graph.edge(graph.node_of(step.step_id), graph.node_of(target))
                assert arrow == "-->" and shown == label, (step.step_id, target, shown)
        for handler, purpose in step.handlers:
            _, _, arrow, shown = graph.edge(dst, graph.node_of(handler))
            assert arrow == "-.->" and shown == purpose
    # nothing but those edges (a branch target that also lists the conditional: one edge)
    wanted = {(d, s.step_id) for s in steps.values() for d in s.dependencies}
    wanted |= {(s.step_id, t) for s in steps.values() for _, ts in s.branches for t in ts}
    wanted |= {(s.step_id, h) for s in steps.values() for h, _ in s.handlers}
    # (A sub-workflow call's box holds its child's own edges: drawn from the child file.)
    calls = {g for g, label in graph.subgraphs.items() if " (uses " in label}
    own = [e for e in graph.edges if not calls & {graph.parent.get(e[0]), graph.parent.get(e[1])}]
    assert len(own) == len(wanted), graph.edges


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_mermaid_containers_are_subgraphs(drawn: dict[tuple[str, str], Out], path: Path) -> None:
    graph = parse_mermaid(ok(drawn[(path.stem, "mermaid")]))
    steps = workflow_steps(path)
    for step in steps.values():
        node = graph.node_of(step.step_id)
        if step.step_type == "parallel":
            assert node in graph.subgraphs, f"{step.step_id} should be a subgraph"
        if step.step_type == "loop":
            assert graph.parent[node] in graph.subgraphs, f"{step.step_id}: loop not boxed"
        if step.container is not None:
            assert graph.parent[node] == graph.node_of(step.container), (
                f"{step.step_id} is not drawn inside {step.container}"
            )
        elif step.step_type != "loop":
            assert graph.parent[node] is None, f"{step.step_id} drawn inside a container"


def test_mermaid_graph_demo_shapes_and_condition_labels(
    drawn: dict[tuple[str, str], Out],
) -> None:
    graph = parse_mermaid(ok(drawn[("graph", "mermaid")]))
    decide = graph.node_of("decide")
    labels = {
        graph.nodes[dst].split("\n")[0]: label
        for src, dst, _, label in graph.edges
        if src == decide
    }
    assert labels == {
        "big-path": 'inputs.size > 10 and inputs.mode == "big"',
        "medium_path": "inputs.mode | length > 3",
        "small_path": "else",
    }
    fan, inner = graph.node_of("fan"), graph.node_of("inner")
    assert graph.parent[inner] == fan, "nested parallel inside its parent"
    assert graph.parent[graph.node_of("q1")] == inner
    loop_box = graph.parent[graph.node_of("poll")]
    assert "loop.index < 3" in graph.subgraphs[loop_box] and "5" in graph.subgraphs[loop_box]
    assert "human approval" in graph.nodes[graph.node_of("gate")]
    # the internal edge q1 -> q2 is inside `inner`; fan -> poll leaves the container
    graph.edge(graph.node_of("q1"), graph.node_of("q2"))
    graph.edge(fan, graph.node_of("poll"))


def test_mermaid_named_branches_show_their_name(drawn: dict[tuple[str, str], Out]) -> None:
    """approval-flow names its branches: the name is the label (the schema says so)."""
    graph = parse_mermaid(ok(drawn[("approval-flow", "mermaid")]))
    route = graph.node_of("route")
    shown = {label for src, _, _, label in graph.edges if src == route}
    assert shown == {"high risk", "low risk (else)"}


# -- DOT -----------------------------------------------------------------------------------

DOT_EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*->\s*("(?:[^"\\]|\\.)*")\s*(\[[^\]]*\])?;$', re.M)


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_dot_edges_match_the_dependencies(drawn: dict[tuple[str, str], Out], path: Path) -> None:
    text = ok(drawn[(path.stem, "dot")])
    assert text.lstrip().startswith("digraph ")
    assert text.count("{") == text.count("}")
    edges = {(a.strip('"'), b.strip('"')) for a, b, _ in DOT_EDGE.findall(text)}
    for step in workflow_steps(path).values():
        assert f'"{step.step_id}"' in text
        for dep in step.dependencies:
            assert (dep, step.step_id) in edges, (dep, step.step_id)
        for _, targets in step.branches:
            for target in targets:
                assert (step.step_id, target) in edges


@pytest.fixture(scope="module")
def graphviz() -> str:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz `dot` is not installed")
    return dot


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_dot_is_accepted_by_graphviz(
    drawn: dict[tuple[str, str], Out], path: Path, graphviz: str
) -> None:
    text = ok(drawn[(path.stem, "dot")])
    proc = subprocess.run(
        [graphviz, "-Tsvg"], input=text, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"Graphviz warnings:\n{proc.stderr}"
    assert "<svg" in proc.stdout
    titles = {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", proc.stdout)}
    for step_id in workflow_steps(path):
        assert step_id in titles, f"{step_id} is not a node of the SVG"


# -- tree ----------------------------------------------------------------------------------


def tree_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        yield line.lstrip("│├└─ ")


@pytest.mark.parametrize("path", TREES, ids=[p.stem for p in TREES])
def test_tree_lists_every_step(drawn: dict[tuple[str, str], Out], path: Path) -> None:
    text = ok(drawn[(path.stem, "tree")])
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = list(tree_lines(text))
    assert lines[0] == f"{doc['name']} ({doc['workflow_id']})"
    steps = workflow_steps(path)
    handlers = {h for s in steps.values() for h, _ in s.handlers}
    for step_id in steps:
        pattern = re.compile(rf"{re.escape(step_id)}( ·|$| \(see above\))")
        drawn_at = [ln for ln in lines if pattern.match(ln)]
        assert drawn_at, f"{step_id} missing from the tree:\n{text}"
        full = [ln for ln in drawn_at if "(see above)" not in ln]
        assert len(full) == 1, f"{step_id} drawn {len(full)} times:\n{text}"
    if handlers:
        assert any(ln.startswith("handlers") for ln in lines)


def test_tree_shows_branch_conditions(drawn: dict[tuple[str, str], Out]) -> None:
    lines = list(tree_lines(ok(drawn[("graph", "tree")])))
    assert any(
        ln.startswith("big-path") and 'if inputs.size > 10 and inputs.mode == "big"' in ln
        for ln in lines
    )
    assert any(ln.startswith("medium_path") and "if inputs.mode | length > 3" in ln for ln in lines)


# -- LangGraph -----------------------------------------------------------------------------


def _langgraph_edges(text: str) -> tuple[str, set[tuple[str, str]]]:
    body = text.split("---")[-1] if text.startswith("---") else text
    first = next(ln.strip() for ln in body.splitlines() if ln.strip())
    assert re.match(r"^(graph|flowchart) (TD|LR|TB)", first), first
    edges = set(re.findall(r"^\s*([\w\\]+) (?:-->|-\.\s.*?\s\.->|-\.->) ([\w\\]+);?$", body, re.M))
    return body, edges


def test_langgraph_graph_is_the_workflows_own(drawn: dict[tuple[str, str], Out]) -> None:
    """Each workflow's compiled graph: its steps as nodes, its dependencies as edges."""
    release, edges = _langgraph_edges(ok(drawn[("release", "langgraph")]))
    for node in ("build", "approve", "deploy", "smoke_test", "health_check", "error_recovery"):
        assert re.search(rf"^\s*{node}\b", release, re.M), f"{node} not declared"
    assert ("__start__", "build") in edges
    assert ("approve\\2edone", "deploy") in edges  # the approval's dependents wait on .done
    assert ("deploy", "smoke_test") in edges
    assert ("deploy", "health_check") in edges  # conditional: health_check's `when`
    assert "when inputs.health_url | length > 0" in release
    assert "subgraph checks" in release  # the parallel group is a subgraph of its children
    assert re.search(r"checks\\3aunit\(unit\)", release)
    assert ("finish", "error_recovery") in edges
    pipeline, pipeline_edges = _langgraph_edges(ok(drawn[("data-pipeline", "langgraph")]))
    assert release != pipeline
    assert ("__start__", "extract") in pipeline_edges
    assert ("transform_orders", "load") in pipeline_edges
    assert "approve" not in pipeline


def test_langgraph_graph_draws_a_react_step_as_its_agent_subgraph(
    drawn: dict[tuple[str, str], Out],
) -> None:
    """The react step `research` is drawn as the agent graph it runs (LangChain's model
    and tools nodes, its tools named), built without a model or network."""
    pytest.importorskip("langchain")
    text, edges = _langgraph_edges(ok(drawn[("research-agent", "langgraph")]))
    assert "subgraph research" in text
    assert re.search(r"research\\3amodel\(model\)", text)
    assert re.search(r"research\\3atools\(tools.*word_count, python_version", text)
    assert ("research\\3a__start__", "research\\3amodel") in edges
    assert ("research\\3amodel", "research\\3atools") in edges  # a tool call
    assert ("research\\3atools", "research\\3amodel") in edges  # its result, back
    assert ("research\\3amodel", "research\\3a__end__") in edges  # the final answer
    assert ("gather_notes", "research\\3a__start__") in edges
    assert ("research\\3a__end__", "summarise") in edges


# -- errors --------------------------------------------------------------------------------


def run_graph(args: list[str], cwd: Path) -> Out:
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "graph", *args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return Out(proc.returncode, proc.stdout, proc.stderr)


def test_graph_of_an_invalid_workflow(tmp_path: Path) -> None:
    shutil.copy(DATA / "invalid.yaml", tmp_path / "invalid.yaml")
    out = run_graph(["invalid.yaml"], tmp_path)
    assert out.rc == 2, out
    assert re.search(r"^invalid\.yaml:9:5\b", out.stderr, re.M), out
    assert "Traceback" not in out.stderr and out.stdout == ""


@pytest.mark.parametrize(
    "args", [["missing.yaml"], [str(GRAPH_DEMO), "--format", "png"]], ids=["missing", "format"]
)
def test_graph_usage_errors(tmp_path: Path, args: list[str]) -> None:
    out = run_graph(args, tmp_path)
    assert out.rc == 2, out
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert out.stdout == ""


def test_tree_keeps_a_containers_children_apart_from_its_dependents(
    drawn: dict[tuple[str, str], Out],
) -> None:
    """`approve` waits for the parallel `checks`: it hangs off `checks`, not among the
    checks that run at once."""
    text = ok(drawn[("release", "tree")])

    def depth(name: str) -> int:
        [line] = [ln for ln in text.splitlines() if ln.lstrip("│├└─ ").startswith(name)]
        return len(line) - len(line.lstrip("│├└─ "))

    assert depth("runs at once") == depth("approve ·") == depth("checks ·") + 4
    assert depth("unit ·") == depth("lint ·") == depth("runs at once") + 4


# -- conditions, agents and container borders ---------------------------------------------


def _whens_and_agents(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """step id -> (its `when` text, its agent capability), from the YAML itself."""
    found: dict[str, tuple[str | None, str | None]] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            found[s["step_id"]] = (s.get("when"), s.get("agent_capability"))
            walk(s.get("parallel_steps", []))

    walk(yaml.safe_load(path.read_text(encoding="utf-8"))["steps"])
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_drawings_show_when_conditions_and_agents(
    drawn: dict[tuple[str, str], Out], path: Path
) -> None:
    mermaid = html.unescape(ok(drawn[(path.stem, "mermaid")]).replace("#quot;", '"'))
    dot = ok(drawn[(path.stem, "dot")]).replace('\\"', '"')
    tree = ok(drawn[(path.stem, "tree")]) if path in TREES else ""
    for step_id, (when, agent) in _whens_and_agents(path).items():
        if when is not None:
            assert f"when {when}" in mermaid, step_id
            assert f"when {when}" in dot, step_id
            if tree and step_id in tree:
                assert f"when {when}" in " ".join(tree.split()), step_id
        if agent is not None:
            assert f"agent: {agent}" in mermaid, step_id
            assert f"agent: {agent}" in dot, step_id


def test_the_examples_have_conditions_and_agents_to_draw() -> None:
    """The test above is not empty: the examples hold `when`s and agent steps."""
    facts = [v for p in EXAMPLES for v in _whens_and_agents(p).values()]
    assert any(when for when, _ in facts) and any(agent for _, agent in facts)


def _svg_cluster_box(svg: str, cluster: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a cluster's box in the SVG."""
    group = re.search(
        rf"<title>{re.escape(cluster)}</title>\s*<polygon[^>]*points=\"([^\"]+)\"", svg
    )
    assert group is not None, f"no cluster {cluster} in the SVG"
    points = [tuple(map(float, point.split(","))) for point in group[1].split()]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _svg_edge_start(svg: str, src: str, dst: str) -> tuple[float, float]:
    edge = re.search(
        rf"<title>{re.escape(src)}&#45;&gt;{re.escape(dst)}</title>"
        r"\s*<path[^>]*d=\"M([-\d.]+),([-\d.]+)",
        svg,
    )
    assert edge is not None, f"no edge {src} -> {dst} in the SVG"
    return float(edge[1]), float(edge[2])


def test_dot_edges_leave_a_parallel_group_at_its_border(
    drawn: dict[tuple[str, str], Out], graphviz: str
) -> None:
    """release.yaml: checks (parallel) -> approve starts on the cluster's box, not inside."""
    proc = subprocess.run(
        [graphviz, "-Tsvg"],
        input=ok(drawn[("release", "dot")]),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    left, top, right, bottom = _svg_cluster_box(proc.stdout, "cluster_checks")
    x, y = _svg_edge_start(proc.stdout, "checks", "approve")
    on_side = min(abs(x - left), abs(x - right), abs(y - top), abs(y - bottom))
    assert on_side < 1.0 and left - 1 <= x <= right + 1 and top - 1 <= y <= bottom + 1, (x, y)
