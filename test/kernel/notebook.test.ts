/**
 * Notebook files and papermill's parameters convention (kernel/notebook.ts), and `tunelab run`'s argument errors:
 * pure checks, no Jupyter needed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  declaredParameters,
  injectParameters,
  parseParameterArgs,
  parseParameterValue,
  readNotebook,
  serializeNotebook,
  type Notebook,
  type NotebookCell,
} from "../../kernel/index";

const CLI = path.resolve(__dirname, "..", "..", "sdk", "cli", "main.js");

function nb(cells: NotebookCell[]): Notebook {
  return { cells, metadata: {}, nbformat: 4, nbformat_minor: 5 };
}
function code(source: string, tags?: string[]): NotebookCell {
  return { cell_type: "code", source, metadata: tags ? { tags } : {}, outputs: [], execution_count: null };
}

test("-p values are JSON where they parse, else strings", () => {
  assert.equal(parseParameterValue("100"), 100);
  assert.equal(parseParameterValue("2e-3"), 0.002);
  assert.equal(parseParameterValue("true"), true);
  assert.equal(parseParameterValue("null"), null);
  assert.equal(parseParameterValue('"100"'), "100");
  assert.deepEqual(parseParameterValue("[1, 2]"), [1, 2]);
  assert.equal(parseParameterValue("../data/x.jsonl"), "../data/x.jsonl");
  assert.equal(parseParameterValue("hello world"), "hello world");
  assert.deepEqual(parseParameterArgs(["steps=40", "name=a=b", "empty="]), { steps: 40, name: "a=b", empty: "" });
  assert.throws(() => parseParameterArgs(["steps"]), /parameter "steps" must be key=value/);
  assert.throws(() => parseParameterArgs(["max-steps=3"]), /"max-steps" is not a TypeScript identifier/);
});

test("the parameters cell's declarations: values where they are literals, else their source", () => {
  const src =
    'const steps = 150;           // optimizer steps\nlet lr: number = 2e-3;\nconst out = `runs/${steps}`;\nconst name = "a // b";\n  const list = [1, 2];';
  assert.deepEqual(declaredParameters(src), { steps: 150, lr: 0.002, out: "`runs/${steps}`", name: "a // b", list: [1, 2] });
});

test("parameters go into a cell tagged injected-parameters right after the parameters cell, replacing an older one", () => {
  const source = nb([code("// intro"), code("const steps = 1;\nconst label = 'x';", ["parameters"]), code("steps")]);
  const once = injectParameters(source, { steps: 5, label: 'a"b' });
  assert.equal(once.cells.length, 4);
  assert.deepEqual(once.cells[2].metadata.tags, ["injected-parameters"]);
  assert.equal(once.cells[2].source, '// Parameters (injected by tunelab run)\nconst steps = 5;\nconst label = "a\\"b";');
  const twice = injectParameters(once, { steps: 7 });
  assert.equal(twice.cells.length, 4, "the earlier injected cell is replaced");
  assert.match(String(twice.cells[2].source), /const steps = 7;/);
  assert.equal(injectParameters(once, {}).cells.length, 3, "no parameters: no injected cell");
  assert.equal(source.cells.length, 3, "the input is not changed");
  assert.throws(
    () => injectParameters(source, { stpes: 5 }, "nb.ipynb"),
    /nb\.ipynb: the parameters cell \(cell 1\) does not declare "stpes"; it declares steps, label/,
  );
  assert.throws(() => injectParameters(nb([code("1")]), { steps: 5 }, "nb.ipynb"), /nb\.ipynb has no code cell tagged "parameters"/);
  assert.throws(
    () => injectParameters(nb([code("const a = 1;", ["parameters"]), code("const b = 1;", ["parameters"])]), { a: 2 }),
    /cells 0 and 1 are both tagged/,
  );
});

test("notebooks are written as Jupyter writes them: sorted keys, lists of lines, one-space indent", () => {
  const text = serializeNotebook({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { z: 1, a: 2 },
    cells: [
      {
        cell_type: "code",
        source: "a\nb",
        metadata: {},
        execution_count: 1,
        outputs: [{ output_type: "execute_result", execution_count: 1, metadata: {}, data: { "text/plain": "x\ny\n", "application/json": { b: "1\n2" } } }],
      },
    ],
  });
  const back = JSON.parse(text);
  assert.deepEqual(back.cells[0].source, ["a\n", "b"]);
  assert.deepEqual(back.cells[0].outputs[0].data["text/plain"], ["x\n", "y\n"]);
  assert.deepEqual(back.cells[0].outputs[0].data["application/json"], { b: "1\n2" }, "JSON data is left as it is");
  assert.deepEqual(Object.keys(back.metadata), ["a", "z"]);
  assert.ok(text.startsWith('{\n "cells": [\n  {\n   "cell_type": "code"'), text.slice(0, 60));
  assert.ok(text.endsWith("}\n"));
});

test("a file that is not an nbformat 4 notebook is refused, naming the file", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-nb-"));
  try {
    const bad = path.join(dir, "bad.ipynb");
    fs.writeFileSync(bad, "{not json");
    assert.throws(() => readNotebook(bad), new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not a readable notebook`));
    fs.writeFileSync(bad, JSON.stringify({ cells: [], metadata: {}, nbformat: 3 }));
    assert.throws(() => readNotebook(bad), /nbformat 3 is not supported \(expected 4/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("tunelab run: bad arguments exit 2 with a message and the usage; --help exits 0", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, "run", ...args], { encoding: "utf8" });
  const help = run("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: tunelab run NOTEBOOK\.ipynb \[-p key=value\]/);
  for (const [args, message] of [
    [[], /expected one notebook, got 0/],
    [["a.ipynb", "b.ipynb"], /expected one notebook, got 2/],
    [["a.txt"], /"a\.txt" is not a \.ipynb file/],
    [["a.ipynb", "-p"], /-p needs a value/],
    [["a.ipynb", "--bogus"], /unknown option --bogus/],
    [["a.ipynb", "--server", "http://x/"], /--server and --token go together/],
    [["a.ipynb", "--cell-timeout", "soon"], /--cell-timeout must be a positive number of seconds, got "soon"/],
  ] as const) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const missing = run("/nonexistent/x.ipynb");
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /\/nonexistent\/x\.ipynb: not a readable notebook/);
});
