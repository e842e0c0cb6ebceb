/** A minimal protobuf writer: just what ONNX ModelProto and TensorBoard's Event need (varints, lengths, floats). */

/** Appends protobuf fields to a list of byte chunks; `finish()` joins them once. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private used = 0;
  length = 0;

  private flushScratch(): void {
    if (this.used > 0) {
      this.chunks.push(this.scratch.slice(0, this.used));
      this.used = 0;
    }
  }

  private byte(b: number): void {
    if (this.used === this.scratch.length) this.flushScratch();
    this.scratch[this.used++] = b;
    this.length++;
  }

  /** Raw varint (unsigned; negative numbers are written as 64-bit two's complement, as protobuf requires). */
  varint(n: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(n));
    if (v < 0x80n) return this.byte(Number(v));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** Field of wire type 0 (int32/int64/uint64/bool/enum). */
  int(field: number, n: number | bigint): void {
    this.tag(field, 0);
    this.varint(n);
  }

  /** Field of wire type 5 (float). */
  float(field: number, x: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.raw(b);
  }

  /** Field of wire type 1 (double). */
  double(field: number, x: number): void {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.raw(b);
  }

  /** Length-delimited bytes field. */
  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.raw(data);
  }

  /** Length-delimited UTF-8 string field. */
  string(field: number, s: string): void {
    this.bytes(field, Buffer.from(s, "utf8"));
  }

  /** Embedded message field, written by `fill` into a nested writer. */
  message(field: number, fill: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    fill(inner);
    this.tag(field, 2);
    this.varint(inner.length);
    this.flushScratch();
    for (const c of inner.parts()) this.chunks.push(c);
    this.length += inner.length;
  }

  /** Packed repeated varints. */
  packedInts(field: number, values: readonly (number | bigint)[]): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.bytes(field, inner.finish());
  }

  /** Packed repeated floats. */
  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }

  private raw(data: Uint8Array): void {
    if (data.length <= 64) {
      for (let i = 0; i < data.length; i++) this.byte(data[i]);
      this.length -= data.length; // counted again below
    } else {
      this.flushScratch();
      this.chunks.push(data);
    }
    this.length += data.length;
  }

  private parts(): Uint8Array[] {
    this.flushScratch();
    return this.chunks;
  }

  /** The serialised message. */
  finish(): Uint8Array {
    const parts = this.parts();
    if (parts.length === 1) return parts[0];
    return Buffer.concat(parts, this.length);
  }
}
