/** `augment`: new train rows made from train rows, each carrying where it came from. */
import { Rng } from "../../util/random";
import { Dataset, type SplitDatasets } from "../dataset";
import type { AugmentMethod, ChatMessage, Row } from "../types";
import type { Lexicon } from "./lexicon";
import { englishWordNet } from "./wordnet";
import { randomDelete, randomInsert, randomSwap, synonymReplace } from "./eda";
import { fillTemplate, templateSlots, ROW_SLOTS } from "./template";
import type { Translator } from "./translate";

/** Template filling options: templates (or per-label templates) and the values of their slots. */
export interface TemplateAugmentOptions {
  /**
   * Templates with {slot}s. {text} is the row's text (for chat: its last user message), {label} its label. A list
   * applies to every row; an object keyed by label applies to that label's rows only.
   */
  templates: readonly string[] | Readonly<Record<string, readonly string[]>>;
  /** Values for the other slots; one is picked at random per fill. */
  slots?: Readonly<Record<string, readonly string[]>>;
}

/** Back-translation options. */
export interface BackTranslationOptions {
  translator: Translator;
  /** Pivot language(s), e.g. "zh" for the seed tutorial's English -> Chinese -> English. Several are used in turn. */
  pivot: string | readonly string[];
  /** Language of the data (default "en"). */
  language?: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
}

/** Options of `augment`; each method that is set makes `perRow` variants of every chosen train row. */
export interface AugmentOptions {
  /** Seed; the same seed gives the same augmented rows. Default 42. */
  seed?: number;
  /** Variants per row and method (default 1). */
  perRow?: number;
  /** Share of train rows to augment, a fraction in (0, 1] (default 1). */
  fraction?: number;
  /** Synonym replacement: fraction of words replaced (EDA's alpha_sr, e.g. 0.1). */
  synonyms?: number;
  /** Random swap: fraction of words swapped. */
  swap?: number;
  /** Random deletion: probability of deleting each word. */
  delete?: number;
  /** Random insertion: fraction of words inserted (synonyms of words in the text). */
  insert?: number;
  /** Synonyms for synonyms/insert (default: English WordNet). */
  lexicon?: Lexicon;
  templates?: TemplateAugmentOptions;
  backTranslation?: BackTranslationOptions;
  /** Called after each row with (rows done, rows to do), for progress displays. */
  onProgress?: (done: number, total: number) => void;
}

/** FNV-1a hash: a per-row seed that does not depend on the other rows. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The texts of a row that augmentation rewrites: text, or the user messages of a chat. */
function editableTexts(row: Row): string[] {
  if (row.kind === "chat") return row.messages.filter((m) => m.role === "user").map((m) => m.content);
  return [row.text];
}

/** The row with its editable texts replaced (in the order `editableTexts` gave them). */
function withTexts(row: Row, texts: readonly string[]): Row {
  if (row.kind !== "chat") return { ...row, text: texts[0] };
  let k = 0;
  const messages: ChatMessage[] = row.messages.map((m) => (m.role === "user" ? { ...m, content: texts[k++] } : m));
  return { ...row, messages };
}

/**
 * Augments the train rows: given split parts, only `train` changes; given a dataset, it must not be a val/test
 * part. Originals stay first, augmented rows follow, each with provenance.augmented = { from, method }. Rows that
 * are already augmented are not augmented again. Deterministic under `seed` (back-translation: as deterministic
 * as the translator).
 */
export async function augment<R extends Row>(data: SplitDatasets<R>, options: AugmentOptions): Promise<SplitDatasets<Row>>;
export async function augment<R extends Row>(data: Dataset<R>, options: AugmentOptions): Promise<Dataset<Row>>;
export async function augment<R extends Row>(
  data: Dataset<R> | SplitDatasets<R>,
  options: AugmentOptions,
): Promise<Dataset<Row> | SplitDatasets<Row>> {
  if (!(data instanceof Dataset)) {
    return { train: await augment(data.train, options), val: data.val, test: data.test };
  }
  if (data.role === "val" || data.role === "test") {
    throw new Error(`augment: this dataset is the ${data.role} part of a split; augmented rows may only be made from train rows`);
  }
  const seed = options.seed ?? 42;
  const perRow = options.perRow ?? 1;
  if (!Number.isInteger(perRow) || perRow < 1) throw new Error(`augment option perRow: expected a positive integer, got ${perRow}`);
  const fraction = options.fraction ?? 1;
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`augment option fraction: expected a fraction in (0, 1], got ${fraction}`);
  const methods = methodList(options);
  if (methods.length === 0) {
    throw new Error("augment: no method chosen; set synonyms, swap, delete, insert (rates), templates or backTranslation");
  }
  const lexicon = options.lexicon ?? (options.synonyms || options.insert ? englishWordNet() : undefined);
  checkTemplates(options.templates, data);

  const originals = data.rows.filter((r) => !r.provenance.augmented);
  const chosen = originals.filter((r) => fraction === 1 || new Rng(hash(`${seed}|pick|${r.provenance.id}`)).next() < fraction);
  const made: Row[] = [];
  let done = 0;
  // Rows are processed in order; back-translation requests run `concurrency` at a time within a window.
  const window = Math.max(1, options.backTranslation?.concurrency ?? 4);
  for (let s = 0; s < chosen.length; s += window) {
    const group = chosen.slice(s, s + window);
    const results = await Promise.all(group.map((r) => variantsOf(r, methods, options, lexicon, seed, perRow)));
    for (const rs of results) made.push(...rs);
    done += group.length;
    options.onProgress?.(done, chosen.length);
  }
  return new Dataset<Row>([...data.rows, ...made], data.report, data.role === "all" ? "all" : "train");
}

function methodList(o: AugmentOptions): AugmentMethod[] {
  const m: AugmentMethod[] = [];
  if (o.synonyms) m.push("synonyms");
  if (o.swap) m.push("swap");
  if (o.delete) m.push("delete");
  if (o.insert) m.push("insert");
  if (o.templates) m.push("template");
  if (o.backTranslation) m.push("backTranslation");
  return m;
}

function checkTemplates(t: TemplateAugmentOptions | undefined, data: Dataset<Row>): void {
  if (!t) return;
  const lists = Array.isArray(t.templates) ? [t.templates as readonly string[]] : Object.values(t.templates);
  for (const name of Object.keys(t.slots ?? {})) {
    if ((ROW_SLOTS as readonly string[]).includes(name)) throw new Error(`augment templates: slot name {${name}} is reserved for the row's own ${name}`);
  }
  const hasLabels = data.rows.every((r) => r.kind === "classification");
  for (const tpl of lists.flat()) {
    for (const slot of templateSlots(tpl)) {
      if (slot === "label" && !hasLabels) throw new Error(`augment templates: ${JSON.stringify(tpl)} uses {label} but the rows are not all classification rows`);
      if (!(ROW_SLOTS as readonly string[]).includes(slot) && !(t.slots?.[slot]?.length)) {
        throw new Error(`augment templates: ${JSON.stringify(tpl)} uses slot {${slot}}, which has no values in slots`);
      }
    }
  }
}

async function variantsOf(
  row: Row,
  methods: readonly AugmentMethod[],
  o: AugmentOptions,
  lexicon: Lexicon | undefined,
  seed: number,
  perRow: number,
): Promise<Row[]> {
  const out: Row[] = [];
  const texts = editableTexts(row);
  const language = lexicon?.language ?? o.backTranslation?.language ?? "en";
  for (const method of methods) {
    const seen = new Set<string>([JSON.stringify(texts)]);
    for (let k = 0; k < perRow; k++) {
      const rng = new Rng(hash(`${seed}|${method}|${k}|${row.provenance.id}`));
      let next: string[] | undefined;
      switch (method) {
        case "synonyms":
          next = editEach(texts, (t) => synonymReplace(t, o.synonyms!, lexicon!, rng));
          break;
        case "swap":
          next = editEach(texts, (t) => randomSwap(t, o.swap!, rng, language));
          break;
        case "delete":
          next = editEach(texts, (t) => randomDelete(t, o.delete!, rng, language));
          break;
        case "insert":
          next = editEach(texts, (t) => randomInsert(t, o.insert!, lexicon!, rng));
          break;
        case "template":
          next = templateTexts(row, texts, o.templates!, rng);
          break;
        case "backTranslation":
          next = await backTranslate(texts, o.backTranslation!, k);
          break;
      }
      // Nothing could change (no synonyms, one word, ...) or the same variant again: no duplicate row.
      if (!next || seen.has(JSON.stringify(next))) continue;
      seen.add(JSON.stringify(next));
      const from = row.provenance.id;
      const variant = withTexts(row, next);
      out.push({
        ...variant,
        provenance: { id: `${from}~${method}${k}`, source: row.provenance.source, line: row.provenance.line, augmented: { from, method } },
      } as Row);
    }
  }
  return out;
}

/** Applies an edit to each text; undefined when no text changed. */
function editEach(texts: readonly string[], edit: (t: string) => string | undefined): string[] | undefined {
  let any = false;
  const out = texts.map((t) => {
    const e = edit(t);
    if (e === undefined || e.trim() === "") return t;
    any = true;
    return e;
  });
  return any ? out : undefined;
}

function templateTexts(row: Row, texts: readonly string[], t: TemplateAugmentOptions, rng: Rng): string[] | undefined {
  const label = row.kind === "classification" ? row.label : undefined;
  const list = Array.isArray(t.templates)
    ? (t.templates as readonly string[])
    : label !== undefined
      ? (t.templates as Readonly<Record<string, readonly string[]>>)[label] ?? []
      : [];
  if (list.length === 0) return undefined;
  // The last editable text is the one the template rewrites (for chat: the final user turn).
  const target = texts.length - 1;
  const fixed: Record<string, string> = { text: texts[target], ...(label !== undefined ? { label } : {}) };
  const filled = fillTemplate(list[rng.int(list.length)], t.slots ?? {}, rng, fixed);
  if (filled === texts[target] || filled.trim() === "") return undefined;
  return texts.map((x, k) => (k === target ? filled : x));
}

async function backTranslate(texts: readonly string[], o: BackTranslationOptions, k: number): Promise<string[] | undefined> {
  const pivots = typeof o.pivot === "string" ? [o.pivot] : o.pivot;
  if (pivots.length === 0) throw new Error("augment backTranslation.pivot: give at least one pivot language");
  const pivot = pivots[k % pivots.length];
  const src = o.language ?? "en";
  const out: string[] = [];
  for (const t of texts) {
    const there = await o.translator.translate(t, src, pivot);
    const back = await o.translator.translate(there, pivot, src);
    out.push(back.trim() === "" ? t : back);
  }
  return out.some((x, i) => x.trim() !== texts[i].trim()) ? out : undefined;
}
