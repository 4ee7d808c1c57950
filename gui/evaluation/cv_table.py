"""The cross-validation comparison table: one row per candidate config, mean ± std of the task's selection
metric and every fold's value (tooltip: the fold's run, its image counts and status); the best row marked."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from gui.evaluation.tables import fmt


def fill_cv_table(table: QTableWidget, res: dict | None) -> str:
    """Show ``res`` (``cv_job``'s result, None: no CV yet) in ``table``; returns the text that explains it."""
    table.clearContents()
    if res is None:
        table.setRowCount(0)
        table.setColumnCount(3)
        table.setHorizontalHeaderLabels(["candidate", "config", "mean ± std"])
        return "No cross-validation yet."
    k = int(res.get("folds_k") or max(len(c["folds"]) for c in res["configs"]))
    metric = res["metric"]
    headers = ["candidate", "config", f"{metric} mean ± std", *(f"fold {i + 1}" for i in range(k))]
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setRowCount(len(res["configs"]))
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
    table.setColumnWidth(1, 180)  # long configs: the tooltip has all of it
    bold = QFont(table.font())
    bold.setBold(True)
    for r, c in enumerate(res["configs"]):
        best = r == res["best"]
        cells = [f"★ {r + 1} (best)" if best else str(r + 1),
                 json.dumps(c["config"]) if c["config"] else "{} (base)", f"{fmt(c['mean'])} ± {fmt(c['std'])}"]
        by_fold = {f["fold"]: f for f in c["folds"]}
        for i in range(k):
            f = by_fold.get(i)
            cells.append(fmt(f["value"]) if f else "–")
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col >= 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            f = by_fold.get(col - 3) if col >= 3 else None
            if f is not None:
                item.setToolTip(f"run {f.get('run_id')}: {f.get('train_images')} train / "
                                f"{f.get('val_images')} val images · {f.get('status', '')}")
            if col == 1:
                item.setToolTip(text)
            if best:
                item.setFont(bold)
            table.setItem(r, col, item)
    direction = "higher" if res.get("higher_is_better", True) else "lower"
    return (f"{res['folds_k']}-fold cross-validation, seed {res['seed']}: {metric} of each fold's best checkpoint "
            f"on its held-out fold ({direction} is better; std over folds, n − 1)")
