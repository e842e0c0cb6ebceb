/**
 * The tunelab Jupyter kernel: tslab's TypeScript compiler, executor and ZeroMQ server, with tunelab's display
 * protocol on top. tslab prints a cell's last value to stdout; here it becomes an `execute_result` carrying
 * the value's MIME bundle, and failures become proper `error` messages (ename/evalue/traceback).
 */
import { createRequire } from "node:module";
import * as path from "node:path";
import { format } from "node:util";
import { createConverter, type Converter } from "tslab/dist/converter";
import { createExecutor, type ConverterSet, type Executor } from "tslab/dist/executor";
import * as tslabJupyter from "tslab/dist/jupyter";
import { TaskCanceledError, TaskQueue } from "tslab/dist/util";
import { packageRoot, packageVersion, viz } from "../sdk/index";
import { normalizeBundle, setDisplaySink, toMimeBundle, type DisplayMessage, type MimeBundle, type RenderOptions } from "./display";
import { InterruptRouter } from "./interrupt";
import { hookRuntimeResolution, hookTypeScriptSys, type TsSysLike } from "./resolve";

type ZmqMessage = Parameters<tslabJupyter.ZmqServer["handleExecute"]>[1];
type JupyterHandler = ConstructorParameters<typeof tslabJupyter.ZmqServer>[0];
type ExecuteRequest = Parameters<JupyterHandler["handleExecute"]>[0];
type KernelInfo = ReturnType<JupyterHandler["handleKernel"]>;
type DisplayData = Parameters<Parameters<JupyterHandler["handleExecute"]>[2]>[0];

/** Publishes one IOPub message (msg_type, content) as a child of the request being handled. */
type Publish = (msgType: string, content: object) => void;

/** The reply content of an execute_request. */
interface ExecuteReplyContent {
  status: "ok" | "error" | "aborted";
  execution_count?: number;
  ename?: string;
  evalue?: string;
  traceback?: string[];
  user_expressions?: object;
  payload?: object[];
}

/** Thrown out of a queued cell so that tslab's TaskQueue cancels the cells queued behind it. */
class CellFailed {
  constructor(readonly reply: ExecuteReplyContent) {}
}

/**
 * Display methods are called with `{ inlinePlotly: false }`: instead of a 4.6 MB copy of plotly.js in every
 * figure (and every live update), the kernel publishes the library once, before the first Plotly output.
 */
const RENDER_OPTIONS: RenderOptions = { inlinePlotly: false };
const PLOTLY_MIME = "application/vnd.plotly.v1+json";
let plotlyPublished = false;

/** The publisher of silent requests (nothing is broadcast for them). */
const SILENT: Publish = () => {};

/** Publishes plotly.js once per kernel process, ahead of the first bundle that needs it. */
function ensurePlotly(bundle: MimeBundle, publish: Publish): void {
  const html = bundle["text/html"];
  const drawsWithPlotly = PLOTLY_MIME in bundle || (typeof html === "string" && html.includes(`class="${viz.PLOT_CLASS}"`));
  if (plotlyPublished || publish === SILENT || !drawsWithPlotly) return;
  publish("display_data", { data: { "text/html": viz.plotlyLibraryHtml(), "text/plain": "" }, metadata: {}, transient: {} });
  plotlyPublished = true;
}

/** State of the cell being executed; outputs of late async work keep going to the last cell, as in IPython. */
class Cell {
  readonly errors: unknown[][] = [];
  readonly pending: Promise<void>[] = [];
  failure: Error | null = null;
  constructor(
    readonly publish: Publish,
    readonly count: number,
  ) {}

  /** Publishes the cell's last value as execute_result (the executor calls console.log(value) for it). */
  result(value: unknown): void {
    this.pending.push(
      toMimeBundle(value, RENDER_OPTIONS).then(
        (data) => {
          ensurePlotly(data, this.publish);
          this.publish("execute_result", { execution_count: this.count, data, metadata: {} });
        },
        (err: unknown) => {
          this.failure = err instanceof Error ? err : new Error(String(err));
        },
      ),
    );
  }
}

/** The Jupyter message handler: tslab's for completion and inspection, ours for execution. */
class TunelabHandler implements JupyterHandler {
  private readonly tslabHandler: tslabJupyter.JupyterHandlerImpl;
  private readonly queue = new TaskQueue();
  private execCount = 0;
  private cell: Cell | null = null;
  readonly executor: Executor;
  /** Jupyter interrupts (SIGINT): to the running cell's own SIGINT listeners first (fit() stops cleanly), else tslab's. */
  readonly interrupts: InterruptRouter;

  constructor(convs: ConverterSet) {
    this.executor = createExecutor(process.cwd(), convs, {
      // tslab's executor calls log() only with a cell's last expression value.
      log: (value: unknown) => this.cell?.result(value),
      // ... and error() with compile diagnostics (printf-style) or with a thrown value.
      error: (...args: unknown[]) => this.cell?.errors.push(args),
    });
    this.tslabHandler = new tslabJupyter.JupyterHandlerImpl(this.executor, false);
    this.interrupts = new InterruptRouter(() => this.executor.interrupt());
  }

  handleKernel(): KernelInfo {
    const info = this.tslabHandler.handleKernel();
    info.implementation = "tunelab";
    info.implementation_version = packageVersion();
    info.language_info.version = tsVersion();
    info.banner = `tunelab ${packageVersion()}: TypeScript ${tsVersion()} on Node ${process.version} (tslab kernel)`;
    return info;
  }

  /** tslab's interface (stream + display writers only); the server below calls executeWith() instead. */
  async handleExecute(
    req: ExecuteRequest,
    writeStream: (name: string, text: string) => void,
    writeDisplayData: (data: DisplayData, update: boolean) => void,
  ): Promise<{ status: string; execution_count: number }> {
    const publish: Publish = (type, content) => {
      if (type === "stream") {
        const c = content as { name: string; text: string };
        writeStream(c.name, c.text);
      } else if (type === "display_data" || type === "update_display_data" || type === "execute_result") {
        writeDisplayData(content as DisplayData, type === "update_display_data");
      }
    };
    const reply = await this.executeWith(req, publish);
    return { status: reply.status, execution_count: reply.execution_count ?? this.execCount };
  }

  /** Runs one execute_request in order after the previous ones; `publish` sends IOPub messages for it. */
  async executeWith(req: ExecuteRequest, publish: Publish): Promise<ExecuteReplyContent> {
    try {
      return await this.queue.add(() => this.run(req, publish));
    } catch (e) {
      if (e instanceof CellFailed) {
        // Cells queued behind a failed one are aborted (stop_on_error, as ipykernel does), including requests
        // still waiting unread in the socket (e.g. "Run All" during a synchronous compile). Only then is the
        // queue reset and the error reply sent, so a request sent after the client saw the error always runs.
        await this.drainPendingRequests();
        this.queue.reset();
        return e.reply;
      }
      if (e instanceof TaskCanceledError) return { status: "aborted" };
      return this.errorReply(publish, toError(e), this.execCount);
    }
  }

  /** Whether requests are waiting unread in the shell socket; set by the server once its sockets exist. */
  inputPending: () => boolean = () => false;

  /** Lets the receive loop dispatch (and so queue, and abort) every request that already arrived. */
  private async drainPendingRequests(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (i >= 1 && !this.inputPending()) return;
    }
  }

  private async run(req: ExecuteRequest, publish: Publish): Promise<ExecuteReplyContent> {
    const silent = req.silent === true;
    const count = silent ? this.execCount : ++this.execCount;
    const send: Publish = silent ? SILENT : publish;
    const cell = new Cell(send, count);
    this.cell = cell;
    send("execute_input", { code: req.code, execution_count: count });
    process.stdout.write = streamWriter("stdout", send);
    process.stderr.write = streamWriter("stderr", send);
    const publishDisplay = (msg: DisplayMessage | DisplayData, update: boolean) => {
      const data = normalizeBundle(msg.data);
      ensurePlotly(data, send);
      send(update ? "update_display_data" : "display_data", { ...msg, data });
    };
    setDisplaySink({ renderOptions: RENDER_OPTIONS, publish: publishDisplay });
    // tslab's own `import { display } from "tslab"` publishes through this module-level variable.
    (tslabJupyter as unknown as { lastWriteDisplayData: unknown }).lastWriteDisplayData = publishDisplay;

    let ok: boolean;
    this.interrupts.cellStarted();
    try {
      const execution = this.executor.execute(expandShorthandProperties(req.code));
      // execute() returned at its first await: the cell's synchronous part has run (under vm's breakOnSigint).
      this.interrupts.keepFirst();
      ok = await execution;
      await Promise.all(cell.pending);
    } catch (e) {
      ok = false;
      cell.failure = toError(e);
    } finally {
      this.interrupts.cellEnded();
    }
    if (ok && !cell.failure) {
      // Diagnostics of `//%module` cells are warnings only: show them as stderr.
      for (const args of cell.errors) send("stream", { name: "stderr", text: format(...args) + "\n" });
      return { status: "ok", execution_count: count, user_expressions: {}, payload: [] };
    }
    const reply = this.errorReply(send, cell.failure ?? describeFailure(cell.errors), count);
    if (req.stop_on_error === false) return reply;
    throw new CellFailed(reply);
  }

  private errorReply(publish: Publish, err: Error & { traceback?: string[] }, count: number): ExecuteReplyContent {
    const content = {
      ename: err.name || "Error",
      evalue: err.message,
      traceback: err.traceback ?? userFrames(err.stack ? err.stack.split("\n") : [`${err.name}: ${err.message}`]),
    };
    publish("error", content);
    return { status: "error", execution_count: count, ...content };
  }

  handleIsComplete(req: Parameters<JupyterHandler["handleIsComplete"]>[0]) {
    return this.tslabHandler.handleIsComplete(req);
  }
  handleInspect(req: Parameters<JupyterHandler["handleInspect"]>[0]) {
    return this.tslabHandler.handleInspect(req);
  }
  handleComplete(req: Parameters<JupyterHandler["handleComplete"]>[0]) {
    return this.tslabHandler.handleComplete(req);
  }
  handleShutdown(req: Parameters<JupyterHandler["handleShutdown"]>[0]) {
    return this.tslabHandler.handleShutdown(req);
  }
  close(): void {
    setDisplaySink(null);
    this.executor.close();
  }
}

/** tslab's ZeroMQ server with execute replies and IOPub messages the way Jupyter clients expect them. */
class TunelabServer extends tslabJupyter.ZmqServer {
  constructor(
    private readonly tunelab: TunelabHandler,
    configPath: string,
  ) {
    super(tunelab, configPath);
    tunelab.inputPending = () => this.shell?.readable === true;
  }

  override async handleExecute(sock: unknown, msg: ZmqMessage): Promise<void> {
    const publish: Publish = (msgType, content) => {
      const m = msg.createReply();
      m.header.msg_type = msgType;
      m.content = content;
      m.signAndSend(this.connInfo.key, this.iopub);
    };
    const content = await this.tunelab.executeWith(msg.content as ExecuteRequest, publish);
    const reply = msg.createReply();
    reply.header.msg_type = "execute_reply";
    reply.content = content;
    reply.signAndSend(this.connInfo.key, sock);
  }

  /** tslab answers comm_info_request with the wrong msg_type; clients waiting for comm_info_reply would hang. */
  override handleCommInfoRequest(sock: Parameters<tslabJupyter.ZmqServer["handleCommInfoRequest"]>[0], msg: ZmqMessage): void {
    const reply = msg.createReply();
    reply.header.msg_type = "comm_info_reply";
    reply.content = { status: "ok", comms: {} };
    reply.signAndSend(this.connInfo.key, sock);
  }

  override close(): void {
    super.close();
    // Open handles (timers, runtime sessions) must not keep a shut-down kernel alive.
    setTimeout(() => process.exit(0), 1000).unref();
  }
}

/** The TypeScript module instance tslab compiles with (resolved from tslab, so it is the very same object). */
function tslabTypeScript(): { sys: TsSysLike; version: string } {
  const fromTslab = createRequire(require.resolve("tslab/dist/converter"));
  return fromTslab("@tslab/typescript-for-tslab");
}

function tsVersion(): string {
  return tslabTypeScript().version;
}

class Converters implements ConverterSet {
  private nodeConv?: Converter;
  private browserConv?: Converter;
  get node(): Converter {
    return (this.nodeConv ??= createConverter({ isJS: false, isBrowser: false }));
  }
  get browser(): Converter {
    return (this.browserConv ??= createConverter({ isJS: false, isBrowser: true }));
  }
  close(): void {
    this.nodeConv?.close();
    this.browserConv?.close();
  }
}

/** Starts the kernel for a Jupyter connection file; resolves once its sockets are bound. */
export async function startKernel(connectionFile: string): Promise<void> {
  const root = packageRoot();
  hookRuntimeResolution();
  hookTypeScriptSys(tslabTypeScript().sys, process.cwd(), root);
  const convs = new Converters();
  void convs.node; // build the TypeScript program now, not on the first cell (takes a second)
  const handler = new TunelabHandler(convs);
  const server = new TunelabServer(handler, path.resolve(connectionFile));
  handler.interrupts.install();
  // A stray rejection in user code must not kill the kernel; report it in the current cell's stderr.
  process.on("uncaughtException", (err) => console.error("Uncaught exception:", err));
  process.on("unhandledRejection", (reason) => console.error("Unhandled promise rejection:", reason));
  await server.init();
}

function streamWriter(name: "stdout" | "stderr", publish: Publish): typeof process.stdout.write {
  const decoder = new TextDecoder();
  return ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown) => {
    const text = typeof chunk === "string" ? chunk : decoder.decode(chunk);
    publish("stream", { name, text });
    const done = typeof encoding === "function" ? encoding : cb;
    if (typeof done === "function") done();
    return true;
  }) as typeof process.stdout.write;
}

function toError(e: unknown): Error {
  if (e instanceof Error) return e;
  const err = new Error(typeof e === "string" ? e : format("%o", e));
  err.name = "Error";
  err.stack = `Uncaught ${format(e)}`;
  return err;
}

/** Turns what tslab printed through console.error for a failed cell into one Jupyter error. */
function describeFailure(errors: unknown[][]): Error & { traceback: string[] } {
  // tslab prints a thrown value as console.error(value), and each diagnostic as console.error("%s%d:%d - %s", ...).
  const thrown = errors.find((args) => args.length === 1);
  if (thrown) {
    const err = toError(thrown[0]) as Error & { traceback: string[] };
    err.traceback = userFrames((err.stack ?? `${err.name}: ${err.message}`).split("\n"));
    return err;
  }
  const lines = errors.map((args) => format(...args));
  const err = new Error(lines[0] ?? "cell failed") as Error & { traceback: string[] };
  // Diagnostics come from the compiler: name them like ts-node does, so tools can tell them from runtime errors.
  err.name = lines.length > 0 ? "TSError" : "Error";
  err.traceback = lines;
  return err;
}

/** Drops the stack frames below the cell (node:vm, tslab's executor, this kernel): they are noise to a user. */
function userFrames(lines: string[]): string[] {
  const cut = lines.findIndex((l) => /^\s+at /.test(l) && /\(node:vm:|tslab[\\/]dist[\\/]executor|dist[\\/]kernel[\\/]server/.test(l));
  return cut < 0 ? lines : lines.slice(0, cut);
}

/** The part of TypeScript's API expandShorthandProperties uses. */
interface TsParse {
  createSourceFile(name: string, text: string, target: number, setParents: boolean): TsNode;
  forEachChild(node: TsNode, cb: (child: TsNode) => void): void;
  isShorthandPropertyAssignment(node: TsNode): node is TsNode & { name: TsNode & { text: string } };
  ScriptTarget: { Latest: number };
}
interface TsNode {
  getStart(): number;
  getEnd(): number;
}

/**
 * tslab reads variables of earlier cells as `exports.x` but does not rewrite a shorthand property `{ x }`, which
 * then throws "x is not defined"; `{ x: x }` means the same and is rewritten. Only the identifier is replaced.
 */
export function expandShorthandProperties(code: string): string {
  const ts = tslabTypeScript() as unknown as TsParse;
  const file = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true);
  const edits: { at: number; end: number; name: string }[] = [];
  const visit = (node: TsNode): void => {
    if (ts.isShorthandPropertyAssignment(node)) edits.push({ at: node.name.getStart(), end: node.name.getEnd(), name: node.name.text });
    ts.forEachChild(node, visit);
  };
  visit(file);
  let out = code;
  for (const e of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + `${e.name}: ${e.name}` + out.slice(e.end);
  return out;
}
