"""Our lm-eval task YAMLs (found through TaskManager(include_path=...)) and their hooks."""
