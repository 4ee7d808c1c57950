"""Two small jobs of the Evaluation feature, run through the bridge (never on the GUI thread).

- ``curves_job({"project", "run_id"})`` -> ``{"run_id", "curves": RunCurves}``: a run's per-epoch
  curves read from the store (its own connection, as every job opens one).
- ``export_job({"result": ReportResult, "out": folder, "what": "csv" | "report"})`` ->
  ``{"out", "files"}``: ``csv`` writes the report's tables (and errors.csv for detection);
  ``report`` is ``engine.inference.report.write_report`` (report.json, every CSV and PNG).
"""

from __future__ import annotations

from pathlib import Path

from engine.eval.curves import run_curves
from engine.eval.errors import write_errors_csv
from engine.eval.report import DetectionReport
from engine.inference.report import ReportResult, write_report
from engine.jobs import CancelToken, Sink
from engine.project.store import Store


def curves_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    run_id = int(config["run_id"])
    cancel.check()
    with Store(str(config["project"])) as store:
        return {"run_id": run_id, "curves": run_curves(store, run_id)}


def export_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    result: ReportResult = config["result"]
    out = Path(config["out"])
    cancel.check()
    if config.get("what", "report") == "csv":
        paths = result.report.to_csv(out)
        if isinstance(result.report, DetectionReport):
            paths.append(write_errors_csv(result.errors, out / "errors.csv", result.report.class_names))
    else:
        paths = write_report(result, out)
    return {"out": str(out), "files": [str(p) for p in paths]}
