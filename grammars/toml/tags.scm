; TOML defines nothing: this file is intentionally empty (see grammars/README.md).
