/**
 * The GGUF container (version 3), as ggml's gguf.cpp reads it: header, typed key/value metadata, tensor infos
 * (name, dims innermost first, ggml type, offset), then the tensor data, every tensor aligned to 32 bytes.
 */
import * as fs from "node:fs";

/** ggml tensor types tunelab writes (ggml.h `enum ggml_type`). */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q6_K: 14 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Elements per block and bytes per block of each type (ggml's type traits). */
export const GGML_BLOCK: Record<GgmlTypeName, { elements: number; bytes: number }> = {
  F32: { elements: 1, bytes: 4 },
  F16: { elements: 1, bytes: 2 },
  Q4_0: { elements: 32, bytes: 18 },
  Q8_0: { elements: 32, bytes: 34 },
  Q4_K: { elements: 256, bytes: 144 },
  Q6_K: { elements: 256, bytes: 210 },
};

/** gguf value types (gguf.h `enum gguf_type`). */
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;

/** One metadata value with its gguf type. */
export type GgufValue =
  | { type: "u32" | "i32" | "f32" | "u64"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "strings"; value: readonly string[] }
  | { type: "i32s" | "f32s"; value: readonly number[] };

/** Metadata value constructors. */
export const gv = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strs: (value: readonly string[]): GgufValue => ({ type: "strings", value }),
  i32s: (value: readonly number[]): GgufValue => ({ type: "i32s", value }),
};

/** A tensor to write: its GGUF name, HF-order shape (outermost first) and type; `data` gives its encoded bytes. */
export interface GgufTensor {
  name: string;
  shape: readonly number[];
  type: GgmlTypeName;
  data: () => Uint8Array;
}

/** The alignment of tensor data (gguf's GGUF_DEFAULT_ALIGNMENT). */
export const GGUF_ALIGNMENT = 32;

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const body = Buffer.from(s, "utf8");
    this.u64(body.length);
    this.push(body);
  }
}

function writeValue(out: Bytes, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      out.u32(T.U32);
      out.u32(v.value);
      break;
    case "i32":
      out.u32(T.I32);
      out.i32(v.value);
      break;
    case "u64":
      out.u32(T.U64);
      out.u64(v.value);
      break;
    case "f32":
      out.u32(T.F32);
      out.f32(v.value);
      break;
    case "bool":
      out.u32(T.BOOL);
      out.push(Buffer.from([v.value ? 1 : 0]));
      break;
    case "string":
      out.u32(T.STRING);
      out.str(v.value);
      break;
    case "strings":
      out.u32(T.ARRAY);
      out.u32(T.STRING);
      out.u64(v.value.length);
      for (const s of v.value) out.str(s);
      break;
    case "i32s":
    case "f32s":
      out.u32(T.ARRAY);
      out.u32(v.type === "i32s" ? T.I32 : T.F32);
      out.u64(v.value.length);
      for (const x of v.value) {
        if (v.type === "i32s") out.i32(x);
        else out.f32(x);
      }
      break;
  }
}

/** Bytes of a tensor of `shape` in `type`; its innermost dimension must be a whole number of blocks. */
export function ggmlTensorBytes(name: string, shape: readonly number[], type: GgmlTypeName): number {
  const block = GGML_BLOCK[type];
  const inner = shape[shape.length - 1];
  if (inner % block.elements !== 0) throw new Error(`gguf: tensor "${name}" rows of ${inner} are not a multiple of ${type}'s block of ${block.elements}`);
  return (shape.reduce((a, d) => a * d, 1) / block.elements) * block.bytes;
}

/** Writes a GGUF v3 file: metadata in insertion order, then the tensors (each encoded when it is written). */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): void {
  const head = new Bytes();
  head.push(Buffer.from("GGUF", "latin1"));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, value] of metadata) {
    head.str(key);
    writeValue(head, value);
  }
  const align = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  const sizes = tensors.map((t) => ggmlTensorBytes(t.name, t.shape, t.type));
  let offset = 0;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d); // ne[0] is the innermost (row) dimension
    head.u32(GGML_TYPE[t.type]);
    head.u64(offset);
    offset = align(offset + sizes[i]);
  }
  const fd = fs.openSync(file, "w");
  try {
    let pos = 0;
    const write = (b: Uint8Array) => {
      let done = 0;
      while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done, pos + done);
      pos += b.length;
    };
    for (const p of head.parts) write(p);
    const dataStart = align(pos);
    write(new Uint8Array(dataStart - pos));
    for (let i = 0; i < tensors.length; i++) {
      const bytes = tensors[i].data();
      if (bytes.byteLength !== sizes[i]) throw new Error(`gguf: tensor "${tensors[i].name}" encoded to ${bytes.byteLength} bytes, expected ${sizes[i]}`);
      write(bytes);
      const padded = align(pos - dataStart) + dataStart;
      if (i < tensors.length - 1) write(new Uint8Array(padded - pos));
    }
  } finally {
    fs.closeSync(fd);
  }
}
