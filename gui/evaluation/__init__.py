"""The Evaluation feature: report, error browser, overfitting view and cross-validation of a run.

``EvaluationFeature(session, canvas, host, bridge)`` (``feature.py``) is what the main window builds.
Every model run, store read and file write goes through the bridge (``engine.inference.report``,
``engine.train.cv``, ``engine.train.job`` and the two small store/file jobs of ``jobs.py``); the
views only plot numpy arrays with pyqtgraph, one item per layer.
"""
