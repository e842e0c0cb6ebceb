/**
 * How generation metrics cut text into units. Chinese and Japanese are not written with spaces between words, so
 * every Han, Hiragana or Katakana character is one token; elsewhere a token is a word (letters, marks, digits and
 * underscores, with inner apostrophes: "don't"), a number (inner "." or "," kept: "3.5", "3,000"), or any other
 * single non-space character (punctuation, symbols). Whitespace only separates. Case is kept unless asked.
 *
 *   evalTokens("净利润增长12.5%，达到3,000万元") -> 净 利 润 增 长 12.5 % ， 达 到 3,000 万 元
 *   evalTokens("It's up 12.5%.")               -> It's up 12.5 % .
 */

/** Options of the tokeniser shared by BLEU, ROUGE, distinct-n and repetition. */
export interface TokenizeOptions {
  /** Lower-case before cutting (default false: NLTK and sacreBLEU are case-sensitive). */
  lowercase?: boolean;
}

const CJK = "\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}";
const WORD_CHAR = `(?:(?![${CJK}])[\\p{L}\\p{M}\\p{N}_])`;
const TOKEN = new RegExp(`[${CJK}]|\\p{N}+(?:[.,]\\p{N}+)*(?!${WORD_CHAR})|${WORD_CHAR}+(?:['’]${WORD_CHAR}+)*|\\S`, "gu");

/** The tokens of a text: one per CJK character, one per word or number elsewhere, one per other symbol. */
export function evalTokens(text: string, opts: TokenizeOptions = {}): string[] {
  if (typeof text !== "string") throw new Error(`evalTokens: expected a string, got ${text === null ? "null" : typeof text}`);
  const t = opts.lowercase ? text.toLowerCase() : text;
  return t.match(TOKEN) ?? [];
}

/** The n-grams of a token list as strings joined by U+0001 (which no token contains). */
export function ngrams(tokens: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= tokens.length; i++) out.push(tokens.slice(i, i + n).join("\u0001"));
  return out;
}

/** Counts of each n-gram. */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const g of ngrams(tokens, n)) m.set(g, (m.get(g) ?? 0) + 1);
  return m;
}
