"""lipbench: compare Lipschitz-constraint methods for neural networks on equal terms."""


class LipbenchError(Exception):
    """A user-facing error: its message is one line that names the key or path and what to do."""


def require(condition: bool, key: str, value, rule: str) -> None:
    """Raise a one-line LipbenchError naming `key` when a config value breaks `rule`."""
    if not condition:
        raise LipbenchError(f"{key}={value} is invalid: it must be {rule} (fix it with {key}=... on the command line)")
