/**
 * Weight-only quantised ONNX: the `onnx` export's graph with every decoder linear (q/k/v/o, gate/up/down) as
 * onnxruntime's com.microsoft MatMulNBits (4- or 8-bit codes, one scale per block of inputs), quantised by RTN or
 * GPTQ (gptq.ts); embeddings, lm_head and norms stay float32. With evaluation text, a report of size and perplexity
 * against the float32 export.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { int, type Graph, type Node, type Value } from "../graph/ir";
import { initializerBytes, toOnnx } from "../graph/onnx";
import { Session, type HostTensor } from "../runtime/session";
import { copyModelFiles } from "./files";
import { packCodes, quantizeGptq, quantizeRtn, type BlockQuantized } from "./gptq";
import type { MergedWeights } from "./merged-weights";
import { buildOnnxExportGraph, DEFAULT_ONNX_OPSET, optimumNames } from "./onnx";
import { lowerToOpset } from "./opset";

/** Quantisation methods: round-to-nearest, or GPTQ with calibration text. */
export type QuantMethod = "rtn" | "gptq";

/** Options of exportQuantized. */
export interface QuantizedExportOptions {
  /** 4 (default) or 8. */
  bits?: 4 | 8;
  /** Default "rtn"; "gptq" needs `calibration`. */
  method?: QuantMethod;
  /** Inputs per scale (power of two, at least 16); default 32. */
  blockSize?: number;
  /** Token sequences whose activations GPTQ minimises the error on. */
  calibration?: readonly (readonly number[])[];
  /** Token sequences to measure perplexity on, for the report (float32 and quantised). */
  evaluation?: readonly (readonly number[])[];
  opset?: number;
}

/** What exportQuantized wrote and measured. */
export interface QuantizedExportResult {
  file: string;
  bits: number;
  method: QuantMethod;
  blockSize: number;
  /** Bytes of model.onnx, and of the float32 export's weights for comparison. */
  bytes: number;
  float32Bytes: number;
  /** Linear weights quantised. */
  quantized: string[];
  /** Perplexity on `evaluation` of the float32 and the quantised model (null without evaluation text). */
  perplexity: { float32: number; quantized: number } | null;
}

const LAYER_LINEAR = /^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** The Gemm nodes of decoder linears (activation [tokens, in] x weight [out, in]ᵀ), by weight name. */
function linearNodes(graph: Graph): Map<string, { index: number; node: Node; weight: Value }> {
  const out = new Map<string, { index: number; node: Node; weight: Value }>();
  graph.nodes.forEach((node, index) => {
    const weight = node.inputs[1];
    if (node.op !== "Gemm" || !weight || !graph.initializers.has(weight) || !LAYER_LINEAR.test(weight.name)) return;
    if (node.attrs.transB?.kind !== "int" || node.attrs.transB.value !== 1 || node.inputs.length > 2) return;
    out.set(weight.name, { index, node, weight });
  });
  return out;
}

/** Feeds for one sequence with an empty cache. */
function feedsFor(ids: readonly number[], layers: number, kvHeads: number, headDim: number): Record<string, HostTensor> {
  const t = { dtype: "int64" as const, shape: [1, ids.length] };
  const feeds: Record<string, HostTensor> = {
    input_ids: { ...t, data: BigInt64Array.from(ids.map(BigInt)) },
    attention_mask: { ...t, data: new BigInt64Array(ids.length).fill(1n) },
    position_ids: { ...t, data: BigInt64Array.from(ids.map((_, i) => BigInt(i))) },
  };
  for (let l = 0; l < layers; l++) {
    const empty = { dtype: "float32" as const, shape: [1, kvHeads, 0, headDim], data: new Float32Array(0) };
    feeds[optimumNames.pastKey(l)] = empty;
    feeds[optimumNames.pastValue(l)] = empty;
  }
  return feeds;
}

/** XᵀX of each decoder linear's inputs over the calibration sequences (the float32 model's activations). */
async function calibrationHessians(weights: MergedWeights, sequences: readonly (readonly number[])[]): Promise<Map<string, Float64Array>> {
  const c = weights.config;
  const graph = buildOnnxExportGraph(weights);
  const nodes = linearNodes(graph);
  const fetch: string[] = ["logits"];
  for (const [name, { node }] of nodes) fetch.push(graph.output(node.inputs[0]!, `calibration:${name}`).name);
  const session = await Session.create(toOnnx(graph, { opset: 18 }));
  const hessians = new Map<string, Float64Array>();
  try {
    for (const ids of sequences) {
      const out = await session.run(feedsFor(ids, c.numHiddenLayers, c.numKeyValueHeads, c.headDim), fetch);
      for (const [name, { weight }] of nodes) {
        const n = Number(weight.shape[1]);
        const x = out[`calibration:${name}`].data as Float32Array;
        const h = hessians.get(name) ?? new Float64Array(n * n);
        for (let t = 0; t < x.length / n; t++) {
          const row = x.subarray(t * n, (t + 1) * n);
          for (let i = 0; i < n; i++) {
            const xi = row[i];
            if (xi === 0) continue;
            for (let j = 0; j < n; j++) h[i * n + j] += xi * row[j];
          }
        }
        hessians.set(name, h);
      }
    }
  } finally {
    await session.release();
  }
  return hessians;
}

/** Mean-NLL perplexity of the ONNX model bytes over `sequences` (every token after the first predicted). */
async function perplexity(model: Uint8Array | string, weights: MergedWeights, sequences: readonly (readonly number[])[]): Promise<number> {
  const c = weights.config;
  const session = await Session.create(model);
  let nll = 0;
  let count = 0;
  try {
    for (const ids of sequences) {
      const logits = (await session.run(feedsFor(ids, c.numHiddenLayers, c.numKeyValueHeads, c.headDim), ["logits"])).logits.data as Float32Array;
      const v = c.vocabSize;
      for (let p = 0; p + 1 < ids.length; p++) {
        const row = logits.subarray(p * v, (p + 1) * v);
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - max);
        nll += Math.log(sum) + max - row[ids[p + 1]];
        count++;
      }
    }
  } finally {
    await session.release();
  }
  if (count === 0) throw new Error("quantized: the evaluation text has no token to predict");
  return Math.exp(nll / count);
}

/** Writes `out`/model.onnx with MatMulNBits linears, the model's config and tokenizer files; measures when asked. */
export async function exportQuantized(weights: MergedWeights, out: string, options: QuantizedExportOptions = {}): Promise<QuantizedExportResult> {
  const bits = options.bits ?? 4;
  const method = options.method ?? "rtn";
  const blockSize = options.blockSize ?? 32;
  const opset = options.opset ?? DEFAULT_ONNX_OPSET;
  if (method !== "rtn" && method !== "gptq") throw new Error(`quantized: method must be rtn or gptq, got ${JSON.stringify(method)}`);
  if (method === "gptq" && !options.calibration?.length) throw new Error("quantized: --method gptq needs calibration text (--calibration FILE)");
  const hessians = method === "gptq" ? await calibrationHessians(weights, options.calibration!) : null;

  const graph = buildOnnxExportGraph(weights);
  const float32Bytes = initializerBytes(graph);
  const quantized: string[] = [];
  for (const [name, { index, node, weight }] of linearNodes(graph)) {
    const [rows, cols] = weight.shape as number[];
    const w = graph.initializers.get(weight)!.data as Float32Array;
    const q: BlockQuantized = hessians ? quantizeGptq(w, rows, cols, bits, blockSize, hessians.get(name)!) : quantizeRtn(w, rows, cols, bits, blockSize);
    const blocks = cols / blockSize;
    const packed = graph.initializer(`${name}.q${bits}`, {
      dtype: "uint8",
      shape: [rows, blocks, (blockSize * bits) / 8],
      data: packCodes(q.codes, rows, cols, bits),
    });
    const scales = graph.initializer(`${name}.scales`, { dtype: "float32", shape: [rows * blocks], data: q.scales });
    graph.nodes[index] = {
      ...node,
      op: "MatMulNBits",
      domain: "com.microsoft",
      inputs: [node.inputs[0], packed, scales],
      attrs: { K: int(cols), N: int(rows), bits: int(bits), block_size: int(blockSize) },
    };
    graph.initializers.delete(weight);
    quantized.push(name);
  }
  if (quantized.length === 0) throw new Error("quantized: the graph has no decoder linear to quantise");
  lowerToOpset(graph, opset);
  const bytes = toOnnx(graph, { opset, extraOpsets: { "com.microsoft": 1 }, producer: "tunelab" });
  const file = path.join(out, "model.onnx");
  fs.writeFileSync(file, bytes);
  copyModelFiles(weights.model.dir, out);
  let report: QuantizedExportResult["perplexity"] = null;
  if (options.evaluation?.length) {
    const full = buildOnnxExportGraph(weights);
    report = {
      float32: await perplexity(toOnnx(full, { opset: 18 }), weights, options.evaluation),
      quantized: await perplexity(bytes, weights, options.evaluation),
    };
  }
  return { file, bits, method, blockSize, bytes: bytes.length, float32Bytes, quantized, perplexity: report };
}
