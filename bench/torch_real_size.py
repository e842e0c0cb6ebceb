"""PyTorch-eager side of the real-size benchmark: the LoRA job tunelab runs, on the same Hugging Face model folder.

    /usr/bin/python3 bench/torch_real_size.py MODEL_DIR '{"seq":512,"batch":1,"rank":16,"alpha":32,"steps":3,
                                                        "gen_prompt":32,"gen_tokens":32}'

Loads a Qwen2/Llama checkpoint (model.safetensors or a sharded index; BF16, F16 or F32) into float32, puts LoRA
(rank r, scaling alpha/r) on q/k/v/o/gate/up/down of every layer, trains `steps` AdamW steps on random tokens,
then decodes greedily with a per-layer key/value cache. Prints one JSON line with load time, time to the end of
the first step, ms per later step, peak RSS, decode speed, losses and the CPU's BLAS figure.
Needs Debian's python3-torch (1.13, CPU); the decoder math is Hugging Face's, as in test/models/reference.py.
"""
import time

T0 = time.perf_counter()  # "script start": every *_s figure below counts from here, torch import included

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "models"))
from reference import rms_norm, rope_inv_freq, rotate_half  # noqa: E402

ADAPTED = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}
STORED = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def since_start():
    return time.perf_counter() - T0


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------------------------------------------
# Loading. reference.read_safetensors reads the whole file into memory and widens it to float64, which would need
# several times the file size; here each tensor is read into its own buffer and widened to float32 on its own, so
# the peak is the float32 model plus one tensor in its stored dtype.


def read_safetensors_f32(path, out):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            shape = info["shape"]
            if end == begin:
                out[name] = torch.zeros(shape)
                continue
            buf = bytearray(end - begin)
            f.seek(base + begin)
            f.readinto(buf)
            stored = torch.frombuffer(buf, dtype=STORED[info["dtype"]]).reshape(shape)
            # F32 keeps the buffer as its storage; BF16/F16 get a fresh float32 tensor and the buffer is dropped.
            out[name] = stored if stored.dtype == torch.float32 else stored.float()


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    W = {}
    for name in files:
        read_safetensors_f32(os.path.join(model_dir, name), W)
    for t in W.values():
        t.requires_grad_(False)
    return W, sum(os.path.getsize(os.path.join(model_dir, name)) for name in files)


def lm_head(cfg, W):
    if cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in W:
        return W["model.embed_tokens.weight"]
    return W["lm_head.weight"]


def make_lora(cfg, W, rank):
    """A kaiming-uniform in ±1/sqrt(in), B zeros, as PEFT initialises them; shapes come from the base weights."""
    lora = {}
    for layer in range(cfg["num_hidden_layers"]):
        for group, names in ADAPTED.items():
            for name in names:
                path = f"model.layers.{layer}.{group}.{name}"
                out_features, in_features = W[path + ".weight"].shape
                a = (torch.rand(rank, in_features) * 2 - 1) / math.sqrt(in_features)
                lora[path + ".lora_A"] = a.requires_grad_()
                lora[path + ".lora_B"] = torch.zeros(out_features, rank, requires_grad=True)
    return lora


# ---------------------------------------------------------------------------------------------------------------
# The decoder, Hugging Face's eager math in float32. `cache` is None for training; for generation it is a list with
# one [k, v] per layer (after rotary, before the grouped-query repeat) that each call extends, as DynamicCache does.


class Decoder:
    def __init__(self, cfg, W, lora, scaling):
        self.cfg, self.W, self.lora, self.scaling = cfg, W, lora, scaling
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = cfg.get("head_dim", cfg["hidden_size"] // self.nh)
        self.eps = cfg["rms_norm_eps"]
        self.head = lm_head(cfg, W)
        self.inv_freq = rope_inv_freq(cfg, self.hd)

    def linear(self, x, path):
        # Biases are used where the checkpoint has them (Qwen2's q/k/v; attention_bias/mlp_bias models).
        y = F.linear(x, self.W[path + ".weight"], self.W.get(path + ".bias"))
        if path + ".lora_A" in self.lora:
            y = y + F.linear(F.linear(x, self.lora[path + ".lora_A"]), self.lora[path + ".lora_B"]) * self.scaling
        return y

    def rotary(self, start, length):
        pos = torch.arange(start, start + length, dtype=torch.float64)
        emb = torch.outer(pos, self.inv_freq).repeat(1, 2)
        return emb.cos().float(), emb.sin().float()

    def attention(self, x, p, cos, sin, mask, cache):
        B, S, _ = x.shape
        q = self.linear(x, p + ".q_proj").view(B, S, self.nh, self.hd).transpose(1, 2)
        k = self.linear(x, p + ".k_proj").view(B, S, self.nkv, self.hd).transpose(1, 2)
        v = self.linear(x, p + ".v_proj").view(B, S, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
        k = k.repeat_interleave(self.nh // self.nkv, dim=1)  # HF's repeat_kv
        v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        if mask is not None:
            scores = scores + mask
        o = torch.softmax(scores, dim=-1) @ v
        return self.linear(o.transpose(1, 2).reshape(B, S, self.nh * self.hd), p + ".o_proj")

    def hidden(self, ids, start=0, caches=None):
        """Final-norm hidden states of `ids`, which sit at positions start.. (start > 0 only with caches)."""
        S = ids.shape[1]
        cos, sin = self.rotary(start, S)
        mask = None
        if S > 1:  # a single new token may see the whole cache; longer runs need the causal mask
            blocked = torch.ones(S, start + S, dtype=torch.bool).triu(diagonal=start + 1)
            mask = torch.zeros(S, start + S).masked_fill(blocked, torch.finfo(torch.float32).min)
        x = self.W["model.embed_tokens.weight"][ids]
        for layer in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{layer}"
            cache = caches[layer] if caches is not None else None
            h = rms_norm(x, self.W[p + ".input_layernorm.weight"], self.eps)
            x = x + self.attention(h, p + ".self_attn", cos, sin, mask, cache)
            h = rms_norm(x, self.W[p + ".post_attention_layernorm.weight"], self.eps)
            g = F.silu(self.linear(h, p + ".mlp.gate_proj")) * self.linear(h, p + ".mlp.up_proj")
            x = x + self.linear(g, p + ".mlp.down_proj")
        return rms_norm(x, self.W["model.norm.weight"], self.eps)

    def loss(self, ids):
        # transformers shifts logits[:, :-1] against labels[:, 1:]; the last position's logits are never used, so
        # they are not computed, and the [B*(S-1), vocab] float32 logits are built once.
        x = self.hidden(ids)[:, :-1]
        logits = F.linear(x, self.head)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    def next_token(self, ids, start, caches):
        x = self.hidden(ids, start, caches)[:, -1:]
        return F.linear(x, self.head).argmax(-1)


# ---------------------------------------------------------------------------------------------------------------


def train(model, lora, ids, steps):
    params = list(lora.values())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    losses, times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss = model.loss(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
        if len(times) == 1:
            first_step_end = since_start()
    return losses, first_step_end, times[1:]


@torch.no_grad()
def generate(model, prompt, loop_tokens):
    """Greedy decoding. The prompt pass fills the caches and picks the first new token (timed as prefill); the timed
    loop then runs `loop_tokens` single-token passes, each attending over the cache and picking one more token."""
    caches = [[None, None] for _ in range(model.cfg["num_hidden_layers"])]
    start = time.perf_counter()
    token = model.next_token(prompt, 0, caches)
    prefill_s = time.perf_counter() - start
    out = [token.item()]
    pos = prompt.shape[1]
    start = time.perf_counter()
    for _ in range(loop_tokens):
        token = model.next_token(token, pos, caches)
        pos += 1
        out.append(token.item())
    return out, prefill_s, time.perf_counter() - start


def blas_figures():
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    a @ b  # warm-up
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    config = torch.__config__.show().replace(",", " ").split()
    blas = next((part.split("=", 1)[1] for part in config if part.startswith("BLAS_INFO=")), "unknown")
    return 2 * 1024**3 / best / 1e9, blas


def main():
    model_dir, job = sys.argv[1], json.loads(sys.argv[2])
    steps = max(3, job.get("steps", 3))  # the first step is warm-up; at least two more are timed
    batch, seq, rank = job["batch"], job["seq"], job["rank"]
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)

    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W, file_bytes = load_weights(model_dir)
    lora = make_lora(cfg, W, rank)
    model = Decoder(cfg, W, lora, job["alpha"] / rank)
    load_s = since_start()
    params = sum(t.numel() for t in W.values())

    vocab_hi = min(cfg["vocab_size"], 32000)
    ids = torch.randint(3, vocab_hi, (batch, seq))
    losses, first_step_end_s, later = train(model, lora, ids, steps)
    step_s = sum(later) / len(later)
    rss_train = peak_rss_mb()

    gen_tokens = job.get("gen_tokens", 32)
    prompt = torch.randint(3, vocab_hi, (1, job.get("gen_prompt", 32)))
    # gen_tokens new tokens in all, as bench/real-size-worker.ts counts them: the first from the prompt pass, the
    # other gen_tokens - 1 from the timed loop.
    generated, prefill_s, decode_s = generate(model, prompt, gen_tokens - 1)

    gflops, blas = blas_figures()
    print(json.dumps({
        "load_s": load_s,
        "first_step_end_s": first_step_end_s,
        "ms_per_step": step_s * 1000,
        "tokens_per_s": batch * seq / step_s,
        "peak_rss_mb": rss_train,
        "peak_rss_mb_total": peak_rss_mb(),
        "weights_file_mb": file_bytes / 2**20,
        "params": params,
        "prefill_s": prefill_s,
        "gen_tokens_per_s": (gen_tokens - 1) / decode_s if gen_tokens > 1 else None,
        "generated": generated,
        "losses": losses,
        "matmul_gflops": gflops,
        "blas": blas,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
