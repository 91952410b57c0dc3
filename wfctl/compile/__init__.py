"""A model Workflow -> an execution plan of nested containers."""
