"""Dataset analytics: the "Analytics" dock (classes, objects per image, box sizes and aspects, the
(ln w, ln h) scatter with its maximum-variance and OLS lines, k-means anchors and "Apply to training").

``feature.AnalyticsFeature(session, host, bridge)`` is what the main window builds. Every number comes
from ``engine.analysis.analyze.analyze_job`` run through the bridge (``jobs.analytics_job``), never on
the GUI thread; the views only hand numpy arrays to pyqtgraph, one item per layer.
"""
