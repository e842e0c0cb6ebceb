/** Seeded fuzz cases for the file loaders; run as a script it prints one JSON line per case (see fuzz.test.ts). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { loadDataset } from "../../sdk/data/load";
import { openWeights } from "../../sdk/io/safetensors";
import { readModelConfig } from "../../sdk/io/config";
import { Tokenizer } from "../../sdk/io/tokenizer";
import { createTinyModel } from "../../sdk/io/tiny";
import { loadAdapter, makeLoraConfig, saveAdapter, type LoraWeights } from "../../sdk/models/lora";
import { Rng } from "../../sdk/util/random";

/** One line of the runner's output: a case about to run ("start") or its outcome ("end"). */
export interface CaseLine {
  event: "start" | "end" | "unhandled";
  kind: string;
  mutation: string;
  seed: number;
  /** For "end": undefined on success, else the error's name and message. */
  error?: string;
  /** For "end": the rule broken, if any. */
  problem?: string;
}

/** The seed every run starts from. */
export const FUZZ_SEED = 20261201;

type Mutator = (bytes: Uint8Array, rng: Rng) => { bytes: Uint8Array; line?: number };

const enc = new TextEncoder();
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** Byte-level mutations shared by every kind. */
const BYTE_MUTATIONS: Record<string, Mutator> = {
  truncate: (b, r) => ({ bytes: b.slice(0, r.int(b.length)) }),
  empty: () => ({ bytes: new Uint8Array(0) }),
  flip: (b, r) => {
    const out = b.slice();
    for (let k = 0, n = 1 + r.int(8); k < n && out.length > 0; k++) out[r.int(out.length)] ^= 1 << r.int(8);
    return { bytes: out };
  },
  "invalid-utf8": (b, r) => {
    const at = r.int(b.length + 1);
    return { bytes: cat(b.slice(0, at), Uint8Array.of([0xff, 0xc3, 0x80, 0xfe][r.int(4)], 0xc3), b.slice(at)) };
  },
  bom: (b) => ({ bytes: cat(Uint8Array.of(0xef, 0xbb, 0xbf), b) }),
  "long-line": (b, r) => {
    const at = r.int(b.length + 1);
    return { bytes: cat(b.slice(0, at), enc.encode("x".repeat(1 << 20)), b.slice(at)) };
  },
};

/** Replaces one value of a parsed JSON document (found at random depth) with a value of another type. */
function wrongType(value: unknown, rng: Rng, deep: boolean): unknown {
  const replacements = [null, 42, -1, 1e300, "str", true, [], {}, [1, 2], { a: 1 }];
  const pick = () => (deep ? DEEP : replacements[rng.int(replacements.length)]);
  const walk = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== "object") return pick();
    const keys = Object.keys(v);
    if (keys.length === 0 || (depth > 0 && rng.int(3) === 0)) return pick();
    const k = keys[rng.int(keys.length)];
    const copy: Record<string, unknown> | unknown[] = Array.isArray(v) ? v.slice() : { ...(v as Record<string, unknown>) };
    (copy as Record<string, unknown>)[k] = walk((v as Record<string, unknown>)[k], depth + 1);
    return copy;
  };
  return walk(value, 0);
}

/** Stands in for 10,000 nested arrays, which JSON.stringify cannot write (too deep for its recursion). */
const DEEP = "\u0000deep";

/** JSON text of `value`, with DEEP replaced by 10,000 nested arrays. */
const deepJson = (value: unknown) => enc.encode(JSON.stringify(value).replace(JSON.stringify(DEEP), "[".repeat(10_000) + "]".repeat(10_000)));

/** JSON-level mutations for a single JSON document. */
const JSON_MUTATIONS: Record<string, Mutator> = {
  "wrong-type": (b, r) => ({ bytes: enc.encode(JSON.stringify(wrongType(JSON.parse(new TextDecoder().decode(b)), r, false))) }),
  "deep-nesting": (b, r) => ({ bytes: deepJson(wrongType(JSON.parse(new TextDecoder().decode(b)), r, true)) }),
  "not-object": (_b, r) => ({ bytes: enc.encode(["[]", "null", "42", '"x"', "[".repeat(10_000)][r.int(5)]) }),
};

/** JSONL mutations that change one line, remembering its number. */
const JSONL_MUTATIONS: Record<string, Mutator> = {
  "wrong-type-line": (b, r) => {
    const lines = new TextDecoder().decode(b).split("\n");
    const k = r.int(lines.length - 1);
    lines[k] = JSON.stringify(wrongType(JSON.parse(lines[k]), r, false));
    return { bytes: enc.encode(lines.join("\n")), line: k + 1 };
  },
  "deep-line": (b, r) => {
    const lines = new TextDecoder().decode(b).split("\n");
    const k = r.int(lines.length - 1);
    lines[k] = "[".repeat(10_000) + "]".repeat(r.int(2) * 10_000);
    return { bytes: enc.encode(lines.join("\n")), line: k + 1 };
  },
};

const ROWS = [
  { instruction: "Add the numbers", input: "1, 2", output: "3" },
  { instruction: "Say hi", input: "", output: "hi" },
  { instruction: "Name a colour", input: "", output: "blue" },
  { instruction: "Reverse abc", input: "", output: "cba" },
];

const jsonl = () => enc.encode(ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");

/** The valid originals of every data file type. */
const DATA_FILES: Record<string, { name: string; bytes: () => Uint8Array; extra: Record<string, Mutator> }> = {
  jsonl: { name: "d.jsonl", bytes: jsonl, extra: JSONL_MUTATIONS },
  json: { name: "d.json", bytes: () => enc.encode(JSON.stringify(ROWS, null, 1)), extra: JSON_MUTATIONS },
  csv: {
    name: "d.csv",
    bytes: () => enc.encode("instruction,input,output\n" + ROWS.map((r) => `"${r.instruction}","${r.input}",${r.output}`).join("\n") + "\n"),
    extra: { "unclosed-quote": (b, r) => ({ bytes: cat(b.slice(0, r.int(b.length)), enc.encode('"abc\n')) }) },
  },
  parquet: {
    name: "d.parquet",
    bytes: () =>
      new Uint8Array(
        parquetWriteBuffer({
          columnData: ["instruction", "input", "output"].map((c) => ({ name: c, data: ROWS.map((r) => r[c as keyof typeof r]) })),
        }),
      ),
    extra: {
      "wrong-type-column": (_b, r) => {
        const wrong = [
          [1, 2, 3, 4],
          [true, false, true, false],
          [null, null, null, null],
          [1.5, 2.5, -3, 4e9],
        ][r.int(4)];
        const col = ["instruction", "input", "output"][r.int(3)];
        const columnData = ["instruction", "input", "output"].map((c) => ({
          name: c,
          data: c === col ? wrong : ROWS.map((row) => row[c as keyof typeof row]),
        }));
        return { bytes: new Uint8Array(parquetWriteBuffer({ columnData })) };
      },
    },
  },
  txt: { name: "d.txt", bytes: () => enc.encode("The sky is blue.\nGrass is green.\n"), extra: {} },
};

/** Longest error message accepted: a 1 MB line must not come back whole in the message. */
const MAX_MESSAGE = 4000;

/** Runs `fn` and reports whether its outcome keeps the rule: success, or an Error naming `file` (and `line`). */
export async function judge(fn: () => unknown, file: string, line?: number): Promise<{ error?: string; problem?: string }> {
  try {
    await fn();
    return {};
  } catch (e) {
    if (!(e instanceof Error)) return { error: String(e), problem: "threw a non-Error" };
    const error = `${e.name}: ${e.message}`.slice(0, 600);
    if (e.message.length > MAX_MESSAGE) return { error, problem: `message of ${e.message.length} characters (more than ${MAX_MESSAGE})` };
    const base = path.basename(file);
    if (!e.message.includes(base)) return { error, problem: `message does not name ${base}` };
    if (/Cannot read propert|is not a function|is not iterable|undefined is not/.test(e.message)) return { error, problem: "internal error text" };
    if (line !== undefined && !e.message.includes(`${base}:${line}:`)) {
      return { error, problem: `message does not name line ${line}` };
    }
    return { error };
  }
}

/** A case: a kind, a mutation name, its seed and the async check to run. */
interface Case {
  kind: string;
  mutation: string;
  seed: number;
  run: () => Promise<{ error?: string; problem?: string }>;
}

/** The `k`-th mutation, round robin, so that every mutation gets its share of cases. */
function nthMutation(all: Record<string, Mutator>, k: number): [string, Mutator] {
  const names = Object.keys(all);
  return [names[k % names.length], all[names[k % names.length]]];
}

/** The data-file cases: `perType` per file type. */
function dataCases(root: string, perType: number): Case[] {
  const cases: Case[] = [];
  for (const [type, spec] of Object.entries(DATA_FILES)) {
    const original = spec.bytes();
    const all = { ...BYTE_MUTATIONS, ...spec.extra };
    for (let k = 0; k < perType; k++) {
      const seed = FUZZ_SEED + cases.length;
      const rng = new Rng(seed);
      const [mutation, mutate] = nthMutation(all, k);
      const dir = path.join(root, `data-${type}-${k}`);
      cases.push({
        kind: `data:${type}`,
        mutation,
        seed,
        run: async () => {
          const { bytes, line } = mutate(original, rng);
          fs.mkdirSync(dir, { recursive: true });
          const file = path.join(dir, spec.name);
          fs.writeFileSync(file, bytes);
          return judge(() => loadDataset(file), file, line);
        },
      });
    }
  }
  return cases;
}

const SAFETENSORS_MUTATIONS: Record<string, Mutator> = {
  ...BYTE_MUTATIONS,
  "header-length-lies": (b, r) => {
    const out = b.slice();
    const view = new DataView(out.buffer);
    const len = Number(view.getBigUint64(0, true));
    const lie = [0, 1, 2, len - 1 - r.int(20), len + 1 + r.int(20), b.length, 2 ** 40, 2 ** 53 + 17][r.int(8)];
    view.setBigUint64(0, BigInt(Math.max(0, lie)), true);
    return { bytes: out };
  },
  "header-truncated": (b, r) => {
    const { header, data } = splitSafetensors(b);
    return { bytes: joinSafetensors(header.slice(0, r.int(header.length)), data) };
  },
  "offsets-out-of-range": (b, r) =>
    editHeader(b, r, (t, rr) => {
      const off = t.data_offsets as number[];
      const choices = [[off[0], off[1] + 4096], [off[1], off[0]], [-4, off[1]], [off[0], 1e18], [off[0] + 1, off[1]], ["0", off[1]], [off[0]]];
      t.data_offsets = choices[rr.int(choices.length)];
    }),
  "dtype-unknown": (b, r) =>
    editHeader(b, r, (t, rr) => {
      t.dtype = ["F8_E4M3", "Q4", "", 7, null, "f32"][rr.int(6)];
    }),
  "shape-wrong": (b, r) =>
    editHeader(b, r, (t, rr) => {
      t.shape = [[], [-1, 4], [1e12, 1e12], ["2"], null, [2.5], [0]][rr.int(7)];
    }),
  "cut-short": (b, r) => ({ bytes: b.slice(0, b.length - 1 - r.int(Math.min(b.length - 1, 5000))) }),
};

function splitSafetensors(b: Uint8Array): { header: Uint8Array; data: Uint8Array } {
  const len = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: b.slice(8, 8 + len), data: b.slice(8 + len) };
}

function joinSafetensors(header: Uint8Array, data: Uint8Array): Uint8Array {
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(header.length), true);
  return cat(len, header, data);
}

/** Applies `edit` to one random tensor entry of the header JSON. */
function editHeader(b: Uint8Array, rng: Rng, edit: (t: Record<string, unknown>, rng: Rng) => void): { bytes: Uint8Array } {
  const { header, data } = splitSafetensors(b);
  const json = JSON.parse(new TextDecoder().decode(header)) as Record<string, Record<string, unknown>>;
  const names = Object.keys(json).filter((n) => n !== "__metadata__");
  edit(json[names[rng.int(names.length)]], rng);
  return { bytes: joinSafetensors(enc.encode(JSON.stringify(json)), data) };
}

/** Model-folder cases: each copies a valid folder, damages one file and runs `load` on the folder. */
function fileCases(
  kind: string,
  root: string,
  original: string,
  file: string,
  mutations: Record<string, Mutator>,
  count: number,
  load: (dir: string) => unknown,
  seedBase: number,
): Case[] {
  const cases: Case[] = [];
  const bytes = new Uint8Array(fs.readFileSync(path.join(original, file)));
  for (let k = 0; k < count; k++) {
    const seed = seedBase + k;
    const rng = new Rng(seed);
    const [mutation, mutate] = nthMutation(mutations, k);
    const dir = path.join(root, `${kind.replace(/\W/g, "-")}-${k}`);
    cases.push({
      kind,
      mutation,
      seed,
      run: async () => {
        fs.cpSync(original, dir, { recursive: true });
        fs.writeFileSync(path.join(dir, file), mutate(bytes, rng).bytes);
        return judge(() => load(dir), path.join(dir, file));
      },
    });
  }
  return cases;
}

/** Reads every tensor of the weights in `dir`. */
function readAllWeights(dir: string): void {
  const w = openWeights(dir);
  try {
    for (const n of w.names()) w.read(n);
  } finally {
    w.close();
  }
}

/** A small saved LoRA adapter folder. */
function makeAdapter(dir: string): void {
  const rng = new Rng(7);
  const lora = (inF: number, outF: number): LoraWeights => ({
    A: Float32Array.from({ length: 2 * inF }, () => rng.normal()),
    B: Float32Array.from({ length: outF * 2 }, () => rng.normal()),
    rank: 2,
    inFeatures: inF,
    outFeatures: outF,
  });
  const config = makeLoraConfig({ r: 2, loraAlpha: 4, targetModules: ["q_proj", "v_proj"] });
  saveAdapter(dir, { config, lora: { "model.layers.0.self_attn.q_proj": lora(16, 16), "model.layers.0.self_attn.v_proj": lora(16, 8) }, modulesToSave: {} });
}

/** Every case, from the fixed seed, with its files under `root`. */
export function allCases(root: string, scale = 1): Case[] {
  const model = path.join(root, "model-original");
  createTinyModel({ arch: "qwen2", out: model, seed: 1, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1 });
  const adapter = path.join(root, "adapter-original");
  makeAdapter(adapter);
  const n = (k: number) => Math.max(1, Math.round(k * scale));
  const jsonMutations = { ...BYTE_MUTATIONS, ...JSON_MUTATIONS };
  return [
    ...dataCases(root, n(60)),
    ...fileCases("safetensors", root, model, "model.safetensors", SAFETENSORS_MUTATIONS, n(80), readAllWeights, FUZZ_SEED + 10_000),
    ...fileCases("config.json", root, model, "config.json", jsonMutations, n(50), readModelConfig, FUZZ_SEED + 20_000),
    ...fileCases("tokenizer.json", root, model, "tokenizer.json", jsonMutations, n(30), (d) => Tokenizer.fromDir(d), FUZZ_SEED + 30_000),
    ...fileCases("tokenizer_config.json", root, model, "tokenizer_config.json", jsonMutations, n(30), (d) => Tokenizer.fromDir(d), FUZZ_SEED + 40_000),
    ...fileCases("adapter_config.json", root, adapter, "adapter_config.json", jsonMutations, n(40), loadAdapter, FUZZ_SEED + 50_000),
    ...fileCases("adapter_model.safetensors", root, adapter, "adapter_model.safetensors", SAFETENSORS_MUTATIONS, n(40), loadAdapter, FUZZ_SEED + 60_000),
  ];
}

/** Runs every case in order, printing a start and an end line for each (so a hang or crash points at its case). */
async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-fuzz-"));
  // A rejection nobody awaits would crash a user's process: report it against the case, then stop.
  process.on("unhandledRejection", (e) => {
    process.stdout.write(JSON.stringify({ event: "unhandled", error: String(e) }) + "\n");
    process.exit(1);
  });
  try {
    for (const c of allCases(root, Number(process.argv[2] ?? 1))) {
      const head = { kind: c.kind, mutation: c.mutation, seed: c.seed };
      process.stdout.write(JSON.stringify({ event: "start", ...head }) + "\n");
      const outcome = await c.run().catch((e: unknown) => ({ error: String(e), problem: "the case could not be set up" }));
      // A turn of the event loop, so that an unhandled rejection shows up before the case's end line.
      await new Promise((resolve) => setImmediate(resolve));
      process.stdout.write(JSON.stringify({ event: "end", ...head, ...outcome }) + "\n");
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
