"""``torchrun ... tests/engine/ddp_child.py DIGEST_DIR <train flags>``: the headless trainer plus a digest hook."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_hooks import ParamDigestHook  # noqa: E402

from engine.train.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], hooks=[ParamDigestHook(sys.argv[1])]))
