/** Synonym sources for augmentation: English WordNet by default, any language through this interface. */

/** A source of synonyms for one language. */
export interface Lexicon {
  /** BCP 47 language tag, used for word segmentation (e.g. "en", "zh", "de"). */
  readonly language: string;
  /** Synonyms of a word (lower-cased lookups are the caller's choice); empty when none are known. */
  synonyms(word: string): readonly string[];
  /** Words never replaced (articles, pronouns, ...). */
  isStopword?(word: string): boolean;
}

/** A lexicon from a plain table, for languages without a bundled one: `{ "账单": ["帐单", "费用单"] }`. */
export function tableLexicon(
  language: string,
  table: Readonly<Record<string, readonly string[]>>,
  stopwords: readonly string[] = [],
): Lexicon {
  const map = new Map<string, readonly string[]>();
  for (const [w, syns] of Object.entries(table)) map.set(w.toLowerCase(), syns);
  const stop = new Set(stopwords.map((w) => w.toLowerCase()));
  return {
    language,
    synonyms: (word) => map.get(word.toLowerCase()) ?? [],
    isStopword: (word) => stop.has(word.toLowerCase()),
  };
}

/** English function words that synonym replacement leaves alone (as in EDA). */
export const ENGLISH_STOPWORDS: ReadonlySet<string> = new Set(
  (
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself " +
    "it its itself they them their theirs themselves what which who whom this that these those am is are was were be " +
    "been being have has had having do does did doing a an the and but if or because as until while of at by for with " +
    "about against between into through during before after above below to from up down in out on off over under again " +
    "further then once here there when where why how all any both each few more most other some such no nor not only " +
    "own same so than too very s t can will just don should now can't won't don't didn't isn't aren't wasn't i'm it's " +
    "please get got would could also"
  ).split(" "),
);
