"""The Segmentation dock: a segmentation checkpoint's prediction before and after the dense CRF, tuned live."""
