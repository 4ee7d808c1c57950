"""Inside the CNN: the dock that shows a checkpoint's layers, feature maps, Grad-CAM and BN statistics.

``feature.InternalsFeature(session, canvas, host, bridge)`` mounts ``dock.InternalsDock`` ("Inside the
CNN"). All model work is ``jobs.inspect_job`` (``engine.internals``) and all store reading is
``jobs.bn_stats_job``, both submitted through the bridge, never run on the GUI thread. ``arrays`` holds
the Qt-free numpy helpers (tiles, colour maps, cell boxes, BN tables); ``overlay`` the canvas layers.
"""
