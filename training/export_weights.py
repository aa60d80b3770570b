"""Write a weights-only copy of a training checkpoint (what ships as c2f_core/assets/c2f_synthetic.pt).

    python training/export_weights.py runs/ft1/best.pt c2f_core/assets/c2f_synthetic.pt \
        --trained-on "c2f synth: ... (one line naming the training data)"

Keeps the config, step, best validation loss and the weights; drops the optimizer and schedule
state (a third of the size). The result loads with `c2f reconstruct --checkpoint` like any run's.
"""

from __future__ import annotations

import argparse

from c2f_core.train.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    """Export."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--trained-on", default="", help="one line naming the training data")
    args = parser.parse_args()
    data = load_checkpoint(args.source)
    payload = {key: data[key] for key in ("config", "step", "model", "best_val") if key in data}
    payload["trained_on"] = args.trained_on
    save_checkpoint(args.target, payload)
    print(f"{args.target}: step {payload['step']}, {len(payload['model'])} tensors")


if __name__ == "__main__":
    main()
