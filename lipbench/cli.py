"""The `lipbench` command: a Hydra app that trains the task its config names in the one epoch loop."""
import shutil
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lipbench import LipbenchError
from lipbench.files import write_json
from lipbench.naming import CONFIG_DIR
from lipbench.rundir import run_dir, safe_name, sweep_dir
from lipbench.training import Interrupted, train

# A sentinel for "this key is not in the config" (None is a legitimate value).
MISSING_KEY = object()

OmegaConf.register_new_resolver("lipbench_run_dir", run_dir, use_cache=True)
OmegaConf.register_new_resolver("lipbench_sweep_dir", sweep_dir, use_cache=True)
OmegaConf.register_new_resolver("lipbench_safe_name", safe_name, use_cache=True)


def user_error(error: BaseException) -> LipbenchError | None:
    """The LipbenchError behind `error`, if any (Hydra's instantiate wraps the exceptions of constructors)."""
    while error is not None:
        if isinstance(error, LipbenchError):
            return error
        error = error.__cause__ or error.__context__
    return None


def group_choices(override: Override) -> list[str]:
    """The override as one `group=option` line per option it sweeps over."""
    prefix = override.input_line.split("=", 1)[0]
    values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
    return [f"{prefix}={value}" for value in values]


def misspelt_key(args: list[str]) -> str | None:
    """The one-line error for an override of a key that no composed config has (a typo such as method.weigth=5),
    naming the keys that do exist there; None when every key exists or Hydra should judge the command itself."""
    try:
        parsed = OverridesParser.create().parse_overrides([a for a in args if "=" in a and not a.startswith("-")])
    except Exception:  # Hydra's own parser reports a malformed override better
        return None
    groups = [o for o in parsed if Path(CONFIG_DIR, o.key_or_group.split("@")[0]).is_dir()]
    keys = [o for o in parsed if o not in groups and not (o.is_add() or o.is_force_add() or o.is_delete())
            and not o.key_or_group.startswith("hydra")]
    for key in keys:
        top = key.key_or_group.split(".")[0]
        # Every option of the key's own group, the first of any other swept group.
        variants = [[line] for o in groups if o.key_or_group == top for line in group_choices(o)] or [[]]
        fixed = [group_choices(o)[0] for o in groups if o.key_or_group != top]
        try:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                configs = [compose("config", overrides=fixed + variant) for variant in variants]
        except Exception:  # an unknown group option: Hydra's message lists the options
            return None
        if any(OmegaConf.select(cfg, key.key_or_group, default=MISSING_KEY) is not MISSING_KEY for cfg in configs):
            continue
        parent, node = key.key_or_group.rsplit(".", 1)[0] if "." in key.key_or_group else "", configs[0]
        while parent and not isinstance(OmegaConf.select(node, parent, default=None), DictConfig):
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        where = OmegaConf.select(node, parent) if parent else node
        choice = next((f" of {line}" for o in groups if o.key_or_group == top for line in group_choices(o)[:1]), "")
        group = key.key_or_group.rsplit(".", 1)[-1]
        if Path(CONFIG_DIR, group).is_dir():  # experiment.scale=paper for scale=paper
            return (f"{key.key_or_group} is not a key{choice}: {group} is a config group of its own, chosen as "
                    f"{group}={key.value()}")
        return (f"{key.key_or_group} is not a key{choice}: the keys {'under ' + parent if parent else 'at the top'} "
                f"are {', '.join(str(k) for k in where if not str(k).startswith('_'))}; fix the spelling")
    return None


# Hydra's flags that print the config or the app's info instead of running, and those that ask for a sweep: Hydra
# refuses the two together with a traceback.
SHOW_FLAGS = ("-c", "--cfg", "-i", "--info")
MULTIRUN_FLAGS = ("-m", "--multirun")


def main() -> None:
    """The `lipbench` command: a misspelt key is one line and exit 2; everything else goes to the Hydra app.
    `-m ... --cfg job` shows one job's config (a sweep's settings before its swept keys), as Hydra alone would not."""
    message = misspelt_key(sys.argv[1:])
    if message is not None:
        print(f"lipbench: error: {message}", file=sys.stderr)
        sys.exit(2)
    if any(a in SHOW_FLAGS for a in sys.argv[1:]) and any(a in MULTIRUN_FLAGS for a in sys.argv[1:]):
        print("lipbench: showing one job's config, without the sweep's swept keys (hydra.sweeper.params: "
              "--cfg hydra)", file=sys.stderr)
        sys.argv = [a for a in sys.argv if a not in MULTIRUN_FLAGS]
    hydra_main()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def hydra_main(cfg: DictConfig):
    """Run the configured task in Hydra's run dir; bad input ends the job with one line naming what to fix.

    In a sweep, a job with bad input is recorded in its run dir as `invalid` and the sweep goes on; a single run
    exits 2. An interrupted run (Ctrl-C, or SIGTERM from Slurm on preemption) is recorded as such and says how to
    resume.
    """
    hydra_cfg = HydraConfig.get()
    # Overrides that change where or how a run is logged, not what it computes (conf/config.yaml names them once):
    # kept out of the run's name and dir, and out of the overrides it records.
    bookkeeping = tuple(hydra_cfg.job.config.override_dirname.exclude_keys)
    overrides = [o for o in hydra_cfg.overrides.task if o.lstrip("+~").split("=", 1)[0] not in bookkeeping]
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        return train(cfg, run_dir, overrides, hydra_cfg.job.override_dirname)
    except Interrupted as stop:
        print(f"lipbench: {stop}; resume it with the same command and train.resume=true, or in {run_dir}",
              file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as error:
        found = user_error(error)
        if found is None:
            raise
        print(f"lipbench: error: {found}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN and not (run_dir / "summary.json").exists():
            write_json(run_dir / "summary.json", {"status": "invalid", "error": str(found), "overrides": overrides})
            return {"status": "invalid", "error": str(found)}
        remove_if_unused(run_dir)
        sys.exit(2)


def remove_if_unused(run_dir: Path) -> None:
    """Delete a run dir that a refused run leaves with nothing but Hydra's files, so refusals leave no litter."""
    leftovers = (".hydra", ".lock", "experiment.json")
    if run_dir.is_dir() and all(p.name in leftovers or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
