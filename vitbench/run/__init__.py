"""The main job: what to run (config), when a record already stands (resume), the run itself
(runner: a Run object holding config, process group, record store and summary) and its summary."""
from vitbench.run.config import RunConfig, RunConfigError, default_reports_dir
from vitbench.run.runner import Job, Run, measure_only, run

__all__ = ["RunConfig", "RunConfigError", "default_reports_dir", "Job", "Run", "run", "measure_only"]
