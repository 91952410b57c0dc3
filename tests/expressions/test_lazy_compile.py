"""Loading a workflow parses and checks its expressions but generates no Python code: that
is done when an expression is first evaluated, once per source text (issue 15: ~0.8 ms an
expression made a 40k-step chain with distinct `when:`s take 36 s to load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfctl.expressions import ExpressionError, compile_expression, compile_template
from wfctl.expressions._environment import SandboxEnvironment
from wfctl.model.load import load_workflow


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every call of Jinja's code generator and compiler, as it happens."""
    calls: list[Any] = []
    real = SandboxEnvironment.compile

    def counting(self: SandboxEnvironment, source: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(source)
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(SandboxEnvironment, "compile", counting)
    yield calls


def _chain(path: Path, steps: int) -> Path:
    lines = ["workflow_id: chain", "name: chain", "steps:", "  - {step_id: s0, action: noop}"]
    for i in range(1, steps):
        lines += [
            f"  - step_id: s{i}",
            "    action: set",
            f"    dependencies: [s{i - 1}]",
            f"    when: \"steps.s{i - 1}.status == 'completed' and {i} > 0\"",
            f'    with: {{values: {{n{i}: "{{{{ {i} * 2 }}}} of {{{{ vars | length }}}}"}}}}',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loading_a_workflow_generates_no_code(tmp_path: Path, compiles: list[Any]) -> None:
    workflow = _chain(tmp_path / "chain.yaml", 300)
    load_workflow(workflow)
    assert compiles == []


def test_code_is_generated_at_first_evaluation_once_per_source(compiles: list[Any]) -> None:
    source = "steps.a.output.n + 1 > 2"
    first = compile_expression(source)
    assert compiles == []
    context = {"steps": {"a": {"output": {"n": 5}}}}
    assert first.evaluate(context) is True
    assert first.evaluate({"steps": {"a": {"output": {"n": 0}}}}) is False
    assert compile_expression(source).evaluate(context) is True  # the same source: cached
    assert len(compiles) == 1

    template = compile_template("{{ x }} and {{ y }}")
    assert len(compiles) == 1
    assert template.render({"x": 1, "y": "two"}) == "1 and two"
    assert len(compiles) == 2


def test_what_the_code_generator_refuses_fails_at_prepare_or_first_use() -> None:
    # Validation catches this at load (its analysis makes the generator's checks); an
    # expression compiled in Python, unvalidated, fails when its code is generated.
    expression = compile_expression("x.y(z=1, z=2)")
    with pytest.raises(ExpressionError):
        expression.prepare()
    with pytest.raises(ExpressionError):
        compile_template("{{ x.y(z=1, z=2) }} !").render({"x": {}})
