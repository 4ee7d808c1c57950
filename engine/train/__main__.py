"""``python -m engine.train`` and ``torchrun --nproc_per_node K -m engine.train``: the headless trainer.

Takes the same flags as ``anchorlab train`` (``--project P --backbone tiny --epochs N ...``).
Under torchrun every process trains on its DistributedSampler shard with DistributedDataParallel
(NCCL on GPUs, gloo on CPU; ``--batch-size`` is per process); only rank 0 shows progress, writes
the store and checkpoints, and prints the final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.train import TrainProgress, add_train_arguments, config_from_args, run_train
from engine.jobs import null_sink
from engine.train import distributed


def main(argv: list[str] | None = None, hooks: list | None = None) -> int:
    """``hooks`` are extra trainer hooks (tests: a parameter digest per rank)."""
    parser = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    try:
        cfg = config_from_args(parser.parse_args(argv))
    except Exception as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = distributed.init_from_env(cfg.device)
    progress = TrainProgress() if info.is_main else None
    try:
        result = run_train(cfg, progress or null_sink, hooks)
    except Exception as e:  # one line per rank, not a traceback
        if progress is not None:
            progress.close()
        print(f"error (rank {info.rank}): {e}", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.close()
        distributed.shutdown()
    if info.is_main:
        print(json.dumps(result))
    return 130 if result["status"] == "stopped" else 0


if __name__ == "__main__":
    sys.exit(main())
