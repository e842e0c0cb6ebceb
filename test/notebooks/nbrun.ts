/**
 * Test helper: read notebooks, inject parameters the papermill way, execute or convert them with Debian's
 * nbconvert, and pick outputs out of the executed result.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { JUPYTER_PYTHON } from "../kernel/jupyter";
import { injectParameters, type Notebook as ProductNotebook } from "../../kernel/index";

/** A notebook output (nbformat 4). */
export interface Output {
  output_type?: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** A notebook cell (nbformat 4). */
export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  metadata: { tags?: string[]; [key: string]: unknown };
  outputs?: Output[];
  execution_count?: number | null;
}

/** A notebook (nbformat 4). */
export interface Notebook {
  cells: Cell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

/** Why the notebook tests cannot run here, or false when they can. */
export function nbconvertMissing(): string | false {
  const r = spawnSync(JUPYTER_PYTHON, ["-c", "import nbconvert, nbclient"], { stdio: "ignore" });
  return r.status === 0 ? false : `${JUPYTER_PYTHON} cannot import nbconvert and nbclient (Debian: apt-get install python3-nbconvert python3-nbclient)`;
}

/** Reads a .ipynb file. */
export function readNotebook(file: string): Notebook {
  return JSON.parse(fs.readFileSync(file, "utf8")) as Notebook;
}

/** Joins nbformat's multiline strings (a string or a list of lines). */
export function textOf(value: unknown): string {
  if (Array.isArray(value)) return value.join("");
  return typeof value === "string" ? value : "";
}

/** The code cells of a notebook, in order. */
export function codeCells(nb: Notebook): Cell[] {
  return nb.cells.filter((c) => c.cell_type === "code");
}

/** The one code cell whose source matches; fails naming `what` when none or several do. */
export function cellWhere(nb: Notebook, match: (source: string) => boolean, what: string): Cell {
  const found = codeCells(nb).filter((c) => match(textOf(c.source)));
  if (found.length !== 1) throw new Error(`expected exactly one code cell for ${what}, found ${found.length}`);
  return found[0];
}

/** A cell's outputs of one output_type. */
export function outputsOf(cell: Cell, type: string): Output[] {
  return (cell.outputs ?? []).filter((o) => o.output_type === type);
}

/** An output's text/html ("" when it has none). */
export function htmlOf(output: Output): string {
  return textOf(output.data?.["text/html"]);
}

/** Every error output as "ename: evalue" with its traceback. */
export function errorOutputs(nb: Notebook): string[] {
  return codeCells(nb).flatMap((c) =>
    outputsOf(c, "error").map((o) => `${o.ename}: ${o.evalue}\n${(o.traceback ?? []).join("\n")}\n(in cell: ${textOf(c.source).slice(0, 200)})`),
  );
}

/** A copy of `nb` with the parameters injected after its `parameters` cell, by the product's code (kernel/notebook.ts). */
export function withParameters(nb: Notebook, params: Record<string, string | number | boolean>): Notebook {
  return injectParameters(nb as unknown as ProductNotebook, params) as unknown as Notebook;
}

/** Options of runNbconvert. */
export interface NbconvertOptions {
  env: NodeJS.ProcessEnv;
  /** "notebook" (default) executes the notebook; "html" converts it without executing. */
  to?: "notebook" | "html";
  /** Output file; default `<name>.executed.ipynb` (or `.html`) next to the input. */
  output?: string;
  /** ExecutePreprocessor.timeout: seconds one cell may take. */
  cellTimeoutSec?: number;
  /** The whole command's limit; the process is killed after it. */
  timeoutMs: number;
  /** Keep going after a cell fails (errors end up as outputs). */
  allowErrors?: boolean;
  /** Leave the code cells' input out of the output (nbconvert --no-input). */
  noInput?: boolean;
}

/**
 * Runs `python3 -m nbconvert` in the input's folder (the kernel's working directory). Executing logs at DEBUG level,
 * which makes nbclient print every IOPub message it receives (see displayIdsInLog). Throws with the end of the log
 * when nbconvert fails.
 */
export async function runNbconvert(input: string, options: NbconvertOptions): Promise<{ output: string; log: string }> {
  const to = options.to ?? "notebook";
  const output = options.output ?? input.replace(/\.ipynb$/, to === "html" ? ".html" : ".executed.ipynb");
  const args = ["-m", "nbconvert", `--to=${to}`, `--output=${path.basename(output, path.extname(output))}`, `--output-dir=${path.dirname(output)}`];
  if (to === "notebook") {
    args.push("--execute", "--ExecutePreprocessor.kernel_name=tunelab", `--ExecutePreprocessor.timeout=${options.cellTimeoutSec ?? 60}`, "--log-level=DEBUG");
    if (options.allowErrors) args.push("--allow-errors");
  }
  if (options.noInput) args.push("--no-input");
  args.push(path.basename(input));
  const child = spawn(JUPYTER_PYTHON, args, { cwd: path.dirname(input), env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => chunks.push(d));
  child.stderr.on("data", (d: Buffer) => chunks.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, options.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  clearTimeout(timer);
  const log = Buffer.concat(chunks).toString("utf8");
  if (timedOut || code !== 0 || !fs.existsSync(output)) {
    const why = timedOut ? `timed out after ${options.timeoutMs / 1000} s` : `exit status ${code}`;
    // The debug log is long; its end holds nbconvert's CellExecutionError (the failing cell and its traceback).
    throw new Error(`nbconvert --to ${to} ${path.basename(input)}: ${why}\n${log.slice(-4000)}`);
  }
  return { output, log };
}

/** What nbclient's debug log shows for one display_id. */
export interface DisplayIdMessages {
  /** display_data messages with this id. */
  shown: number;
  /** update_display_data messages with this id. */
  updates: number;
  /** The logged content of the last message for this id. */
  last: string;
}

/**
 * Reads the IOPub messages nbclient logged at DEBUG level ("msg_type: X" followed by "content: {...}", a Python
 * dict repr on one line) and groups the display messages by their transient display_id.
 */
export function displayIdsInLog(log: string): { messages: number; byId: Map<string, DisplayIdMessages> } {
  const byId = new Map<string, DisplayIdMessages>();
  let messages = 0;
  let type = "";
  for (const line of log.split("\n")) {
    const t = /\] msg_type: (\w+)$/.exec(line);
    if (t) {
      type = t[1];
      messages++;
      continue;
    }
    if (!/\] content: \{/.test(line) || (type !== "display_data" && type !== "update_display_data")) continue;
    const id = /'transient': \{'display_id': '([^']+)'\}/.exec(line)?.[1];
    if (!id) continue;
    const entry = byId.get(id) ?? { shown: 0, updates: 0, last: "" };
    if (type === "display_data") entry.shown++;
    else entry.updates++;
    entry.last = line;
    byId.set(id, entry);
  }
  return { messages, byId };
}
