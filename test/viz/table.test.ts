import { test } from "node:test";
import assert from "node:assert/strict";
import { dataPreview, formatCell, formatExp, htmlTable, textTable } from "../../sdk/viz";

test("formatCell and formatExp", () => {
  assert.equal(formatCell(3), "3");
  assert.equal(formatCell(2.15), "2.1500");
  assert.equal(formatCell(3e-5), "3.0e-05");
  assert.equal(formatCell(NaN), "NaN");
  assert.equal(formatCell(-Infinity), "-inf");
  assert.equal(formatCell(null), "null");
  assert.equal(formatCell({ a: [1] }), '{"a":[1]}');
  assert.equal(formatCell(12n), "12");
  assert.equal(formatExp(3e-5), "3.0e-05");
  assert.equal(formatExp(1.25e12, 2), "1.25e+12");
});

test("htmlTable escapes headers and cells and right-aligns numbers", () => {
  const html = htmlTable(["<col>", "n"], [["<script>alert(1)</script>", 0.5]], { caption: "a & b" });
  assert.ok(!html.includes("<script>"));
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(html.includes("&lt;col&gt;"));
  assert.ok(html.includes("a &amp; b"));
  assert.match(html, /text-align:right;[^"]*">0\.5000<\/td>/);
  const many = htmlTable(["a"], [[1], [2], [3]], { maxRows: 2 });
  assert.match(many, /… 1 more rows/);
  assert.throws(() => htmlTable(["a", "b"], [[1]]), /row 0 has 1 cells but there are 2 columns/);
  assert.match(htmlTable(["t"], [["x".repeat(300)]]), /x{199}…</);
});

test("decimals fixes the format of named columns, integers included", () => {
  const html = htmlTable(["f1", "support"], [[1, 3]], { decimals: { f1: 4 } });
  assert.match(html, />1\.0000<\/td>/);
  assert.match(html, />3<\/td>/);
  assert.match(textTable(["f1"], [[0.5], [NaN]], { decimals: { f1: 2 } }), /0\.50\n NaN$/);
});

test("textTable aligns columns", () => {
  const t = textTable(
    ["label", "n"],
    [
      ["a", 10],
      ["bbb", 2],
    ],
  );
  assert.equal(t, ["label   n", "-----  --", "a      10", "bbb     2"].join("\n"));
});

test("dataPreview: danfo frame of ragged rows, escaped HTML, column summary", () => {
  const rows = [
    { text: "<script>alert('x')</script>", label: "pos", len: 12 },
    { text: "plain", label: "neg" },
    { text: "multi\nline", label: "pos", len: 30, messages: [{ role: "user", content: "hi" }] },
  ];
  const b = dataPreview(rows, { title: "data.jsonl", maxRows: 2 });
  assert.match(dataPreview(rows, { maxRows: 3 })["text/plain"], /multi↵line/);
  const html = b["text/html"] as string;
  assert.ok(!html.includes("<script>"), "cell text is escaped");
  assert.ok(html.includes("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  assert.match(html, /data\.jsonl: 3 rows × 4 columns/);
  const j = b["application/json"] as { columns: string[]; rows: unknown[][]; summary: Array<Record<string, unknown>> };
  assert.deepEqual(j.columns, ["text", "label", "len", "messages"]);
  assert.equal(j.rows.length, 2, "maxRows rows shown");
  assert.deepEqual(j.rows[1], ["plain", "neg", null, null], "missing fields are filled, not shifted");
  const len = j.summary.find((s) => s.column === "len")!;
  assert.equal(len.nonNull, 2);
  assert.equal(len.mean, 21);
  assert.equal(len.min, 12);
  assert.equal(len.max, 30);
  const label = j.summary.find((s) => s.column === "label")!;
  assert.equal(label.top, "pos");
  assert.equal(label.unique, 2);
  assert.match(b["text/plain"], /data\.jsonl: 3 rows × 4 columns/);
  assert.equal(dataPreview([], { title: "empty" })["text/plain"], "empty: 0 rows × 0 columns");
  assert.throws(() => dataPreview([[1, 2]] as never), /row 0 must be an object/);
});
