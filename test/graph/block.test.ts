/**
 * A whole pre-norm Llama-style decoder block, with LoRA on the query projection, checked against central finite
 * differences in float64: embedding -> RMSNorm -> q/k/v -> heads -> rotary -> grouped-query attention with causal and
 * padding masks -> output projection -> residual -> RMSNorm -> SwiGLU MLP -> residual -> RMSNorm -> logits ->
 * cross-entropy with ignored labels. Sizes are tiny so the ~1,300 perturbed runs stay fast.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Builder, Value } from "../../sdk/graph";
import { gradCheck, InputSpec, uniform } from "./gradcheck";

const B = 2; // batch
const S = 5; // sequence
const H = 8; // hidden
const NH = 4; // query heads
const NKV = 2; // key/value heads
const HD = 2; // head dim
const F = 12; // MLP width
const V = 7; // vocabulary
const R = 2; // LoRA rank
const LORA_SCALE = 4 / R; // lora_alpha / lora_rank

// Batch 0 is full length, batch 1 has two padded positions. Token 5 appears only at the last position of batch 0,
// whose label is ignored; token 6 only at the padded positions. With working causal and padding masks neither can
// reach a counted label, so their embedding rows must get exactly zero gradient.
const IDS = [1, 2, 3, 4, 5, 2, 0, 1, 6, 6];
const MASK = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
const LABELS = [-100, 3, 4, 0, -100, 0, 1, 4, -100, -100];

/** Rotary tables [S, HD] (rotate-half layout: the frequencies repeated for both halves), theta 10000. */
function ropeTables(): { cos: number[]; sin: number[] } {
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < S; p++) {
    for (let i = 0; i < HD; i++) {
      const freq = 1 / 10000 ** ((2 * (i % (HD / 2))) / HD);
      cos.push(Math.cos(p * freq));
      sin.push(Math.sin(p * freq));
    }
  }
  return { cos, sin };
}

/** rotate_half: concat(-x[..., HD/2:], x[..., :HD/2]) on the last axis. */
function rotateHalf(b: Builder, x: Value): Value {
  const half = HD / 2;
  const lo = b.slice(x, [0], [half], [-1]);
  const hi = b.slice(x, [half], [HD], [-1]);
  return b.concat([b.neg(hi), lo], -1);
}

/** [B, S, n*HD] -> [B, n, S, HD]. */
function heads(b: Builder, x: Value, n: number): Value {
  return b.transpose(b.reshape(x, [0, 0, n, HD]), [0, 2, 1, 3]);
}

/** Repeats each of the NKV key/value heads NH/NKV times: [B, NKV, S, HD] -> [B, NH, S, HD]. */
function repeatKv(b: Builder, x: Value, how: "expand" | "concat"): Value {
  const rep = NH / NKV;
  const x5 = b.unsqueeze(x, [2]); // [B, NKV, 1, S, HD]
  const tiled =
    how === "expand"
      ? b.expand(x5, b.int64s([B, NKV, rep, S, HD]), [B, NKV, rep, S, HD])
      : b.concat(
          Array.from({ length: rep }, () => x5),
          2,
        );
  return b.reshape(tiled, [0, NH, S, HD]);
}

type Weights = Record<
  "embed" | "attnNorm" | "wq" | "wk" | "wv" | "wo" | "loraA" | "loraB" | "mlpNorm" | "wGate" | "wUp" | "wDown" | "finalNorm" | "lmHead",
  Value
>;

/** The block's loss from token ids, attention mask, labels and weights (all projections stored [in, out]). */
function blockLoss(b: Builder, ids: Value, mask: Value, labels: Value, w: Weights, gqa: "expand" | "concat"): Value {
  const eps = 1e-6;
  const x = b.gather(w.embed, ids, 0); // [B, S, H]

  const h = b.rmsNorm(x, w.attnNorm, eps);
  const loraQ = b.mul(b.matmul(b.matmul(h, b.transpose(w.loraA, [1, 0])), b.transpose(w.loraB, [1, 0])), b.scalar(LORA_SCALE, "float64"));
  const q0 = heads(b, b.add(b.matmul(h, w.wq), loraQ), NH);
  const k0 = heads(b, b.matmul(h, w.wk), NKV);
  const v = heads(b, b.matmul(h, w.wv), NKV);

  const { cos, sin } = ropeTables();
  const cosT = b.constant(cos, [S, HD], "float64", "rope_cos");
  const sinT = b.constant(sin, [S, HD], "float64", "rope_sin");
  const rope = (t: Value) => b.add(b.mul(t, cosT), b.mul(rotateHalf(b, t), sinT));
  const q = rope(q0);
  const k = repeatKv(b, rope(k0), gqa);
  const vv = repeatKv(b, v, gqa);

  const causal: number[] = [];
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) causal.push(j > i ? -1e9 : 0);
  const causalMask = b.constant(causal, [S, S], "float64", "causal_mask");
  const padMask = b.unsqueeze(b.mul(b.sub(b.scalar(1, "float64"), b.cast(mask, "float64")), b.scalar(-1e9, "float64")), [1, 2]);
  let scores = b.mul(b.matmul(q, b.transpose(k, [0, 1, 3, 2])), b.scalar(1 / Math.sqrt(HD), "float64"));
  scores = b.add(b.add(scores, causalMask), padMask);
  const attn = b.matmul(b.softmax(scores, -1), vv); // [B, NH, S, HD]
  const merged = b.reshape(b.transpose(attn, [0, 2, 1, 3]), [0, 0, NH * HD]);
  const h1 = b.add(x, b.matmul(merged, w.wo));

  const h2 = b.rmsNorm(h1, w.mlpNorm, eps);
  const mlp = b.matmul(b.mul(b.silu(b.matmul(h2, w.wGate)), b.matmul(h2, w.wUp)), w.wDown);
  const h3 = b.add(h1, mlp);

  const logits = b.matmul(b.rmsNorm(h3, w.finalNorm, eps), w.lmHead); // [B, S, V]
  return b.crossEntropy(b.reshape(logits, [-1, V]), b.reshape(labels, [-1]), -100, "mean");
}

const WEIGHT_SHAPES: [keyof Weights, number[], InputSpec["data"]?][] = [
  ["embed", [V, H]],
  ["attnNorm", [H], uniform(0.6, 1.4)],
  ["wq", [H, NH * HD], scaled(0.4)],
  ["wk", [H, NKV * HD], scaled(0.4)],
  ["wv", [H, NKV * HD], scaled(0.4)],
  ["wo", [NH * HD, H], scaled(0.4)],
  ["loraA", [R, H], scaled(0.4)],
  ["loraB", [NH * HD, R], scaled(0.4)], // non-zero, so A's gradient is non-zero too
  ["mlpNorm", [H], uniform(0.6, 1.4)],
  ["wGate", [H, F], scaled(0.4)],
  ["wUp", [H, F], scaled(0.4)],
  ["wDown", [F, H], scaled(0.4)],
  ["finalNorm", [H], uniform(0.6, 1.4)],
  ["lmHead", [H, V], scaled(0.5)],
];

function scaled(std: number): InputSpec["data"] {
  return (rng) => std * rng.normal();
}

async function checkBlock(gqa: "expand" | "concat", symbolicBatch: boolean): Promise<void> {
  const tokens = (data: number[], name: string): InputSpec => ({
    name,
    shape: [B, S],
    declared: symbolicBatch ? ["batch", S] : undefined,
    dtype: "int64",
    data,
  });
  const inputs: InputSpec[] = [
    tokens(IDS, "ids"),
    tokens(MASK, "mask"),
    tokens(LABELS, "labels"),
    ...WEIGHT_SHAPES.map(([name, shape, data]) => ({ name, shape, data })),
  ];
  const r = await gradCheck({
    op: `decoder block (gqa via ${gqa}${symbolicBatch ? ", symbolic batch" : ""})`,
    inputs,
    build: (b, [ids, mask, labels, ...ws]) => {
      const w = Object.fromEntries(WEIGHT_SHAPES.map(([name], i) => [name, ws[i]])) as Weights;
      return blockLoss(b, ids, mask, labels, w, gqa);
    },
  });
  assert.ok(Number.isFinite(r.loss) && Number(r.output.data[0]) > 0, `loss ${r.output.data[0]} is a positive number`);
  WEIGHT_SHAPES.forEach(([name], i) => {
    const g = r.grads[3 + i]!;
    assert.ok(
      g.some((v) => Math.abs(v) > 1e-4),
      `gradient of ${name} is zero everywhere, the check proves nothing`,
    );
  });
  const dEmbed = r.grads[3]!;
  for (const token of [5, 6]) {
    for (let j = 0; j < H; j++)
      assert.ok(dEmbed[token * H + j] === 0, `token ${token} leaks through a mask (d embed[${token}, ${j}] = ${dEmbed[token * H + j]})`);
  }
}

test("decoder block with LoRA: every weight's gradient matches finite differences (GQA by Expand)", () => checkBlock("expand", false));
test("decoder block with LoRA, symbolic batch dim (GQA by Concat)", () => checkBlock("concat", true));
