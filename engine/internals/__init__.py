"""Inside the CNN, as arrays: feature maps, stride and receptive field, Grad-CAM, normalisation statistics.

- ``receptive``: stride and theoretical receptive field of every named layer (analytic, ``trace``), the
  layer tree, and where a feature cell looks in ORIGINAL image pixels;
- ``features``: a layer's feature map for one image, channels sorted by mean activation;
- ``gradcam``: Grad-CAM of a tag, a segmentation class or a detection (``targets``), own hooks;
- ``inspect``: all of it from one forward (the panel and ``anchorlab internals``); ``job``: the job;
- ``bn_stats``: the BatchNorm/GroupNorm statistics recorder the training job adds as a hook.

Never imports Qt, the trainer or the other analysis packages; model families are recognised by duck
typing (``adapters``). Docs: docs/internals.md.
"""
