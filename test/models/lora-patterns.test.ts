/**
 * target_modules / rank_pattern / alpha_pattern come from adapter files, so their regexes are untrusted: matching
 * must take bounded time whatever the pattern, unsupported regex features must be refused with a clear error, and
 * legitimate PEFT patterns must match exactly as JavaScript's RegExp (tunelab's matcher before) matched them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { isTargeted, loraRank, loraScaling, makeLoraConfig, parseLoraConfig } from "../../sdk/models/lora";
import { writeSafetensors } from "../../sdk/io/safetensors";
import { LinearRegex } from "../../sdk/util/linear-regex";
import { Rng } from "../../sdk/util/random";
import { tempDir } from "../io/tmp";

const MODULES = [
  "model.layers.0.self_attn.q_proj",
  "model.layers.0.self_attn.k_proj",
  "model.layers.0.self_attn.v_proj",
  "model.layers.1.self_attn.q_proj",
  "model.layers.12.self_attn.v_proj",
  "model.layers.27.mlp.gate_proj",
  "model.layers.3.mlp.up_proj",
  "model.layers.3.mlp.down_proj",
  "model.layers.3.self_attn.xq_proj",
  "q_proj",
  "score",
  "lm_head",
];

/**
 * Runs `body` (JavaScript using `config`, the compiled sdk/models/lora/config.js) in a child Node with a 10 s
 * limit, so that a regression that hangs fails this test instead of hanging the suite.
 */
function inChild(body: string): { ms: number; out: unknown } {
  const config = path.resolve(__dirname, "..", "..", "sdk", "models", "lora", "config.js");
  const lora = path.resolve(__dirname, "..", "..", "sdk", "models", "lora", "index.js");
  const script = `const config = require(${JSON.stringify(config)}); const lora = require(${JSON.stringify(lora)});
const t0 = Date.now(); const out = (() => { ${body} })(); console.log(JSON.stringify({ ms: Date.now() - t0, out }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 10_000 });
  assert.equal(r.signal, null, `the child was killed (${r.signal}): matching hangs`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

const HOSTILE = ["(a+)+$", "([a-z_.0-9]+)+x", "(.*)*y", "(\\w|\\d)+!", "(.*\\.)*(.*\\.)*(.*\\.)*z", ".*.*.*.*.*.*.*.*.*.*.*.*!", "(a|aa)+$"];
const LONG_PATH = `model.${"a".repeat(60)}.layers.10.self_attn.${"a".repeat(60)}!`.replace("!", "_");

test("hostile target_modules / rank_pattern / alpha_pattern regexes are matched in bounded time", () => {
  const { ms, out } = inChild(`
    const paths = ${JSON.stringify([...MODULES, LONG_PATH, "a".repeat(190)])};
    return ${JSON.stringify(HOSTILE)}.map((p) => {
      const c = config.makeLoraConfig({ r: 8, targetModules: p, rankPattern: { [p]: 4 }, alphaPattern: { [p]: 2 } });
      return paths.map((m) => [config.isTargeted(c, m), config.loraRank(c, m), config.loraScaling(c, m)]);
    });`);
  assert.ok(ms < 1000, `matching ${HOSTILE.length} hostile patterns against ${MODULES.length + 2} paths took ${ms} ms`);
  const results = out as Array<Array<[boolean, number, number]>>;
  // (a+)+$ fully matches "aaa…a" only; rank_pattern keys match a whole path or a dotted suffix of it.
  assert.deepEqual(results[0].at(-1), [true, 4, 0.5]);
  assert.deepEqual(results[0][0], [false, 8, 1]);
  assert.deepEqual(results[1][0], [false, 8, 1]);
});

test("loading an adapter whose rank_pattern is hostile does not hang", () => {
  const dir = tempDir("tunelab-peft-");
  const config = { peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: "(.*)*y", rank_pattern: { "([a-z_.0-9]+)+x": 4 } };
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(config));
  const p = `base_model.model.model.${"a".repeat(40)}.layers.10.self_attn.q_proj`;
  writeSafetensors(path.join(dir, "adapter_model.safetensors"), {
    [`${p}.lora_A.weight`]: { dtype: "F32", shape: [2, 4], data: new Float32Array(8) },
    [`${p}.lora_B.weight`]: { dtype: "F32", shape: [4, 2], data: new Float32Array(8) },
  });
  const { ms, out } = inChild(`return Object.values(lora.loadAdapter(${JSON.stringify(dir)}).lora).map((w) => w.rank);`);
  assert.ok(ms < 1000, `loadAdapter took ${ms} ms`);
  assert.deepEqual(out, [2]);
});

test("regex features that cannot be matched in bounded time are refused, naming the file, the key and the pattern", () => {
  const file = "/adapters/a/adapter_config.json";
  const cases: Array<[string, RegExp]> = [
    ["(q)\\1", /backreference/],
    ["(?=q)q_proj", /lookaround/],
    ["(?<=self_attn\\.)q_proj", /lookaround/],
    ["(?!k)._proj", /lookaround/],
    ["(?i)Q_PROJ", /"\(\?i" is not supported/],
    ["q_proj\\b", /\\b is not supported/],
    ["(q_proj", /missing "\)"/],
    ["q_proj)", /unmatched "\)"/],
    ["*q", /nothing to repeat/],
    ["q{3,2}", /out of order/],
    ["[z-a]", /out of order/],
    ["(q|v)_proj|" + "x".repeat(1000), /longer than 1000 characters/],
    ["((((a{100}){100}){100}){100})", /too large/],
  ];
  for (const [pattern, reason] of cases) {
    for (const key of ["target_modules", "rank_pattern", "alpha_pattern"]) {
      const obj: Record<string, unknown> = { peft_type: "LORA", target_modules: ["q_proj"] };
      obj[key] = key === "target_modules" ? pattern : { [pattern]: 4 };
      const quoted = JSON.stringify(pattern).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      assert.throws(() => parseLoraConfig(obj, file), (err: Error) => {
        assert.match(err.message, new RegExp(`^${file.replace(/\./g, "\\.")}: "${key}"`), `${key} ${pattern}`);
        assert.match(err.message, new RegExp(quoted), `${key} ${pattern}: names the pattern`);
        assert.match(err.message, reason, `${key} ${pattern}`);
        return true;
      });
    }
  }
});

test("legitimate patterns match exactly as before (hand-checked, and as JavaScript's RegExp)", () => {
  const targeted = (t: string) => MODULES.filter((m) => isTargeted(makeLoraConfig({ r: 8, targetModules: t }), m));
  assert.deepEqual(targeted(String.raw`.*\.q_proj`), ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"]);
  assert.deepEqual(targeted(String.raw`model\.layers\.\d+\.self_attn\.(q|v)_proj`), [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.1.self_attn.q_proj",
    "model.layers.12.self_attn.v_proj",
  ]);
  assert.deepEqual(targeted("q_proj"), ["q_proj"], "a regex string is fullmatched against the whole path");
  const c = makeLoraConfig({ r: 8, loraAlpha: 16, targetModules: ["q_proj"], rankPattern: { q_proj: 4, "layers.1.self_attn.q_proj": 2 }, alphaPattern: { "mlp\\..*": 4 } });
  assert.equal(loraRank(c, "model.layers.0.self_attn.q_proj"), 4);
  assert.equal(loraRank(c, "model.layers.3.self_attn.xq_proj"), 8, "a key matches whole dotted components only");
  assert.equal(loraScaling(c, "model.layers.3.mlp.up_proj"), 0.5);

  // Everything else: the same answers as the RegExp-based matcher tunelab used before.
  const patterns = [
    String.raw`.*\.q_proj`,
    String.raw`model\.layers\.\d+\.self_attn\.(q|v)_proj`,
    "q_proj",
    "layers.1.self_attn.q_proj",
    String.raw`.*layers\.0\..*(q|k)_proj`,
    String.raw`(?:.*\.)?(gate|up)_proj`,
    String.raw`model\.layers\.[0-9]{1,2}\.mlp\.down_proj`,
    String.raw`.*\.(\d+\.)*q_proj`,
    String.raw`[^.]+\.layers\.\d\..*`,
    String.raw`.*(?<kind>self_attn|mlp)\.\w_proj`,
    String.raw`^model\.layers\.(1[0-9]|2[0-7])\..*$`,
    String.raw`.*\.[qkv]_proj|lm_head`,
    String.raw`.*\.(?:q|k|v|o)_pro[^x]`,
    String.raw`\w+\.layers\.\d{2,}\.\S*`,
    String.raw`model.layers.3.mlp.(up|down)_proj`,
    String.raw`.*proj{1}`,
    "score|lm_head",
    String.raw`.*_proj?`,
    String.raw`model\.layers\.\d+?\.self_attn\.[a-z]+?_proj`,
    String.raw`.*[\d.]q_proj`,
    String.raw`.*\-?proj`,
  ];
  for (const p of patterns) {
    const c = makeLoraConfig({ r: 8, loraAlpha: 8, targetModules: p, rankPattern: { [p]: 4 }, alphaPattern: { [p]: 2 } });
    const full = new RegExp(`^(?:${p})$`);
    const suffix = new RegExp(`^(?:.*\\.)?(?:${p})$`);
    for (const m of MODULES) {
      assert.equal(isTargeted(c, m), full.test(m), `target_modules ${p} on ${m}`);
      assert.equal(loraRank(c, m), suffix.test(m) ? 4 : 8, `rank_pattern ${p} on ${m}`);
      assert.equal(loraScaling(c, m), suffix.test(m) ? 0.5 : 1, `alpha_pattern ${p} on ${m}`);
    }
  }
});

test("the linear-time matcher agrees with RegExp on random patterns of the supported syntax", () => {
  const rng = new Rng(7);
  const pick = <T>(xs: T[]): T => xs[rng.int(xs.length)];
  const atoms = ["a", "b", ".", "\\.", "\\d", "\\w", "\\W", "[ab]", "[^a.]", "[a-c0-9]", "[\\d.]", "[-a]", "[\\w-]", "_", "1", "{", "}", "a{,2}", "(?:)"];
  const quantifiers = ["", "", "*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?"];
  let groups = 0;
  const gen = (depth: number): string => {
    const k = depth > 3 ? 3 + rng.int(4) : rng.int(7);
    if (k === 0) return `${gen(depth + 1)}|${gen(depth + 1)}`;
    if (k === 1) return `${pick(["(", "(?:", `(?<g${++groups}>`, `(?P<g${++groups}>`])}${gen(depth + 1)})${pick(quantifiers)}`;
    if (k === 2) return gen(depth + 1) + gen(depth + 1);
    if (k === 3) return pick(["^", "$", pick(atoms)]);
    return pick(atoms) + pick(quantifiers);
  };
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const pattern = gen(0);
    const native = new RegExp(pattern.replace(/\(\?P</g, "(?<")); // Python's named groups, in JavaScript's spelling
    const linear = new LinearRegex(pattern);
    for (let j = 0; j < 8; j++) {
      const input = Array.from({ length: rng.int(9) }, () => pick([..."ab._1x-"])).join("");
      assert.equal(linear.test(input), native.test(input), `${JSON.stringify(pattern)} on ${JSON.stringify(input)}`);
      checked++;
    }
  }
  assert.equal(checked, 24000);
});
