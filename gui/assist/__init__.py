"""Model-assisted labeling (issue 19): the Assist dock, its suggestion overlay, review keys and jobs."""
