"""Data flow: input_mapping, input_validation, output_mapping, `set`, templated `with`,
JSON-only outputs, and secrets that never leak."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import engine_funcs
import pytest
from conftest import Outcome, make_workflow, run

from wfctl.actions import registry
from wfctl.events import MetricRecorded, RetryScheduled, RunStarted, VarsChanged
from wfctl.model import StepStatus
from wfctl.report.build import build_report
from wfctl.report.metrics import MetricsCollector


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


# -- input_mapping ------------------------------------------------------------------------


def test_input_mapping_from_inputs_vars_and_upstream_outputs() -> None:
    out = run(
        make_workflow(
            """
            inputs:
              name: {type: string}
              count: {type: integer, default: 2}
            global_variables: {region: eu, sizes: [1, 2, 3]}
            steps:
              - {step_id: fetch, action: set, with: {values: {total: 120, tags: [xa, yb]}}}
              - step_id: use
                action: python
                dependencies: [fetch]
                input_mapping:
                  who: "inputs.name | upper"
                  count: "inputs.count"
                  region: "vars.region"
                  biggest: "vars.sizes | max"
                  total: "steps.fetch.output.total + 1"
                  tags: "steps.fetch.output.tags"
                  status: "steps.fetch.status"
                with: {function: "engine_funcs:async_echo", args: ["{{ input }}"]}
            """
        ),
        {"name": "ada"},
    )
    assert out.status == "completed"
    assert out.record("use").output == {
        "who": "ADA",
        "count": 2,
        "region": "eu",
        "biggest": 3,
        "total": 121,
        "tags": ["xa", "yb"],
        "status": "completed",
    }


def test_input_mapping_error_fails_the_step_clearly() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: fetch, action: set, with: {values: {total: 1}}}
              - step_id: use
                action: noop
                dependencies: [fetch]
                input_mapping: {missing: "steps.fetch.output.nothing_here.deeper"}
            """
        )
    )
    record = out.record("use")
    assert record.status is StepStatus.FAILED
    assert record.error and "nothing_here" in record.error


# -- input_validation ---------------------------------------------------------------------

VALIDATED = """
inputs:
  num: {type: string}
steps:
  - step_id: check
    action: python
    input_mapping: {num: "inputs.num"}
    input_validation:
      type: object
      properties: {num: {type: string, pattern: "^[0-9]+$"}}
      required: [num]
    retry_policy: {max_attempts: 3, initial_delay: 0}
    with: {function: "engine_funcs:count", args: [validated]}
"""


def test_input_validation_passes_valid_input() -> None:
    out = run(make_workflow(VALIDATED), {"num": "123"})
    assert out.status == "completed"
    assert engine_funcs.CALLS["validated"] == 1


def test_input_validation_violation_fails_clearly_without_retry() -> None:
    out = run(make_workflow(VALIDATED), {"num": "12a"})
    record = out.record("check")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "validation"
    assert "input_validation" in (record.error or "")
    assert "num" in (record.error or "") and "does not match" in (record.error or "")
    assert out.retries() == []
    assert "retrying" not in out.trail("check")
    assert len(record.attempts) <= 1
    assert "validated" not in engine_funcs.CALLS  # the action never ran
    assert out.status == "failed"


def test_input_validation_failure_counts_as_one_attempt() -> None:
    out = run(make_workflow(VALIDATED), {"num": "12a"})
    assert len(out.record("check").attempts) == 1


# -- output_mapping, set, vars --------------------------------------------------------------


def test_output_mapping_writes_vars_seen_by_later_steps() -> None:
    out = run(
        make_workflow(
            """
            global_variables: {keep: 1}
            steps:
              - step_id: produce
                action: python
                with: {function: "engine_funcs:async_echo", args: [{word: hello, n: 2}]}
                output_mapping:
                  greeting: "output.word | upper"
                  doubled: "output.n * 2"
              - step_id: consume
                action: python
                dependencies: [produce]
                with:
                  function: "engine_funcs:async_echo"
                  args: ["{{ vars.greeting }}-{{ vars.doubled }}"]
            """
        )
    )
    assert out.status == "completed"
    assert out.result.vars == {"keep": 1, "greeting": "HELLO", "doubled": 4}
    assert out.record("consume").output == "HELLO-4"
    changes = out.of(VarsChanged)
    assert [(c.step_id, c.values) for c in changes] == [
        ("produce", {"greeting": "HELLO", "doubled": 4})
    ]


def test_output_mapping_error_fails_the_step() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: produce
                action: noop
                output_mapping: {x: "output.missing"}
              - {step_id: after, action: noop, dependencies: [produce]}
            """
        )
    )
    record = out.record("produce")
    assert record.status is StepStatus.FAILED
    assert "output_mapping.x" in (record.error or "")
    assert out.step_status("after") == "skipped"
    assert out.status == "failed"


def test_set_merges_into_vars() -> None:
    out = run(
        make_workflow(
            """
            global_variables: {a: 1, b: 2}
            steps:
              - {step_id: first, action: set, with: {values: {b: 3, c: "{{ vars.a + 10 }}"}}}
              - step_id: second
                action: set
                dependencies: [first]
                with: {values: {d: "{{ vars.b }}-{{ vars.c }}"}}
            """
        )
    )
    assert out.status == "completed"
    assert out.result.vars == {"a": 1, "b": 3, "c": 11, "d": "3-11"}
    assert out.record("first").output == {"b": 3, "c": 11}


# -- templates in `with` --------------------------------------------------------------------


def test_with_templates_render_native_types_for_single_expressions() -> None:
    out = run(
        make_workflow(
            """
            inputs:
              n: {type: integer}
              flags: {type: object}
            global_variables: {items: [1, 2], name: x}
            steps:
              - step_id: call
                action: python
                with:
                  function: "engine_funcs:async_echo"
                  args:
                    - whole_int: "{{ inputs.n }}"
                      whole_list: "{{ vars.items }}"
                      whole_map: "{{ inputs.flags }}"
                      whole_bool: "{{ inputs.n > 3 }}"
                      mixed: "n={{ inputs.n }}"
                      spaced: " {{ inputs.n }}"
                      literal: plain
                      nested: {deep: ["{{ vars.name }}", "{{ inputs.n * 2 }}"]}
            """
        ),
        {"n": 5, "flags": {"on": True}},
    )
    assert out.status == "completed"
    assert out.record("call").output == {
        "whole_int": 5,
        "whole_list": [1, 2],
        "whole_map": {"on": True},
        "whole_bool": True,
        "mixed": "n=5",
        "spaced": " 5",
        "literal": "plain",
        "nested": {"deep": ["x", 10]},
    }


def test_template_error_in_with_fails_the_step() -> None:
    out = run(
        make_workflow(
            """
            global_variables: {name: x}
            steps:
              - step_id: call
                action: python
                with: {function: "engine_funcs:async_echo", args: ["{{ vars.name.nope }}"]}
            """
        )
    )
    record = out.record("call")
    assert record.status is StepStatus.FAILED
    assert "nope" in (record.error or "")


# -- JSON-only outputs -------------------------------------------------------------------------


def test_non_json_python_output_is_a_clear_error_and_not_retried() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: weird
                action: python
                retry_policy: {max_attempts: 3, initial_delay: 0}
                with: {function: "engine_funcs:returns_set"}
            """
        )
    )
    record = out.record("weird")
    assert record.status is StepStatus.FAILED
    assert "not JSON-serialisable" in (record.error or "")
    assert len(record.attempts) == 1
    assert out.retries() == []


class _SetReturningAction:
    """A third-party action that returns a Python set."""

    name = "setty"

    async def run(self, args: Any, ctx: Any) -> Any:
        return {1, 2}

    def target(self, args: Any) -> str:
        return "setty"


@pytest.fixture
def plugin_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Register in-memory third-party actions (as if from the entry-point group)."""
    actions: dict[str, Any] = {}

    def add(action: Any) -> None:
        actions[action.name] = action
        registry.register_action(action)

    actions["add"] = add
    yield actions
    for name in list(actions):
        registry.unregister_action(name)


def test_non_json_output_of_a_third_party_action_is_an_error(
    plugin_actions: dict[str, Any],
) -> None:
    plugin_actions["add"](_SetReturningAction())
    out = run(
        make_workflow(
            """
            steps:
              - step_id: weird
                action: setty
                retry_policy: {max_attempts: 3, initial_delay: 0}
            """
        )
    )
    record = out.record("weird")
    assert record.status is StepStatus.FAILED
    assert "not JSON-serialisable" in (record.error or "")
    assert len(record.attempts) == 1


# -- secrets ----------------------------------------------------------------------------------

SECRET = 'Sup3r"s3cr3t\\value-xyz'


def secret_variants(secret: str) -> set[str]:
    raw = secret.encode()
    out = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(json.dumps(secret)[1:-1])[1:-1],
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        enc = encode(raw).decode()
        out |= {enc, enc.rstrip("=")}
    return out


def all_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from all_strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from all_strings(v)
    elif obj is not None:
        yield str(obj)


def leaks(out: Outcome, secret: str, extra: Any = None) -> list[str]:
    variants = secret_variants(secret)
    everything = list(all_strings(json.loads(out.dump())))
    if extra is not None:
        everything += list(all_strings(json.loads(json.dumps(extra, default=str))))
    everything.append(out.dump())
    return sorted({s for s in everything for v in variants if v in s})


def test_secrets_never_appear_in_events_outputs_errors_vars_or_report(
    http_server: Any,
) -> None:
    wf = make_workflow(
        f"""
        inputs:
          password: {{type: string, secret: true}}
        secrets: {{token: API_TOKEN}}
        steps:
          - step_id: plain
            action: shell
            with: {{command: 'printf "token=%s\\n" "$API_TOKEN"; printf "%s\\n" "$API_TOKEN" >&2'}}
          - step_id: encoded
            action: shell
            with: {{command: 'printf %s "$API_TOKEN" | base64'}}
          - step_id: as_json
            action: shell
            with:
              command:
                - python3
                - "-c"
                - "import json, os; print(json.dumps({{'t': os.environ['API_TOKEN']}}))"
          - step_id: py
            action: python
            with: {{function: "engine_funcs:echo_secret", args: ["{{{{ secrets.token }}}}"]}}
            output_mapping: {{copied: "output.plain"}}
          - step_id: keep
            action: set
            with: {{values: {{kept: "{{{{ secrets.token }}}}", pw: "{{{{ inputs.password }}}}"}}}}
          - step_id: http_echo
            action: http
            with:
              method: POST
              url: "{http_server.url}/echo"
              json: {{t: "{{{{ secrets.token }}}}"}}
          - step_id: boom
            action: python
            with: {{function: "engine_funcs:raise_with", args: ["{{{{ secrets.token }}}}"]}}
            retry_policy: {{max_attempts: 2, initial_delay: 0, continue_on_failure: true}}
            error_handlers: [report_it]
          - step_id: report_it
            action: shell
            with:
              command: 'printf "handled %s with %s\\n" "{{{{ error.message }}}}" "$API_TOKEN"'
          - step_id: failing
            action: fail
            with: {{message: "bad {{{{ secrets.token }}}}"}}
            retry_policy: {{continue_on_failure: true}}
        """
    )
    metrics = MetricsCollector(sla=wf.sla_targets)
    out = run(
        wf,
        {"password": "hunter2-pass-word"},
        env={"API_TOKEN": SECRET, "PATH": "/usr/bin:/bin"},
        subscribers=(metrics,),
    )
    assert out.status == "completed", out.statuses()
    # The secret really went through every step (masked where it shows).
    assert out.record("plain").output["stdout"].strip() == "token=***"
    assert out.record("py").output["plain"] == "***"
    assert out.record("keep").output["kept"] == "***"
    assert out.result.vars["copied"] == "***"
    assert out.record("http_echo").output["json"] == {"received": {"t": "***"}}
    assert out.record("boom").status is StepStatus.FAILED
    assert "***" in (out.record("boom").error or "")
    assert len(out.retries("boom")) == 1
    assert out.record("report_it").status is StepStatus.COMPLETED
    assert out.record("failing").error == "bad ***"
    started = out.of(RunStarted)[0]
    assert started.inputs == {"password": "***"}
    report = build_report(out.result, wf, dict(started.inputs), metrics)
    assert leaks(out, SECRET, report) == []
    assert leaks(out, "hunter2-pass-word", report) == []


def test_secret_is_passed_to_shell_steps_as_an_environment_variable() -> None:
    out = run(
        make_workflow(
            """
            secrets: {token: API_TOKEN}
            steps:
              - step_id: check
                action: shell
                with: {command: 'test "$API_TOKEN" = "abc-123-def" && echo same'}
            """
        ),
        env={"API_TOKEN": "abc-123-def", "PATH": "/usr/bin:/bin"},
    )
    assert out.status == "completed"
    assert out.record("check").output["stdout"].strip() == "same"


def test_missing_secret_environment_variable_is_an_input_error() -> None:
    from wfctl.model.inputs import InputError

    wf = make_workflow(
        """
        secrets: {token: NOT_SET_ANYWHERE_42}
        steps:
          - {step_id: a, action: noop}
        """
    )
    with pytest.raises(InputError, match="NOT_SET_ANYWHERE_42"):
        run(wf, env={})


def test_secret_read_by_output_mapping_is_masked() -> None:
    out = run(
        make_workflow(
            """
            secrets: {token: API_TOKEN}
            steps:
              - step_id: a
                action: noop
                output_mapping: {copy: "secrets.token"}
                custom_metrics: {m: "secrets.token ~ '!'"}
            """
        ),
        env={"API_TOKEN": "abc-123-def"},
    )
    assert [e.values for e in out.of(VarsChanged)] == [{"copy": "***"}]
    assert [e.value for e in out.of(MetricRecorded)] == ["***!"]
    assert leaks(out, "abc-123-def") == []


def test_secret_in_repr_form_is_masked_in_errors() -> None:
    out = run(
        make_workflow(
            """
            secrets: {token: API_TOKEN}
            steps:
              - step_id: validated
                action: noop
                input_mapping: {t: "secrets.token"}
                input_validation: {type: object, properties: {t: {type: integer}}}
                retry_policy: {continue_on_failure: true}
              - step_id: parsed
                action: python
                with: {function: "engine_funcs:parse_int", args: ["{{ secrets.token }}"]}
                retry_policy: {continue_on_failure: true}
            """
        ),
        env={"API_TOKEN": SECRET},
    )
    assert out.step_status("validated") == "failed"
    assert out.step_status("parsed") == "failed"
    repr_form = repr(SECRET)[1:-1]
    assert repr_form not in (out.record("validated").error or "")
    assert repr_form not in (out.record("parsed").error or "")
    assert repr_form not in out.dump().replace("\\\\", "\\")


def test_retry_errors_are_masked_too() -> None:
    out = run(
        make_workflow(
            """
            secrets: {token: API_TOKEN}
            steps:
              - step_id: boom
                action: fail
                with: {message: "no {{ secrets.token }}"}
                retry_policy: {max_attempts: 2, initial_delay: 0}
            """
        ),
        env={"API_TOKEN": "abc-123-def"},
    )
    retries = out.of(RetryScheduled)
    assert len(retries) == 1 and retries[0].error == "no ***"
    assert leaks(out, "abc-123-def") == []


def test_missing_required_input_is_an_input_error_naming_it() -> None:
    from wfctl.model.inputs import InputError

    wf = make_workflow(
        """
        inputs:
          version: {type: string, pattern: '^[0-9]+[.][0-9]+$'}
        steps:
          - {step_id: a, action: noop}
        """
    )
    with pytest.raises(InputError, match="version"):
        run(wf, {})
    with pytest.raises(InputError, match="version"):
        run(wf, {"version": "one"})
    assert run(wf, {"version": "1.2"}).status == "completed"
