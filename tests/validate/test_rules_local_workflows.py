"""`wfctl validate` on the workflows a file defines (`workflows:`, called `uses: "#name"`):
each misuse at its file:line, a problem inside one once at its own line, exit 2."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from cli_helpers import cli

DATA = Path(__file__).parents[1] / "data" / "subflow_templates"


def _validate(tmp_path: Path, *files: str) -> tuple[int, str]:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    res = cli(["validate", *files], tmp_path)
    out = res.stdout + res.stderr
    assert "Traceback" not in out
    return res.returncode, out


def test_every_misuse_of_a_local_call_is_reported_at_its_line(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, "bad.yaml")
    assert code == 2, out
    expected = [
        # Inside a defined workflow: at its own line, its path in the file, once (it is
        # called twice).
        "bad.yaml:11:34 workflows.deploy.steps[0].with.command: expression refers to "
        "unknown step 'nothere' (unknown-step)",
        "bad.yaml:17:28 workflows.pong.steps[0].uses: sub-workflow cycle: #ping -> #pong -> "
        "#ping (subflow-cycle)",
        "bad.yaml:19:27 steps[0].uses: no workflow 'deplyo' in this file's `workflows:` "
        "(defined: deploy, ping, pong) (subflow-not-found)",
        "    hint: did you mean 'deploy'?",
        "bad.yaml:23:15 steps[1].with.target: input 'target' = 3: 3 is not of type 'string' "
        "(subflow-input)",
        "bad.yaml:24:7 steps[1].with.colour: unknown input 'colour' of the sub-workflow "
        "(its inputs: replicas, target) (subflow-input)",
        "bad.yaml:25:5 steps[2].with: missing required input 'target' of the sub-workflow "
        "(subflow-input)",
    ]
    for line in expected:
        assert line in out, (line, out)
    assert out.count("unknown step 'nothere'") == 1, out
    assert "subflow-invalid" not in out  # its problems are this file's own, listed already


def test_calls_among_local_workflows_recursion_and_files_pass(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, "release.yaml", "nested.yaml", "lib/greet.yaml")
    assert code == 0, out


def test_a_called_files_local_workflow_problem_is_reported_at_that_files_line(
    tmp_path: Path,
) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    greet = tmp_path / "lib" / "greet.yaml"
    greet.write_text(greet.read_text().replace("action: noop}", "action: noop, needs: 1}"))
    res = cli(["validate", "nested.yaml"], tmp_path)
    out = res.stdout
    assert res.returncode == 2, out
    assert "lib/greet.yaml:14:39 workflows.hello.steps[0].needs: unknown key 'needs'" in out
    # At the call inside nested.yaml's own `outer`.
    assert (
        "nested.yaml:27:30 workflows.outer.steps[1].uses: sub-workflow 'lib/greet.yaml' has "
        "1 problem(s)" in out
    )


def test_a_call_inside_a_local_workflow_names_the_files_workflows(tmp_path: Path) -> None:
    (tmp_path / "u.yaml").write_text(
        textwrap.dedent(
            """\
            workflow_id: u
            name: U
            workflows:
              a:
                steps:
                  - {step_id: x, uses: "#zz"}
                  - {step_id: y, uses: "#a", with: {q: 1}}
                  - {step_id: z, uses: "#b", when: "false"}
              b:
                inputs: {n: {type: integer}}
                steps: [{step_id: only, action: noop}]
            steps:
              - {step_id: s, uses: "#a"}
            """
        )
    )
    res = cli(["validate", "u.yaml"], tmp_path)
    assert res.returncode == 2
    assert res.stdout.splitlines()[::2] == [
        "u.yaml:6:28 workflows.a.steps[0].uses: no workflow 'zz' in this file's `workflows:` "
        "(defined: a, b) (subflow-not-found)",
        "u.yaml:7:41 workflows.a.steps[1].with.q: unknown input 'q' of the sub-workflow "
        "(its inputs: none) (subflow-input)",
        "1 of 1 file invalid, 3 problems",
    ], res.stdout
    assert "u.yaml:8:9 workflows.a.steps[2].with: missing required input 'n'" in res.stdout


def test_a_call_of_a_workflow_with_a_broken_input_schema_reports_the_schema_only(
    tmp_path: Path,
) -> None:
    (tmp_path / "v.yaml").write_text(
        textwrap.dedent(
            """\
            workflow_id: v
            name: V
            workflows:
              a:
                inputs: {x: {type: strin}, y: {type: string, pattern: "(a)\\\\1"}}
                steps: [{step_id: s, action: noop}]
            steps:
              - {step_id: s, uses: "#a", with: {x: 1, y: 2}}
            """
        )
    )
    res = cli(["validate", "v.yaml"], tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    found = [line.split(" ")[0] + " " + line.rsplit(" ", 1)[1] for line in res.stdout.splitlines()
             if line.startswith("v.yaml")]  # fmt: skip
    assert found == ["v.yaml:5:17 (invalid-json-schema)", "v.yaml:5:59 (unbounded-pattern)"]


def test_a_local_workflow_routes_to_the_files_agents(tmp_path: Path) -> None:
    # It runs with the file's agents: their capabilities hold inside it, and a problem of
    # an agent is reported once, at the file's `agents:`.
    (tmp_path / "a.yaml").write_text(
        textwrap.dedent(
            """\
            workflow_id: a
            name: A
            agents:
              - {name: builder, action: noop, capabilities: [build]}
              - {name: other, action: nosuch, capabilities: [x]}
            workflows:
              b:
                steps:
                  - {step_id: ok, agent_capability: build}
                  - {step_id: bad, agent_capability: biuld}
            steps:
              - {step_id: call, uses: "#b"}
            """
        )
    )
    res = cli(["validate", "a.yaml"], tmp_path)
    assert res.returncode == 2
    assert [line for line in res.stdout.splitlines() if line.startswith("a.yaml")] == [
        "a.yaml:5:27 agents[1].action: unknown action 'nosuch' (unknown-action)",
        "a.yaml:10:42 workflows.b.steps[1].agent_capability: no agent provides capability "
        "'biuld' (unknown-capability)",
    ], res.stdout
