"""What a run says while it works: log lines that reach stdout and the run's log file, and bars for long steps."""
import logging
import time
from collections.abc import Iterable

from tqdm import tqdm

log = logging.getLogger("lipbench")


def warn(message: str) -> None:
    """A setup that cannot mean what the user thinks: said once, in the log, and the run goes on."""
    log.warning(f"warning: {message}")


def long_step(iterable: Iterable, total: int | None, what: str) -> Iterable:
    """Iterate with a bar on a terminal, and a line before and after (with the time taken) everywhere else."""
    log.info(f"{what}: {total if total is not None else 'starting'} ...")
    start = time.perf_counter()
    yield from tqdm(iterable, total=total, desc=what, disable=None, leave=False)
    log.info(f"{what}: done in {time.perf_counter() - start:.1f} s")
