/**
 * Will it fit? Predicts the peak memory of a LoRA training step before anything is loaded: the frozen weights in
 * the compute dtype, the LoRA tensors with their optimizer state, the activations alive at the worst moment of the
 * step (found by building the real train graph on shape-only weights and walking it in execution order), and the
 * runtime's own footprint.
 */
import type { Graph, Value } from "../graph/ir";
import { DTYPE_SIZE } from "../graph/ir";
import { expectedWeights, type ModelConfig } from "../io/config";
import { liveNodes } from "../graph/onnx";
import { DOUBLE_QUANT_BLOCK, QUANTIZED_WEIGHT, type QuantConfig } from "../io/quantize";
import { KEPT_16_BIT } from "../io/weight-cache";
import { loraModules, loraTrainables, makeLoraConfig } from "../models/lora";
import { causalLMForward } from "../models/tasks";
import { ShapeOnlyWeights, type ComputeDtype } from "../models/weights";
import { formatCell, htmlTable, textTable } from "../viz/table";
import { JUPYTER_DISPLAY, type Displayable, type MimeBundle } from "../viz/display";
import { stateSlots, type OptimizerOptions } from "./optimizers";
import { STREAMED_UPDATE_BYTES } from "./engine";
import { compileGradStep, compileTrainStep } from "./step";

/** What to estimate: LoRA on every linear layer, causal-LM loss, AdamW. */
export interface EstimateOptions {
  /** lora_rank (default 16). */
  rank?: number;
  /** per_device_train_batch_size (default 1). */
  batch?: number;
  /** Tokens per row, cutoff_len (default 512). */
  seq?: number;
  /** Frozen weights and activations in 16 bits (fp16) instead of float32. */
  halfPrecision?: boolean;
  /** Recompute each layer's activations in the backward pass (gradient_checkpointing). */
  gradientCheckpointing?: boolean;
  /** QLoRA: the decoder layers' linears in 4 bits (NF4, blocks of 64, double quantisation) or 8 bits (int8, blocks of 64). */
  quantizationBit?: 4 | 8;
  /** The memory to fit in, in bytes (a GPU's, or this machine's); omitted: no verdict. */
  budgetBytes?: number;
}

/** Predicted peak memory by part, in bytes. */
export interface MemoryEstimate {
  weights: number;
  loraAndOptimizer: number;
  activations: number;
  /** Node.js, onnxruntime and the tokenizer, measured once (RUNTIME_BYTES). */
  runtime: number;
  total: number;
  budget: number | null;
  fits: boolean | null;
}

/** Resident memory of a Node.js process with onnxruntime and a tokenizer loaded, before any model (measured). */
export const RUNTIME_BYTES = 300 * 2 ** 20;

/**
 * Measured peak RSS of the step's intermediates over the tensor bytes the graph walk finds alive at once: onnxruntime
 * kernels' scratch buffers and the C allocator's freed-but-kept memory. Fitted on `npm run bench` and
 * `bench:memory` runs (Qwen2.5-0.5B at 64 and 128 tokens, R1-Distill-Qwen-1.5B at 512) on the CPU provider.
 */
export const ACTIVATION_OVERHEAD = 1.85;

/**
 * The same factor for a quantised base (onnxruntime's 4-bit kernels keep scratch buffers of their own), fitted on two
 * `bench:memory` runs, NF4, 256 tokens, gradient checkpointing: the 7B preset (measured 6,639 MiB, estimated
 * 6,647 MiB) and a 4-layer model of the 7B's widths (3,126 MiB measured, 3,061 MiB estimated).
 */
export const QUANTIZED_ACTIVATION_OVERHEAD = 2.9;

/** Predicts the peak memory of one training step of `config` under `options`. */
export function estimateTrainingMemory(config: ModelConfig, options: EstimateOptions = {}): MemoryEstimate {
  const rank = options.rank ?? 16;
  const dtype: ComputeDtype = options.halfPrecision ? "float16" : "float32";
  const weightShapes = expectedWeights(config);
  const quant: QuantConfig | null = options.quantizationBit
    ? { type: options.quantizationBit === 8 ? "int8" : "nf4", blockSize: 64, doubleQuant: options.quantizationBit === 4 }
    : null;
  // A quantised base with its own lm_head reads only the batch's rows of the memory-mapped embedding: those pages alone
  // become resident. (Left as it was for 16/32-bit bases, whose overhead factor was fitted with the embedding counted.)
  const untiedEmbedding = quant && !config.tieWordEmbeddings && weightShapes.has("lm_head.weight");
  // A quantised base keeps a 16-bit checkpoint's vocabulary matrices in 16 bits (io/weight-cache.ts).
  const vocabulary16 = !!quant && dtype === "float32" && ["bfloat16", "float16"].includes(config.torchDtype ?? "");
  const weights = [...weightShapes]
    .filter(([name]) => !(untiedEmbedding && name === "model.embed_tokens.weight"))
    .reduce((n, [name, shape]) => n + weightBytes(name, shape, vocabulary16 && KEPT_16_BIT.test(name) ? "float16" : dtype, quant), 0);
  const modules = loraModules(config, makeLoraConfig({ r: rank, loraAlpha: 2 * rank, targetModules: "all-linear" }));
  const trainable = loraTrainables(modules, 0);
  const optimizer: OptimizerOptions = { name: "adamw" };
  const forward = causalLMForward({
    config,
    weights: new ShapeOnlyWeights(config, dtype, quant),
    lora: modules,
    loraDropout: 0,
    gradientCheckpointing: options.gradientCheckpointing,
  });
  const loraParams = trainable.reduce((n, t) => n + t.init.length, 0);
  const stateBytes = loraParams * 4 * (1 + stateSlots(optimizer).length);
  // The graph the engine runs: the fused step, or for a large trainable state the gradients alone (then an update in
  // place, chunk by chunk). JavaScript keeps the tensors and the optimizer's slots; a fused step's outputs are new
  // copies of both.
  const inPlace = stateBytes > STREAMED_UPDATE_BYTES;
  const graph = inPlace ? compileGradStep(forward, trainable) : compileTrainStep(forward, trainable, { optimizer, maxGradNorm: 1 });
  const loraAndOptimizer = inPlace ? stateBytes : 2 * stateBytes;
  const overhead = quant ? QUANTIZED_ACTIVATION_OVERHEAD : ACTIVATION_OVERHEAD;
  const activations = overhead * peakActivationBytes(graph, { batch: options.batch ?? 1, seq: options.seq ?? 512 });
  const total = weights + loraAndOptimizer + activations + RUNTIME_BYTES;
  const budget = options.budgetBytes ?? null;
  return { weights, loraAndOptimizer, activations, runtime: RUNTIME_BYTES, total, budget, fits: budget === null ? null : total <= budget };
}

/** Bytes of one frozen weight: in the compute dtype, or quantised (codes plus block scales, as io/weight-cache stores them). */
function weightBytes(name: string, shape: readonly number[], dtype: ComputeDtype, quant: QuantConfig | null): number {
  const n = numel(shape);
  if (!quant || !QUANTIZED_WEIGHT.test(name)) return n * DTYPE_SIZE[dtype];
  const blocks = n / quant.blockSize;
  const codes = quant.type === "int8" ? n : n / 2;
  const scales = quant.doubleQuant ? Math.ceil(blocks / DOUBLE_QUANT_BLOCK) * (DOUBLE_QUANT_BLOCK + 4) + 4 : blocks * 4;
  return codes + scales;
}

/**
 * The most bytes of intermediate tensors alive at once when the graph runs node by node in its order (the order
 * onnxruntime's sequential executor keeps for a graph built front to back): a tensor lives from the node that makes
 * it to its last reader. Graph inputs and outputs count from start to end; initializers do not (they are weights).
 * Nodes no output depends on are left out, as they are when the graph is written for onnxruntime.
 */
export function peakActivationBytes(graph: Graph, dims: Record<string, number>): number {
  const nodes = liveNodes(graph);
  const lastUse = new Map<Value, number>();
  nodes.forEach((node, i) => node.inputs.forEach((v) => v && lastUse.set(v, i)));
  const pinned = new Set<Value>([...graph.inputs, ...graph.outputs.map((o) => o.value)]);
  const bytes = (v: Value) => numel(v.shape.map((d) => (typeof d === "number" ? d : evalDim(d, dims)))) * DTYPE_SIZE[v.dtype];
  let live = graph.inputs.reduce((n, v) => n + bytes(v), 0);
  let peak = live;
  nodes.forEach((node, i) => {
    for (const out of node.outputs) live += bytes(out);
    peak = Math.max(peak, live);
    for (const v of new Set(node.inputs)) if (v && lastUse.get(v) === i && !pinned.has(v) && !graph.initializers.has(v)) live -= bytes(v);
    for (const out of node.outputs) if (!lastUse.has(out) && !pinned.has(out)) live -= bytes(out);
  });
  return peak;
}

/** Evaluates a symbolic dimension such as "batch*seq" or "seq-1+1" with the given sizes. */
export function evalDim(expr: string, dims: Record<string, number>): number {
  return expr.split("+").reduce((sum, term, i) => {
    const parts = term.split("-");
    const value = parts.reduce((acc, part, j) => {
      const product = part.split("*").reduce((p, f) => p * factor(f.trim(), dims, expr), 1);
      return j === 0 ? product : acc - product;
    }, 0);
    return i === 0 ? value : sum + value;
  }, 0);
}

function factor(f: string, dims: Record<string, number>, expr: string): number {
  if (/^\d+$/.test(f)) return Number(f);
  if (f in dims) return dims[f];
  throw new Error(`cannot size the dimension "${expr}": "${f}" is not one of ${Object.keys(dims).join(", ")}`);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** An estimate as a notebook table and a text table. */
export class MemoryEstimateView implements Displayable {
  constructor(
    readonly estimate: MemoryEstimate,
    readonly title: string,
  ) {}

  /** Rows of part and GiB. */
  rows(): [string, string][] {
    const e = this.estimate;
    const gib = (n: number) => `${formatCell(n / 2 ** 30, 2)} GiB`;
    const rows: [string, string][] = [
      ["frozen weights", gib(e.weights)],
      ["LoRA tensors and optimizer state", gib(e.loraAndOptimizer)],
      ["activations (peak)", gib(e.activations)],
      ["runtime (Node.js, onnxruntime)", gib(e.runtime)],
      ["total", gib(e.total)],
    ];
    if (e.budget !== null) rows.push(["budget", `${gib(e.budget)}: ${e.fits ? "fits" : "does not fit"}`]);
    return rows;
  }

  /** The estimate as a text table. */
  text(): string {
    return `${this.title}\n${textTable(["part", "memory"], this.rows())}`;
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    return { "text/plain": this.text(), "text/html": htmlTable(["part", "memory"], this.rows(), { caption: this.title }) };
  }
}
