"""Tag suggestions: a tagger checkpoint's scores for the current image next to each tag of the Tags panel.

``feature.TagSuggestionsFeature(session, host, bridge)`` adds the "Tag suggestions" dock (checkpoint
combo, the scores and tuned thresholds of the current image, "Accept suggested tags" with Shift+T).
The model runs only in ``jobs.tag_scores_job`` on the bridge's ``tasks`` lane (``jobs.TagScorer`` loads a
checkpoint once and caches scores per image); accepting is one ``commands.AcceptSuggestedTags`` on the
session's shared undo stack, recorded as accepted tag suggestions (provenance ``model:<run>``).
"""
