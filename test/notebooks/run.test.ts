/**
 * `tunelab run` for real: the built CLI starts its own Jupyter server and tunelab kernel, injects parameters after
 * the `parameters` cell, executes every cell, writes the executed notebook with a run manifest, stops the server
 * (the CLI process exits) and fails naming the cell that failed. The quickstart run twice with the same parameters
 * gives the same metrics.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium } from "playwright-core";
import { jupyterServerModule } from "../kernel/jupyter";
import { cellWhere, codeCells, errorOutputs, htmlOf, nbconvertMissing, outputsOf, readNotebook, runNbconvert, textOf, type Notebook } from "./nbrun";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const CLI = path.join(repoRoot, "dist", "sdk", "cli", "main.js");
const found = jupyterServerModule();
const skip = "missing" in found ? found.missing : false;

let tmp = "";
/** The quickstart as `tunelab run` wrote it, for the static-figures test. */
let executedQuickstart: string | undefined;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-run-test-"));
  fs.mkdirSync(path.join(tmp, "notebooks"));
  fs.symlinkSync(path.join(repoRoot, "data"), path.join(tmp, "data"), "dir");
  fs.symlinkSync(path.join(repoRoot, "models"), path.join(tmp, "models"), "dir");
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs the built CLI; resolves with its exit code and output (the test's timeout catches a CLI that never exits). */
function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function code(source: string, tags?: string[]): Notebook["cells"][number] {
  return { cell_type: "code", source, metadata: tags ? { tags } : {}, outputs: [], execution_count: null };
}

function notebook(cells: Notebook["cells"]): Notebook {
  return { cells, metadata: { kernelspec: { name: "tunelab", display_name: "TypeScript (tunelab)", language: "typescript" } }, nbformat: 4, nbformat_minor: 5 };
}

interface Manifest {
  tunelab: string;
  node: string;
  onnxruntime: string;
  kernel: { name: string; implementation: string };
  parameters: Record<string, unknown>;
  injected: Record<string, unknown>;
  seeds: { parameters: Record<string, unknown>; cells: Array<{ cell: number; seed: number }> };
  dataFiles: Array<{ parameter: string; path: string; bytes: number; sha256: string }>;
  device: { requested: string; cores: number };
  cells: Array<{ index: number; seconds: number }>;
  seconds: number;
  status: string;
}

function manifestOf(nb: Notebook): Manifest {
  return (nb.metadata.tunelab as { run: Manifest }).run;
}

test("tunelab run injects -p parameters after the parameters cell, runs every cell and records a manifest", { skip, timeout: 120_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  fs.writeFileSync(path.join(dir, "rows.txt"), "one\ntwo\nthree\n");
  const input = path.join(dir, "params.ipynb");
  fs.writeFileSync(
    input,
    JSON.stringify(
      notebook([
        { cell_type: "markdown", source: "# a notebook", metadata: {} },
        code('const steps = 3;          // default\nconst label = "default";\nconst rowsFile = "missing.txt";\nconst seed = 1;', ["parameters"]),
        code("import * as fs from \"node:fs\";\nconst rows = fs.readFileSync(rowsFile, \"utf8\").trim().split(\"\\n\");\nconsole.log(`${label}: ${rows.length} rows`);"),
        code("const shuffled = { seed: 7 };\nsteps * 10 + seed"),
      ]),
    ),
  );
  const out = path.join(dir, "params.out.ipynb");
  const ran = await cli(["run", input, "-p", "steps=4", "-p", "label=hello world", "-p", "rowsFile=rows.txt", "-p", "seed=2", "-o", out], dir);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /wrote .*params\.out\.ipynb \(4 cells in/);
  const nb = readNotebook(out);
  assert.deepEqual(errorOutputs(nb), []);
  const injected = nb.cells[2];
  assert.deepEqual(injected.metadata.tags, ["injected-parameters"], "the injected cell comes right after the parameters cell");
  assert.equal(textOf(injected.source), '// Parameters (injected by tunelab run)\nconst steps = 4;\nconst label = "hello world";\nconst rowsFile = "rows.txt";\nconst seed = 2;');
  const cells = codeCells(nb);
  assert.deepEqual(
    cells.map((c) => c.execution_count),
    [1, 2, 3, 4],
  );
  assert.equal(textOf(outputsOf(cells[2], "stream")[0]?.text), "hello world: 3 rows\n", "the kernel runs in the notebook's folder and sees the injected values");
  assert.equal(textOf(outputsOf(cells[3], "execute_result")[0]?.data?.["text/plain"]), "42", "injected numbers stay numbers (4 * 10 + 2)");

  const m = manifestOf(nb);
  assert.equal(m.status, "ok");
  assert.equal(m.tunelab, JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")).version);
  assert.equal(m.node, process.version);
  assert.equal(m.onnxruntime, JSON.parse(fs.readFileSync(require.resolve("onnxruntime-node/package.json"), "utf8")).version);
  assert.deepEqual(m.kernel.name, "tunelab");
  assert.equal(m.kernel.implementation, "tunelab");
  assert.deepEqual(m.parameters, { steps: 4, label: "hello world", rowsFile: "rows.txt", seed: 2 });
  assert.deepEqual(m.injected, m.parameters);
  assert.deepEqual(m.seeds, { parameters: { seed: 2 }, cells: [{ cell: 4, seed: 7 }] });
  const sha = createHash("sha256").update("one\ntwo\nthree\n").digest("hex");
  assert.deepEqual(m.dataFiles, [{ parameter: "rowsFile", path: "rows.txt", bytes: 14, sha256: sha }]);
  assert.equal(m.device.requested, "cpu");
  assert.deepEqual(
    m.cells.map((c) => c.index),
    [1, 2, 3, 4],
  );
  assert.ok(m.cells.every((c) => c.seconds >= 0 && c.seconds < 60));

  // An undeclared parameter is refused before anything runs.
  const bad = await cli(["run", input, "-p", "stpes=4", "-o", out], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /does not declare "stpes"; it declares steps, label, rowsFile, seed/);
});

test("tunelab run exits 1 on a failing cell, naming it and its error, and still writes the notebook", { skip, timeout: 120_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  const input = path.join(dir, "fails.ipynb");
  fs.writeFileSync(
    input,
    JSON.stringify(notebook([code("const n = 1;", ["parameters"]), code("console.log('before');"), code("\n// broken on purpose\nthrow new RangeError(`n is ${n}`);"), code("console.log('after');")])),
  );
  const ran = await cli(["run", input, "-p", "n=5", "-o", path.join(dir, "fails.out.ipynb")], dir);
  assert.equal(ran.code, 1, "a failing cell fails the command");
  assert.match(ran.stderr, /cell 3 \("\/\/ broken on purpose"\) failed: RangeError: n is 5/);
  const nb = readNotebook(path.join(dir, "fails.out.ipynb"));
  const cells = codeCells(nb);
  assert.equal(outputsOf(cells[3], "error")[0]?.evalue, "n is 5", "the error is in the written notebook");
  assert.equal(cells[4].execution_count, null, "cells after the failure do not run");
  assert.equal(manifestOf(nb).status, "error");
});

test("the quickstart run twice by tunelab run with the same parameters gives identical metrics", { skip, timeout: 300_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  const input = path.join(dir, "01-quickstart.ipynb");
  fs.copyFileSync(path.join(repoRoot, "notebooks", "01-quickstart.ipynb"), input);
  const results: Array<{ metrics: Record<string, number>; loss: string; manifest: Manifest }> = [];
  for (const name of ["a", "b"]) {
    const out = path.join(dir, `01-quickstart.${name}.ipynb`);
    const ran = await cli(["run", input, "-p", "steps=40", "-p", "evalEvery=20", "-p", `outDir="runs/${name}"`, "-o", out], dir);
    if (ran.code !== 0) console.error(ran.stderr);
    assert.equal(ran.code, 0, ran.stderr);
    const nb = readNotebook(out);
    assert.deepEqual(errorOutputs(nb), []);
    const report = outputsOf(
      cellWhere(nb, (s) => /run\.evaluate\(/.test(s), "the evaluate cell"),
      "execute_result",
    )[0];
    const metrics = (report.data?.["application/json"] as { metrics: Record<string, number> }).metrics;
    const summary = textOf(outputsOf(cellWhere(nb, (s) => s.trim() === "run", "the run cell"), "execute_result")[0]?.data?.["text/plain"]);
    results.push({ metrics, loss: /final train loss\s+\S+/.exec(summary)?.[0] ?? "", manifest: manifestOf(nb) });
  }
  executedQuickstart = path.join(dir, "01-quickstart.a.ipynb");
  const [a, b] = results;
  assert.ok(Object.keys(a.metrics).length >= 2 && Number.isFinite(a.metrics.accuracy), JSON.stringify(a.metrics));
  assert.deepEqual(a.metrics, b.metrics, "same parameters, same metrics");
  assert.notEqual(a.loss, "");
  assert.equal(a.loss, b.loss);
  const data = a.manifest.dataFiles.find((f) => f.parameter === "dataFile");
  const sha = createHash("sha256").update(fs.readFileSync(path.join(repoRoot, "data", "support_tickets.jsonl"))).digest("hex");
  assert.equal(data?.sha256, sha, "the manifest hashes the data file the parameters name");
  assert.deepEqual(a.manifest.seeds.cells.map((s) => s.seed).sort(), [0, 42], "the seeds written in the code");
  console.log(`quickstart via tunelab run: ${a.manifest.seconds.toFixed(1)} s and ${b.manifest.seconds.toFixed(1)} s, test accuracy ${a.metrics.accuracy}`);
});

const CHROMIUM = "/usr/bin/chromium";

test(
  "the executed quickstart exported by nbconvert --no-input, scripts stripped, shows a static image per figure (valid SVG)",
  { skip: skip || nbconvertMissing() || (!fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed`), timeout: 120_000 },
  async (t) => {
    if (!executedQuickstart) return t.skip("the quickstart did not run");
    const nb = readNotebook(executedQuickstart);
    const figures = codeCells(nb).reduce((sum, c) => sum + (c.outputs ?? []).reduce((k, o) => k + (htmlOf(o).match(/class="tunelab-plot"/g) ?? []).length, 0), 0);
    assert.ok(figures >= 4, `label chart, live view, loss curve, confusion heatmap: ${figures}`);
    const live = outputsOf(
      cellWhere(nb, (s) => /\.fit\(/.test(s), "the fit cell"),
      "display_data",
    );
    assert.equal(live.length, 1);
    assert.match(htmlOf(live[0]), /step 40\/40[\s\S]*<img class="tunelab-static"/, "the live view's final state keeps its figure as a static image");

    const html = executedQuickstart.replace(/\.ipynb$/, ".html");
    await runNbconvert(executedQuickstart, { env: process.env, to: "html", output: html, noInput: true, timeoutMs: 60_000 });
    // GitHub and nbviewer run no scripts: strip them all (and run none either).
    const page0 = fs.readFileSync(html, "utf8");
    const stripped = page0.replace(/<script\b[\s\S]*?<\/script>/gi, "");
    assert.doesNotMatch(stripped, /<script/i);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
    try {
      const context = await browser.newContext({ javaScriptEnabled: false });
      const page = await context.newPage();
      await page.route("**/*", (route) => route.abort());
      await page.setContent(stripped, { waitUntil: "load", timeout: 60_000 });
      const shown = await page.$$eval("div.tunelab-plot", (divs) =>
        divs.map((d) => {
          const img = d.querySelector("img") as unknown as { naturalWidth: number; src: string } | null;
          return { width: img?.naturalWidth ?? 0, src: img?.src ?? "" };
        }),
      );
      assert.equal(shown.length, figures, "every figure of the notebook is in the page");
      assert.deepEqual(
        shown.filter((s) => !(s.width > 0)),
        [],
        "every figure shows a decoded image",
      );
      const check = await browser.newPage();
      const parsed = await check.evaluate(
        (docs: string[]) =>
          docs.map((s) => {
            type Doc = { querySelector(s: string): unknown; documentElement: { nodeName: string } };
            const P = (globalThis as unknown as { DOMParser: new () => { parseFromString(s: string, t: string): Doc } }).DOMParser;
            const d = new P().parseFromString(s, "image/svg+xml");
            return d.querySelector("parsererror") ? "parsererror" : d.documentElement.nodeName;
          }),
        shown.map((s) => Buffer.from(s.src.replace(/^data:image\/svg\+xml;base64,/, ""), "base64").toString("utf8")),
      );
      assert.deepEqual(
        parsed,
        shown.map(() => "svg"),
        "every image is a well-formed SVG document",
      );
      const shot = process.env.TUNELAB_STATIC_SCREENSHOT;
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      console.log(`static export: ${figures} figures, each an <img> of a valid SVG; page ${(page0.length / 1e6).toFixed(1)} MB with scripts, ${(stripped.length / 1e3).toFixed(0)} kB without`);
    } finally {
      await browser.close();
    }
  },
);

test("tunelab run --plotly-images replaces the static images with Plotly's own SVG, drawn in headless Chromium", { skip: skip || (!fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed`), timeout: 180_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  const input = path.join(dir, "figures.ipynb");
  fs.writeFileSync(
    input,
    JSON.stringify(
      notebook([
        code("const n = 5;", ["parameters"]),
        code('import { viz } from "tunelab";\nviz.displayFigure(viz.lossCurve(Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: 2 / (i + 1), split: "train" as const }))))'),
        code('viz.displayFigure(viz.confusionHeatmap([[3, 1], [0, 4]], ["yes", "no"]))'),
      ]),
    ),
  );
  const out = path.join(dir, "figures.out.ipynb");
  const ran = await cli(["run", input, "-p", "n=12", "--plotly-images", "--no-plotly-js", "-o", out], dir);
  assert.equal(ran.code, 0, ran.stderr);
  const nb = readNotebook(out);
  assert.deepEqual((manifestOf(nb) as unknown as { staticImages: unknown }).staticImages, { renderer: "plotly-chromium", figures: 2 });
  const [curve, heatmap] = codeCells(nb)
    .slice(2) // after the parameters and the injected cell
    .map((c) => outputsOf(c, "execute_result")[0]);
  for (const o of [curve, heatmap]) {
    const b64 = /<img class="tunelab-static" alt="[^"]*" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(htmlOf(o))?.[1] ?? "";
    const svg = Buffer.from(b64, "base64").toString("utf8");
    assert.match(svg, /^<svg class="main-svg" xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, "plotly.js drew it");
    assert.equal(textOf(o.data?.["image/svg+xml"]), svg, "the bundle's image/svg+xml is the same picture");
  }
  const curveSvg = textOf(curve.data?.["image/svg+xml"]);
  assert.equal((curveSvg.match(/class="js-line"/g) ?? []).length, 1, "one line trace");
  assert.match(textOf(heatmap.data?.["image/svg+xml"]), />4<\/text>/, "the heatmap's cell counts");
  assert.doesNotMatch(JSON.stringify(nb), /window\.Plotly === "undefined"/, "--no-plotly-js left the library out");
});

test("a tunelab run killed mid-cell (SIGTERM) exits 143 and leaves no Jupyter server behind", { skip, timeout: 120_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  const input = path.join(dir, "slow.ipynb");
  fs.writeFileSync(input, JSON.stringify(notebook([code("const ms = 1;", ["parameters"]), code("await new Promise((r) => setTimeout(r, ms));")])));
  const child = spawn(process.execPath, [CLI, "run", input, "-p", "ms=600000", "-o", path.join(dir, "slow.out.ipynb")], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const closed = new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /started a local Jupyter server at (\S+)/.exec(stderr);
      if (m && /cell 0: ok/.test(stderr)) resolve(m[1]);
    });
    void closed.then(() => reject(new Error(`tunelab run ended early:\n${stderr}`)));
  });
  const alive = await fetch(`${url}api/status`).then(
    () => true,
    () => false,
  );
  assert.ok(alive, "the server answers while the cell runs");
  await new Promise((r) => setTimeout(r, 1000)); // the slow cell is now executing
  child.kill("SIGTERM");
  assert.equal(await closed, 143, stderr);
  assert.match(stderr, /tunelab run: SIGTERM, stopping/);
  let down = false;
  for (let i = 0; i < 50 && !down; i++) {
    down = await fetch(`${url}api/status`).then(
      () => false,
      () => true,
    );
    if (!down) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(down, `the server at ${url} was stopped with the command`);
});

test("--cell-timeout fails a cell that runs longer, naming it, and interrupts the kernel", { skip, timeout: 120_000 }, async () => {
  const dir = path.join(tmp, "notebooks");
  const input = path.join(dir, "timeout.ipynb");
  fs.writeFileSync(input, JSON.stringify(notebook([code("const ms = 1;", ["parameters"]), code("await new Promise((r) => setTimeout(r, ms));"), code("1")])));
  const ran = await cli(["run", input, "-p", "ms=600000", "--cell-timeout", "3", "-o", path.join(dir, "timeout.out.ipynb")], dir);
  assert.equal(ran.code, 1, ran.stderr);
  assert.match(ran.stderr, /cell 2 \("await new Promise\(\(r\) => setTimeout\(r, ms\)\);"\) failed: Timeout: cell did not finish within 3 s/);
  const nb = readNotebook(path.join(dir, "timeout.out.ipynb"));
  assert.equal(codeCells(nb)[3].execution_count, null, "the run stopped there");
  const slow = manifestOf(nb).cells.find((c) => c.index === 2);
  assert.ok(slow && slow.seconds >= 3 && slow.seconds < 30, JSON.stringify(manifestOf(nb).cells));
});
