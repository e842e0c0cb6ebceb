/**
 * GGUF export checked by real llama.cpp (node-llama-cpp's prebuilt CPU binaries): it loads each file, tokenises as
 * tunelab does, reads the chat template, and its greedy tokens equal tunelab's for F16. For Q8_0 and Q4_0 it must
 * agree, position by position, with tunelab run on the very values the quantised blocks stand for (llama.cpp
 * also rounds activations to 8 bits inside its quantised matmuls, so agreement is measured, not exact).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportModel } from "../../sdk/export/export";
import {
  dequantizeQ4_0,
  dequantizeQ4_K,
  dequantizeQ6_K,
  dequantizeQ8_0,
  quantizeQ4_0,
  quantizeQ4_K,
  quantizeQ6_K,
  quantizeQ8_0,
} from "../../sdk/export/gguf-quant";
import { permuteRotaryRows } from "../../sdk/export/gguf";
import { MergedWeights } from "../../sdk/export/merged-weights";
import { createTinyModel } from "../../sdk/io/tiny";
import { buildOnnxExportGraph, optimumNames } from "../../sdk/export/onnx";
import { sessionForGraph } from "../../sdk/runtime/graph-session";
import type { HostTensor } from "../../sdk/runtime/session";
import { openModel, type BaseModel } from "../../sdk/models/model";
import type { Adapter } from "../../sdk/models/lora";
import { Rng } from "../../sdk/util/random";
import { argmax, importEsm, randomAdapter, tempDir, tinyModel, tunelabGreedy } from "./helpers";

interface LlamaModelLike {
  tokenize(text: string): number[];
  fileInfo: { metadata: Record<string, unknown> };
  createContext(o: { contextSize: number; threads: number }): Promise<LlamaContextLike>;
  dispose(): Promise<void>;
}
interface LlamaContextLike {
  getSequence(): {
    evaluate(tokens: number[], o: { temperature: number }): AsyncGenerator<number>;
    controlledEvaluate(
      items: [number, { generateNext: { logits: true } | { token: true; options: { temperature: number } } }][],
    ): Promise<({ next: { logits?: Map<number, number>; token?: number | null } } | undefined)[]>;
  };
  dispose(): Promise<void>;
}
interface LlamaLike {
  loadModel(o: { modelPath: string }): Promise<LlamaModelLike>;
}

let llamaPromise: Promise<LlamaLike> | undefined;
function llama(): Promise<LlamaLike> {
  llamaPromise ??= importEsm("node-llama-cpp").then((m) =>
    (m as { getLlama(o: object): Promise<LlamaLike> }).getLlama({ gpu: false, build: "never", logLevel: "error" }),
  );
  return llamaPromise;
}
after(async () => {
  if (llamaPromise) await ((await llamaPromise) as unknown as { dispose(): Promise<void> }).dispose();
});

/** What llama.cpp makes of a GGUF file: greedy tokens, next-token choice (and logits) after each token of `sequence`. */
interface LlamaCppView {
  greedy: number[];
  /** Argmax after each token of `sequence`. */
  top: number[];
  /** Full logits after each token (when asked for). */
  logits: Map<number, number>[] | null;
  tokens: number[];
  metadata: Record<string, unknown>;
}

async function llamaCpp(file: string, prompt: number[], maxNewTokens: number, sequence: number[], text: string, fullLogits: boolean): Promise<LlamaCppView> {
  const model = await (await llama()).loadModel({ modelPath: file });
  try {
    const greedy: number[] = [];
    if (maxNewTokens > 0) {
      const ctx = await model.createContext({ contextSize: 128, threads: 1 });
      for await (const t of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
        greedy.push(t);
        if (greedy.length >= maxNewTokens) break;
      }
      await ctx.dispose();
    }
    const ctx = await model.createContext({ contextSize: 128, threads: 1 });
    // Without logits, llama.cpp's own greedy choice (temperature 0) after each token.
    const next = fullLogits ? { logits: true as const } : { token: true as const, options: { temperature: 0 } };
    const out = await ctx.getSequence().controlledEvaluate(sequence.map((t) => [t, { generateNext: next }]));
    await ctx.dispose();
    const maps = fullLogits
      ? out.map((o, i) => {
          const map = o?.next.logits;
          if (!map || map.size === 0) throw new Error(`llama.cpp gave no logits at position ${i}`);
          return map;
        })
      : null;
    const top = maps
      ? maps.map((m) => m.keys().next().value as number)
      : out.map((o, i) => {
          const t = o?.next.token;
          if (typeof t !== "number") throw new Error(`llama.cpp chose no token at position ${i}`);
          return t;
        });
    return {
      greedy,
      top,
      logits: maps,
      tokens: model.tokenize(text),
      metadata: model.fileInfo.metadata,
    };
  } finally {
    await model.dispose();
  }
}

/** Merged weights with every matrix replaced by what its quantised blocks stand for (the GGUF file's values). */
class DequantizedWeights extends MergedWeights {
  constructor(
    model: BaseModel,
    adapter: Adapter | null,
    private readonly type: "q8_0" | "q4_0" | "q4_k_m",
  ) {
    super(model, adapter);
  }

  override get(name: string) {
    const t = super.get(name);
    if (t.shape.length === 1) return t;
    if (this.type === "q8_0") return { shape: t.shape, data: dequantizeQ8_0(quantizeQ8_0(t.data)) };
    if (this.type === "q4_0") return { shape: t.shape, data: dequantizeQ4_0(quantizeQ4_0(t.data)) };
    // Q4_K_M as llama-quantize mixes it: with 2 layers, use_more_bits keeps layer 1's attn_v and ffn_down in Q6_K.
    const six = name === "lm_head.weight" || /^model\.layers\.1\.(self_attn\.v_proj|mlp\.down_proj)\.weight$/.test(name);
    return { shape: t.shape, data: six ? dequantizeQ6_K(quantizeQ6_K(t.data)) : dequantizeQ4_K(quantizeQ4_K(t.data)) };
  }
}

/** tunelab's next-token logits after each token of `sequence`, from its decoder graph over these weights in one pass. */
async function tunelabLogits(weights: MergedWeights, sequence: number[]): Promise<Float32Array[]> {
  const c = weights.config;
  const session = await sessionForGraph(buildOnnxExportGraph(weights));
  try {
    const ids = { dtype: "int64" as const, shape: [1, sequence.length], data: BigInt64Array.from(sequence.map(BigInt)) };
    const feeds: Record<string, HostTensor> = {
      input_ids: ids,
      attention_mask: { ...ids, data: new BigInt64Array(sequence.length).fill(1n) },
      position_ids: { ...ids, data: BigInt64Array.from(sequence.map((_, i) => BigInt(i))) },
    };
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const empty = { dtype: "float32" as const, shape: [1, c.numKeyValueHeads, 0, c.headDim], data: new Float32Array(0) };
      feeds[optimumNames.pastKey(l)] = empty;
      feeds[optimumNames.pastValue(l)] = empty;
    }
    const logits = (await session.run(feeds, ["logits"])).logits.data as Float32Array;
    const v = c.vocabSize;
    return sequence.map((_, i) => logits.slice(i * v, (i + 1) * v));
  } finally {
    await session.release();
  }
}

/** The largest difference between llama.cpp's and tunelab's logits over every position and token. */
function worstDifference(cpp: Map<number, number>[], ours: Float32Array[]): number {
  let worst = 0;
  cpp.forEach((m, i) => m.forEach((v, tok) => (worst = Math.max(worst, Math.abs(v - ours[i][tok])))));
  return worst;
}

/** Share of positions where the two argmaxes agree. */
function agreement(top: number[], b: Float32Array[]): number {
  let same = 0;
  for (let i = 0; i < top.length; i++) if (top[i] === argmax(b[i])) same++;
  return same / top.length;
}

for (const c of [
  { arch: "llama" as const, tied: false, lora: true },
  { arch: "qwen2" as const, tied: true, lora: false },
]) {
  test(`gguf ${c.arch}${c.lora ? " with a LoRA merged" : ""}: llama.cpp loads F16, Q8_0 and Q4_0; F16 greedy tokens equal tunelab's`, async () => {
    const model = tinyModel(c.arch, { tied: c.tied });
    const adapter = c.lora ? randomAdapter(model) : null;
    const prompt = model.tokenizer.encode("The quick brown fox");
    const greedy = await tunelabGreedy(model, adapter, prompt, 24);
    const sequence = [...prompt, ...greedy];

    const f16 = await exportModel(model, adapter, path.join(tempDir(), "f16"), { format: "gguf", outtype: "f16" });
    assert.deepEqual(f16.files, ["Modelfile", "model-f16.gguf"]);
    assert.deepEqual(f16.warnings, []);
    const text = "Hello, world! 123";
    const cpp = await llamaCpp(path.join(f16.dir, "model-f16.gguf"), prompt, 24, sequence, text, true);
    assert.deepEqual(cpp.greedy, greedy, "llama.cpp's greedy tokens from the F16 file");
    // Logits themselves: F16 weights against tunelab's float32, at every position.
    const ours = await tunelabLogits(new MergedWeights(model, adapter), sequence);
    const worst = worstDifference(cpp.logits!, ours);
    console.log(`${c.arch} F16: largest logit difference from tunelab over ${sequence.length} positions: ${worst.toExponential(2)}`);
    assert.ok(worst < 0.1, `F16 logits differ from tunelab's by up to ${worst}`);
    // Tokenizer and chat template travelled in the metadata.
    assert.deepEqual(cpp.tokens, model.tokenizer.encode(text, { addSpecialTokens: false }));
    const meta = cpp.metadata as { tokenizer: { chat_template: string; ggml: { model: string } }; general: { architecture: string } };
    assert.equal(meta.general.architecture, c.arch);
    assert.equal(meta.tokenizer.ggml.model, "gpt2");
    assert.equal(meta.tokenizer.chat_template, model.tokenizer.chatTemplates.default);
    const modelfile = fs.readFileSync(path.join(f16.dir, "Modelfile"), "utf8");
    assert.match(modelfile, /^FROM \.\/model-f16\.gguf$/m);
    assert.match(modelfile, /^PARAMETER stop "<\|im_end\|>"$/m);

    // Quantised files: llama.cpp against tunelab on the values the blocks stand for. Its logits stay within the
    // noise of its 8-bit activations, much closer to those values than to the unquantised model's, and wherever
    // tunelab's top choice leads by a clear margin llama.cpp makes the same choice.
    for (const [outtype, maxDiff, minAgreement] of [
      ["q8_0", 0.5, 0.85],
      ["q4_0", 0.8, 0.85],
    ] as const) {
      const q = await exportModel(model, adapter, path.join(tempDir(), outtype), { format: "gguf", outtype });
      const qcpp = await llamaCpp(path.join(q.dir, `model-${outtype}.gguf`), prompt, 0, sequence, text, true);
      const twin = await tunelabLogits(new DequantizedWeights(model, adapter, outtype), sequence);
      const toTwin = worstDifference(qcpp.logits!, twin);
      const toFull = worstDifference(qcpp.logits!, ours);
      const withTwin = agreement(qcpp.top, twin);
      console.log(
        `${c.arch} ${outtype}: ${(q.bytes / f16.bytes).toFixed(2)} of F16's size; largest logit difference ${toTwin.toFixed(3)} from tunelab on the ` +
          `dequantised weights (${toFull.toFixed(3)} from the unquantised model); top-1 agreement ${withTwin.toFixed(3)} (${agreement(qcpp.top, ours).toFixed(3)} with the unquantised model)`,
      );
      assert.ok(toTwin < maxDiff, `${outtype}: llama.cpp's logits differ from the dequantised weights' by ${toTwin}`);
      assert.ok(toTwin < toFull / 2, `${outtype}: llama.cpp is not closer to the quantised values (${toTwin}) than to the original weights (${toFull})`);
      assert.ok(withTwin >= minAgreement, `${outtype}: llama.cpp agrees with the dequantised weights at only ${withTwin} of positions`);
      twin.forEach((l, i) => {
        const sorted = Array.from(l).sort((x, y) => y - x);
        if (sorted[0] - sorted[1] > 0.25)
          assert.equal(qcpp.top[i], argmax(l), `${outtype}: position ${i}, where tunelab's choice leads by ${sorted[0] - sorted[1]}`);
      });
      assert.ok(q.bytes < f16.bytes, `${outtype} is smaller than F16`);
    }
  });
}

test("gguf llama with Llama 3 rope scaling: llama.cpp reads the rope_freqs factors and its F16 greedy tokens equal tunelab's", async () => {
  // A short original context, so at head_dim 16 all three frequency bands of the Llama 3 scaling occur.
  const ropeScaling = { rope_type: "llama3" as const, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  const model = tinyModel("llama", { seed: 4, ropeScaling });
  const prompt = model.tokenizer.encode("A longer prompt, so that positions past the original context of sixty-four tokens are reached.");
  const greedy = await tunelabGreedy(model, null, prompt, 24);
  const out = await exportModel(model, null, path.join(tempDir(), "rope"), { format: "gguf", outtype: "f16" });
  const cpp = await llamaCpp(path.join(out.dir, "model-f16.gguf"), prompt, 24, [...prompt, ...greedy], "x", false);
  assert.ok(prompt.length + 24 > 64);
  assert.deepEqual(cpp.greedy, greedy);
  // The scaling matters here: the same weights without it continue differently.
  const plain = tinyModel("llama", { seed: 4 });
  assert.notDeepEqual(await tunelabGreedy(plain, null, prompt, 24), greedy);
});

test("gguf q4_k_m: llama.cpp reads the Q4_K/Q6_K mix; its logits follow the dequantised weights, not the originals", async () => {
  // Rows of 256 and 512 values: whole k-quant super-blocks.
  const dir = tempDir();
  createTinyModel({ arch: "llama", out: dir, seed: 3, hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, initStd: 0.2 });
  const model = openModel(dir);
  const sequence = model.tokenizer.encode("The quick brown fox jumps over the lazy dog and keeps running far away");
  const q = await exportModel(model, null, path.join(tempDir(), "k"), { format: "gguf", outtype: "q4_k_m" });
  assert.deepEqual(q.warnings, []);
  const cpp = await llamaCpp(path.join(q.dir, "model-q4_k_m.gguf"), [], 0, sequence, "x", true);
  const twin = await tunelabLogits(new DequantizedWeights(model, null, "q4_k_m"), sequence);
  const full = await tunelabLogits(new MergedWeights(model, null), sequence);
  const toTwin = worstDifference(cpp.logits!, twin);
  const toFull = worstDifference(cpp.logits!, full);
  const withTwin = agreement(cpp.top, twin);
  console.log(
    `llama q4_k_m: largest logit difference ${toTwin.toFixed(3)} from the dequantised weights, ${toFull.toFixed(3)} from the originals; top-1 agreement ${withTwin.toFixed(3)}`,
  );
  assert.ok(toTwin < toFull / 3, `llama.cpp is not much closer to the Q4_K/Q6_K values (${toTwin}) than to the original weights (${toFull})`);
  assert.ok(withTwin >= 0.8, `top-1 agreement with the dequantised weights ${withTwin}`);
  // Rows that are not whole super-blocks fall back to Q8_0, with a warning naming the tensor.
  const small = await exportModel(tinyModel("qwen2"), null, path.join(tempDir(), "k64"), { format: "gguf", outtype: "q4_k_m" });
  assert.match(
    small.warnings.join("\n"),
    /model\.layers\.0\.self_attn\.q_proj\.weight: rows of 64 values are not whole 256-value super-blocks; stored as Q8_0 instead of Q4_K/,
  );
});

test("gguf quantisers: blocks reconstruct within half a step, and the Llama Q/K permutation is a row permutation", () => {
  const rng = new Rng(1);
  const x = Float32Array.from({ length: 32 * 40 }, () => rng.normal() * Math.exp(rng.normal()));
  // Q8_0 rounds to the nearest of 255 levels; Q4_0's 16 levels are asymmetric (-8..7 steps), so a value opposite the
  // largest one may be clamped a whole step short.
  for (const [q, dq, steps, within] of [
    [quantizeQ8_0, dequantizeQ8_0, 127, 0.5],
    [quantizeQ4_0, dequantizeQ4_0, 8, 1],
  ] as const) {
    const y = dq(q(x));
    for (let b = 0; b < 40; b++) {
      const block = x.subarray(b * 32, b * 32 + 32);
      const amax = Math.max(...Array.from(block, Math.abs));
      const step = amax / steps;
      for (let j = 0; j < 32; j++) assert.ok(Math.abs(y[b * 32 + j] - block[j]) <= step * within + amax * 2e-3, `block ${b} value ${j}`);
    }
  }
  // k-quants, per 256-value super-block: Q4_K has 15 steps across each 32-value sub-block's [min, max]; Q6_K 32
  // steps per sign of each 16-value sub-block. Each value is within one of its sub-block's steps, plus the
  // rounding of the sub-block scales (and mins) to 6 bits (Q4_K) or 8 bits (Q6_K) under the super-block scale.
  const big = Float32Array.from({ length: 512 }, () => rng.normal() * Math.exp(rng.normal()));
  const y4 = dequantizeQ4_K(quantizeQ4_K(big));
  const y6 = dequantizeQ6_K(quantizeQ6_K(big));
  for (let sb = 0; sb < 2; sb++) {
    const at = (size: number, i: number) => Array.from(big.subarray(sb * 256 + i * size, sb * 256 + (i + 1) * size));
    const steps4 = Array.from({ length: 8 }, (_, i) => (Math.max(...at(32, i)) - Math.min(0, ...at(32, i))) / 15);
    const mins4 = Array.from({ length: 8 }, (_, i) => -Math.min(0, ...at(32, i)));
    const steps6 = Array.from({ length: 16 }, (_, i) => Math.max(...at(16, i).map(Math.abs)) / 32);
    for (let j = 0; j < 256; j++) {
      const i = sb * 256 + j;
      const b4 = steps4[j >> 5] + (15 * Math.max(...steps4)) / 126 + Math.max(...mins4) / 126 + 1e-6;
      const b6 = steps6[j >> 4] + Math.max(...steps6) / 8 + 1e-6;
      assert.ok(Math.abs(y4[i] - big[i]) <= b4, `Q4_K value ${i}: ${y4[i]} vs ${big[i]} (bound ${b4})`);
      assert.ok(Math.abs(y6[i] - big[i]) <= b6, `Q6_K value ${i}: ${y6[i]} vs ${big[i]} (bound ${b6})`);
    }
  }
  // 2 heads of dimension 4, 1 column: rows [h0: a0 a1 b0 b1 | h1: ...] (halves) become interleaved pairs a0 b0 a1 b1.
  assert.deepEqual(Array.from(permuteRotaryRows(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 8, 1, 2)), [0, 2, 1, 3, 4, 6, 5, 7]);
});

test("gguf: a matrix whose rows are not whole 32-value blocks is refused for Q8_0 with the tensor named", async () => {
  const odd = tempDir();
  createTinyModel({ arch: "qwen2", out: odd, seed: 1, hiddenSize: 48, numHeads: 4, numKvHeads: 2 }); // rows of 48 values
  await assert.rejects(
    () => exportModel(openModel(odd), null, path.join(tempDir(), "q"), { format: "gguf", outtype: "q8_0" }),
    /"model\.embed_tokens\.weight" has rows of 48 values; Q8_0 needs a multiple of 32/,
  );
});
