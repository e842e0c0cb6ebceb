/**
 * FR, the fact-correctness rate of finance answers: facts are extracted from the answer and from the reference by
 * fixed, documented rules, and FR = reference facts the answer agrees with / reference facts.
 *
 * Extraction (on the NFKC-normalised text, so full-width ％ ￥ and digits read as their ASCII forms; "，" stays a separator):
 * - date: 2023-03-05, 2023/3/5, 2023.3.5, 2023年3月5日, 2023年3月, 2023年, March 5, 2023, 5 March 2023, March 2023,
 *   quarters (2023年第三季度, 2023Q3, Q3 2023) -> "2023-03-05", "2023-03", "2023", "2023-Q3". Read first; their digits
 *   are not read again as numbers.
 * - money: a number with a currency before (¥ $ € £ US$ HK$ RMB CNY USD HKD EUR GBP) or after (元 人民币 美元 美金 港元
 *   港币 欧元 英镑 yuan dollars euros pounds and the codes), with an optional magnitude between: 1.2亿元 = 120000000 CNY,
 *   3,000万元 = 30000000 CNY, $1.5 billion = 1500000000 USD.
 * - percent: 12%, 12 percent -> 12. points: 3个百分点, 3 percentage points, 3 pp -> 3; 25基点, 25 bp -> 0.25 points.
 * - number: a number with a magnitude (万 亿 千万 百万 万亿 thousand million mn billion bn trillion) or a unit from
 *   `units` (default 股 shares 倍 times 吨 tons 手 lots), e.g. 1.2亿, 500万股. Bare numbers count only with `bareNumbers`.
 * - entity: each name of `entities` (or one of its aliases) that occurs, case-insensitively, as its canonical name.
 * Each text's facts are a set: the same fact written twice counts once.
 *
 * Agreement: same kind; dates and entities equal; numbers equal within `relTolerance` (relative, default 1e-9: equal
 * after normalisation) with the same currency or unit when both sides name one (with `strictUnits`, a missing one on
 * either side also disagrees); a number with no unit may agree with money of the same value (3000万 with 3,000万元)
 * unless `strictUnits`. Each answer fact agrees with at most one reference fact (first agreeing one, reading order).
 */

/** The kinds of fact FR extracts. */
export type FactKind = "date" | "money" | "percent" | "points" | "number" | "entity";

/** One extracted fact. */
export interface Fact {
  kind: FactKind;
  /** Normalised value: a number (money in units of its currency, percent as 12 for 12%) or a string (dates, entities). */
  value: number | string;
  /** Currency code (money) or canonical unit (number), when the text names one. */
  unit?: string;
  /** The text it was read from. */
  text: string;
}

/** An entity to look for: a name, or a canonical name with aliases (e.g. { name: "Kweichow Moutai", aliases: ["贵州茅台", "茅台"] }). */
export type EntitySpec = string | { name: string; aliases?: readonly string[] };

/** Options of FR. */
export interface FactOptions {
  /** Named entities to extract (default none). */
  entities?: readonly EntitySpec[];
  /** Unit words after a number and their canonical names; default DEFAULT_UNITS. */
  units?: Readonly<Record<string, string>>;
  /** Also extract numbers with no unit, magnitude or currency (default false). */
  bareNumbers?: boolean;
  /** Relative tolerance of numeric agreement (default 1e-9). */
  relTolerance?: number;
  /** A currency/unit missing on one side disagrees (default false: the value decides). */
  strictUnits?: boolean;
  /** Fact kinds to extract (default all). */
  kinds?: readonly FactKind[];
}

/** Default unit words (surface -> canonical). */
export const DEFAULT_UNITS: Readonly<Record<string, string>> = {
  股: "shares",
  shares: "shares",
  倍: "times",
  times: "times",
  吨: "tons",
  tons: "tons",
  手: "lots",
};

const CURRENCY: Readonly<Record<string, string>> = {
  "¥": "CNY",
  RMB: "CNY",
  CNY: "CNY",
  元: "CNY",
  人民币: "CNY",
  元人民币: "CNY",
  yuan: "CNY",
  $: "USD",
  US$: "USD",
  USD: "USD",
  美元: "USD",
  美金: "USD",
  dollar: "USD",
  dollars: "USD",
  HK$: "HKD",
  HKD: "HKD",
  港元: "HKD",
  港币: "HKD",
  "€": "EUR",
  EUR: "EUR",
  欧元: "EUR",
  euro: "EUR",
  euros: "EUR",
  "£": "GBP",
  GBP: "GBP",
  英镑: "GBP",
  pound: "GBP",
  pounds: "GBP",
};

const MAGNITUDE: Readonly<Record<string, number>> = {
  万亿: 1e12,
  千亿: 1e11,
  百亿: 1e10,
  亿: 1e8,
  千万: 1e7,
  百万: 1e6,
  万: 1e4,
  thousand: 1e3,
  million: 1e6,
  mn: 1e6,
  billion: 1e9,
  bn: 1e9,
  trillion: 1e12,
  tn: 1e12,
};

const PERCENT = ["%", "percent", "per cent"];
const POINTS: Readonly<Record<string, number>> = {
  个百分点: 1,
  百分点: 1,
  "percentage points": 1,
  "percentage point": 1,
  pp: 1,
  基点: 0.01,
  "basis points": 0.01,
  "basis point": 0.01,
  bps: 0.01,
  bp: 0.01,
};

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const ZH_QUARTER: Readonly<Record<string, string>> = { 一: "1", 二: "2", 三: "3", 四: "4", "1": "1", "2": "2", "3": "3", "4": "4" };

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// Longest alternatives first, so 万亿 wins over 万 and 元人民币 over 元.
const alt = (words: readonly string[]) =>
  [...words]
    .sort((a, b) => b.length - a.length)
    .map(esc)
    .join("|");
const isLatin = (w: string) => /^[A-Za-z ]+$/.test(w);
// Latin words must end at a word boundary ("5 mn" but not "5 mnemonic"); CJK and symbols need none.
const altBounded = (words: readonly string[]) =>
  [...words]
    .sort((a, b) => b.length - a.length)
    .map((w) => (isLatin(w) ? `${esc(w)}(?![A-Za-z])` : esc(w)))
    .join("|");

const pad2 = (s: string | number) => String(s).padStart(2, "0");
const validDate = (m: number, d?: number) => m >= 1 && m <= 12 && (d === undefined || (d >= 1 && d <= 31));

interface Span {
  start: number;
  end: number;
}

function readDates(text: string, facts: Fact[], spans: Span[]): void {
  const month = `(${MONTHS.map((m) => `${m}[a-z]*`).join("|")})\\.?`;
  const rules: Array<[RegExp, (m: RegExpExecArray) => string | null]> = [
    [/(?<!\d)(\d{4})年?\s*(?:第\s*)?([一二三四1-4])\s*季度/g, (m) => `${m[1]}-Q${ZH_QUARTER[m[2]]}`],
    [/(?<![A-Za-z0-9])(\d{4})\s*Q([1-4])(?![0-9])/gi, (m) => `${m[1]}-Q${m[2]}`],
    [/(?<![A-Za-z0-9])Q([1-4])\s*(?:of\s+)?(\d{4})(?!\d)/gi, (m) => `${m[2]}-Q${m[1]}`],
    [/(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)/g, (m) => (validDate(+m[2], +m[3]) ? `${m[1]}-${pad2(m[2])}-${pad2(m[3])}` : null)],
    [/(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]/g, (m) => (validDate(+m[2], +m[3]) ? `${m[1]}-${pad2(m[2])}-${pad2(m[3])}` : null)],
    [/(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月/g, (m) => (validDate(+m[2]) ? `${m[1]}-${pad2(m[2])}` : null)],
    [new RegExp(`(?<![A-Za-z])${month}\\s+(\\d{1,2})(?:st|nd|rd|th)?,?\\s+(\\d{4})(?!\\d)`, "gi"), (m) => monthDate(m[1], m[3], m[2])],
    [new RegExp(`(?<!\\d)(\\d{1,2})(?:st|nd|rd|th)?\\s+${month}\\s+(\\d{4})(?!\\d)`, "gi"), (m) => monthDate(m[2], m[3], m[1])],
    [new RegExp(`(?<![A-Za-z])${month}\\s+(\\d{4})(?!\\d)`, "gi"), (m) => monthDate(m[1], m[2])],
    [/(?<!\d)(\d{4})\s*年(?!\s*\d)/g, (m) => m[1]],
  ];
  for (const [re, make] of rules) {
    for (const m of text.matchAll(re)) {
      const start = m.index ?? 0;
      const end = start + m[0].length;
      if (spans.some((s) => start < s.end && end > s.start)) continue;
      const value = make(m as RegExpExecArray);
      if (value === null) continue;
      facts.push({ kind: "date", value, text: m[0] });
      spans.push({ start, end });
    }
  }
}

function monthDate(name: string, year: string, day?: string): string | null {
  const i = MONTHS.indexOf(name.slice(0, 3).toLowerCase());
  if (i < 0 || !MONTHS.some((m) => name.toLowerCase().startsWith(m))) return null;
  const full = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"][i];
  const lower = name.toLowerCase();
  if (lower.length > 3 && !(full.startsWith(lower) || lower === "sept")) return null;
  if (day !== undefined && !validDate(i + 1, +day)) return null;
  return day === undefined ? `${year}-${pad2(i + 1)}` : `${year}-${pad2(i + 1)}-${pad2(day)}`;
}

function readNumbers(text: string, facts: Fact[], spans: Span[], opts: FactOptions): void {
  const units = opts.units ?? DEFAULT_UNITS;
  const prefix = ["US$", "HK$", "RMB", "CNY", "USD", "HKD", "EUR", "GBP", "¥", "$", "€", "£"];
  const suffixCurrency = Object.keys(CURRENCY).filter((k) => !["¥", "$", "€", "£", "US$", "HK$"].includes(k));
  const re = new RegExp(
    `(?<pre>${alt(prefix)})?\\s?(?<![A-Za-z0-9_]|\\d[.,])(?<num>[-+−]?(?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?)(?![\\d])` +
      `(?:\\s?(?<mag>${altBounded(Object.keys(MAGNITUDE))}))?` +
      `(?:\\s?(?<post>${altBounded([...PERCENT, ...Object.keys(POINTS), ...suffixCurrency, ...Object.keys(units)])}))?`,
    "g",
  );
  for (const m of text.matchAll(re)) {
    const g = m.groups as { pre?: string; num: string; mag?: string; post?: string };
    const start = (m.index ?? 0) + (m[0].length - m[0].trimStart().length);
    const end = (m.index ?? 0) + m[0].length;
    if (spans.some((s) => start < s.end && end > s.start)) continue;
    const base = Number(g.num.replace(/,/g, "").replace("−", "-"));
    if (!Number.isFinite(base)) continue;
    const value = g.mag ? base * MAGNITUDE[g.mag] : base;
    const post = g.post;
    let fact: Fact | null = null;
    const surface = m[0].trim();
    if (post && PERCENT.includes(post)) fact = { kind: "percent", value: base, text: surface };
    else if (post && post in POINTS) fact = { kind: "points", value: base * POINTS[post], text: surface };
    else if (g.pre || (post && post in CURRENCY && !(post in units))) {
      fact = { kind: "money", value, unit: CURRENCY[g.pre ?? post!], text: surface };
    } else if (post && post in units) fact = { kind: "number", value, unit: units[post], text: surface };
    else if (g.mag || opts.bareNumbers) fact = { kind: "number", value, text: surface };
    if (fact) {
      facts.push(fact);
      spans.push({ start, end });
    }
  }
}

function readEntities(text: string, facts: Fact[], entities: readonly EntitySpec[]): void {
  const lower = text.toLowerCase();
  for (const [i, e] of entities.entries()) {
    const spec = typeof e === "string" ? { name: e, aliases: [] } : e;
    if (!spec || typeof spec.name !== "string" || spec.name.length === 0) throw new Error(`FR: entities[${i}] must be a non-empty string or { name, aliases }`);
    const names = [spec.name, ...(spec.aliases ?? [])];
    const hit = names.find((n) => lower.includes(n.normalize("NFKC").toLowerCase()));
    if (hit) facts.push({ kind: "entity", value: spec.name, text: hit });
  }
}

const factKey = (f: Fact) => `${f.kind}|${f.unit ?? ""}|${f.value}`;

/** The facts of one text under the FR rules (a set: duplicates removed, in reading order per kind). */
export function extractFacts(text: string, opts: FactOptions = {}): Fact[] {
  if (typeof text !== "string") throw new Error(`FR: expected a string, got ${typeof text}`);
  // The ideographic comma-like "，" becomes "、" first: NFKC would make it "," and "增长12，3000万" read as 12,3000.
  const t = text.replace(/\uFF0C/g, "、").normalize("NFKC");
  const facts: Fact[] = [];
  const spans: Span[] = [];
  readDates(t, facts, spans);
  readNumbers(t, facts, spans, opts);
  readEntities(t, facts, opts.entities ?? []);
  const seen = new Set<string>();
  const kinds = opts.kinds ? new Set(opts.kinds) : null;
  return facts.filter((f) => (kinds === null || kinds.has(f.kind)) && !seen.has(factKey(f)) && seen.add(factKey(f)));
}

/** Whether an answer fact agrees with a reference fact under the FR rule. */
export function factsAgree(reference: Fact, answer: Fact, opts: FactOptions = {}): boolean {
  if (reference.kind !== answer.kind) {
    // "营收3000万" states the amount of "3,000万元" without its currency: a unit-less number may stand for money.
    const loose =
      !opts.strictUnits && [reference, answer].some((f) => f.kind === "number" && f.unit === undefined) && [reference, answer].some((f) => f.kind === "money");
    if (!loose) return false;
  }
  if (typeof reference.value === "string" || typeof answer.value === "string") return reference.value === answer.value;
  if (reference.unit !== answer.unit) {
    if (opts.strictUnits || (reference.unit !== undefined && answer.unit !== undefined)) return false;
  }
  const tol = opts.relTolerance ?? 1e-9;
  return Math.abs(reference.value - answer.value) <= tol * Math.max(Math.abs(reference.value), Math.abs(answer.value));
}

/** FR of one answer, with what matched. */
export interface FactDetail {
  /** Matched reference facts / reference facts; null when the reference has no facts. */
  fr: number | null;
  referenceFacts: Fact[];
  answerFacts: Fact[];
  matched: Array<{ reference: Fact; answer: Fact }>;
  /** Reference facts the answer does not state (or states differently). */
  missed: Fact[];
  /** Answer facts that agree with no reference fact. */
  extra: Fact[];
}

/** FR of one answer against its reference. */
export function factCorrectness(answer: string, reference: string, opts: FactOptions = {}): FactDetail {
  const referenceFacts = extractFacts(reference, opts);
  const answerFacts = extractFacts(answer, opts);
  const used = new Set<number>();
  const matched: FactDetail["matched"] = [];
  const missed: Fact[] = [];
  for (const r of referenceFacts) {
    const j = answerFacts.findIndex((a, k) => !used.has(k) && factsAgree(r, a, opts));
    if (j >= 0) {
      used.add(j);
      matched.push({ reference: r, answer: answerFacts[j] });
    } else missed.push(r);
  }
  return {
    fr: referenceFacts.length === 0 ? null : matched.length / referenceFacts.length,
    referenceFacts,
    answerFacts,
    matched,
    missed,
    extra: answerFacts.filter((_, k) => !used.has(k)),
  };
}

/** Corpus FR. */
export interface FrResult {
  /** Matched reference facts / reference facts, pooled over answers (the headline FR). */
  fr: number;
  /** Mean of the per-answer FR over answers whose reference has facts. */
  frMacro: number;
  /** Answer facts that agree with a reference fact / answer facts (how much of what the answer states is right). */
  factPrecision: number;
  /** Number of reference facts in all. */
  referenceFacts: number;
  perSample: FactDetail[];
}

/** FR over answers and their references (see the module comment for the exact rules). */
export function fr(answers: readonly string[], references: readonly string[], opts: FactOptions = {}): FrResult {
  if (answers.length !== references.length) throw new Error(`FR: ${answers.length} answers but ${references.length} references`);
  if (answers.length === 0) throw new Error("FR: no answers");
  const perSample = answers.map((a, i) => factCorrectness(a, references[i], opts));
  const refCount = perSample.reduce((s, d) => s + d.referenceFacts.length, 0);
  const ansCount = perSample.reduce((s, d) => s + d.answerFacts.length, 0);
  const hits = perSample.reduce((s, d) => s + d.matched.length, 0);
  const scored = perSample.filter((d) => d.fr !== null);
  return {
    fr: refCount === 0 ? 0 : hits / refCount,
    frMacro: scored.length === 0 ? 0 : scored.reduce((s, d) => s + d.fr!, 0) / scored.length,
    factPrecision: ansCount === 0 ? 0 : hits / ansCount,
    referenceFacts: refCount,
    perSample,
  };
}
