/**
 * The graph IR: values, nodes and the graph that owns them. Ops are added through `Builder` (ops.ts);
 * this file knows nothing of particular ops, only of their storage and of ONNX's data types.
 */

/** Element types tunelab graphs use (ONNX TensorProto.DataType names). */
export type DType = "float32" | "float16" | "float64" | "int64" | "int32" | "bool" | "uint8" | "int8";

/** A dimension: a fixed size, or a symbol (such as "batch") that is bound when the graph runs. */
export type Dim = number | string;

/** A tensor shape; symbols let batch and sequence sizes vary between runs of one session. */
export type Shape = readonly Dim[];

/** Host-side storage for each dtype. */
export type TypedArrayOf<D extends DType> = D extends "float32"
  ? Float32Array
  : D extends "float64"
    ? Float64Array
    : D extends "float16"
      ? Uint16Array
      : D extends "int64"
        ? BigInt64Array
        : D extends "int32"
          ? Int32Array
          : D extends "bool" | "uint8"
            ? Uint8Array
            : Int8Array;

/** Any typed array a tensor's data may live in. */
export type TensorArray = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

/** A constant tensor: either in memory or a slice of an external data file (ONNX external data). */
export interface TensorData {
  dtype: DType;
  shape: readonly number[];
  data?: TensorArray;
  external?: { location: string; offset: number; length: number };
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Record<DType, number> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
  int8: 1,
};

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** True for the floating-point dtypes, the only ones gradients flow through. */
export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "float64";
}

/** One attribute of a node, tagged with its ONNX kind. */
export type Attr =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "ints"; value: readonly number[] }
  | { kind: "floats"; value: readonly number[] }
  | { kind: "string"; value: string }
  | { kind: "tensor"; value: TensorData };

/** A tensor flowing through the graph: a graph input, an initializer, or a node's output. */
export class Value {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node that computes this value, or null for inputs and initializers. */
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(", ")}]`;
  }
}

/** One ONNX node. Inputs may be null where ONNX allows an omitted optional input. */
export interface Node {
  readonly index: number;
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

/**
 * A run of nodes (`from` up to `to`, exclusive) whose values the backward pass recomputes from `input` instead of
 * keeping them alive from the forward pass (activation checkpointing).
 */
export interface RecomputeRegion {
  from: number;
  to: number;
  input: Value;
}

/** A graph under construction. Nodes are appended in topological order, which autodiff relies on. */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: { name: string; value: Value }[] = [];
  readonly initializers = new Map<Value, TensorData>();
  /** Regions the forward marked for recomputation (decoder layers under gradient checkpointing), in order. */
  readonly recompute: RecomputeRegion[] = [];
  /** Values autodiff treats as constants (PyTorch's detach): no gradient flows back through them. */
  readonly detached = new Set<Value>();
  private nextId = 0;
  private readonly names = new Set<string>();

  constructor(readonly name = "tunelab") {}

  /** A fresh, unique value name derived from `hint`. */
  uniqueName(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Declares a run-time input; its name is used verbatim and must be unique. */
  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.names.has(name)) throw new Error(`graph input name "${name}" is already used`);
    this.names.add(name);
    const value = new Value(this, this.nextId++, name, dtype, shape, null);
    this.inputs.push(value);
    return value;
  }

  /** Adds a constant tensor (held by the runtime, never fed per run). */
  initializer(name: string, tensor: TensorData): Value {
    const numel = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data && tensor.data.length !== numel) {
      throw new Error(`initializer "${name}": data has ${tensor.data.length} elements, shape [${tensor.shape}] needs ${numel}`);
    }
    const value = new Value(this, this.nextId++, this.uniqueName(name), tensor.dtype, tensor.shape, null);
    this.initializers.set(value, tensor);
    return value;
  }

  /** Appends a node and returns its output values (shapes and dtypes are given by the caller's shape rule). */
  addNode(
    op: string,
    inputs: readonly (Value | null)[],
    outputs: readonly { dtype: DType; shape: Shape; name?: string }[],
    attrs: Record<string, Attr> = {},
    domain = "",
  ): Value[] {
    for (const v of inputs) {
      if (v && v.graph !== this) throw new Error(`${op}: input ${v.name} belongs to another graph`);
    }
    const outs: Value[] = [];
    const node: Node = { index: this.nodes.length, op, domain, inputs, outputs: outs, attrs };
    for (const o of outputs) {
      outs.push(new Value(this, this.nextId++, this.uniqueName(o.name ?? `${op.toLowerCase()}_${this.nextId}`), o.dtype, o.shape, node));
    }
    this.nodes.push(node);
    return outs;
  }

  /** Marks a value as a graph output under `name` (an Identity node renames it when needed). */
  output(value: Value, name: string = value.name): Value {
    let out = value;
    if (value.name !== name || this.isInputOrInitializer(value) || this.outputs.some((o) => o.value === value)) {
      if (this.names.has(name)) throw new Error(`graph output name "${name}" is already used`);
      this.names.add(name);
      const node: Node = { index: this.nodes.length, op: "Identity", domain: "", inputs: [value], outputs: [], attrs: {} };
      out = new Value(this, this.nextId++, name, value.dtype, value.shape, node);
      (node.outputs as Value[]).push(out);
      this.nodes.push(node);
    }
    this.outputs.push({ name, value: out });
    return out;
  }

  private isInputOrInitializer(v: Value): boolean {
    return v.producer === null;
  }
}

/** Attribute constructors, so call sites read `{ axis: int(1) }`. */
export const int = (value: number): Attr => ({ kind: "int", value });
export const float = (value: number): Attr => ({ kind: "float", value });
export const ints = (value: readonly number[]): Attr => ({ kind: "ints", value });
export const floats = (value: readonly number[]): Attr => ({ kind: "floats", value });
export const str = (value: string): Attr => ({ kind: "string", value });
