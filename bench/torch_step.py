"""PyTorch eager reference for `npm run bench`: the same LoRA training step (forward, backward, clipping,
AdamW) on the same model, in float32 on the same CPU. Prints {"ms_per_step": ...}. Needs Debian's python3-torch."""
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "models"))
from reference import forward_loss, read_safetensors  # noqa: E402


def main():
    model_dir, ref = sys.argv[1], json.loads(sys.argv[2])
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W = {k: v.float() for k, v in read_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    h, r = cfg["hidden_size"], ref["rank"]
    hd = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h), "gate_proj": (h, cfg["intermediate_size"]), "up_proj": (h, cfg["intermediate_size"]), "down_proj": (cfg["intermediate_size"], h)}
    lora = {}
    for l in range(cfg["num_hidden_layers"]):
        for name, (i, o) in shapes.items():
            group = "mlp" if name in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            path = f"model.layers.{l}.{group}.{name}"
            lora[path + ".lora_A"] = (torch.rand(r, i) * 2 - 1).div(math.sqrt(i)).requires_grad_()
            lora[path + ".lora_B"] = torch.zeros(o, r).requires_grad_()
    opt = torch.optim.AdamW(lora.values(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(3, 253, (ref["batch"], ref["seq"]))
    mask = torch.ones_like(ids)

    def step():
        opt.zero_grad()
        loss = forward_loss(cfg, W, lora, 2.0, ids, mask, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora.values(), 1.0)
        opt.step()

    for _ in range(2):
        step()
    n = int(os.environ.get("TUNELAB_BENCH_STEPS", "5"))
    start = time.perf_counter()
    for _ in range(n):
        step()
    ms = (time.perf_counter() - start) * 1000 / n
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    gflops = 2 * 1024**3 * 5 / (time.perf_counter() - start) / 1e9
    blas = next((part.split("=")[1] for part in torch.__config__.show().replace(",", " ").split() if part.startswith("BLAS_INFO=")), "unknown")
    print(json.dumps({"ms_per_step": ms, "matmul_gflops": gflops, "blas": blas, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
