"""The engine: plan, scheduler, step types, and the LangGraph control plane."""
