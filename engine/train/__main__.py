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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    cfg = config_from_args(parser.parse_args(argv))
    info = distributed.init_from_env(cfg.device)
    try:
        result = run_train(cfg, TrainProgress() if info.is_main else null_sink)
    except Exception as e:  # one line per rank, not a traceback
        print(f"\nerror (rank {info.rank}): {e}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()
    if info.is_main:
        print(json.dumps(result))
    return 130 if result["status"] == "stopped" else 0


if __name__ == "__main__":
    sys.exit(main())
