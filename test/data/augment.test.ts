import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Rng } from "../../sdk/util/random";
import { Dataset, type RowContent } from "../../sdk/data/dataset";
import { augment } from "../../sdk/data/augment";
import { englishWordNet } from "../../sdk/data/augment/wordnet";
import { tableLexicon } from "../../sdk/data/augment/lexicon";
import { randomDelete, randomInsert, randomSwap, synonymReplace } from "../../sdk/data/augment/eda";
import { fillTemplate } from "../../sdk/data/augment/template";
import { chatTranslator, openAITranslator } from "../../sdk/data/augment/translate";
import { splitWords } from "../../sdk/data/augment/words";
import type { ChatRow, ClassificationRow, Row } from "../../sdk/data/types";

const tickets: RowContent[] = [
  { kind: "classification", text: "I want a refund because my bill shows a double charge.", label: "billing" },
  { kind: "classification", text: "The application crashes when I open the settings page.", label: "technical" },
  { kind: "classification", text: "My package never arrived and the tracking number is wrong.", label: "shipping" },
  { kind: "classification", text: "I forgot my password and cannot sign in to my account.", label: "account" },
  { kind: "classification", text: "Please cancel the payment on my invoice.", label: "billing" },
  { kind: "classification", text: "The parcel was delivered to the wrong house.", label: "shipping" },
];
const texts = (d: Dataset<Row>) => d.rows.map((r) => (r as ClassificationRow).text);

test("WordNet gives real English synonyms and the replacement uses only them", () => {
  const wn = englishWordNet();
  assert.ok(wn.synonyms("refund").includes("repayment"));
  assert.ok(wn.synonyms("package").includes("parcel"));
  assert.ok(wn.synonyms("packages").includes("parcels"), "plural lookups come back plural");
  assert.deepEqual(wn.synonyms("xqzvw"), []);
  assert.ok(wn.isStopword("the"));
  const text = "I want a refund because my bill shows a double charge.";
  const out = synonymReplace(text, 0.3, wn, new Rng(3));
  assert.ok(out && out !== text);
  const before = splitWords(text).filter((p) => p.word).map((p) => p.text);
  const after = splitWords(out!).filter((p) => p.word).map((p) => p.text);
  // Each replaced word is a synonym of the word it replaced (multi-word synonyms add words, so compare by position of change).
  const changed = before.filter((w) => !after.includes(w));
  assert.ok(changed.length >= 1);
  for (const w of changed) assert.ok(wn.synonyms(w).some((s) => out!.toLowerCase().includes(s.toLowerCase())), `${w} -> ?`);
  assert.equal(synonymReplace(text, 0.3, wn, new Rng(3)), out, "same seed, same output");
});

test("swap, delete and insert change word order/count as asked and are seeded", () => {
  const text = "the quick brown fox jumps over the lazy dog";
  const sorted = (s: string) => s.split(" ").sort().join(" ");
  const sw = randomSwap(text, 0.2, new Rng(1))!;
  assert.notEqual(sw, text);
  assert.equal(sorted(sw), sorted(text));
  assert.equal(randomSwap(text, 0.2, new Rng(1)), sw);
  const del = randomDelete(text, 0.3, new Rng(2))!;
  assert.ok(del.split(" ").length < 9 && del.split(" ").length >= 1);
  assert.ok(!del.includes("  ") && del === del.trim());
  for (const w of del.split(" ")) assert.ok(text.split(" ").includes(w));
  const ins = randomInsert(text, 0.2, englishWordNet(), new Rng(4))!;
  assert.ok(ins.split(" ").length > 9);
  assert.equal(randomSwap("single", 0.5, new Rng(1)), undefined);
  assert.equal(randomDelete("single", 0.5, new Rng(1)), undefined);
  assert.throws(() => randomSwap(text, 1.5, new Rng(1)), /expected a fraction in \(0, 1\]/);
});

test("unicode-aware words: a Chinese lexicon replaces segmented words", () => {
  const zh = tableLexicon("zh", { 账单: ["帐单"], 问题: ["疑问"] }, ["我", "的"]);
  const out = synonymReplace("我的账单有问题", 1, zh, new Rng(1));
  assert.equal(out, "我的帐单有疑问");
  const swapped = randomSwap("我的账单有问题", 0.25, new Rng(2), "zh")!;
  assert.notEqual(swapped, "我的账单有问题");
  assert.equal([...swapped].sort().join(""), [..."我的账单有问题"].sort().join(""));
});

test("augment is deterministic under a seed, carries provenance, and keeps originals first", async () => {
  const ds = Dataset.fromRows(tickets, "t.jsonl");
  const opts = { seed: 11, synonyms: 0.2, swap: 0.1, delete: 0.1, insert: 0.1 };
  const a = await augment(ds, opts);
  const b = await augment(ds, opts);
  const c = await augment(ds, { ...opts, seed: 12 });
  assert.deepEqual(texts(a), texts(b));
  assert.notDeepEqual(texts(a), texts(c));
  assert.deepEqual(texts(a).slice(0, 6), tickets.map((t) => (t as { text: string }).text));
  const made = a.rows.slice(6);
  assert.ok(made.length >= 20, `made ${made.length}`);
  for (const r of made) {
    const aug = r.provenance.augmented!;
    assert.ok(["synonyms", "swap", "delete", "insert"].includes(aug.method));
    const orig = ds.rows.find((o) => o.provenance.id === aug.from)! as ClassificationRow;
    assert.equal((r as ClassificationRow).label, orig.label, "labels are kept");
    assert.notEqual((r as ClassificationRow).text, orig.text);
    assert.equal(r.provenance.line, orig.provenance.line);
  }
  // Augmenting again augments originals only.
  const twice = await augment(a, { seed: 1, swap: 0.1 });
  for (const r of twice.rows.slice(a.length)) assert.ok(!r.provenance.augmented!.from.includes("~"));
  await assert.rejects(augment(ds, {}), /no method chosen/);
});

test("augmented rows never reach val or test", async () => {
  const rows: RowContent[] = [];
  for (let k = 0; k < 40; k++) rows.push({ kind: "classification", text: `order number ${k} arrived late and damaged`, label: k % 2 ? "a" : "b" });
  const ds = Dataset.fromRows(rows, "d.jsonl");
  // Augment before splitting: the split follows the originals and drops (counts) copies of val/test rows.
  const aug = await augment(ds, { seed: 3, swap: 0.2 });
  const s = aug.split({ val: 0.25, test: 0.25, seed: 5 });
  assert.ok(s.val.rows.every((r) => !r.provenance.augmented));
  assert.ok(s.test.rows.every((r) => !r.provenance.augmented));
  const evalIds = new Set([...s.val.rows, ...s.test.rows].map((r) => r.provenance.id));
  for (const r of s.train.rows) if (r.provenance.augmented) assert.ok(!evalIds.has(r.provenance.augmented.from));
  assert.equal(s.train.report.countsByReason.leak, aug.length - ds.length - s.train.rows.filter((r) => r.provenance.augmented).length);
  assert.ok((s.train.report.countsByReason.leak ?? 0) > 0);
  // Split first: only train is augmented; augmenting a val part is refused.
  const split = ds.split({ val: 0.25, seed: 5 });
  const augSplit = await augment(split, { seed: 3, swap: 0.2 });
  assert.equal(augSplit.val, split.val);
  assert.ok(augSplit.train.length > split.train.length);
  assert.equal(augSplit.train.role, "train");
  await assert.rejects(augment(split.val, { swap: 0.2 }), /val part of a split; augmented rows may only be made from train rows/);
});

test("template filling: row slots, user slots, per-label templates, errors", async () => {
  const rng = new Rng(1);
  assert.equal(fillTemplate("Q: {question} {{literal}}", { question: ["why?"] }, rng), "Q: why? {literal}");
  assert.throws(() => fillTemplate("{nope}", {}, rng), /slot \{nope\} has no values/);
  const ds = Dataset.fromRows(tickets.slice(0, 2), "t.jsonl");
  const out = await augment(ds, {
    seed: 4,
    perRow: 2,
    templates: { templates: ["{greeting} {text} {closing}"], slots: { greeting: ["Hi,", "Hello,"], closing: ["Thanks!", "Cheers."] } },
  });
  const made = out.rows.slice(2) as ClassificationRow[];
  assert.ok(made.length >= 2);
  for (const r of made) {
    assert.match(r.text, /^(Hi,|Hello,) .+ (Thanks!|Cheers\.)$/);
    assert.equal(r.provenance.augmented!.method, "template");
  }
  const perLabel = await augment(ds, { seed: 4, templates: { templates: { billing: ["I was charged {amount} twice."] }, slots: { amount: ["$5"] } } });
  assert.deepEqual(texts(perLabel).slice(2), ["I was charged $5 twice."]);
  await assert.rejects(augment(ds, { templates: { templates: ["{text} {missing}"] } }), /uses slot \{missing\}, which has no values/);
  await assert.rejects(augment(ds, { templates: { templates: ["{text}"], slots: { text: ["x"] } } }), /reserved/);
});

test("chat rows: only user messages are rewritten", async () => {
  const ds = Dataset.fromRows([{
    kind: "chat",
    messages: [
      { role: "system", content: "You are a helpful support agent." },
      { role: "user", content: "my package never arrived at the house" },
      { role: "assistant", content: "I am sorry to hear that your package never arrived." },
    ],
  }]);
  const out = await augment(ds, { seed: 2, swap: 0.3 });
  const [orig, made] = out.rows as ChatRow[];
  assert.equal(made.messages[0].content, orig.messages[0].content);
  assert.equal(made.messages[2].content, orig.messages[2].content);
  assert.notEqual(made.messages[1].content, orig.messages[1].content);
});

/** The part of an OpenAI chat request that the test server reads. */
interface ChatRequest {
  model: string;
  temperature: number;
  messages: { content: string }[];
}

/** A tiny OpenAI-compatible server: translates with a word table in each direction. */
async function startTranslationServer(): Promise<{ url: string; requests: { auth?: string; body: ChatRequest }[]; close(): Promise<void>; fail: { on: boolean } }> {
  const toZh: Record<string, string> = { my: "我的", package: "包裹", never: "从未", arrived: "到达", bill: "账单", is: "是", wrong: "错误" };
  const toEn: Record<string, string> = { 我的: "my", 包裹: "parcel", 从未: "never", 到达: "came", 账单: "invoice", 是: "is", 错误: "incorrect" };
  const requests: { auth?: string; body: ChatRequest }[] = [];
  const fail = { on: false };
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = "";
      req.on("data", (c) => (s += c));
      req.on("end", () => resolve(s));
    });
  const server = createServer(async (req, res) => {
    const body = JSON.parse(await read(req)) as ChatRequest;
    requests.push({ auth: req.headers.authorization, body });
    if (fail.on) {
      res.writeHead(500, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "model overloaded" } }));
    }
    if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
      res.writeHead(404);
      return res.end();
    }
    const system: string = body.messages[0].content;
    const text: string = body.messages[1].content;
    const toChinese = /to Chinese/.test(system);
    const out = toChinese
      ? text.split(/\s+/).map((w) => toZh[w.toLowerCase()] ?? w).join("")
      : [...new Intl.Segmenter("zh", { granularity: "word" }).segment(text)].map((s) => toEn[s.segment] ?? s.segment).join(" ");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      id: "chatcmpl-1", object: "chat.completion", model: body.model,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: toChinese ? out : `<think>easy</think>${out}` } }],
    }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/v1`, requests, fail, close: () => new Promise((r) => server.close(() => r())) };
}

test("back-translation through an OpenAI-compatible HTTP endpoint", async () => {
  const srv = await startTranslationServer();
  try {
    const translator = openAITranslator({ baseURL: srv.url, model: "tiny-mt", apiKey: "sk-test" });
    const ds = Dataset.fromRows([
      { kind: "classification", text: "my package never arrived", label: "shipping" },
      { kind: "classification", text: "my bill is wrong", label: "billing" },
    ], "bt.jsonl");
    const out = await augment(ds, { seed: 1, backTranslation: { translator, pivot: "zh" } });
    assert.deepEqual(texts(out).slice(2), ["my parcel never came", "my invoice is incorrect"]);
    assert.deepEqual(out.rows.slice(2).map((r) => r.provenance.augmented), [
      { from: "bt.jsonl:1", method: "backTranslation" },
      { from: "bt.jsonl:2", method: "backTranslation" },
    ]);
    assert.equal(srv.requests.length, 4);
    assert.equal(srv.requests[0].auth, "Bearer sk-test");
    assert.equal(srv.requests[0].body.model, "tiny-mt");
    assert.equal(srv.requests[0].body.temperature, 0);
    // Rows are translated concurrently, so count directions rather than rely on arrival order.
    const prompts = srv.requests.map((r) => r.body.messages[0].content as string);
    assert.equal(prompts.filter((p) => /from English to Chinese/.test(p)).length, 2);
    assert.equal(prompts.filter((p) => /from Chinese to English/.test(p)).length, 2);
    srv.fail.on = true;
    await assert.rejects(augment(ds, { backTranslation: { translator, pivot: "zh" } }), /answered HTTP 500: .*model overloaded/);
  } finally {
    await srv.close();
  }
  const dead = openAITranslator({ baseURL: srv.url, model: "m", timeoutMs: 2000 });
  await assert.rejects(dead.translate("x", "en", "zh"), /request to http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions failed/);
});

test("back-translation through any chat function", async () => {
  const seen: string[] = [];
  const translator = chatTranslator(async (messages) => {
    seen.push(messages[0].content);
    const t = messages[1].content;
    return /to German/.test(messages[0].content) ? `[de] ${t}` : t.replace("[de] ", "").replace("late", "delayed");
  });
  const ds = Dataset.fromRows([{ kind: "pretrain", text: "the train was late" }]);
  const out = await augment(ds, { backTranslation: { translator, pivot: ["de"] } });
  assert.equal((out.rows[1] as { text: string }).text, "the train was delayed");
  assert.match(seen[0], /from English to German/);
});
