/** Serialises a Graph to an ONNX ModelProto (field numbers from onnx/onnx.proto). */
import * as fs from "node:fs";
import * as path from "node:path";
import { Attr, Graph, isFloat, Node, ONNX_DTYPE, Shape, TensorData, Value } from "./ir";
import { ProtoWriter } from "./protobuf";

/** The default-domain opset tunelab graphs are written against. */
export const OPSET = 18;
/** ONNX IR version matching OPSET 18 (ONNX 1.13). */
const IR_VERSION = 8;

/** Options for `toOnnx`. */
export interface SerializeOptions {
  /** Extra operator-set domains, e.g. { "com.microsoft": 1 }. */
  extraOpsets?: Record<string, number>;
  producer?: string;
  /** Initializers to write differently (e.g. as external data). */
  replace?: ReadonlyMap<Value, TensorData>;
  /** Default-domain opset version to declare (default OPSET); the graph's ops must exist in that form there. */
  opset?: number;
}

/** Returns the bytes of an ONNX model for `graph`. */
export function toOnnx(graph: Graph, options: SerializeOptions = {}): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, IR_VERSION);
  w.string(2, options.producer ?? "tunelab");
  w.message(7, (g) => writeGraph(g, graph, options.replace));
  w.message(8, (o) => {
    o.string(1, "");
    o.int(2, options.opset ?? OPSET);
  });
  // Every domain a node uses is imported (version 1 unless the options say otherwise), e.g. com.microsoft contrib ops.
  const domains: Record<string, number> = {};
  for (const node of liveNodes(graph)) if (node.domain) domains[node.domain] = 1;
  for (const [domain, version] of Object.entries({ ...domains, ...options.extraOpsets })) {
    w.message(8, (o) => {
      o.string(1, domain);
      o.int(2, version);
    });
  }
  return w.finish();
}

/** Total bytes of the in-memory initializers of a graph. */
export function initializerBytes(graph: Graph): number {
  let n = 0;
  for (const t of graph.initializers.values()) n += t.data?.byteLength ?? 0;
  return n;
}

/**
 * Writes `file` (the model) and `file.data` (every in-memory float initializer of at least `minBytes`, 64-byte
 * aligned) as ONNX external data, for models past protobuf's 2 GB limit. Load it with Session.create(file).
 */
export function writeOnnxWithExternalData(graph: Graph, file: string, minBytes = 1024, options: SerializeOptions = {}): void {
  const dataName = `${path.basename(file)}.data`;
  const fd = fs.openSync(path.join(path.dirname(file), dataName), "w");
  const external = new Map<Value, TensorData>();
  let offset = 0;
  try {
    for (const [value, t] of graph.initializers) {
      // Integer constants (axes, shapes) stay inline: onnxruntime's shape inference reads them at load time.
      if (!t.data || t.data.byteLength < minBytes || !isFloat(t.dtype)) continue;
      offset = Math.ceil(offset / 64) * 64;
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
      external.set(value, { dtype: t.dtype, shape: t.shape, external: { location: dataName, offset, length: bytes.length } });
      offset += bytes.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(file, toOnnx(graph, { ...options, replace: new Map([...(options.replace ?? []), ...external]) }));
}

/**
 * The nodes some graph output depends on, in graph order. Others are dropped when writing: the backward pass's
 * recomputation copies whole regions, and a copied value no gradient rule reads would be a leaf that onnxruntime
 * (which orders nodes by a depth-first walk from the leaves) may run late, keeping its inputs alive until then.
 */
export function liveNodes(graph: Graph): Node[] {
  // By index: a rewrite may replace a node in graph.nodes (export/opset.ts), while its outputs name the old object.
  const live = new Set<number>();
  const stack = graph.outputs.flatMap((o) => (o.value.producer ? [o.value.producer.index] : []));
  while (stack.length > 0) {
    const index = stack.pop()!;
    if (live.has(index)) continue;
    live.add(index);
    for (const v of graph.nodes[index].inputs) if (v?.producer && !live.has(v.producer.index)) stack.push(v.producer.index);
  }
  return graph.nodes.filter((n) => live.has(n.index));
}

function writeGraph(w: ProtoWriter, graph: Graph, replace?: ReadonlyMap<Value, TensorData>): void {
  const nodes = liveNodes(graph);
  const used = new Set<Value>([...nodes.flatMap((n) => n.inputs), ...graph.outputs.map((o) => o.value)].filter((v): v is Value => !!v));
  for (const node of nodes) {
    w.message(1, (n) => {
      for (const input of node.inputs) n.string(1, input ? input.name : "");
      for (const output of node.outputs) n.string(2, output.name);
      n.string(3, `${node.op}_${node.index}`);
      n.string(4, node.op);
      for (const [name, attr] of Object.entries(node.attrs)) n.message(5, (a) => writeAttr(a, name, attr));
      if (node.domain) n.string(7, node.domain);
    });
  }
  w.string(2, graph.name);
  for (const [value, tensor] of graph.initializers) if (used.has(value)) w.message(5, (t) => writeTensor(t, value.name, replace?.get(value) ?? tensor));
  for (const input of graph.inputs) w.message(11, (v) => writeValueInfo(v, input.name, input));
  for (const { name, value } of graph.outputs) w.message(12, (v) => writeValueInfo(v, name, value));
}

function writeValueInfo(w: ProtoWriter, name: string, value: Value): void {
  w.string(1, name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ONNX_DTYPE[value.dtype]);
      tensor.message(2, (shape) => writeShape(shape, value.shape));
    }),
  );
}

function writeShape(w: ProtoWriter, shape: Shape): void {
  for (const dim of shape) {
    w.message(1, (d) => {
      if (typeof dim === "number") d.int(1, dim);
      else d.string(2, dim);
    });
  }
}

/** Writes a TensorProto; in-memory data goes to raw_data (little-endian, as on every platform Node runs on). */
export function writeTensor(w: ProtoWriter, name: string, tensor: TensorData): void {
  for (const d of tensor.shape) w.int(1, d);
  w.int(2, ONNX_DTYPE[tensor.dtype]);
  w.string(8, name);
  if (tensor.external) {
    const entry = (key: string, value: string) =>
      w.message(13, (e) => {
        e.string(1, key);
        e.string(2, value);
      });
    entry("location", tensor.external.location);
    entry("offset", String(tensor.external.offset));
    entry("length", String(tensor.external.length));
    w.int(14, 1);
  } else if (tensor.data) {
    const d = tensor.data;
    w.bytes(9, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  } else {
    throw new Error(`initializer "${name}" has neither data nor an external location`);
  }
}

function writeAttr(w: ProtoWriter, name: string, attr: Attr): void {
  w.string(1, name);
  switch (attr.kind) {
    case "float":
      w.float(2, attr.value);
      w.int(20, 1);
      break;
    case "int":
      w.int(3, attr.value);
      w.int(20, 2);
      break;
    case "string":
      w.string(4, attr.value);
      w.int(20, 3);
      break;
    case "tensor":
      w.message(5, (t) => writeTensor(t, "", attr.value));
      w.int(20, 4);
      break;
    case "floats":
      for (const f of attr.value) w.float(7, f);
      w.int(20, 6);
      break;
    case "ints":
      for (const i of attr.value) w.int(8, i);
      w.int(20, 7);
      break;
  }
}
