/**
 * The notebooks in notebooks/ are committed with the outputs `tunelab run --no-plotly-js` wrote (so GitHub shows
 * them, figures as static images). Each one here: it opens with a `parameters` cell, every code cell ran without an
 * error, its manifest is there, every figure carries its static image, and re-running it with the parameters its
 * manifest records gives the same metrics; a stale notebook (code or SDK changed its numbers) fails, with the command
 * that refreshes it.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runNotebook } from "../../kernel/index";
import { jupyterServerModule } from "../kernel/jupyter";
import { codeCells, errorOutputs, htmlOf, readNotebook, textOf, type Notebook } from "./nbrun";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const found = jupyterServerModule();
const skip = "missing" in found ? found.missing : false;
const NOTEBOOKS = fs
  .readdirSync(path.join(repoRoot, "notebooks"))
  .filter((f) => f.endsWith(".ipynb"))
  .sort();

let tmp = "";
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-committed-"));
  fs.mkdirSync(path.join(tmp, "notebooks"));
  fs.symlinkSync(path.join(repoRoot, "data"), path.join(tmp, "data"), "dir");
  fs.symlinkSync(path.join(repoRoot, "models"), path.join(tmp, "models"), "dir");
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const METRIC = /loss|accuracy|f1|precision|recall|perplexity/i;

/**
 * The numbers a notebook reports, keyed by cell and name: every `metrics` object of an application/json output
 * (evaluation reports), and every "name  number" line of a text/plain or stream output whose name is a metric
 * (run summaries, printed results).
 */
export function metricsOf(nb: Notebook): Map<string, number> {
  const out = new Map<string, number>();
  codeCells(nb).forEach((cell, i) => {
    for (const o of cell.outputs ?? []) {
      const json = o.data?.["application/json"] as { metrics?: Record<string, unknown> } | undefined;
      for (const [k, v] of Object.entries(json?.metrics ?? {})) if (typeof v === "number") out.set(`cell ${i} json ${k}`, v);
      const text = textOf(o.data?.["text/plain"]) + textOf(o.text);
      for (const line of text.split("\n")) {
        for (const m of line.matchAll(/([A-Za-z][\w ]*?)[\s:=]+(-?\d+\.\d+(?:e-?\d+)?)/g)) {
          if (METRIC.test(m[1])) out.set(`cell ${i} text ${m[1].trim()}`, Number(m[2]));
        }
      }
    }
  });
  return out;
}

for (const name of NOTEBOOKS) {
  test(`notebooks/${name} is committed as tunelab run wrote it: parameters first, every cell ran, figures with static images`, () => {
    const nb = readNotebook(path.join(repoRoot, "notebooks", name));
    const cells = codeCells(nb);
    assert.deepEqual(cells[0]?.metadata.tags, ["parameters"], "the first code cell is the parameters cell");
    assert.deepEqual(errorOutputs(nb), []);
    for (const c of cells) assert.equal(typeof c.execution_count, "number", `not executed:\n${textOf(c.source)}`);
    const run = (nb.metadata.tunelab as { run?: { status: string; cells: unknown[] } } | undefined)?.run;
    assert.equal(run?.status, "ok", "the manifest of `tunelab run` is in metadata.tunelab.run");
    const html = cells.flatMap((c) => (c.outputs ?? []).map(htmlOf)).join("\n");
    const plots = (html.match(/class="tunelab-plot"/g) ?? []).length;
    assert.ok(plots > 0, "the notebook shows figures");
    assert.equal((html.match(/class="tunelab-plot" style="[^"]*"><img class="tunelab-static" /g) ?? []).length, plots, "each with its static image");
    assert.ok(metricsOf(nb).size >= 2, `the notebook reports metrics: ${JSON.stringify([...metricsOf(nb)])}`);
    const bytes = fs.statSync(path.join(repoRoot, "notebooks", name)).size;
    assert.ok(bytes < 2_000_000, `${name} is ${bytes} bytes: run it with --no-plotly-js (plotly.js is 4.6 MB)`);
  });

  test(`notebooks/${name} is not stale: re-running it with its recorded parameters gives the committed metrics`, { skip, timeout: 400_000 }, async () => {
    const committed = readNotebook(path.join(repoRoot, "notebooks", name));
    const injected = (committed.metadata.tunelab as { run: { injected: Record<string, unknown> } }).run.injected;
    const input = path.join(tmp, "notebooks", name);
    fs.copyFileSync(path.join(repoRoot, "notebooks", name), input);
    const result = await runNotebook({ input, parameters: injected, plotlyLibrary: false });
    const before = metricsOf(committed);
    const now = metricsOf(result.notebook as unknown as Notebook);
    const refresh = `npx tunelab run notebooks/${name} --no-plotly-js${Object.entries(injected)
      .map(([k, v]) => ` -p ${k}=${JSON.stringify(v)}`)
      .join("")}`;
    assert.deepEqual([...now.keys()].sort(), [...before.keys()].sort(), `the same metrics are reported; refresh with: ${refresh}`);
    // Printed to four decimals: equal within rounding, or the notebook is stale.
    const changed = [...before].filter(([k, v]) => Math.abs(v - now.get(k)!) > 1e-3 * Math.max(1, Math.abs(v)));
    assert.deepEqual(
      changed.map(([k, v]) => `${k}: committed ${v}, now ${now.get(k)}`),
      [],
      `notebooks/${name} is stale; refresh with: ${refresh}`,
    );
  });
}
