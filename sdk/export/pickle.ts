/**
 * The few pickle (protocol 2) opcodes a PyTorch state_dict needs, written as CPython's pickle module reads them
 * (Lib/pickle.py) and as torch's weights-only unpickler allows: globals, tuples, ints, strings, bools, dicts,
 * persistent ids and REDUCE.
 */

/** A pickle stream under construction. */
export class PickleWriter {
  private readonly parts: Buffer[] = [];

  constructor() {
    this.parts.push(Buffer.from([0x80, 2])); // PROTO 2
  }

  private op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  /** GLOBAL module.name (pushes the class or function). */
  global(module: string, name: string): this {
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, "utf8"));
    return this;
  }

  /** MARK: the start of a tuple's or SETITEMS' items. */
  mark(): this {
    return this.op(0x28);
  }

  /** TUPLE: the items since the last mark as a tuple. */
  tuple(): this {
    return this.op(0x74);
  }

  emptyTuple(): this {
    return this.op(0x29);
  }

  /** REDUCE: calls the callable below the argument tuple on top. */
  reduce(): this {
    return this.op(0x52);
  }

  /** BINPERSID: the tuple on top becomes a persistent id (torch: a storage). */
  persistentId(): this {
    return this.op(0x51);
  }

  /** SETITEMS: the key/value pairs since the last mark go into the dict below it. */
  setItems(): this {
    return this.op(0x75);
  }

  bool(v: boolean): this {
    return this.op(v ? 0x88 : 0x89);
  }

  /** A non-negative or negative integer in the shortest opcode (BININT1, BININT2, BININT, LONG1). */
  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new Error(`pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 0x100) return this.op(0x4b, v);
    if (v >= 0 && v < 0x10000) return this.op(0x4d, v & 0xff, v >> 8);
    if (v >= -0x80000000 && v < 0x80000000) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      this.parts.push(b);
      return this;
    }
    // LONG1: little-endian two's complement, as short as keeps the sign.
    const bytes: number[] = [];
    let x = BigInt(v);
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      const sign = (bytes[bytes.length - 1] & 0x80) !== 0;
      if ((x === 0n && !sign) || (x === -1n && sign)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }

  /** BINUNICODE: a str. */
  str(s: string): this {
    const body = Buffer.from(s, "utf8");
    const head = Buffer.alloc(5);
    head[0] = 0x58;
    head.writeUInt32LE(body.length, 1);
    this.parts.push(head, body);
    return this;
  }

  /** A tuple of integers. */
  intTuple(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  /** STOP, and the bytes. */
  finish(): Buffer {
    this.op(0x2e);
    return Buffer.concat(this.parts);
  }
}
