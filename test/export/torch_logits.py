"""Loads a tunelab PyTorch export with torch.load(weights_only=True) and runs the Hugging Face Llama/Qwen2 forward
of test/models/reference.py on it. Reads {"dir", "input_ids"} as JSON on stdin; prints the state_dict's keys and
dtypes and the last position's logits of each row. Never imports tunelab."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from reference import forward_logits  # noqa: E402


def main():
    spec = json.load(sys.stdin)
    cfg = json.load(open(os.path.join(spec["dir"], "config.json")))
    state = torch.load(os.path.join(spec["dir"], "pytorch_model.bin"), weights_only=True)
    W = {k: v.to(torch.float64) for k, v in state.items()}
    ids = torch.tensor(spec["input_ids"])
    logits = forward_logits(cfg, W, {}, 0.0, ids, torch.ones_like(ids))
    print(json.dumps({
        "type": type(state).__name__,
        "keys": list(state.keys()),
        "dtypes": sorted({str(v.dtype) for v in state.values()}),
        "logits": logits[:, -1].tolist(),
    }))


if __name__ == "__main__":
    main()
