/**
 * ONNX export for inference: the decoder with a key/value cache in the layout Hugging Face Optimum writes for
 * `text-generation-with-past` (what transformers.js and Optimum's ORTModelForCausalLM load), with the adapter merged.
 *
 * model.onnx inputs : input_ids, attention_mask [batch, past+seq], position_ids, past_key_values.{l}.key/.value
 *                     [batch, kvHeads, past, headDim]
 *            outputs: logits [batch, seq, vocab], present.{l}.key/.value [batch, kvHeads, past+seq, headDim]
 * and beside it config.json, generation_config.json and the tokenizer files.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { toOnnx } from "../graph/onnx";
import type { Graph, Value } from "../graph/ir";
import { Builder } from "../graph/ops";
import { buildCachedDecoder, lmHead } from "../models/decoder";
import type { ComputeDtype, WeightSource } from "../models/weights";
import { copyModelFiles } from "./files";
import type { MergedWeights } from "./merged-weights";
import { lowerToOpset } from "./opset";

/** Default opset of exported ONNX models (the seed asks for 15, which the same graph also meets). */
export const DEFAULT_ONNX_OPSET = 17;

/** Weights above this many bytes go to an external data file (protobuf cannot exceed 2 GB). */
const EMBED_LIMIT = 1.8e9;

/** Optimum's input/output names. */
export const optimumNames = {
  pastKey: (l: number) => `past_key_values.${l}.key`,
  pastValue: (l: number) => `past_key_values.${l}.value`,
  presentKey: (l: number) => `present.${l}.key`,
  presentValue: (l: number) => `present.${l}.value`,
};

/** Options of exportOnnx. */
export interface OnnxExportOptions {
  /** Default-domain opset (13..18); default 17. */
  opset?: number;
  /** Force external data (`model.onnx_data`) even for a small model; default only past 1.8 GB of weights. */
  externalData?: boolean;
}

/** What exportOnnx wrote. */
export interface OnnxExportResult {
  /** The model.onnx path. */
  file: string;
  opset: number;
  /** model.onnx_data when the weights are external, else null. */
  dataFile: string | null;
  copied: string[];
}

/** An external data file the weights are streamed into as the graph is built: fd, its name beside the model, the next offset. */
interface DataSink {
  fd: number;
  location: string;
  offset: number;
}

/**
 * Merged weights as float32 initializers, each added to a graph once: in memory, or (with a sink) written to the
 * external data file one tensor at a time, so a model past protobuf's 2 GB is never held whole.
 */
class ExportWeights implements WeightSource {
  readonly dtype: ComputeDtype = "float32";
  private readonly added = new Map<string, Value>();

  constructor(
    private readonly weights: MergedWeights,
    private readonly sink: DataSink | null,
  ) {}

  has(name: string): boolean {
    return this.weights.has(name);
  }

  constant(b: Builder, name: string): Value {
    let v = this.added.get(name);
    if (!v) {
      const t = this.weights.get(name);
      if (!this.sink) v = b.graph.initializer(name, { dtype: "float32", shape: t.shape, data: t.data });
      else {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        const offset = Math.ceil(this.sink.offset / 64) * 64;
        let done = 0;
        while (done < bytes.length) done += fs.writeSync(this.sink.fd, bytes, done, bytes.length - done, offset + done);
        this.sink.offset = offset + bytes.length;
        v = b.graph.initializer(name, { dtype: "float32", shape: t.shape, external: { location: this.sink.location, offset, length: bytes.length } });
      }
      this.added.set(name, v);
    }
    return v;
  }

  linear(b: Builder, x: Value, name: string, bias: Value | null): Value {
    return b.linear(x, this.constant(b, name), bias);
  }

  rows(b: Builder, name: string, ids: Value): Value {
    return b.gather(this.constant(b, name), ids, 0);
  }

  rowSquares(b: Builder, name: string): Value {
    return b.reduceSumSquare(this.constant(b, name), [1]);
  }
}

/**
 * The Optimum-layout decoder graph with the merged weights as initializers (in memory, or written to `sink`'s
 * external data file as they are added).
 */
export function buildOnnxExportGraph(weights: MergedWeights, sink: DataSink | null = null): Graph {
  const config = weights.config;
  const b = new Builder();
  const kvShape = ["batch", config.numKeyValueHeads, "past", config.headDim];
  const layers = Array.from({ length: config.numHiddenLayers }, (_, l) => l);
  const inputIds = b.graph.input("input_ids", "int64", ["batch", "seq"]);
  const attentionMask = b.graph.input("attention_mask", "int64", ["batch", "past+seq"]);
  const positionIds = b.graph.input("position_ids", "int64", ["batch", "seq"]);
  // Declared per layer, key then value, in Optimum's order.
  const past = layers.map((l) => [b.graph.input(optimumNames.pastKey(l), "float32", kvShape), b.graph.input(optimumNames.pastValue(l), "float32", kvShape)]);
  const cache = { positionIds, pastKeys: past.map((p) => p[0]), pastValues: past.map((p) => p[1]) };
  const source = new ExportWeights(weights, sink);
  const out = buildCachedDecoder(b, config, source, { inputIds, attentionMask }, cache, null);
  b.graph.output(lmHead(b, config, source, out.hidden), "logits");
  for (const l of layers) {
    b.graph.output(out.presentKeys[l], optimumNames.presentKey(l));
    b.graph.output(out.presentValues[l], optimumNames.presentValue(l));
  }
  return b.graph;
}

/** Writes `out`/model.onnx (+ model.onnx_data for big models) and the model's config and tokenizer files. */
export function exportOnnx(weights: MergedWeights, out: string, options: OnnxExportOptions = {}): OnnxExportResult {
  const opset = options.opset ?? DEFAULT_ONNX_OPSET;
  const file = path.join(out, "model.onnx");
  const weightBytes = weights.names().reduce((n, name) => n + weights.shape(name).reduce((a, d) => a * d, 4), 0);
  const external = options.externalData ?? weightBytes > EMBED_LIMIT;
  // Optimum's and transformers.js' name for the single external data file.
  const dataFile = external ? `${file}_data` : null;
  const sink = dataFile ? { fd: fs.openSync(dataFile, "w"), location: path.basename(dataFile), offset: 0 } : null;
  let graph: Graph;
  try {
    graph = buildOnnxExportGraph(weights, sink);
  } finally {
    if (sink) fs.closeSync(sink.fd);
  }
  lowerToOpset(graph, opset);
  fs.writeFileSync(file, toOnnx(graph, { opset, producer: "tunelab" }));
  const copied = copyModelFiles(weights.model.dir, out);
  if (external) {
    // transformers.js reads external data only when config.json says so.
    const configPath = path.join(out, "config.json");
    const json = JSON.parse(fs.readFileSync(configPath, "utf8")) as Record<string, unknown>;
    const tjs = (json["transformers.js_config"] ?? {}) as Record<string, unknown>;
    json["transformers.js_config"] = { ...tjs, use_external_data_format: true };
    fs.writeFileSync(configPath, JSON.stringify(json, null, 2) + "\n");
  }
  return { file, opset, dataFile, copied };
}
