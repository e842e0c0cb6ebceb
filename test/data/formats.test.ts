import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { loadDataset } from "../../sdk/data/load";
import { DataError } from "../../sdk/data/report";
import type { ChatRow, ClassificationRow, PretrainRow } from "../../sdk/data/types";
import { tempDir, writeTemp } from "./helpers";

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

test("classification JSONL is detected and normalised with provenance", async () => {
  const p = writeTemp(tempDir(), "cls.jsonl", jsonl([{ text: "refund please", label: "billing" }, { text: "app crashes", label: 3 }]));
  const ds = await loadDataset(p);
  assert.equal(ds.length, 2);
  const [a, b] = ds.rows as ClassificationRow[];
  assert.deepEqual({ kind: a.kind, text: a.text, label: a.label }, { kind: "classification", text: "refund please", label: "billing" });
  assert.equal(b.label, "3");
  assert.deepEqual(a.provenance, { id: `${p}:1`, source: p, line: 1 });
  assert.equal(ds.report.loaded, 2);
  assert.equal(ds.report.dropped.length, 0);
});

test("plain text is pre-training; alpaca becomes a chat with system, history and instruction+input", async () => {
  const dir = tempDir();
  const pt = await loadDataset(writeTemp(dir, "pt.jsonl", jsonl([{ text: "The sky is blue." }])));
  assert.equal((pt.rows[0] as PretrainRow).kind, "pretrain");
  const alpaca = await loadDataset(
    writeTemp(dir, "a.json", JSON.stringify([
      { instruction: "Add.", input: "2 and 3", output: "5", system: "Be brief.", history: [["Hi", "Hello!"]] },
      { instruction: "Say hi.", input: "", output: "hi" },
    ])),
  );
  assert.deepEqual((alpaca.rows[0] as ChatRow).messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello!" },
    { role: "user", content: "Add.\n2 and 3" },
    { role: "assistant", content: "5" },
  ]);
  assert.deepEqual((alpaca.rows[1] as ChatRow).messages, [
    { role: "user", content: "Say hi." },
    { role: "assistant", content: "hi" },
  ]);
});

test("sharegpt (human/gpt/system/function/observation) and OpenAI messages", async () => {
  const dir = tempDir();
  const sg = await loadDataset(
    writeTemp(dir, "sg.jsonl", jsonl([{
      system: "You help.",
      conversations: [
        { from: "human", value: "Weather?" },
        { from: "function_call", value: '{"name":"weather"}' },
        { from: "observation", value: "sunny" },
        { from: "gpt", value: "It is sunny." },
      ],
    }])),
  );
  assert.deepEqual((sg.rows[0] as ChatRow).messages.map((m) => m.role), ["system", "user", "assistant", "user", "assistant"]);
  const oa = await loadDataset(
    writeTemp(dir, "oa.jsonl", jsonl([{
      messages: [
        { role: "system", content: "Sys" },
        { role: "user", content: [{ type: "text", text: "Hel" }, { type: "text", text: "lo" }] },
        { role: "assistant", content: "Hi" },
      ],
    }])),
  );
  assert.deepEqual((oa.rows[0] as ChatRow).messages, [
    { role: "system", content: "Sys" },
    { role: "user", content: "Hello" },
    { role: "assistant", content: "Hi" },
  ]);
  // role/content messages under "conversations" are detected too.
  const mixed = await loadDataset(writeTemp(dir, "m.jsonl", jsonl([{ conversations: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }] }])));
  assert.equal((mixed.rows[0] as ChatRow).messages[1].content, "b");
});

test("custom role tags and columns", async () => {
  const p = writeTemp(tempDir(), "t.jsonl", jsonl([{ dialog: [{ who: "me", said: "ping" }, { who: "bot", said: "pong" }] }]));
  const ds = await loadDataset(p, {
    format: "sharegpt",
    columns: { messages: "dialog" },
    tags: { roleTag: "who", contentTag: "said", userTag: "me", assistantTag: "bot" },
  });
  assert.deepEqual((ds.rows[0] as ChatRow).messages, [{ role: "user", content: "ping" }, { role: "assistant", content: "pong" }]);
  // With explicit tags, the default aliases are not accepted.
  const q = writeTemp(tempDir(), "u.jsonl", jsonl([{ dialog: [{ who: "human", said: "x" }, { who: "bot", said: "y" }] }]));
  await assert.rejects(
    loadDataset(q, { format: "sharegpt", columns: { messages: "dialog" }, tags: { roleTag: "who", contentTag: "said", userTag: "me", assistantTag: "bot" } }),
    /u\.jsonl:1: field "dialog\[0\]\.who": unknown role "human"/,
  );
});

test("format override: text+label read as pre-training, and renamed classification columns", async () => {
  const dir = tempDir();
  const p = writeTemp(dir, "cls.jsonl", jsonl([{ text: "abc", label: "x" }]));
  const asPt = await loadDataset(p, { format: "pretrain" });
  assert.equal(asPt.rows[0].kind, "pretrain");
  const q = writeTemp(dir, "renamed.csv", "sentence,category\nnice day,weather\n");
  await assert.rejects(loadDataset(q), /cannot tell the data format from the fields \{sentence, category\}/);
  const ds = await loadDataset(q, { format: "classification", columns: { text: "sentence", label: "category" } });
  assert.deepEqual({ ...(ds.rows[0] as ClassificationRow), provenance: undefined }, {
    kind: "classification", text: "nice day", label: "weather", provenance: undefined,
  });
});

test("CSV and Parquet files of each format", async () => {
  const dir = tempDir();
  const csv = await loadDataset(writeTemp(dir, "a.csv", 'instruction,input,output\n"Sum, please","1,2",3\n'));
  assert.deepEqual((csv.rows[0] as ChatRow).messages, [{ role: "user", content: "Sum, please\n1,2" }, { role: "assistant", content: "3" }]);
  const pq = join(dir, "sg.parquet");
  writeFileSync(pq, new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "conversations", data: [JSON.stringify([{ from: "human", value: "hi" }, { from: "gpt", value: "yo" }])] },
    ],
  })));
  const sg = await loadDataset(pq);
  assert.deepEqual((sg.rows[0] as ChatRow).messages.map((m) => m.content), ["hi", "yo"]);
  const cls = join(dir, "c.parquet");
  writeFileSync(cls, new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "text", data: ["a", "", "c"] },
      { name: "label", data: ["x", "y", "z"] },
    ],
  })));
  await assert.rejects(loadDataset(cls), /c\.parquet row 2: field "text": empty text/);
  const dropped = await loadDataset(cls, { onInvalid: "drop" });
  assert.equal(dropped.length, 2);
  assert.deepEqual(dropped.report.countsByReason, { "empty-text": 1 });
});

test("bad data: every error names file, line and field", async () => {
  const dir = tempDir();
  const cases: [string, unknown, RegExp][] = [
    ["missing.jsonl", { text: "hi" }, /missing\.jsonl:2: field "label": missing field "label"/],
    ["empty.jsonl", { text: "   ", label: "a" }, /empty\.jsonl:2: field "text": empty text/],
    ["type.jsonl", { text: 42, label: "a" }, /type\.jsonl:2: field "text": expected a string, got a number \(42\)/],
    ["labeltype.jsonl", { text: "x", label: [1] }, /labeltype\.jsonl:2: field "label": expected a string or integer label, got an array/],
    ["notobj.jsonl", ["x"], /notobj\.jsonl:2: expected a record \(an object\), got an array/],
  ];
  for (const [name, bad, re] of cases) {
    const p = writeTemp(dir, name, jsonl([{ text: "ok", label: "a" }, bad]));
    await assert.rejects(loadDataset(p, { format: "classification" }), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, re);
      assert.equal(e.issues.length, 1);
      return true;
    });
  }
  const chatCases: [unknown, RegExp][] = [
    [{ conversations: [{ from: "human", value: "a" }, { from: "narrator", value: "b" }] }, /field "conversations\[1\]\.from": unknown role "narrator"/],
    [{ conversations: [{ from: "human", value: "a" }, { from: "gpt" }] }, /field "conversations\[1\]\.value": missing field "value"/],
    [{ conversations: [{ from: "human", value: "a" }] }, /field "conversations": no assistant message/],
    [{ conversations: "nope" }, /field "conversations": expected a list, got a string/],
    [{ conversations: [{ from: "human", value: "a" }, { from: "gpt", value: "" }] }, /field "conversations\[1\]\.value": empty text/],
  ];
  for (const [bad, re] of chatCases) {
    const p = writeTemp(dir, "chat.jsonl", jsonl([{ conversations: [{ from: "human", value: "x" }, { from: "gpt", value: "y" }] }, bad]));
    await assert.rejects(loadDataset(p), (e: Error) => {
      assert.match(e.message, new RegExp(/chat\.jsonl:2: /.source + re.source));
      return true;
    });
  }
  const alp = writeTemp(dir, "alp.jsonl", jsonl([{ instruction: "a", output: "b" }, { instruction: "a", output: "b", history: [["only one"]] }]));
  await assert.rejects(loadDataset(alp), /alp\.jsonl:2: field "history\[0\]": expected a \[instruction, response\] pair/);
});

test("malformed JSON line: error by default, counted drop with onInvalid drop; nothing dropped silently", async () => {
  const p = writeTemp(tempDir(), "mixed.jsonl", [
    '{"text":"good","label":"a"}',
    '{"text":"broken",',
    '{"text":"","label":"a"}',
    '{"text":"fine","label":"b"}',
    '{"text":"no label"}',
  ].join("\n"));
  await assert.rejects(loadDataset(p), (e: Error) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.issues.length, 3);
    assert.match(e.message, /3 invalid rows/);
    assert.match(e.message, /mixed\.jsonl:2: malformed JSON/);
    return true;
  });
  const ds = await loadDataset(p, { onInvalid: "drop", format: "classification" });
  assert.equal(ds.length, 2);
  assert.equal(ds.report.loaded, 5);
  assert.equal(ds.report.dropped.length + ds.length, ds.report.loaded);
  assert.deepEqual(ds.report.countsByReason, { "malformed-json": 1, "empty-text": 1, "missing-field": 1 });
  assert.deepEqual(ds.report.dropped.map((d) => d.line), [2, 3, 5]);
  assert.match(ds.report.summary(), /loaded 5, dropped 3/);
});

test("LLaMA-Factory dataset_info.json: alpaca with columns, sharegpt with tags, pre-training, classification", async () => {
  const dir = tempDir();
  writeTemp(dir, "qa.json", JSON.stringify([{ q: "2+2?", a: "4", sys: "Math." }]));
  writeTemp(dir, "oa.jsonl", jsonl([{ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hey" }] }]));
  writeTemp(dir, "corpus.txt", "line one\nline two\n");
  writeTemp(dir, "cls.csv", "body,tag\nhello,greet\n");
  const info = writeTemp(dir, "dataset_info.json", JSON.stringify({
    qa: { file_name: "qa.json", columns: { prompt: "q", response: "a", system: "sys" } },
    chat: {
      file_name: "oa.jsonl",
      formatting: "sharegpt",
      columns: { messages: "messages" },
      tags: { role_tag: "role", content_tag: "content", user_tag: "user", assistant_tag: "assistant", system_tag: "system" },
    },
    pt: { file_name: "corpus.txt", columns: { prompt: "text" } },
    cls: { file_name: "cls.csv", formatting: "classification", columns: { text: "body", label: "tag" } },
    hub: { hf_hub_url: "someone/data" },
  }));
  const qa = await loadDataset(info, { dataset: "qa" });
  assert.deepEqual((qa.rows[0] as ChatRow).messages, [
    { role: "system", content: "Math." }, { role: "user", content: "2+2?" }, { role: "assistant", content: "4" },
  ]);
  assert.equal(qa.rows[0].provenance.source, join(dir, "qa.json"));
  const chat = await loadDataset(dir, { dataset: "chat" });
  assert.equal((chat.rows[0] as ChatRow).messages[1].content, "hey");
  const pt = await loadDataset(info, { dataset: "pt" });
  assert.deepEqual(pt.rows.map((r) => [r.kind, (r as PretrainRow).text]), [["pretrain", "line one"], ["pretrain", "line two"]]);
  const cls = await loadDataset(info, { dataset: "cls" });
  assert.equal((cls.rows[0] as ClassificationRow).label, "greet");
  await assert.rejects(loadDataset(info, { dataset: "nope" }), /no dataset named "nope"; it has "qa", "chat", "pt", "cls", "hub"/);
  await assert.rejects(loadDataset(info, { dataset: "hub" }), /"hf_hub_url" \("someone\/data"\) is fetched from the network, and tunelab works offline/);
  await assert.rejects(loadDataset(info), /holds 5 datasets/);
});

test("several files load into one dataset with reports added", async () => {
  const dir = tempDir();
  const a = writeTemp(dir, "a.jsonl", jsonl([{ text: "x", label: "p" }]));
  const b = writeTemp(dir, "b.jsonl", jsonl([{ text: "y", label: "q" }, { text: "", label: "q" }]));
  const ds = await loadDataset([a, b], { onInvalid: "drop" });
  assert.deepEqual(ds.rows.map((r) => r.provenance.source), [a, b]);
  assert.equal(ds.report.loaded, 3);
  assert.equal(ds.report.dropped.length, 1);
});
