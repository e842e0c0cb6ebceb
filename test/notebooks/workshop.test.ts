/**
 * The workshop set (notebooks/workshop/): every exercise has a solution that differs from it only in the cells tagged
 * `exercise` / `solution`, and every solution runs through `tunelab run` (the product's runner) and meets the goal its
 * notebook states. Each solution's last cell prints `GOAL {json}` with what it measured (and throws when the goal is
 * not met); this test checks those figures against the goals itself.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runNotebook, startJupyterServer, type JupyterServer } from "../../kernel/index";
import { installKernelWithCli, JUPYTER_PYTHON, jupyterServerModule } from "../kernel/jupyter";
import { codeCells, errorOutputs, outputsOf, readNotebook, textOf, type Notebook } from "./nbrun";

const repoRoot = path.resolve(__dirname, "..", "..", "..");
const WORKSHOP = path.join(repoRoot, "notebooks", "workshop");
const found = jupyterServerModule();
const skip = "missing" in found ? found.missing : false;
const EXERCISES = fs
  .readdirSync(WORKSHOP)
  .filter((f) => f.endsWith(".ipynb") && !f.endsWith(".solution.ipynb"))
  .sort();

let tmp = "";
let server: JupyterServer | undefined;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-workshop-"));
  // The same layout as the repository: notebooks/workshop/*.ipynb reach ../../data, ../../models and ../01-quickstart.ipynb.
  fs.mkdirSync(path.join(tmp, "notebooks", "workshop"), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, "notebooks", "01-quickstart.ipynb"), path.join(tmp, "notebooks", "01-quickstart.ipynb"));
  for (const d of ["data", "models"]) fs.symlinkSync(path.join(repoRoot, d), path.join(tmp, d), "dir");
});
after(async () => {
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The tags of a cell, joined ("" when none). */
const tagsOf = (c: Notebook["cells"][number]) => (c.metadata.tags ?? []).join(",");

test("the workshop has 4-6 exercises, each with a solution that fills exactly its TODO cells", () => {
  assert.ok(EXERCISES.length >= 4 && EXERCISES.length <= 6, `${EXERCISES.length} exercises: ${EXERCISES.join(", ")}`);
  for (const name of EXERCISES) {
    const exercise = readNotebook(path.join(WORKSHOP, name));
    const solutionFile = path.join(WORKSHOP, name.replace(/\.ipynb$/, ".solution.ipynb"));
    assert.ok(fs.existsSync(solutionFile), `${name} has a solution notebook`);
    const solution = readNotebook(solutionFile);
    assert.match(textOf(exercise.cells[0].source), /\*\*Goal:\*\*/, `${name} states its goal first`);
    assert.deepEqual(codeCells(exercise)[0]?.metadata.tags, ["parameters"], `${name} opens with a parameters cell`);
    assert.deepEqual(codeCells(solution)[0]?.metadata.tags, ["parameters"]);
    const todo = codeCells(exercise).filter((c) => tagsOf(c) === "exercise");
    assert.ok(todo.length >= 1, `${name} has TODO cells`);
    for (const c of todo) assert.match(textOf(c.source), /TODO/, `a cell tagged exercise says TODO:\n${textOf(c.source)}`);
    // Apart from the title cell, the two notebooks are the same cells with the TODO cells answered.
    const shape = (nb: Notebook, answer: string) =>
      nb.cells.slice(1).map((c) => (tagsOf(c) === answer ? `<${answer}>` : `${c.cell_type}:${tagsOf(c)}:${textOf(c.source)}`));
    assert.deepEqual(shape(exercise, "exercise").join("\n").replaceAll("<exercise>", "<answer>"), shape(solution, "solution").join("\n").replaceAll("<solution>", "<answer>"));
    for (const nb of [exercise, solution]) assert.ok(codeCells(nb).every((c) => (c.outputs ?? []).length === 0), `${name}: committed without outputs`);
  }
});

/** The figures a solution's check cell printed as `GOAL {json}`. */
function goalOf(nb: Notebook): Record<string, unknown> {
  const line = codeCells(nb)
    .flatMap((c) => outputsOf(c, "stream").map((o) => textOf(o.text)))
    .join("")
    .split("\n")
    .find((l) => l.startsWith("GOAL "));
  assert.ok(line, "the check cell printed its GOAL line");
  return JSON.parse(line.slice(5)) as Record<string, unknown>;
}

/** What each solution must have measured: the goals stated in the notebooks, checked here on the printed figures. */
const GOALS: Record<string, (g: Record<string, unknown>) => void> = {
  "01-fix-overfitting": (g) => {
    assert.ok((g.gapBefore as number) >= 0.1, `the starting run overfits: its adapter is ${g.gapBefore} above its best val loss`);
    assert.ok((g.gapAfter as number) <= 0.01, `the fixed run hands back its best adapter (gap ${g.gapAfter})`);
    assert.ok((g.stepsAfter as number) < (g.stepsBefore as number), `in fewer steps (${g.stepsAfter} < ${g.stepsBefore})`);
  },
  "02-rank-and-learning-rate": (g) => {
    assert.ok((g.trials as number) >= 3);
    assert.ok((g.best as number) <= (g.start as number) - 1.0, `best val loss ${g.best} is 1.0 below the start ${g.start}`);
  },
  "03-augment-small-data": (g) => {
    assert.ok((g.trainAfter as number) >= 2 * (g.trainBefore as number), `train rows ${g.trainBefore} -> ${g.trainAfter}`);
    assert.equal(g.valUntouched, true);
  },
  "04-evaluate-with-f1": (g) => {
    assert.ok(Math.abs((g.myMacroF1 as number) - (g.reportF1 as number)) < 1e-9, `${g.myMacroF1} vs ${g.reportF1}`);
    assert.ok((g.reportF1 as number) >= (g.baselineF1 as number) + 0.1, `model ${g.reportF1} vs majority baseline ${g.baselineF1}`);
    // Always predicting one of four labels: macro F1 = 2p/(1+p)/4 for its share p of the test rows; 0.125 means p = 1/3.
    assert.ok((g.baselineF1 as number) > 0 && (g.baselineF1 as number) <= 0.125, `baseline ${g.baselineF1}`);
  },
  "05-shareable-run": (g) => {
    assert.equal(g.status, 0);
    assert.equal(g.manifestStatus, "ok");
    assert.equal(g.sha256, g.mySha256);
    assert.match(String(g.sha256), /^[0-9a-f]{64}$/);
    assert.equal(typeof g.testAccuracy, "number");
  },
};

test("every workshop solution runs through tunelab run and meets its goal", { skip, timeout: 600_000 }, async () => {
  // One server for the set (each solution still gets a fresh kernel); kernels start in its root, the solutions' folder.
  const prefix = path.join(tmp, "prefix");
  installKernelWithCli(prefix);
  const root = path.join(tmp, "notebooks", "workshop");
  server = await startJupyterServer({ rootDir: root, python: JUPYTER_PYTHON, jupyterPath: [path.join(prefix, "share", "jupyter")] });
  const times: string[] = [];
  let total = 0;
  for (const name of EXERCISES) {
    const stem = name.replace(/\.ipynb$/, "");
    const check = GOALS[stem];
    assert.ok(check, `a goal check for ${stem} in this test`);
    const input = path.join(root, `${stem}.solution.ipynb`);
    fs.copyFileSync(path.join(WORKSHOP, `${stem}.solution.ipynb`), input);
    const result = await runNotebook({ input, plotlyLibrary: false, server: { url: server.baseUrl, token: server.token } });
    const nb = result.notebook as unknown as Notebook;
    assert.deepEqual(errorOutputs(nb), [], stem);
    assert.equal(result.manifest.status, "ok");
    check(goalOf(nb));
    total += result.manifest.seconds;
    times.push(`${stem} ${result.manifest.seconds.toFixed(1)} s`);
  }
  console.log(`workshop solutions: ${times.join(", ")}; ${total.toFixed(1)} s in all`);
});
