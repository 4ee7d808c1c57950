"""The loss explorer: the loss functions the detectors can train with, drawn and explained on screen.

``feature.ExplorerFeature(session, host, bridge)`` mounts ``dock.LossExplorerDock`` ("Loss explorer"):
CE vs focal loss over p_t (the focal-loss paper's Figure 1) with an α slider, Smooth L1 vs L1 vs L2 and
their gradients with a β slider, and sigmoid-BCE vs softmax-CE on a 3-class logit vector. Every curve is
``engine.losses.curves`` (pure numpy); ``marker`` (Qt-free) reads the current run's loss settings from the
store, which the dock marks on the curves.
"""
