"""lipbench: compare Lipschitz-constraint methods for neural networks on equal terms."""


class LipbenchError(Exception):
    """A user-facing error: its message is one line that names the key or path and what to do."""
