"""YAML text -> plain data and a source map (path -> line/column)."""
