/**
 * The notebooks in notebooks/ run for real: Debian's nbconvert executes a copy of each one in the tunelab kernel
 * (installed by the CLI into a temporary Jupyter path), with a smaller run injected after its `parameters` cell
 * the way papermill does it, and the executed notebook's outputs are checked. The executed quickstart is then
 * converted to HTML and opened in Chromium, with the network blocked, to see that its Plotly figures draw.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium } from "playwright-core";
import { installKernelWithCli } from "../kernel/jupyter";
import type { DomElement } from "../util/dom";
import {
  cellWhere,
  codeCells,
  displayIdsInLog,
  errorOutputs,
  htmlOf,
  nbconvertMissing,
  outputsOf,
  readNotebook,
  runNbconvert,
  textOf,
  withParameters,
  type Cell,
  type Notebook,
} from "./nbrun";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const skip = nbconvertMissing();

// DOM globals, used only inside page.evaluate callbacks (which run in the browser).
declare const document: DomElement;

let tmp = "";
let env: NodeJS.ProcessEnv = {};
/** The executed quickstart, kept for the browser test. */
let quickstart: { file: string; nb: Notebook } | undefined;

before(() => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-notebooks-"));
  const prefix = path.join(tmp, "prefix");
  installKernelWithCli(prefix);
  // Notebooks refer to the bundled data as ../data: the copies run in tmp/notebooks next to a link to data/.
  fs.mkdirSync(path.join(tmp, "notebooks"));
  fs.symlinkSync(path.join(repoRoot, "data"), path.join(tmp, "data"), "dir");
  fs.symlinkSync(path.join(repoRoot, "models"), path.join(tmp, "models"), "dir");
  env = {
    ...process.env,
    JUPYTER_PATH: path.join(prefix, "share", "jupyter"),
    JUPYTER_DATA_DIR: path.join(tmp, "jupyter-data"),
    JUPYTER_CONFIG_DIR: path.join(tmp, "jupyter-config"),
    JUPYTER_RUNTIME_DIR: path.join(tmp, "jupyter-runtime"),
    JUPYTER_PLATFORM_DIRS: "0",
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
  };
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Copies notebooks/<name> with `params` injected, executes it, and returns the executed notebook and nbconvert's log. */
async function execute(name: string, params: Record<string, string | number>): Promise<{ file: string; nb: Notebook; log: string; seconds: number }> {
  // Committed with the outputs of `tunelab run` (see committed.test.ts); nbconvert executes the copy afresh.
  const source = readNotebook(path.join(repoRoot, "notebooks", name));
  const input = path.join(tmp, "notebooks", name);
  fs.writeFileSync(input, JSON.stringify(withParameters(source, params), null, 1));
  const started = Date.now();
  const { output, log } = await runNbconvert(input, { env, cellTimeoutSec: 60, timeoutMs: 150_000 });
  return { file: output, nb: readNotebook(output), log, seconds: (Date.now() - started) / 1000 };
}

/** Asserts the notebook ran every code cell without an error output or anything on stderr. */
function assertRanCleanly(nb: Notebook): void {
  const errors = errorOutputs(nb);
  assert.deepEqual(errors, [], `error outputs:\n${errors.join("\n")}`);
  for (const cell of codeCells(nb)) {
    assert.equal(typeof cell.execution_count, "number", `cell not executed:\n${textOf(cell.source)}`);
    const stderr = outputsOf(cell, "stream").filter((o) => o.name === "stderr");
    assert.equal(stderr.length, 0, `stderr in cell:\n${textOf(cell.source)}\n---\n${stderr.map((o) => textOf(o.text)).join("")}`);
  }
}

/**
 * The live view of fit(): nbclient folds every update_display_data into the display_data it replaces (and keeps no
 * display_id), so the executed cell holds one display in its final state. nbconvert's debug log shows the messages
 * themselves: one display_id, shown once and then updated several times.
 */
function assertLiveView(log: string, fitCell: Cell, steps: number): string {
  const shown = outputsOf(fitCell, "display_data");
  assert.equal(shown.length, 1, "the live view is one display, updated in place (not one output per update)");
  const html = htmlOf(shown[0]);
  assert.match(html, /class="tunelab-plot"/, "the live view holds a Plotly loss curve");
  assert.match(html, new RegExp(`step ${steps}/${steps} \\(100%\\)`), "its final state shows the last step");
  assert.match(html, new RegExp(`finished: max_steps at step ${steps}`));
  assert.match(textOf(shown[0].data?.["text/plain"]), new RegExp(`${steps}/${steps}`));

  const ids = displayIdsInLog(log);
  assert.ok(ids.messages > 0, "nbconvert --log-level=DEBUG logged no kernel messages: cannot see the display updates (nbclient's log format changed?)");
  const live = [...ids.byId.entries()].filter(([, m]) => m.updates > 0);
  assert.equal(live.length, 1, `one display is updated live; got ${JSON.stringify([...ids.byId])}`);
  const [, messages] = live[0];
  assert.equal(messages.shown, 1, "shown once with display_data");
  assert.ok(messages.updates >= 3, `updated in place during training (${messages.updates} update_display_data)`);
  assert.match(messages.last, new RegExp(`finished: max_steps at step ${steps}`), "the last update is the finished state nbclient stored");
  return html;
}

test("01-quickstart.ipynb runs in the tunelab kernel: data preview, live training view, run summary, test evaluation", { skip, timeout: 180_000 }, async () => {
  // 100 steps on the pretrained tunelab-tiny-en train in under a minute on 2 cores and reach ~0.6 test accuracy (0.25 is chance).
  const steps = 100;
  const ran = await execute("01-quickstart.ipynb", { steps, evalEvery: 25 });
  const nb = ran.nb;
  assertRanCleanly(nb);
  quickstart = { file: ran.file, nb };

  const preview = cellWhere(nb, (src) => /ds\.load\(/.test(src), "the data preview cell");
  const [previewResult] = outputsOf(preview, "execute_result");
  assert.ok(previewResult, "the plan cell shows the plan");
  const table = /<table[\s\S]*?<\/table>/.exec(htmlOf(previewResult))?.[0] ?? "";
  assert.match(table, /<td[^>]*>billing<\/td>/, "the preview table lists rows with their labels");
  assert.match(htmlOf(previewResult), /class="tunelab-plot"/, "with a label chart");
  assert.match(textOf(previewResult.data?.["text/plain"]), /train 640, val 80, test 80 rows/);

  const fit = cellWhere(nb, (src) => /\.fit\(/.test(src), "the fit cell");
  assertLiveView(ran.log, fit, steps);

  const runCell = cellWhere(nb, (src) => src.trim() === "run", "the run cell");
  const [runResult] = outputsOf(runCell, "execute_result");
  assert.ok(runResult, "the run cell shows the run");
  assert.match(htmlOf(runResult), /class="tunelab-plot"/, "the run shows its loss curve");
  assert.match(htmlOf(runResult), /"name":"train loss"/);
  assert.match(htmlOf(runResult), /"name":"val loss"/);
  assert.match(textOf(runResult.data?.["text/plain"]), new RegExp(`steps\\s+${steps}\\b`));

  const evaluate = cellWhere(nb, (src) => /run\.evaluate\(/.test(src), "the evaluate cell");
  const [report] = outputsOf(evaluate, "execute_result");
  assert.ok(report, "the evaluate cell shows the report");
  assert.match(htmlOf(report), /accuracy/);
  const json = report.data?.["application/json"] as { split: string; numExamples: number; metrics: Record<string, number> };
  assert.equal(json.split, "test");
  assert.equal(json.numExamples, 80);
  assert.ok(json.metrics.accuracy > 0.5, `test accuracy ${json.metrics.accuracy} beats chance (0.25) by far`);
  assert.match(textOf(report.data?.["text/plain"]), new RegExp(`accuracy\\s+${json.metrics.accuracy.toFixed(4)}`));

  const printed = cellWhere(nb, (src) => /report\.metrics\.accuracy/.test(src), "the metrics-as-values cell");
  assert.equal(textOf(outputsOf(printed, "stream")[0]?.text).trim(), `test accuracy ${json.metrics.accuracy.toFixed(3)}, macro F1 ${json.metrics.f1_macro.toFixed(3)}`);
  const recipe = cellWhere(nb, (src) => /toYaml\(/.test(src), "the recipe cell");
  assert.match(textOf(outputsOf(recipe, "stream")[0]?.text), new RegExp(`^max_steps: ${steps}$`, "m"), "the recipe carries the injected parameters");
  console.log(`01-quickstart.ipynb: executed in ${ran.seconds.toFixed(1)} s, test accuracy ${json.metrics.accuracy.toFixed(3)}`);
});

test("the executed quickstart, as nbconvert HTML in Chromium with no network, draws every Plotly figure", { skip: skip || (!fs.existsSync(CHROMIUM) && `${CHROMIUM} is not installed`), timeout: 90_000 }, async (t) => {
  if (!quickstart) return t.skip("the quickstart notebook did not run");
  // The kernel sends figures without plotly.js (inlinePlotly: false) and publishes the library once per session,
  // as a display_data before the first output that needs it; without it nothing can draw in a static page.
  const libraries = codeCells(quickstart.nb).flatMap((c, i) =>
    (c.outputs ?? []).filter((o) => /window\.Plotly/.test(htmlOf(o)) && htmlOf(o).length > 1_000_000).map(() => i),
  );
  const firstFigure = codeCells(quickstart.nb).findIndex((c) => (c.outputs ?? []).some((o) => /class="tunelab-plot"/.test(htmlOf(o))));
  assert.ok(firstFigure >= 0, "the notebook has figures");
  assert.equal(
    libraries.length,
    1,
    "plotly.js must be in the executed notebook exactly once (the kernel publishes it before the first output whose " +
      "text/html draws with window.Plotly); without it no figure draws outside a live kernel session",
  );
  assert.ok(libraries[0] <= firstFigure, "the library comes no later than the first figure");

  const html = path.join(path.dirname(quickstart.file), "01-quickstart.html");
  await runNbconvert(quickstart.file, { env, to: "html", output: html, timeoutMs: 60_000 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const blocked: string[] = [];
    // Everything the page draws with must be in the file: every request goes nowhere (nbconvert's page asks for
    // MathJax and require.js, which it does without).
    await page.route("**/*", (route) => {
      blocked.push(route.request().url());
      return route.abort();
    });
    await page.setContent(fs.readFileSync(html, "utf8"), { waitUntil: "load", timeout: 60_000 });
    const plots = await page.evaluate(() => document.querySelectorAll("div.tunelab-plot").length);
    assert.ok(plots >= 4, `label chart, live view, loss curve and confusion heatmap: ${plots} plot divs`);
    await page
      .waitForFunction(() => [...document.querySelectorAll("div.tunelab-plot")].every((d) => d.querySelector("svg.main-svg")), undefined, { timeout: 30_000 })
      .catch(() => undefined);
    const state = await page.evaluate(() =>
      [...document.querySelectorAll("div.tunelab-plot")].map((d) => ({ drawn: !!d.querySelector("svg.main-svg"), text: d.textContent.slice(0, 80) })),
    );
    const shot = process.env.TUNELAB_NOTEBOOK_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    assert.deepEqual(state.filter((s) => !s.drawn), [], "every figure drew an svg.main-svg");
    const drawn = await page.evaluate(() => ({
      bars: document.querySelectorAll("div.tunelab-plot .barlayer .point").length,
      lines: document.querySelectorAll("div.tunelab-plot .scatterlayer path.js-line").length,
      heatmaps: document.querySelectorAll("div.tunelab-plot .heatmaplayer .hm").length,
    }));
    assert.ok(drawn.bars >= 4, `the label chart has a bar per label (${drawn.bars})`);
    assert.ok(drawn.lines >= 4, `loss curves drew their lines (${drawn.lines})`);
    assert.equal(drawn.heatmaps, 1, "the confusion heatmap drew");
    assert.deepEqual(errors, [], "no script errors in the page");
    assert.ok(!blocked.some((u) => /plotly/i.test(u)), `nothing tried to fetch plotly: ${blocked.join(", ")}`);
  } finally {
    await browser.close();
  }
});

test("02-r1-sft-chat.ipynb runs in the tunelab kernel: R1-style SFT with a live view, then the model reasons in <think>, answers and stops", { skip, timeout: 180_000 }, async () => {
  const steps = 60;
  const ran = await execute("02-r1-sft-chat.ipynb", { steps, evalEvery: 30 });
  const nb = ran.nb;
  assertRanCleanly(nb);

  const rendered = textOf(outputsOf(cellWhere(nb, (src) => /applyChatTemplate\(/.test(src), "the template cell"), "stream")[0]?.text);
  assert.match(rendered, /^<\|im_start\|>user\nAdd \d and \d\.<\|im_end\|>\n<\|im_start\|>assistant\n<think>\n.+\n<\/think>\n\nThe sum is \d+\.<\|im_end\|>/, "the template keeps the reasoning");
  const preview = cellWhere(nb, (src) => /\.preview\(/.test(src), "the data preview cell");
  const previewHtml = htmlOf(outputsOf(preview, "execute_result")[0] ?? {});
  assert.match(previewHtml, /<table/, "a table of conversations");
  assert.match(previewHtml, /token lengths/, "and a token-length histogram");

  const fit = cellWhere(nb, (src) => /\.fit\(/.test(src), "the fit cell");
  assertLiveView(ran.log, fit, steps);
  const [summary] = outputsOf(fit, "execute_result");
  assert.ok(summary, "the fit cell ends by showing the run");
  const loss = Number(/final train loss\s+([\d.]+)/.exec(textOf(summary.data?.["text/plain"]))?.[1]);
  // The replies are templated counting: the pretrained base starts far above 1 nat per token on them.
  assert.ok(loss < 1, `final train loss ${loss}`);

  const before = textOf(outputsOf(cellWhere(nb, (src) => /base\.chat\(/.test(src), "the base-model chat cell"), "stream")[0]?.text);
  assert.match(before, /^reasoning: ""$/m, "the base model does not reason in a <think> block");
  const after = textOf(outputsOf(cellWhere(nb, (src) => /run\.chat\(question, \{ maxNewTokens: 48/.test(src), "the chat cell"), "stream")[0]?.text);
  assert.match(after, /^reasoning: "Start at \d+ and count/m, "the tuned model reasons in the <think> block");
  assert.match(after, /^answer: +"The sum is \d+\."$/m, "then answers after it");
  assert.match(after, /finish reason: stop/, "and stops at the end-of-turn token it was trained to emit");
  const cut = textOf(outputsOf(cellWhere(nb, (src) => /maxNewTokens: 6/.test(src), "the length cell"), "stream")[0]?.text);
  // At the default 100 steps the cut reply is all reasoning; at fewer steps the <think> tag may not come first yet.
  assert.match(cut, /^maxNewTokens 6: finish reason length, /, "a reply cut by maxNewTokens says so");
  assert.doesNotMatch(cut, /The sum is \d+\./, "and never got to its answer");
  console.log(`02-r1-sft-chat.ipynb: executed in ${ran.seconds.toFixed(1)} s, final train loss ${loss}, ${JSON.stringify(after)}`);
});

test("03-evaluation.ipynb runs in the tunelab kernel: base vs tuned with intervals and p-values, FR, classification", { skip, timeout: 240_000 }, async () => {
  const ran = await execute("03-evaluation.ipynb", { steps: 60, clsSteps: 30, maxNewTokens: 16 });
  const nb = ran.nb;
  assertRanCleanly(nb);
  const html = (re: RegExp, what: string) => htmlOf(outputsOf(cellWhere(nb, (src) => re.test(src), what), "execute_result")[0] ?? {});
  const tuned = html(/^tunedReport$/m, "the tuned report cell");
  assert.match(tuned, /95% CI/, "headline metrics carry bootstrap intervals");
  assert.match(tuned, />stop_rate</);
  const cmp = html(/^comparison$/m, "the comparison cell");
  for (const col of ["p (paired bootstrap)", "base answer", "tuned answer", "reference"]) assert.ok(cmp.includes(`>${col}<`), `comparison shows ${col}`);
  const fr = html(/metrics\.compare\(frA, frB/, "the FR comparison cell");
  assert.match(fr, />fr</);
  assert.match(fr, /2023年净利润为1\.2亿元/, "the references are shown (escaped text, not markup)");
  const cls = html(/^clsReport$/m, "the classification report cell");
  assert.match(cls, /class="tunelab-plot"/, "the confusion matrix is drawn as a heatmap");
  assert.match(cls, />f1_macro</);
  console.log(`03-evaluation.ipynb: executed in ${ran.seconds.toFixed(1)} s`);
});

test(
  "a shorthand property naming a variable from an earlier cell ({ steps }) works (the kernel expands it for tslab)",
  { skip, timeout: 60_000 },
  async () => {
    const nb: Notebook = {
      cells: [
        { cell_type: "code", id: "a", source: "const steps = 3;", metadata: {}, outputs: [], execution_count: null },
        { cell_type: "code", id: "b", source: "({ steps }).steps * 2", metadata: {}, outputs: [], execution_count: null },
      ],
      metadata: { kernelspec: { name: "tunelab", display_name: "TypeScript (tunelab)", language: "typescript" } },
      nbformat: 4,
      nbformat_minor: 5,
    };
    const input = path.join(tmp, "notebooks", "shorthand.ipynb");
    fs.writeFileSync(input, JSON.stringify(nb));
    const { output } = await runNbconvert(input, { env, cellTimeoutSec: 30, timeoutMs: 50_000, allowErrors: true });
    const ran = readNotebook(output);
    assert.deepEqual(errorOutputs(ran), []);
    assert.equal(textOf(outputsOf(codeCells(ran)[1], "execute_result")[0]?.data?.["text/plain"]), "6");
  },
);
