"""Model-assisted labeling (issue 19): the user's own checkpoints propose shapes and tags.

- ``suggest``: ``Assistant`` (a checkpoint, a bounded prediction cache, ``suggest``/``prefetch``/``unload``);
- ``review``: accept / reject / edit-then-accept as undoable store operations;
- ``prelabel``: ``prelabel_job`` (batch suggestions, manual labels respected);
- ``uncertainty``: images ordered by model uncertainty (``rank_by_uncertainty``, ``uncertainty_job``);
- ``scores``: the uncertainty measures.

Suggestions are stored apart from annotations (``engine.project.suggestions``): nothing that
trains, exports or counts sees them until they are accepted.
"""
