/**
 * `tunelab run`: execute a notebook headless, papermill-style. Parameters go into a cell after the `parameters`
 * cell; every code cell runs, in order, in a kernel of a Jupyter server (a given one, or a private local one that
 * is started and stopped here) through @jupyterlab/services; outputs are collected the way nbclient does
 * (display updates replace the output they name) and the executed notebook is written with a run manifest in its
 * metadata. The first failing cell stops the run: the notebook is still written, then a NotebookCellError names it.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { KernelMessage } from "@jupyterlab/services";
import { packageRoot, packageVersion, viz } from "../sdk/index";
import { startJupyterServer, type JupyterServer } from "./jupyter-server";
import { plotlyStaticImages } from "./plotly-images";
import {
  declaredParameters,
  injectParameters,
  INJECTED_TAG,
  PARAMETERS_TAG,
  parametersCellIndex,
  readNotebook,
  sourceText,
  writeNotebook,
  type Notebook,
  type NotebookCell,
  type NotebookOutput,
} from "./notebook";
import { DEFAULT_KERNEL_NAME, installKernelSpec, userDataDir } from "./spec";

/** Options of runNotebook(). */
export interface RunNotebookOptions {
  /** The notebook to run. */
  input: string;
  /** Where to write the executed notebook; default: the input itself. */
  output?: string;
  /** Values injected after the `parameters` cell (each must be declared there). */
  parameters?: Record<string, unknown>;
  /** A running Jupyter server to use instead of starting a local one (its kernels start in its root folder). */
  server?: { url: string; token: string };
  /** Kernelspec name; default the notebook's metadata.kernelspec.name, else "tunelab". */
  kernel?: string;
  /** Longest time one cell may run, in seconds; default none. */
  cellTimeoutSec?: number;
  /**
   * Keep the copy of plotly.js (4.6 MB) that the tunelab kernel publishes once per session, before the first figure;
   * default true. Without it the written notebook is small and its figures show as their static images (they draw
   * interactively again once the notebook is re-run in Jupyter).
   */
  plotlyLibrary?: boolean;
  /**
   * Which renderer draws the figures' static images: "tunelab" (default: its own SVG, always there) or "plotly"
   * (plotly.js in headless Chromium, via playwright-core, where both are installed; else tunelab's stay).
   */
  staticImages?: "tunelab" | "plotly";
  /** Progress lines (one per cell); default none. */
  log?: (line: string) => void;
}

/** The manifest `tunelab run` records in metadata.tunelab.run. */
export interface RunManifest {
  tunelab: string;
  node: string;
  onnxruntime: string | null;
  kernel: { name: string; implementation?: string; version?: string };
  /** The parameters cell's values with the injected ones over them. */
  parameters: Record<string, unknown>;
  /** Who drew the figures' static images, and why not Plotly when it was asked for and could not. */
  staticImages: { renderer: "tunelab-svg" | "plotly-chromium"; figures?: number; note?: string };
  /** Only the injected ones. */
  injected: Record<string, unknown>;
  /** Parameters whose name contains "seed", and `seed: N` / `seed = N` literals in the other code cells (by cell index). */
  seeds: { parameters: Record<string, unknown>; cells: Array<{ cell: number; seed: number }> };
  /** sha256 of every existing file a string parameter names (relative to the notebook's folder). */
  dataFiles: Array<{ parameter: string; path: string; bytes: number; sha256: string }>;
  /** The `device` parameter (else "cpu", tunelab's default) and the machine. */
  device: { requested: string; platform: string; arch: string; cpu: string; cores: number };
  started: string;
  /** Whole run, seconds. */
  seconds: number;
  /** Per executed code cell: its index in the notebook and seconds. */
  cells: Array<{ index: number; seconds: number }>;
  status: "ok" | "error";
}

/** What runNotebook() returns. */
export interface RunNotebookResult {
  output: string;
  notebook: Notebook;
  manifest: RunManifest;
}

/** A cell failed: names it (index in the written notebook and its first line) with the kernel's error. */
export class NotebookCellError extends Error {
  constructor(
    readonly cellIndex: number,
    readonly firstLine: string,
    readonly ename: string,
    readonly evalue: string,
    readonly traceback: string[],
    readonly output: string,
  ) {
    super(
      `cell ${cellIndex} (${JSON.stringify(firstLine)}) failed: ${ename}: ${evalue}\n${traceback.join("\n")}\nexecuted notebook written to ${output}`.trimEnd(),
    );
    this.name = "NotebookCellError";
  }
}

/** Runs a notebook as described in this module's comment. */
export async function runNotebook(options: RunNotebookOptions): Promise<RunNotebookResult> {
  const input = path.resolve(options.input);
  const output = path.resolve(options.output ?? input);
  const log = options.log ?? (() => {});
  const source = readNotebook(input);
  const injected = options.parameters ?? {};
  const nb = injectParameters(source, injected, input);
  const kernelName = options.kernel ?? source.metadata.kernelspec?.name ?? DEFAULT_KERNEL_NAME;
  const started = new Date();

  const paramIndex = parametersCellIndex(nb);
  const parameters = { ...(paramIndex >= 0 ? declaredParameters(sourceText(nb.cells[paramIndex].source)) : {}), ...injected };
  const manifest: RunManifest = {
    tunelab: packageVersion(),
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    kernel: { name: kernelName },
    parameters,
    injected: { ...injected },
    seeds: seedsOf(nb, parameters),
    dataFiles: dataFilesOf(parameters, path.dirname(input)),
    device: {
      requested: typeof parameters.device === "string" ? parameters.device : "cpu",
      platform: process.platform,
      arch: process.arch,
      cpu: os.cpus()[0]?.model ?? "unknown",
      cores: os.cpus().length,
    },
    staticImages: { renderer: "tunelab-svg" },
    started: started.toISOString(),
    seconds: 0,
    cells: [],
    status: "ok",
  };
  for (const c of nb.cells) if (c.cell_type === "code") Object.assign(c, { outputs: [], execution_count: null });

  const services = await import("@jupyterlab/services");
  // @jupyterlab/services logs every websocket it opens with console.debug ("Starting WebSocket: ..."), which would
  // land on a command's stdout, and warns of the reconnect it does while a new kernel starts: quiet while running.
  const { debug, warn } = console;
  console.debug = () => {};
  console.warn = (...args: unknown[]) => {
    if (!/^Connection lost, reconnecting/.test(String(args[0]))) warn(...args);
  };
  let server: JupyterServer | undefined;
  let tmp: string | undefined;
  let failure: NotebookCellError | undefined;
  try {
    let settings;
    if (options.server) {
      settings = services.ServerConnection.makeSettings({ baseUrl: options.server.url, token: options.server.token, appendToken: true });
    } else {
      // This package's kernel, whatever is installed: a kernelspec in a private folder first on JUPYTER_PATH,
      // and the user's own kernelspecs after it (the private server has its own data folder).
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunelab-run-"));
      installKernelSpec({ prefix: tmp, name: DEFAULT_KERNEL_NAME });
      server = await startJupyterServer({ rootDir: path.dirname(input), jupyterPath: [path.join(tmp, "share", "jupyter"), userDataDir()] });
      log(`started a local Jupyter server at ${server.baseUrl} serving ${path.dirname(input)}`);
      settings = services.ServerConnection.makeSettings({ baseUrl: server.baseUrl, token: server.token, appendToken: true });
    }
    const manager = new services.KernelManager({ serverSettings: settings });
    try {
      await manager.ready;
      const kernel = await manager.startNew({ name: kernelName });
      try {
        const info = await kernel.info;
        manifest.kernel = { name: kernelName, implementation: info.implementation, version: info.implementation_version };
        const displays = new Map<string, NotebookOutput[]>();
        for (const [index, cell] of nb.cells.entries()) {
          if (cell.cell_type !== "code") continue;
          const code = sourceText(cell.source);
          if (code.trim() === "") continue;
          const t0 = Date.now();
          const reply = await executeCell(kernel, cell, code, displays, options.cellTimeoutSec);
          const seconds = (Date.now() - t0) / 1000;
          manifest.cells.push({ index, seconds });
          log(`cell ${index}: ${reply.status} in ${seconds.toFixed(1)} s`);
          if (reply.status !== "ok") {
            const err = cell.outputs?.find((o) => o.output_type === "error");
            const ename = reply.ename ?? err?.ename ?? (reply.status === "aborted" ? "Aborted" : "Error");
            const evalue = reply.evalue ?? err?.evalue ?? "";
            failure = new NotebookCellError(index, firstLine(code), ename, evalue, reply.traceback ?? err?.traceback ?? [], output);
            break;
          }
        }
      } finally {
        // Close the connection first, then shut the kernel down over REST: the client then has no socket to lose
        // (shutting down through the connection makes it log reconnection attempts).
        const id = kernel.id;
        kernel.dispose();
        await services.KernelAPI.shutdownKernel(id, settings).catch(() => undefined);
      }
    } finally {
      manager.dispose();
    }
  } finally {
    Object.assign(console, { debug, warn });
    await server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (options.plotlyLibrary === false) {
    const library = viz.plotlyLibraryHtml();
    for (const c of nb.cells) if (c.outputs) c.outputs = c.outputs.filter((o) => !(o.output_type === "display_data" && o.data?.["text/html"] === library));
  }
  if (options.staticImages === "plotly") {
    const drawn = await plotlyStaticImages(nb);
    if ("figures" in drawn) manifest.staticImages = { renderer: "plotly-chromium", figures: drawn.figures };
    else {
      manifest.staticImages.note = `Plotly images asked for, not drawn: ${drawn.skipped}`;
      log(manifest.staticImages.note);
    }
  }
  manifest.seconds = (Date.now() - started.getTime()) / 1000;
  manifest.status = failure ? "error" : "ok";
  const tunelabMeta = typeof nb.metadata.tunelab === "object" && nb.metadata.tunelab !== null ? nb.metadata.tunelab : {};
  nb.metadata = { ...nb.metadata, tunelab: { ...tunelabMeta, run: manifest } };
  writeNotebook(output, nb);
  if (failure) throw failure;
  return { output, notebook: nb, manifest };
}

/** The execute_reply fields runNotebook reads. */
interface ReplyContent {
  status: string;
  execution_count?: number | null;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** Executes one cell, filling its outputs as nbclient does; `displays` maps display ids to the outputs showing them. */
async function executeCell(
  kernel: import("@jupyterlab/services").Kernel.IKernelConnection,
  cell: NotebookCell,
  code: string,
  displays: Map<string, NotebookOutput[]>,
  timeoutSec?: number,
): Promise<ReplyContent> {
  const outputs: NotebookOutput[] = [];
  cell.outputs = outputs;
  let clearPending = false;
  const add = (o: NotebookOutput): void => {
    if (clearPending) {
      outputs.length = 0;
      clearPending = false;
    }
    const last = outputs[outputs.length - 1];
    if (o.output_type === "stream" && last?.output_type === "stream" && last.name === o.name) last.text = sourceText(last.text) + sourceText(o.text);
    else outputs.push(o);
  };
  const future = kernel.requestExecute({ code, stop_on_error: true, allow_stdin: false, store_history: true });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const type = msg.header.msg_type;
    const c = msg.content as Record<string, unknown>;
    const data = c.data as NotebookOutput["data"];
    const metadata = (c.metadata ?? {}) as NotebookOutput["metadata"];
    const displayId = (c.transient as { display_id?: string } | undefined)?.display_id;
    if (type === "stream") add({ output_type: "stream", name: String(c.name), text: String(c.text) });
    else if (type === "execute_result") add({ output_type: "execute_result", execution_count: c.execution_count as number, data, metadata });
    else if (type === "error") add({ output_type: "error", ename: String(c.ename), evalue: String(c.evalue), traceback: (c.traceback as string[]) ?? [] });
    else if (type === "display_data") {
      const o: NotebookOutput = { output_type: "display_data", data, metadata };
      add(o);
      if (displayId) displays.set(displayId, [...(displays.get(displayId) ?? []), o]);
    } else if (type === "update_display_data" && displayId) {
      for (const o of displays.get(displayId) ?? []) Object.assign(o, { data, metadata });
    } else if (type === "clear_output") {
      if (c.wait) clearPending = true;
      else outputs.length = 0;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout =
    timeoutSec === undefined
      ? new Promise<never>(() => {})
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            void kernel.interrupt().catch(() => undefined);
            reject(new Error(`cell did not finish within ${timeoutSec} s (--cell-timeout); the kernel was interrupted`));
          }, timeoutSec * 1000);
        });
  try {
    const reply = await Promise.race([future.done, timeout]);
    const content = reply.content as ReplyContent;
    cell.execution_count = content.execution_count ?? null;
    return content;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { status: "error", ename: "Timeout", evalue: message, traceback: [] };
  } finally {
    clearTimeout(timer);
  }
}

function firstLine(code: string): string {
  return (
    code
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? ""
  );
}

/** The onnxruntime-node version this package loads, or null when it is not installed. */
function onnxruntimeVersion(): string | null {
  try {
    return (createRequire(path.join(packageRoot(), "package.json"))("onnxruntime-node/package.json") as { version: string }).version;
  } catch {
    return null;
  }
}

function seedsOf(nb: Notebook, parameters: Record<string, unknown>): RunManifest["seeds"] {
  const fromParams = Object.fromEntries(Object.entries(parameters).filter(([k]) => /seed/i.test(k)));
  const cells: Array<{ cell: number; seed: number }> = [];
  for (const [i, c] of nb.cells.entries()) {
    const tags = c.metadata.tags ?? [];
    if (c.cell_type !== "code" || tags.includes(PARAMETERS_TAG) || tags.includes(INJECTED_TAG)) continue;
    for (const m of sourceText(c.source).matchAll(/\bseed\s*[:=]\s*(-?\d+)\b/g)) cells.push({ cell: i, seed: Number(m[1]) });
  }
  return { parameters: fromParams, cells };
}

function dataFilesOf(parameters: Record<string, unknown>, dir: string): RunManifest["dataFiles"] {
  const out: RunManifest["dataFiles"] = [];
  for (const [key, value] of Object.entries(parameters)) {
    if (typeof value !== "string" || value === "") continue;
    const file = path.resolve(dir, value);
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (!stat?.isFile()) continue;
    out.push({ parameter: key, path: value, bytes: stat.size, sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex") });
  }
  return out;
}
