"""gridsvc."""
