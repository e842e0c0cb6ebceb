import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readRecords, fileTypeOf } from "../../sdk/data/read";
import { decodeUtf8, firstInvalidUtf8 } from "../../sdk/data/read/utf8";
import { parseCsvRows, readCsv } from "../../sdk/data/read/csv";
import { tempDir, writeTemp } from "./helpers";

test("JSONL: records carry their line numbers, blank lines are skipped", async () => {
  const dir = tempDir();
  const p = writeTemp(dir, "a.jsonl", '{"text":"one"}\n\n{"text":"two"}\r\n{"text":"three"}');
  const r = await readRecords(p);
  assert.deepEqual(r.records.map((x) => x.line), [1, 3, 4]);
  assert.deepEqual(r.records.map((x) => (x.value as { text: string }).text), ["one", "two", "three"]);
  assert.equal(r.issues.length, 0);
});

test("JSONL: a malformed line becomes an issue naming its line and column", async () => {
  const p = writeTemp(tempDir(), "bad.jsonl", '{"text":"ok"}\n{"text": "x",}\n{"text":"fine"}\n');
  const r = await readRecords(p);
  assert.equal(r.records.length, 2);
  assert.equal(r.issues.length, 1);
  assert.equal(r.issues[0].line, 2);
  assert.equal(r.issues[0].reason, "malformed-json");
  assert.match(r.issues[0].message, /column 14/);
});

test("JSON array: element lines are exact, syntax errors name line and column", async () => {
  const dir = tempDir();
  const p = writeTemp(dir, "a.json", '[\n  {"text": "a"},\n\n  {"text":\n   "b"}, {"text": "c"}\n]\n');
  const r = await readRecords(p);
  assert.deepEqual(r.records.map((x) => x.line), [2, 4, 5]);
  const bad = writeTemp(dir, "bad.json", '[\n {"text": "a"},\n {"text": oops}\n]');
  await assert.rejects(readRecords(bad), (e: Error) => {
    assert.match(e.message, /bad\.json:3: malformed JSON at column 11: unexpected character "o"/);
    return true;
  });
  const notArray = writeTemp(dir, "obj.json", '{"data": 1}');
  await assert.rejects(readRecords(notArray), /obj\.json:1: expected a JSON array of records/);
});

test("a .json file holding JSON Lines is read line by line", async () => {
  const p = writeTemp(tempDir(), "lines.json", '{"text":"a"}\n{"text":"b"}\n');
  const r = await readRecords(p);
  assert.deepEqual(r.records.map((x) => x.line), [1, 2]);
});

test("non-UTF-8 input is an error naming the file, line and byte offset", async () => {
  const bytes = Buffer.concat([Buffer.from('{"text":"caf\u00e9"}\n{"text":"na'), Buffer.from([0xef, 0xbb]), Buffer.from('ve"}\n')]);
  const p = writeTemp(tempDir(), "latin.jsonl", bytes);
  const offset = Buffer.from('{"text":"caf\u00e9"}\n{"text":"na').length;
  await assert.rejects(readRecords(p), (e: Error) => {
    assert.ok(e.message.startsWith(`${p}:2: not valid UTF-8 at byte offset ${offset}`), e.message);
    return true;
  });
  // Latin-1 é alone (0xE9 followed by ASCII) is invalid; overlong and surrogate encodings too.
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0xe9, 0x62])), 1);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0xc0, 0xaf])), 0);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80])), 0);
  assert.equal(firstInvalidUtf8(Buffer.from("ok ✓ 😀")), Buffer.from("ok ✓ 😀").length);
  assert.equal(decodeUtf8(Buffer.from("\ufeffhi"), "x"), "hi");
});

test("CSV: RFC 4180 quoting, embedded newlines and commas, CRLF, header keys", async () => {
  const csv = 'text,label\r\n"Hello, world",greet\r\n"He said ""hi""\nthen left",story\r\nplain,x\r\n';
  const p = writeTemp(tempDir(), "a.csv", csv);
  const r = await readRecords(p);
  assert.deepEqual(r.records.map((x) => x.value), [
    { text: "Hello, world", label: "greet" },
    { text: 'He said "hi"\nthen left', label: "story" },
    { text: "plain", label: "x" },
  ]);
  assert.deepEqual(r.records.map((x) => x.line), [2, 3, 5]);
  assert.deepEqual(parseCsvRows('a,,"",b\n', "x").map((row) => row.fields), [["a", "", "", "b"]]);
  assert.deepEqual(parseCsvRows("a,b", "x").map((row) => row.fields), [["a", "b"]]);
});

test("CSV: wrong field counts are issues; broken quoting is an error naming the line", () => {
  const r = readCsv("text,label\nok,a\nonly-one\nx,y,z\n", "t.csv");
  assert.equal(r.records.length, 1);
  assert.deepEqual(r.issues.map((i) => [i.line, i.reason]), [[3, "malformed-csv"], [4, "malformed-csv"]]);
  assert.match(r.issues[0].message, /expected 2 fields \(text, label\), found 1/);
  assert.throws(() => readCsv('text,label\n"open,a\nb,c\n', "q.csv"), /q\.csv:2: unterminated quoted CSV field/);
  assert.throws(() => readCsv('text,label\nab"c,d\n', "q.csv"), /q\.csv:2: a quote inside an unquoted CSV field/);
  assert.throws(() => readCsv("text,text\n", "h.csv"), /duplicate column "text"/);
});

test("TSV and TXT files", async () => {
  const dir = tempDir();
  const tsv = await readRecords(writeTemp(dir, "a.tsv", "text\tlabel\nhello, there\tg\n"));
  assert.deepEqual(tsv.records[0].value, { text: "hello, there", label: "g" });
  const txt = await readRecords(writeTemp(dir, "a.txt", "first line\n\nsecond line\n"));
  assert.deepEqual(txt.records.map((x) => [x.line, (x.value as { text: string }).text]), [[1, "first line"], [3, "second line"]]);
});

test("Parquet: rows become records numbered from 1; int64 labels become numbers", async () => {
  const p = `${tempDir()}/a.parquet`;
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "text", data: ["good film", "bad film", "fine film"] },
      { name: "label", data: [1n, 0n, 1n], type: "INT64" },
    ],
  });
  writeFileSync(p, new Uint8Array(buf));
  const r = await readRecords(p);
  assert.deepEqual(r.records.map((x) => x.line), [1, 2, 3]);
  assert.deepEqual(r.records.map((x) => x.value), [
    { text: "good film", label: 1 },
    { text: "bad film", label: 0 },
    { text: "fine film", label: 1 },
  ]);
  const junk = writeTemp(tempDir(), "junk.parquet", "not parquet at all");
  await assert.rejects(readRecords(junk), /junk\.parquet: not a readable Parquet file/);
});

test("unknown extensions and missing files are clear errors", async () => {
  assert.throws(() => fileTypeOf("x.xlsx"), /unknown data file extension "\.xlsx"/);
  await assert.rejects(readRecords("/nonexistent/file.jsonl"), /file\.jsonl: data file not found/);
});

test("damaged files: hyparquet's internal errors and huge CSV column names stay out of messages", async () => {
  const dir = tempDir();
  // A byte inserted before the footer's length leaves hyparquet reading garbage metadata: a TypeError inside it.
  const good = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: "text", data: ["a", "b"] }] }));
  const at = good.length - 8;
  const p = writeTemp(dir, "e.parquet", Uint8Array.from([...good.slice(0, at), 0xff, ...good.slice(at)]));
  await assert.rejects(readRecords(p), (e: Error) => {
    assert.match(e.message, /e\.parquet: not a readable Parquet file: its metadata is damaged \(or it is not Parquet\)$/);
    assert.ok(e.cause instanceof TypeError);
    return true;
  });
  const long = "x".repeat(100_000);
  const csv = writeTemp(dir, "h.csv", `${long},${long}\n1,2\n`);
  await assert.rejects(readRecords(csv), (e: Error) => e.message.length < 200 && /h\.csv:1: duplicate column "x{40}…"/.test(e.message));
});

test("Parquet whose schema and column chunks disagree is an error, not an unhandled rejection", async () => {
  const bytes = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: "text", data: ["a", "b"] }] }));
  // The schema's column name is stored before the chunk's path_in_schema; rename only the schema's.
  const at = Buffer.from(bytes).indexOf("text");
  bytes[at] = "T".charCodeAt(0);
  const p = writeTemp(tempDir(), "s.parquet", bytes);
  await assert.rejects(readRecords(p), /s\.parquet: not a readable Parquet file: row group 1 holds column "text" where the schema has "Text"/);
});
