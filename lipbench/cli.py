"""The `lipbench` command: a Hydra app that trains the task its config names in the one epoch loop."""
import re
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lipbench import LipbenchError
from lipbench.files import read_json_or_none
from lipbench.training import train

# The configs live at the top of the repo (conf/), beside the package; an absolute path works from any cwd.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def safe_name(override_dirname: str) -> str:
    """An override string usable as one directory name (values may hold '/', e.g. dataset.path)."""
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", override_dirname)[:200]


def run_dir(resume, override_dirname: str, root: str = "runs") -> str:
    """A new `root/date/time_overrides` dir, or with train.resume=true the newest unfinished run of these overrides."""
    name = safe_name(override_dirname)
    if str(resume).lower() == "true":
        pattern = f"*/*_{name}" if name else "*/[0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
        unfinished = [
            d for d in Path(root).glob(pattern)
            if (d / "checkpoint.pt").exists() and (read_json_or_none(d / "summary.json") or {}).get("status") != "complete"
        ]
        if unfinished:
            return str(max(unfinished, key=lambda d: d.stat().st_mtime))
    now = datetime.now()
    return f"{root}/{now:%Y-%m-%d}/{now:%H-%M-%S}" + (f"_{name}" if name else "")


OmegaConf.register_new_resolver("lipbench_run_dir", run_dir, use_cache=True)
OmegaConf.register_new_resolver("lipbench_safe_name", safe_name, use_cache=True)


def user_error(error: BaseException) -> LipbenchError | None:
    """The LipbenchError behind `error`, if any (Hydra's instantiate wraps the exceptions of constructors)."""
    while error is not None:
        if isinstance(error, LipbenchError):
            return error
        error = error.__cause__ or error.__context__
    return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig):
    """Run the configured task in Hydra's run dir; bad input ends the job with one line naming what to fix."""
    hydra_cfg = HydraConfig.get()
    # Overrides that change where or how a run is logged, not what it computes (conf/config.yaml names them once):
    # kept out of the run's name and dir, and out of the overrides it records.
    bookkeeping = tuple(hydra_cfg.job.config.override_dirname.exclude_keys)
    overrides = [o for o in hydra_cfg.overrides.task if o.lstrip("+~").split("=", 1)[0] not in bookkeeping]
    try:
        return train(cfg, Path(hydra_cfg.runtime.output_dir), overrides)
    except Exception as error:
        found = user_error(error)
        if found is None:
            raise
        print(f"lipbench: error: {found}", file=sys.stderr)
        sys.exit(2)
