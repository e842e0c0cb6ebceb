/**
 * The tunelab kernel in a real Jupyter server, driven by a real client (@jupyterlab/services, as JupyterLab
 * uses it): install with the CLI, start, execute cells, check the messages, shut everything down.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { jupyterServerModule, startKernelSession, type KernelSession } from "./jupyter";

const found = jupyterServerModule();
const skip = "missing" in found ? found.missing : false;

let session: KernelSession | undefined;
let kernel: Kernel.IKernelConnection | undefined;

before(async () => {
  if (skip || "missing" in found) return;
  session = await startKernelSession(found.module);
  kernel = session.kernel;
});

after(async () => {
  // Always runs: kernel, manager polling, then the server process and its temp folders.
  await session?.stop();
});

/** One executed cell: the execute_reply content and every IOPub message except status/execute_input. */
interface Ran {
  reply: KernelMessage.IExecuteReplyMsg["content"];
  iopub: KernelMessage.IIOPubMessage[];
}

async function execute(code: string): Promise<Ran> {
  assert.ok(kernel, "kernel did not start");
  const future = kernel.requestExecute({ code, stop_on_error: true });
  const iopub: KernelMessage.IIOPubMessage[] = [];
  future.onIOPub = (msg) => {
    if (msg.header.msg_type !== "status" && msg.header.msg_type !== "execute_input") iopub.push(msg);
  };
  const reply = await future.done;
  return { reply: reply.content, iopub };
}

function ofType(ran: Ran, type: string): KernelMessage.IIOPubMessage[] {
  return ran.iopub.filter((m) => m.header.msg_type === type);
}

function dataOf(msg: KernelMessage.IIOPubMessage): Record<string, unknown> {
  return (msg.content as { data: Record<string, unknown> }).data;
}

test("kernel_info names the tunelab kernel", { skip, timeout: 120_000 }, async () => {
  const info = await kernel!.info;
  assert.equal(info.implementation, "tunelab");
  assert.equal(info.language_info.name, "typescript");
  assert.match(String(info.language_info.version), /^5\.0\./, "tslab compiles with TypeScript 5.0");
});

test("arithmetic gives an execute_result with text/plain", { skip, timeout: 60_000 }, async () => {
  const ran = await execute("const a = 20;\na * 2 + 2");
  assert.equal(ran.reply.status, "ok", JSON.stringify(ran.reply));
  const results = ofType(ran, "execute_result");
  assert.equal(results.length, 1, JSON.stringify(ran.iopub.map((m) => m.content)));
  assert.equal(dataOf(results[0])["text/plain"], "42");
  assert.equal((results[0].content as { execution_count: number }).execution_count, ran.reply.execution_count);
});

test("a value with Symbol.for('Jupyter.display') is shown as its MIME bundle", { skip, timeout: 60_000 }, async () => {
  const code = [
    "class Card {",
    "  constructor(readonly n: number) {}",
    '  [Symbol.for("Jupyter.display")]() {',
    '    return { "text/html": `<b>card ${this.n * 3}</b>`, "text/plain": `Card(${this.n})`, "application/json": { n: this.n } };',
    "  }",
    "}",
    "new Card(14)",
  ].join("\n");
  const ran = await execute(code);
  assert.equal(ran.reply.status, "ok", JSON.stringify(ran.reply));
  const [result] = ofType(ran, "execute_result");
  assert.ok(result, "no execute_result");
  assert.deepEqual(dataOf(result), { "text/html": "<b>card 42</b>", "text/plain": "Card(14)", "application/json": { n: 14 } });
  assert.equal(ofType(ran, "stream").length, 0, "the value must not also be printed");
});

test("Plotly bundles: display methods get { inlinePlotly: false } and plotly.js is sent once, before the first", { skip, timeout: 60_000 }, async () => {
  const figure = [
    "const fig = {",
    '  [Symbol.for("Jupyter.display")](opts?: { inlinePlotly?: boolean }) {',
    '    return { "text/plain": "fig " + JSON.stringify(opts), "application/vnd.plotly.v1+json": { data: [{ y: [3, 2, 1] }], layout: {} } };',
    "  },",
    "};",
    "fig",
  ].join("\n");
  const first = await execute(figure);
  assert.equal(first.reply.status, "ok", JSON.stringify(first.reply));
  const library = ofType(first, "display_data");
  assert.equal(library.length, 1, "plotly.js is published with the first figure");
  const html = String(dataOf(library[0])["text/html"]);
  assert.match(html, /window\.Plotly/);
  assert.ok(html.length > 1_000_000, "the whole library is inlined once");
  assert.ok(first.iopub.indexOf(library[0]) < first.iopub.indexOf(ofType(first, "execute_result")[0]), "library before the figure");
  assert.equal(dataOf(ofType(first, "execute_result")[0])["text/plain"], 'fig {"inlinePlotly":false}');
  const second = await execute(figure.replace("const fig", "const fig2").replace(/\nfig$/, "\nfig2"));
  assert.equal(second.reply.status, "ok", JSON.stringify(second.reply));
  assert.equal(ofType(second, "display_data").length, 0, "not sent again");
  assert.equal(ofType(second, "execute_result").length, 1);
});

test("a type error gives an error reply and no execution", { skip, timeout: 60_000 }, async () => {
  const ran = await execute('(globalThis as any).ranTypeErrorCell = true;\nconst n: number = "not a number";');
  assert.equal(ran.reply.status, "error");
  const reply = ran.reply as KernelMessage.IReplyErrorContent;
  assert.equal(reply.ename, "TSError");
  assert.match(reply.evalue, /not assignable to type 'number'/);
  assert.equal(ofType(ran, "error").length, 1, "the error is also published on IOPub for the notebook");
  // Nothing ran; and the next cell runs normally (not aborted by the previous failure).
  const next = await execute("(globalThis as any).ranTypeErrorCell === true");
  assert.equal(next.reply.status, "ok", JSON.stringify(next.reply));
  assert.equal(dataOf(ofType(next, "execute_result")[0])["text/plain"], "false");
});

test("cells queued behind a failing cell are aborted, as with ipykernel (Run All stops at the error)", { skip, timeout: 60_000 }, async () => {
  assert.ok(kernel);
  // Sent together, like JupyterLab's "Run All": the second and third arrive while the first one is busy
  // (half a second of synchronous work, so they wait unread in the kernel's socket), then it throws.
  const first = "const t0 = Date.now();\nwhile (Date.now() - t0 < 500) {}\nthrow new Error('stop here');";
  const futures = [first, "(globalThis as any).ranAfterError = 1", "2 + 2"].map((code) => kernel!.requestExecute({ code, stop_on_error: true }));
  const replies = await Promise.all(futures.map((f) => f.done));
  assert.deepEqual(
    replies.map((r) => r.content.status),
    ["error", "aborted", "aborted"],
  );
  const after = await execute("(globalThis as any).ranAfterError === undefined");
  assert.equal(after.reply.status, "ok", "a cell sent after the error reply runs");
  assert.equal(dataOf(ofType(after, "execute_result")[0])["text/plain"], "true");
});

test("a runtime exception gives its name, message and the cell's frames", { skip, timeout: 60_000 }, async () => {
  const ran = await execute("function deep(n: number): number { if (n === 0) throw new RangeError('too deep'); return deep(n - 1); }\ndeep(3)");
  assert.equal(ran.reply.status, "error");
  const reply = ran.reply as KernelMessage.IReplyErrorContent;
  assert.equal(reply.ename, "RangeError");
  assert.equal(reply.evalue, "too deep");
  assert.ok(
    reply.traceback.some((l) => l.includes("at deep")),
    reply.traceback.join("\n"),
  );
  assert.ok(!reply.traceback.some((l) => l.includes("tslab")), "kernel internals are cut from the traceback");
});

test("stdout is streamed, and tunelab/kernel's display() publishes and updates one display_id", { skip, timeout: 60_000 }, async () => {
  const code = [
    'import { display, newDisplayId } from "tunelab/kernel";',
    'console.log("step", 1);',
    'const handle = await display({ "text/html": "<p>0%</p>" }, { raw: true });',
    'await handle.update({ "text/html": "<p>100%</p>" }, { raw: true });',
    "const id: string = newDisplayId();",
    "handle.displayId",
  ].join("\n");
  const ran = await execute(code);
  assert.equal(ran.reply.status, "ok", JSON.stringify(ran.reply));
  const streams = ofType(ran, "stream")
    .map((m) => (m.content as { text: string }).text)
    .join("");
  assert.equal(streams, "step 1\n");
  const shown = ofType(ran, "display_data");
  const updated = ofType(ran, "update_display_data");
  assert.equal(shown.length, 1);
  assert.equal(updated.length, 1);
  const idOf = (m: KernelMessage.IIOPubMessage) => (m.content as { transient: { display_id: string } }).transient.display_id;
  assert.equal(idOf(shown[0]), idOf(updated[0]));
  assert.equal(dataOf(updated[0])["text/html"], "<p>100%</p>");
  assert.equal(dataOf(ofType(ran, "execute_result")[0])["text/plain"], idOf(shown[0]));
});

test("cells importing tunelab/kernel are type-checked against its .d.ts", { skip, timeout: 60_000 }, async () => {
  const ran = await execute('import { newDisplayId } from "tunelab/kernel";\nconst wrong: number = newDisplayId();');
  assert.equal(ran.reply.status, "error");
  assert.match((ran.reply as KernelMessage.IReplyErrorContent).evalue, /Type 'string' is not assignable to type 'number'/);
});

const sdkTypes = path.resolve(__dirname, "..", "..", "sdk", "index.d.ts");
test(
  'import ... from "tunelab" resolves (types and code) from a folder outside the repo',
  { skip: skip || (!fs.existsSync(sdkTypes) && `${sdkTypes} is not built yet (no sdk/index.ts)`), timeout: 60_000 },
  async () => {
    const ran = await execute('import * as tunelab from "tunelab";\nconst names: string[] = Object.keys(tunelab);\nnames.length > 0');
    assert.equal(ran.reply.status, "ok", JSON.stringify(ran.reply));
    assert.equal(dataOf(ofType(ran, "execute_result")[0])["text/plain"], "true");
  },
);
