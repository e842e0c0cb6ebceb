/**
 * EDA-style text edits (Wei & Zou 2019): synonym replacement, random swap, random deletion, random insertion.
 * Each takes a rate (a fraction of the words) and a seeded Rng, and returns undefined when it cannot change the text.
 */
import type { Rng } from "../../util/random";
import type { Lexicon } from "./lexicon";
import { joinPieces, matchCase, splitWords, usesSpaces, type Piece } from "./words";

function wordIndices(pieces: readonly Piece[]): number[] {
  return pieces.flatMap((p, k) => (p.word ? [k] : []));
}

function edits(rate: number, words: number): number {
  if (!(rate > 0 && rate <= 1)) throw new Error(`augmentation rate: expected a fraction in (0, 1], got ${rate}`);
  return Math.max(1, Math.round(rate * words));
}

function changed(text: string, pieces: readonly Piece[]): string | undefined {
  const out = joinPieces(pieces);
  return out === text ? undefined : out;
}

function candidates(pieces: readonly Piece[], lexicon: Lexicon): number[] {
  return wordIndices(pieces).filter((k) => {
    const w = pieces[k].text;
    return !lexicon.isStopword?.(w) && lexicon.synonyms(w).length > 0;
  });
}

/** Replaces rate*words non-stopwords that have synonyms with a random synonym each. */
export function synonymReplace(text: string, rate: number, lexicon: Lexicon, rng: Rng): string | undefined {
  const pieces = splitWords(text, lexicon.language);
  const n = edits(rate, wordIndices(pieces).length);
  const cands = rng.shuffle(candidates(pieces, lexicon)).slice(0, n);
  for (const k of cands) {
    const syns = lexicon.synonyms(pieces[k].text);
    pieces[k] = { text: matchCase(pieces[k].text, syns[rng.int(syns.length)]), word: true };
  }
  return changed(text, pieces);
}

/** Swaps two random words, rate*words times. */
export function randomSwap(text: string, rate: number, rng: Rng, language = "en"): string | undefined {
  const pieces = splitWords(text, language);
  const idx = wordIndices(pieces);
  if (idx.length < 2) return undefined;
  const n = edits(rate, idx.length);
  for (let s = 0; s < n; s++) {
    const a = idx[rng.int(idx.length)];
    let b = idx[rng.int(idx.length)];
    for (let tries = 0; b === a && tries < 5; tries++) b = idx[rng.int(idx.length)];
    [pieces[a], pieces[b]] = [pieces[b], pieces[a]];
  }
  return changed(text, pieces);
}

/** Deletes each word with probability rate (keeping at least one), with the space before it. */
export function randomDelete(text: string, rate: number, rng: Rng, language = "en"): string | undefined {
  if (!(rate > 0 && rate <= 1)) throw new Error(`augmentation rate: expected a fraction in (0, 1], got ${rate}`);
  const pieces = splitWords(text, language);
  const idx = wordIndices(pieces);
  if (idx.length < 2) return undefined;
  let drop = new Set(idx.filter(() => rng.next() < rate));
  if (drop.size === idx.length) drop = new Set(idx.filter((k) => k !== idx[rng.int(idx.length)]));
  const out: Piece[] = [];
  pieces.forEach((p, k) => {
    if (!drop.has(k)) return void out.push(p);
    // Take one adjoining space with the word so no double spaces are left behind.
    const prev = out[out.length - 1];
    if (prev && !prev.word && /^\s+$/u.test(prev.text)) out.pop();
    else if (pieces[k + 1] && !pieces[k + 1].word && /^\s+$/u.test(pieces[k + 1].text)) pieces[k + 1] = { text: "", word: false };
  });
  return changed(text, out);
}

/** Inserts a synonym of a random word at a random word boundary, rate*words times. */
export function randomInsert(text: string, rate: number, lexicon: Lexicon, rng: Rng): string | undefined {
  const pieces = splitWords(text, lexicon.language);
  const idx = wordIndices(pieces);
  const cands = candidates(pieces, lexicon).map((k) => pieces[k].text);
  if (cands.length === 0) return undefined;
  const sep = usesSpaces(pieces) ? " " : "";
  const n = edits(rate, idx.length);
  for (let s = 0; s < n; s++) {
    const syns = lexicon.synonyms(cands[rng.int(cands.length)]);
    const word = syns[rng.int(syns.length)];
    const words = wordIndices(pieces);
    const at = words[rng.int(words.length)];
    // Before a chosen word: "my bill" -> "my invoice bill".
    pieces.splice(at, 0, { text: word, word: true }, { text: sep, word: false });
  }
  return changed(text, pieces);
}
