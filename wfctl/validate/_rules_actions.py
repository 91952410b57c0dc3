"""Rules on actions and agents: known action names (steps, agents, react tools), unique
agent names, and capabilities some agent provides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfctl.document.local_workflows import home_of
from wfctl.validate._context import Context, StepInfo, as_list, str_list
from wfctl.validate.schema_messages import did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import Path_

__all__ = ["check_actions_and_agents"]


@dataclass
class _Actions:
    ctx: Context
    actions: frozenset[str]
    capabilities: set[str] = field(default_factory=set)
    agent_names: dict[str, int] = field(default_factory=dict)

    def check_action(self, path: Path_, action: Any) -> None:
        if isinstance(action, str) and action not in self.actions:
            self.ctx.report(
                path,
                "unknown-action",
                f"unknown action '{action}'",
                did_you_mean(action, self.actions)
                or f"known actions: {', '.join(sorted(self.actions))}",
            )

    def agent(self, a: int, agent: dict[str, Any]) -> None:
        name = agent.get("name")
        if isinstance(name, str):
            self.check_agent_name(a, name)
        self.capabilities.update(str_list(agent.get("capabilities")))
        self.check_action(("agents", a, "action"), agent.get("action"))

    def check_agent_name(self, a: int, name: str) -> None:
        if name not in self.agent_names:
            self.agent_names[name] = a
            return
        line, _ = self.ctx.doc.source_map.value_pos(("agents", self.agent_names[name], "name"))
        self.ctx.report(
            ("agents", a, "name"),
            "duplicate-agent",
            f"duplicate agent name '{name}' (first defined at line {line})",
        )

    def step(self, info: StepInfo) -> None:
        self.check_action((*info.path, "action"), info.data.get("action"))
        for t, tool in enumerate(info.react_tools()):
            if isinstance(tool, dict):
                self.check_action((*info.path, "with", "tools", t, "action"), tool.get("action"))
        capability = info.data.get("agent_capability")
        if isinstance(capability, str) and capability not in self.capabilities:
            self.report_capability(info, capability)

    def report_capability(self, info: StepInfo, capability: str) -> None:
        hint = did_you_mean(capability, self.capabilities) or (
            f"declared capabilities: {', '.join(sorted(self.capabilities))}"
            if self.capabilities
            else "declare an agent providing it under `agents:`"
        )
        self.ctx.report(
            (*info.path, "agent_capability"),
            "unknown-capability",
            f"no agent provides capability '{capability}'",
            hint,
        )


def check_actions_and_agents(ctx: Context) -> None:
    """Agents first (they declare the capabilities), then every step."""
    from wfctl.format.actions import available_action_names

    checker = _Actions(ctx, frozenset(available_action_names()))
    home = home_of(ctx.doc)
    for a, agent in enumerate(as_list(home.data.get("agents"))):
        if not isinstance(agent, dict):
            continue
        if home is ctx.doc:
            checker.agent(a, agent)
        else:
            # A workflow of the file's `workflows:` runs with the file's agents (checked
            # with the file itself).
            checker.capabilities.update(str_list(agent.get("capabilities")))
    for info in ctx.steps.values():
        checker.step(info)
