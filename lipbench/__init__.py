"""lipbench: compare Lipschitz-constraint methods for neural networks on equal terms."""
import math


class LipbenchError(Exception):
    """A user-facing error: its message is one line that names the key or path and what to do."""


def require(condition: bool, key: str, value, rule: str) -> None:
    """Raise a one-line LipbenchError naming `key` when a config value breaks `rule`."""
    if not condition:
        raise LipbenchError(f"{key}={value} is invalid: it must be {rule} (fix it with {key}=... on the command line)")


def is_int(value) -> bool:
    """An integer, not a bool (YAML's true is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite real number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
