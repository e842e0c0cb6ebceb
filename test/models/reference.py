"""Independent reference for tunelab's decoder: Hugging Face's Llama/Qwen2 math written directly in PyTorch.

Reads a model folder (config.json + model.safetensors), a LoRA adapter given as JSON and a batch; prints the
causal-LM loss (mean NLL over predicted tokens) and the gradients of every LoRA tensor, in float64. A module with
a "<path>.lora_magnitude_vector" tensor is DoRA, written from PEFT's DoraLinearLayer (no dropout): with
s = m / ||W + scaling * B @ A|| per output row (the norm detached, DoRA paper section 4.3), the layer gives
base + bias + (s - 1) * base + s * scaling * B(A(x)), where base = x @ W.T.
Used only by the tests (Debian's python3-torch); it never imports tunelab.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin : 8 + n + end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        out[name] = torch.tensor(arr.astype(np.float64).reshape(info["shape"]))
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_inv_freq(cfg, hd):
    """transformers' rotary frequencies, with rope_scaling types default, linear and llama3."""
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return torch.where(medium, smoothed, scaled)
    return inv_freq


def forward_loss(cfg, W, lora, scaling, ids, mask, labels):
    """Causal-LM loss of Llama/Qwen2 with LoRA terms added to every adapted linear (transformers' math)."""
    logits = forward_logits(cfg, W, lora, scaling, ids, mask)
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def forward_logits(cfg, W, lora, scaling, ids, mask):
    """Logits [batch, seq, vocab] of Llama/Qwen2 with LoRA terms added to every adapted linear (transformers' math)."""
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim", H // nh)
    eps = cfg["rms_norm_eps"]
    qwen = cfg["model_type"] == "qwen2"
    B, S = ids.shape
    dtype = W["model.norm.weight"].dtype

    def linear(x, path, bias):
        base = x @ W[path + ".weight"].T
        y = base + W[path + ".bias"] if bias else base
        if path + ".lora_magnitude_vector" in lora:
            A, B, m = lora[path + ".lora_A"], lora[path + ".lora_B"], lora[path + ".lora_magnitude_vector"]
            weight_norm = torch.linalg.norm(W[path + ".weight"] + scaling * (B @ A).detach(), dim=1).detach()
            mag_norm_scale = (m / weight_norm).view(1, -1)
            return y + (mag_norm_scale - 1) * base + mag_norm_scale * ((x @ A.T) @ B.T) * scaling
        if path + ".lora_A" in lora:
            y = y + (x @ lora[path + ".lora_A"].T) @ lora[path + ".lora_B"].T * scaling
        return y

    inv_freq = rope_inv_freq(cfg, hd)
    pos = torch.arange(S, dtype=torch.float64)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)

    causal = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1)
    blocked = causal[None, None] | (mask == 0)[:, None, None, :]
    bias_mask = torch.zeros(B, 1, S, S, dtype=dtype).masked_fill(blocked, torch.finfo(dtype).min)

    x = W["model.embed_tokens.weight"][ids]
    qkv_bias = qwen or cfg.get("attention_bias", False)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}"
        h = rms_norm(x, W[p + ".input_layernorm.weight"], eps)
        q = linear(h, p + ".self_attn.q_proj", qkv_bias).view(B, S, nh, hd).transpose(1, 2)
        k = linear(h, p + ".self_attn.k_proj", qkv_bias).view(B, S, nkv, hd).transpose(1, 2)
        v = linear(h, p + ".self_attn.v_proj", qkv_bias).view(B, S, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias_mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, S, nh * hd)
        x = x + linear(o, p + ".self_attn.o_proj", (not qwen) and cfg.get("attention_bias", False))
        h2 = rms_norm(x, W[p + ".post_attention_layernorm.weight"], eps)
        mlp_bias = cfg.get("mlp_bias", False)
        g = torch.nn.functional.silu(linear(h2, p + ".mlp.gate_proj", mlp_bias)) * linear(h2, p + ".mlp.up_proj", mlp_bias)
        x = x + linear(g, p + ".mlp.down_proj", mlp_bias)
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


def main():
    spec = json.load(sys.stdin)
    cfg = json.load(open(spec["model"] + "/config.json"))
    W = read_safetensors(spec["model"] + "/model.safetensors")
    lora = {k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=True) for k, v in spec["lora"].items()}
    # Trainables arrive as nested lists; a 1-D magnitude vector may arrive as [[...]] (one row) and is flattened.
    lora = {k: (v.detach().flatten().requires_grad_(True) if k.endswith("lora_magnitude_vector") else v) for k, v in lora.items()}
    loss = forward_loss(cfg, W, lora, spec["scaling"], torch.tensor(spec["input_ids"]), torch.tensor(spec["attention_mask"]), torch.tensor(spec["labels"]))
    loss.backward()
    print(json.dumps({"loss": loss.item(), "grads": {k: v.grad.flatten().tolist() for k, v in lora.items()}}))


if __name__ == "__main__":
    main()
