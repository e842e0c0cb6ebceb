/**
 * Rich display for notebooks: the `Symbol.for("Jupyter.display")` protocol (Deno's convention) and a
 * live-display API (`display_id` / `update_display_data`). No Jupyter or tslab import here: the running
 * kernel registers a sink on `globalThis`, so this module works from any copy of tunelab and is a no-op
 * in a plain Node process.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { JUPYTER_DISPLAY, viz, type Displayable, type MimeBundle } from "../sdk/index";

// One definition of the protocol, in the SDK (sdk/viz/display.ts); re-exported for notebooks.
const isDisplayable = viz.isDisplayable;
type RenderOptions = viz.DisplayOptions;
export { JUPYTER_DISPLAY, isDisplayable, type Displayable, type MimeBundle, type RenderOptions };

/** What the kernel receives for one display: the message content of `display_data` / `update_display_data`. */
export interface DisplayMessage {
  data: MimeBundle;
  metadata: { [key: string]: unknown };
  transient: { display_id?: string };
}

/** What a running kernel installs to publish displays of the current cell. */
export interface DisplaySink {
  /** How display methods are called under this kernel, e.g. `{ inlinePlotly: false }` when it loads plotly.js itself. */
  renderOptions: RenderOptions;
  /** Publishes display_data (or update_display_data when `update`) to the current cell. */
  publish(message: DisplayMessage, update: boolean): void;
}

/** Where the kernel registers its sink; a global symbol so that every loaded copy of this module sees it. */
const SINK_KEY = Symbol.for("tunelab.kernel.displaySink");

type GlobalWithSink = typeof globalThis & { [SINK_KEY]?: DisplaySink };

/** Installs (or, with null, removes) the kernel's display sink. Called by the kernel, not by notebooks. */
export function setDisplaySink(sink: DisplaySink | null): void {
  const g = globalThis as GlobalWithSink;
  if (sink) g[SINK_KEY] = sink;
  else delete g[SINK_KEY];
}

/** True when running inside the tunelab kernel, i.e. when display() will reach a notebook. */
export function inJupyterKernel(): boolean {
  return (globalThis as GlobalWithSink)[SINK_KEY] !== undefined;
}

/** The `text/plain` form the kernel uses for a value with no richer form (strings are shown as they are). */
export function plainText(value: unknown): string {
  return typeof value === "string" ? value : inspect(value, { depth: 2, breakLength: 100 });
}

/**
 * The MIME bundle for a value: its Jupyter.display bundle when it has one (with `text/plain` added when
 * missing, as Jupyter frontends expect it), otherwise just `text/plain`. Bytes become base64 strings.
 */
export async function toMimeBundle(value: unknown, options?: RenderOptions): Promise<MimeBundle> {
  if (!isDisplayable(value)) return { "text/plain": plainText(value) };
  // Awaited so that a display method may also be async (allowed by Deno's kernel).
  const bundle: unknown = await (value[JUPYTER_DISPLAY] as (o?: RenderOptions) => unknown)(options);
  return normalizeBundle(bundle, value);
}

/** Checks a bundle's shape and encodes it for the wire; `owner` only names the object in errors. */
export function normalizeBundle(bundle: unknown, owner?: unknown): MimeBundle {
  if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) {
    const who = owner === undefined ? "display bundle" : `[Symbol.for("Jupyter.display")]() of ${describe(owner)}`;
    throw new TypeError(`${who} must return an object mapping MIME types to data, got ${describe(bundle)}`);
  }
  const out: { [mime: string]: unknown } = {};
  for (const [mime, data] of Object.entries(bundle)) {
    if (!mime.includes("/")) throw new TypeError(`display bundle key "${mime}" is not a MIME type (expected e.g. "text/html")`);
    if (data === undefined) continue;
    out[mime] = data instanceof Uint8Array ? Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") : data;
  }
  if (typeof out["text/plain"] !== "string") out["text/plain"] = owner === undefined ? "" : inspect(owner, { depth: 0 });
  return out as MimeBundle;
}

/** A fresh display id (16 hex characters). */
export function newDisplayId(): string {
  return randomBytes(8).toString("hex");
}

/** Options of display(). */
export interface DisplayOptions {
  /** Publish under this id so that later calls can replace the output in place; a fresh id when omitted. */
  displayId?: string;
  /** Per-MIME-type metadata (e.g. `{"image/png": {width: 320}}`). */
  metadata?: { [key: string]: unknown };
  /** Replace the output already shown under `displayId` instead of adding a new one. */
  update?: boolean;
}

/** A display that can be replaced in place, e.g. a live loss curve or a progress bar. */
export interface DisplayHandle {
  /** The Jupyter display_id of this output. */
  readonly displayId: string;
  /** Replaces the output with a new value (a Displayable, a MIME bundle via `{raw: true}`, or anything else as text). */
  update(value: unknown, options?: { raw?: boolean }): Promise<void>;
}

/**
 * Shows a value in the notebook cell now (not only as the cell's last expression) and returns a handle
 * to update it in place. `raw: true` means `value` already is a MIME bundle. Outside the kernel this does
 * nothing and returns a handle whose updates do nothing, so SDK code can call it unconditionally.
 */
export async function display(value: unknown, options: DisplayOptions & { raw?: boolean } = {}): Promise<DisplayHandle> {
  const displayId = options.displayId ?? newDisplayId();
  const publish = async (v: unknown, raw: boolean, update: boolean): Promise<void> => {
    const sink = (globalThis as GlobalWithSink)[SINK_KEY];
    if (!sink) return;
    const data = raw ? normalizeBundle(v) : await toMimeBundle(v, sink.renderOptions);
    sink.publish({ data, metadata: options.metadata ?? {}, transient: { display_id: displayId } }, update);
  };
  await publish(value, options.raw === true, options.update === true);
  return {
    displayId,
    update: (v: unknown, o: { raw?: boolean } = {}) => publish(v, o.raw === true, true),
  };
}

/** Replaces the output shown under `displayId` (Jupyter `update_display_data`). */
export async function updateDisplay(displayId: string, value: unknown, options: { raw?: boolean } = {}): Promise<void> {
  await display(value, { displayId, update: true, raw: options.raw });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}
