/**
 * Regular expressions matched in time linear in the input (Thompson NFA simulation, as RE2 does), for patterns
 * that come from files: no pattern can make a match backtrack exponentially. The syntax is the common core of
 * JavaScript's and Python's `re`, with the same meaning: literals, `.`, `[classes]`, `\d \w \s` (and `\D \W \S`),
 * `\t \n \r \f \v`, escaped punctuation, groups `(…)` `(?:…)` `(?<name>…)` `(?P<name>…)`, `|`, the quantifiers
 * `* + ? {m} {m,} {m,n}` (lazy or not), and `^ $`. Backreferences, lookarounds, `\b` and inline flags are refused.
 */

/** Longest pattern accepted, in characters. */
export const MAX_REGEX_LENGTH = 1000;
/** Most NFA states a pattern may compile to (`{m,n}` repeats are expanded). */
export const MAX_REGEX_STATES = 5000;
/** Largest count in a `{m,n}` repeat. */
export const MAX_REGEX_REPEAT = 1000;

type CharTest = (c: string) => boolean;
type Node =
  | { kind: "char"; test: CharTest }
  | { kind: "bol" | "eol" }
  | { kind: "cat" | "alt"; items: Node[] }
  | { kind: "repeat"; item: Node; min: number; max: number };
type Inst = { op: "char"; test: CharTest } | { op: "split"; x: number; y: number } | { op: "jmp"; x: number } | { op: "bol" | "eol" | "match" };

const LINE_END = new Set(["\n", "\r", "\u2028", "\u2029"]);
const isDigit: CharTest = (c) => c >= "0" && c <= "9";
const isWord: CharTest = (c) => isDigit(c) || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isSpace: CharTest = (c) => /\s/.test(c);
const CLASS_ESCAPES: Record<string, CharTest> = { d: isDigit, w: isWord, s: isSpace, D: (c) => !isDigit(c), W: (c) => !isWord(c), S: (c) => !isSpace(c) };
const CHAR_ESCAPES: Record<string, string> = { t: "\t", n: "\n", r: "\r", f: "\f", v: "\v" };

/** A regular expression compiled for matching in linear time; the constructor throws on unsupported syntax. */
export class LinearRegex {
  private readonly prog: Inst[] = [];
  /** emit() calls so far: bounds the compile time of repeats of empty groups too. */
  private emitted = 0;

  constructor(readonly source: string) {
    if (source.length > MAX_REGEX_LENGTH) throw new Error(`longer than ${MAX_REGEX_LENGTH} characters (${source.length})`);
    const parser = new Parser(source);
    const node = parser.alternation();
    if (parser.pos < source.length) throw new Error(`unmatched ")" at position ${parser.pos}`);
    this.emit(node);
    this.push({ op: "match" });
  }

  /** Whether the pattern matches somewhere in `input` (RegExp.prototype.test without flags). */
  test(input: string): boolean {
    const seen = new Int32Array(this.prog.length).fill(-1);
    // Adds the threads reachable from `pc` without reading a character; true when one of them is a match.
    const add = (list: number[], pc: number, pos: number): boolean => {
      const stack = [pc];
      while (stack.length > 0) {
        const at = stack.pop()!;
        if (seen[at] === pos) continue;
        seen[at] = pos;
        const inst = this.prog[at];
        if (inst.op === "match") return true;
        if (inst.op === "char") list.push(at);
        else if (inst.op === "jmp") stack.push(inst.x);
        else if (inst.op === "split") stack.push(inst.y, inst.x);
        else if (inst.op === "bol" ? pos === 0 : pos === input.length) stack.push(at + 1);
      }
      return false;
    };
    let threads: number[] = [];
    for (let pos = 0; ; pos++) {
      if (add(threads, 0, pos)) return true; // a new attempt starts at every position
      if (pos === input.length) return false;
      const next: number[] = [];
      for (const pc of threads) {
        const inst = this.prog[pc] as { op: "char"; test: CharTest };
        if (inst.test(input[pos]) && add(next, pc + 1, pos + 1)) return true;
      }
      threads = next;
    }
  }

  private push(inst: Inst): number {
    if (this.prog.length >= MAX_REGEX_STATES) throw new Error(`too large: more than ${MAX_REGEX_STATES} states once {m,n} repeats are expanded`);
    return this.prog.push(inst) - 1;
  }

  private emit(node: Node): void {
    if (++this.emitted > 4 * MAX_REGEX_STATES) throw new Error(`too large: more than ${4 * MAX_REGEX_STATES} parts once {m,n} repeats are expanded`);
    switch (node.kind) {
      case "char":
        this.push({ op: "char", test: node.test });
        return;
      case "bol":
      case "eol":
        this.push({ op: node.kind });
        return;
      case "cat":
        node.items.forEach((n) => this.emit(n));
        return;
      case "alt": {
        // split(first, next split) first jmp(end) split(second, ...) second jmp(end) ... last
        const jumps: Array<{ op: "jmp"; x: number }> = [];
        node.items.forEach((item, i) => {
          const last = i === node.items.length - 1;
          const split = { op: "split" as const, x: 0, y: 0 };
          if (!last) split.x = this.push(split) + 1;
          this.emit(item);
          if (!last) {
            jumps.push({ op: "jmp", x: 0 });
            this.push(jumps[jumps.length - 1]);
            split.y = this.prog.length;
          }
        });
        for (const j of jumps) j.x = this.prog.length;
        return;
      }
      case "repeat": {
        for (let i = 0; i < node.min; i++) this.emit(node.item);
        if (node.max === Infinity) {
          // loop: split(body, out) body jmp(loop) out
          const split = { op: "split" as const, x: 0, y: 0 };
          const loop = this.push(split);
          split.x = loop + 1;
          this.emit(node.item);
          this.push({ op: "jmp", x: loop });
          split.y = this.prog.length;
          return;
        }
        // each optional copy: split(body, out) body
        const splits: Array<{ op: "split"; x: number; y: number }> = [];
        for (let i = node.min; i < node.max; i++) {
          const split = { op: "split" as const, x: 0, y: 0 };
          split.x = this.push(split) + 1;
          splits.push(split);
          this.emit(node.item);
        }
        for (const s of splits) s.y = this.prog.length;
      }
    }
  }
}

/** Recursive-descent parser of the supported syntax into a tree. */
class Parser {
  pos = 0;

  constructor(private readonly src: string) {}

  alternation(): Node {
    const items = [this.concatenation()];
    while (this.src[this.pos] === "|") {
      this.pos++;
      items.push(this.concatenation());
    }
    return items.length === 1 ? items[0] : { kind: "alt", items };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    while (this.pos < this.src.length && this.src[this.pos] !== "|" && this.src[this.pos] !== ")") items.push(this.repeat());
    return { kind: "cat", items };
  }

  private repeat(): Node {
    const start = this.pos;
    const item = this.atom();
    const q = this.quantifier();
    if (!q) return item;
    if (item.kind === "bol" || item.kind === "eol") throw new Error(`nothing to repeat at position ${start}`);
    if (this.src[this.pos] === "?") this.pos++; // lazy: same matches, other preference
    if (this.quantifier()) throw new Error(`nothing to repeat at position ${this.pos}`);
    return { kind: "repeat", item, ...q };
  }

  private quantifier(): { min: number; max: number } | null {
    const c = this.src[this.pos];
    if (c === "*" || c === "+" || c === "?") {
      this.pos++;
      return { min: c === "+" ? 1 : 0, max: c === "?" ? 1 : Infinity };
    }
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
    if (min > MAX_REGEX_REPEAT || (max !== Infinity && max > MAX_REGEX_REPEAT))
      throw new Error(`repeat count in ${m[0]} at position ${this.pos} is above ${MAX_REGEX_REPEAT}`);
    if (max < min) throw new Error(`numbers out of order in ${m[0]} at position ${this.pos}`);
    this.pos += m[0].length;
    return { min, max };
  }

  private atom(): Node {
    const at = this.pos;
    const c = this.src[this.pos++];
    if (c === "(") {
      const head = this.src.slice(this.pos, this.pos + 3);
      if (/^\?<?[=!]/.test(head)) throw new Error(`lookaround "(${head.slice(0, head[1] === "<" ? 3 : 2)}" at position ${at} is not supported`);
      const named = /^\?P?<[A-Za-z_]\w*>/.exec(this.src.slice(this.pos));
      if (named) this.pos += named[0].length;
      else if (head.startsWith("?:")) this.pos += 2;
      else if (head.startsWith("?")) throw new Error(`"(${head.slice(0, 2)}" is not supported at position ${at} (inline flags, backreferences, conditionals)`);
      const node = this.alternation();
      if (this.src[this.pos++] !== ")") throw new Error(`missing ")" for the group opened at position ${at}`);
      return node;
    }
    if (c === "[") return this.charClass(at);
    if (c === ".") return { kind: "char", test: (x) => !LINE_END.has(x) };
    if (c === "^") return { kind: "bol" };
    if (c === "$") return { kind: "eol" };
    if (c === "\\") return { kind: "char", test: this.escape(at, false) };
    if (c === "*" || c === "+" || c === "?" || (c === "{" && /^\{\d+(,\d*)?\}/.test(this.src.slice(at))))
      throw new Error(`nothing to repeat at position ${at}`);
    return { kind: "char", test: (x) => x === c };
  }

  /** `\x` after the backslash at `at`: a class (\d ...), a control character, or escaped punctuation. */
  private escape(at: number, inClass: boolean): CharTest {
    const e = this.src[this.pos++];
    if (e === undefined) throw new Error(`pattern ends with "\\"`);
    if (CLASS_ESCAPES[e]) return CLASS_ESCAPES[e];
    const ch = CHAR_ESCAPES[e] ?? (inClass && e === "b" ? "\b" : /[A-Za-z0-9]/.test(e) ? undefined : e);
    if (ch === undefined) {
      const what = /[1-9]/.test(e) ? "a backreference" : e === "b" || e === "B" ? "a word boundary" : "an escape tunelab does not match";
      throw new Error(`\\${e} is not supported at position ${at} (${what})`);
    }
    return (x) => x === ch;
  }

  private charClass(at: number): Node {
    const negate = this.src[this.pos] === "^";
    if (negate) this.pos++;
    if (this.src[this.pos] === "]") throw new Error(`empty character class at position ${at}`);
    const tests: CharTest[] = [];
    while (this.src[this.pos] !== "]") {
      if (this.pos >= this.src.length) throw new Error(`missing "]" for the class opened at position ${at}`);
      const lo = this.classChar();
      if (this.src[this.pos] === "-" && this.src[this.pos + 1] !== "]" && this.pos + 1 < this.src.length && typeof lo === "string") {
        const dash = this.pos++;
        const hi = this.classChar();
        if (typeof hi !== "string") throw new Error(`range to a class escape at position ${dash} is not supported`);
        if (hi < lo) throw new Error(`range out of order at position ${dash}`);
        tests.push((x) => x >= lo && x <= hi);
      } else tests.push(typeof lo === "string" ? (x) => x === lo : lo);
    }
    this.pos++;
    return { kind: "char", test: (x) => tests.some((t) => t(x)) !== negate };
  }

  /** One member of a class: a single character (as a string) or a class escape (as a test). */
  private classChar(): string | CharTest {
    const at = this.pos;
    const c = this.src[this.pos++];
    if (c !== "\\") return c;
    const e = this.src[this.pos];
    const test = this.escape(at, true);
    if (CLASS_ESCAPES[e]) return test;
    return CHAR_ESCAPES[e] ?? (e === "b" ? "\b" : e);
  }
}
