/** Unicode-aware word splitting that keeps every separator, so text can be rebuilt exactly. */

/** A piece of text: a word, or the spaces/punctuation between words. */
export interface Piece {
  text: string;
  word: boolean;
}

const segmenters = new Map<string, Intl.Segmenter>();

/** Splits text into word and non-word pieces (ICU word boundaries: works for spaced scripts and for CJK). */
export function splitWords(text: string, locale = "en"): Piece[] {
  let seg = segmenters.get(locale);
  if (!seg) {
    seg = new Intl.Segmenter(locale, { granularity: "word" });
    segmenters.set(locale, seg);
  }
  const pieces: Piece[] = [];
  for (const s of seg.segment(text)) {
    // Numbers count as words for the segmenter, but replacing or inserting around them rarely helps.
    const word = s.isWordLike === true && /\p{L}/u.test(s.segment);
    pieces.push({ text: s.segment, word });
  }
  return pieces;
}

/** Rebuilds text from pieces. */
export function joinPieces(pieces: readonly Piece[]): string {
  return pieces.map((p) => p.text).join("");
}

/** Whether words in this text are separated by spaces (false for Chinese/Japanese-style text). */
export function usesSpaces(pieces: readonly Piece[]): boolean {
  return pieces.some((p) => !p.word && /\s/u.test(p.text));
}

/** The word's case pattern applied to a replacement: "Bill" -> "Invoice", "BILL" -> "INVOICE". */
export function matchCase(original: string, replacement: string): string {
  if (original.length > 1 && original === original.toUpperCase() && original !== original.toLowerCase()) {
    return replacement.toUpperCase();
  }
  const first = original[0];
  if (first && first !== first.toLowerCase()) return replacement[0].toUpperCase() + replacement.slice(1);
  return replacement;
}
