/**
 * The quickstart in a real browser: Debian's Jupyter Notebook server (python3 -m notebook) with the tunelab
 * kernelspec serves notebooks/01-quickstart.ipynb (small parameters injected, outputs cleared), headless Chromium opens
 * it, runs every cell through the UI (Cell menu → Run All), and waits until every code cell has its execution count.
 * Then: no error output, a Plotly chart drawn by plotly.js (`.js-plotly-plot` with its `.plot-container`), and the
 * live training view seen updating while fit() ran (its <progress> bar observed at several step values, ending at the
 * last step). A full-page screenshot is saved (its path is printed).
 * Skipped when Chromium or the notebook server is missing.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { chromium, type Browser } from "playwright-core";
import { startJupyterServer, type JupyterServer } from "../../kernel/index";
import { installKernelWithCli, JUPYTER_PYTHON } from "./jupyter";
import { readNotebook, withParameters } from "../notebooks/nbrun";

const CHROMIUM = "/usr/bin/chromium";
const repoRoot = path.resolve(__dirname, "..", "..", "..");
const STEPS = 20;

function whySkip(): string | false {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is not installed`;
  const r = spawnSync(JUPYTER_PYTHON, ["-c", "import notebook"], { stdio: "ignore" });
  return r.status === 0 ? false : `${JUPYTER_PYTHON} has no notebook module (Debian: apt-get install jupyter-notebook)`;
}
const skip = whySkip();

let tmp = "";
let server: JupyterServer | undefined;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-jupyter-ui-"));
  // The repository's layout: the notebook in notebooks/, reaching ../data and ../models.
  const root = path.join(tmp, "notebooks");
  fs.mkdirSync(root);
  for (const d of ["data", "models"]) fs.symlinkSync(path.join(repoRoot, d), path.join(tmp, d), "dir");
  const nb = withParameters(readNotebook(path.join(repoRoot, "notebooks", "01-quickstart.ipynb")), { steps: STEPS, evalEvery: 10 });
  for (const c of nb.cells) if (c.cell_type === "code") Object.assign(c, { outputs: [], execution_count: null });
  nb.metadata = { ...nb.metadata, tunelab: undefined };
  fs.writeFileSync(path.join(root, "01-quickstart.ipynb"), JSON.stringify(nb, null, 1));
  const prefix = path.join(tmp, "prefix");
  installKernelWithCli(prefix);
  server = await startJupyterServer({ rootDir: root, module: "notebook", python: JUPYTER_PYTHON, jupyterPath: [path.join(prefix, "share", "jupyter")] });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test(
  "01-quickstart runs in the Jupyter Notebook web UI: Run All from the Cell menu, a Plotly chart renders, the live view updates",
  { skip, timeout: 150_000 },
  async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    try {
      await page.goto(`${server!.baseUrl}notebooks/01-quickstart.ipynb?token=${server!.token}`);
      // The kernel is up when the indicator says idle (tslab compiles its first cell lazily, so this is seconds).
      await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { state: "attached", timeout: 60_000 });
      assert.match((await page.textContent(".kernel_indicator_name")) ?? "", /tunelab/i, "the notebook opened in the tunelab kernel");

      // Record every step value the live view's <progress> bar shows while the cells run.
      await page.evaluate(`(() => {
      window.__steps = new Set();
      const seen = () => document.querySelectorAll(".output_area progress").forEach((p) => window.__steps.add(Number(p.getAttribute("value"))));
      new MutationObserver(seen).observe(document.querySelector("#notebook-container"), { subtree: true, childList: true, attributes: true });
    })()`);

      // Through the UI: open the Cell menu and choose Run All.
      await page.click("#celllink");
      await page.click("#run_all_cells > a");

      // Done when every code cell shows its execution count ("In [n]:", not "In [*]:") and the kernel is idle.
      await page.waitForFunction(
        `(() => {
        const prompts = [...document.querySelectorAll(".code_cell .input_prompt")].map((p) => p.textContent);
        return prompts.length > 0 && prompts.every((t) => /In\\s*\\[\\d+\\]/.test(t)) && !!document.querySelector("#kernel_indicator_icon.kernel_idle_icon");
      })()`,
        undefined,
        { timeout: 120_000, polling: 250 },
      );

      const errors = (await page.evaluate(`[...document.querySelectorAll(".output_error")].map((e) => e.textContent)`)) as string[];
      assert.deepEqual(errors, [], "no cell failed");
      // plotly.js (published by the kernel once per session) drew at least one interactive chart.
      await page.waitForSelector(".js-plotly-plot .plot-container .main-svg", { timeout: 15_000 });
      const plots = (await page.evaluate(`document.querySelectorAll(".js-plotly-plot .plot-container").length`)) as number;
      assert.ok(plots >= 1, `${plots} Plotly charts rendered`);

      const steps = ((await page.evaluate(`[...window.__steps]`)) as number[]).sort((a, b) => a - b);
      const during = steps.filter((s) => s > 0 && s < STEPS);
      assert.ok(during.length >= 2, `the live view updated during training: steps seen ${JSON.stringify(steps)}`);
      assert.equal(steps.at(-1), STEPS, "and ended at the last step");
      const accuracy = (await page.evaluate(
        `[...document.querySelectorAll(".output_area pre")].map((p) => p.textContent).find((t) => /^test accuracy/.test(t.trim())) || ""`,
      )) as string;
      assert.match(accuracy, /test accuracy \d\.\d{3}, macro F1 \d\.\d{3}/, "the last cells printed the test metrics");

      const shots = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-jupyter-ui-shot-"));
      const shot = path.join(shots, "01-quickstart.png");
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(fs.statSync(shot).size > 10_000, "a screenshot was written");
      console.log(`Jupyter UI: ${plots} Plotly charts, live view steps ${JSON.stringify(steps)}, screenshot ${shot}`);
      assert.deepEqual(
        pageErrors.filter((e) => !/WebSocket|favicon/i.test(e)),
        [],
        "no JavaScript errors on the page",
      );
    } finally {
      await page.close();
    }
  },
);
