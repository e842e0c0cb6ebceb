/**
 * DIQA, the diagnostic information quality of a medical answer: a rubric of weighted fields (symptoms, diagnosis,
 * examinations, treatment, contraindications, follow-up), each with keywords that show the field is addressed and
 * concepts (synonym groups, Chinese and English) that are its content. The exact rule, per answer:
 *
 * 1. Text is NFKC-normalised and lower-cased. A keyword or synonym occurs as a substring; Latin ones must not touch a
 *    Latin letter on either side ("test" is not found in "latest").
 * 2. A concept mention is negated when a negation cue (`negations`: 无 没有 未 不 否认 排除 禁 避免 勿 / no not without
 *    denies negative for ruled out avoid …) occurs earlier in the same clause; clauses end at 。！？；;!?, a full stop
 *    before a space, line breaks and commas (，,), but not at the list mark 、 — so in "无发热、咳嗽" both are negated.
 * 3. A field is *required* when the reference addresses it (a keyword or a concept of it occurs); with no reference,
 *    or `required: "all"`, every field is.
 * 4. A required field scores: if the reference mentions concepts of it, the share of them the answer mentions with the
 *    same polarity; otherwise 1 when the answer addresses the field (keyword or concept), else 0.
 * 5. A required field is *contradicted* when some concept the reference mentions only affirmed (or only negated) is
 *    mentioned by the answer only with the opposite polarity ("肺炎" against "排除肺炎").
 * 6. DIQA = max(0, (Σ weight·score − penalty · Σ weight of contradicted fields) / Σ weight), over required fields
 *    (penalty default 1). An answer with no required fields scores null and is left out of the mean.
 */

/** One rubric field. */
export interface RubricField {
  /** Field name, e.g. "diagnosis". */
  name: string;
  /** Weight in the score (> 0). */
  weight: number;
  /** Words that show the field is addressed (any language). */
  keywords: readonly string[];
  /** Concepts of the field, each a group of synonyms: [["发热", "发烧", "fever"], ...]. */
  concepts?: readonly (readonly string[])[];
}

/** Options of DIQA. */
export interface DiqaOptions {
  /** The rubric (default DEFAULT_MEDICAL_RUBRIC). */
  rubric?: readonly RubricField[];
  /** Which fields are required: those the reference addresses (default) or all. */
  required?: "reference" | "all";
  /** Multiple of a contradicted field's weight subtracted (default 1). */
  penalty?: number;
  /** Negation cues (default DEFAULT_NEGATIONS). */
  negations?: readonly string[];
}

/** Default negation cues, Chinese and English. */
export const DEFAULT_NEGATIONS: readonly string[] = [
  "无",
  "没有",
  "未",
  "不",
  "否认",
  "排除",
  "非",
  "禁",
  "避免",
  "勿",
  "忌",
  "no",
  "not",
  "without",
  "denies",
  "denied",
  "negative for",
  "ruled out",
  "rule out",
  "absence of",
  "free of",
  "avoid",
  "never",
  "don't",
];

/** The default rubric: six fields, diagnosis and treatment weighted 2, the rest 1. */
export const DEFAULT_MEDICAL_RUBRIC: readonly RubricField[] = [
  {
    name: "symptoms",
    weight: 1,
    keywords: ["症状", "表现", "主诉", "不适", "symptom", "symptoms", "presents with", "presentation", "complains of", "complaint"],
    concepts: [
      ["发热", "发烧", "fever"],
      ["咳嗽", "cough"],
      ["头痛", "headache"],
      ["胸痛", "chest pain"],
      ["腹痛", "abdominal pain"],
      ["呼吸困难", "气促", "dyspnea", "shortness of breath"],
      ["乏力", "fatigue"],
      ["恶心", "nausea"],
      ["呕吐", "vomiting"],
      ["腹泻", "diarrhea"],
    ],
  },
  {
    name: "diagnosis",
    weight: 2,
    keywords: ["诊断", "考虑", "疑似", "可能为", "diagnosis", "diagnosed", "consistent with", "suspected", "likely"],
    concepts: [
      ["肺炎", "pneumonia"],
      ["支气管炎", "bronchitis"],
      ["高血压", "hypertension"],
      ["糖尿病", "diabetes"],
      ["冠心病", "coronary heart disease", "coronary artery disease"],
      ["胃炎", "gastritis"],
      ["流感", "流行性感冒", "influenza", "flu"],
      ["哮喘", "asthma"],
    ],
  },
  {
    name: "examinations",
    weight: 1,
    keywords: ["检查", "化验", "检验", "影像", "exam", "examination", "test", "tests", "imaging", "workup"],
    concepts: [
      ["血常规", "complete blood count", "cbc"],
      ["胸片", "x线", "chest x-ray", "x-ray"],
      ["ct"],
      ["心电图", "ecg", "ekg"],
      ["血糖", "blood glucose"],
      ["核酸", "pcr"],
    ],
  },
  {
    name: "treatment",
    weight: 2,
    keywords: ["治疗", "用药", "服用", "处方", "手术", "treatment", "treat", "therapy", "prescribe", "medication", "surgery"],
    concepts: [
      ["抗生素", "antibiotic", "antibiotics"],
      ["阿莫西林", "amoxicillin"],
      ["布洛芬", "ibuprofen"],
      ["对乙酰氨基酚", "扑热息痛", "acetaminophen", "paracetamol"],
      ["胰岛素", "insulin"],
      ["二甲双胍", "metformin"],
      ["补液", "多饮水", "fluids"],
    ],
  },
  {
    name: "contraindications",
    weight: 1,
    keywords: ["禁忌", "禁用", "慎用", "不宜", "过敏", "contraindication", "contraindications", "contraindicated", "allergy", "allergic"],
    concepts: [
      ["青霉素过敏", "penicillin allergy"],
      ["孕妇", "妊娠", "pregnancy", "pregnant"],
      ["饮酒", "alcohol"],
    ],
  },
  {
    name: "followUp",
    weight: 1,
    keywords: ["复诊", "随访", "复查", "定期", "及时就医", "follow-up", "follow up", "revisit", "recheck", "return if", "monitor"],
  },
];

const isLatinChar = (c: string | undefined) => c !== undefined && /[a-z]/.test(c);

/** Start offsets of `term` in `text` (both lower-cased); Latin terms must not touch a Latin letter. */
function occurrences(text: string, term: string): number[] {
  const out: number[] = [];
  if (term.length === 0) return out;
  const latinStart = isLatinChar(term[0]);
  const latinEnd = isLatinChar(term[term.length - 1]);
  for (let i = text.indexOf(term); i >= 0; i = text.indexOf(term, i + 1)) {
    if (latinStart && isLatinChar(text[i - 1])) continue;
    if (latinEnd && isLatinChar(text[i + term.length])) continue;
    out.push(i);
  }
  return out;
}

const CLAUSE_END = /[。！？；;!?\n，,]|\.(?=\s|$)/g;

interface Analysed {
  text: string;
  clauseStarts: number[];
}

function analyse(raw: string): Analysed {
  const text = raw.normalize("NFKC").toLowerCase();
  const clauseStarts = [0];
  for (const m of text.matchAll(CLAUSE_END)) clauseStarts.push((m.index ?? 0) + 1);
  return { text, clauseStarts };
}

/** Polarities of a concept in a text: "+" affirmed somewhere, "-" negated somewhere. */
function conceptPolarity(a: Analysed, synonyms: readonly string[], negations: readonly string[]): Set<"+" | "-"> {
  const out = new Set<"+" | "-">();
  for (const syn of synonyms) {
    for (const at of occurrences(a.text, syn.normalize("NFKC").toLowerCase())) {
      let start = 0;
      for (const s of a.clauseStarts) if (s <= at) start = s;
      const before = a.text.slice(start, at);
      const negated = negations.some((cue) => occurrences(before, cue.toLowerCase()).length > 0);
      out.add(negated ? "-" : "+");
    }
  }
  return out;
}

/** How one field of one answer scored. */
export interface FieldDetail {
  name: string;
  weight: number;
  required: boolean;
  /** Whether the answer addresses the field (a keyword or concept of it occurs). */
  addressed: boolean;
  /** The field's score in [0, 1] (see rule 4). */
  score: number;
  /** Reference concepts (their first synonym) the answer states with the same polarity. */
  matched: string[];
  /** Reference concepts the answer does not state with the same polarity. */
  missing: string[];
  /** Reference concepts the answer states with the opposite polarity only. */
  contradicted: string[];
}

/** DIQA of one answer. */
export interface DiqaDetail {
  /** The score in [0, 1]; null when no field is required. */
  diqa: number | null;
  fields: FieldDetail[];
}

function checkRubric(rubric: readonly RubricField[]): void {
  if (!Array.isArray(rubric) || rubric.length === 0) throw new Error("DIQA: rubric must be a non-empty array of fields");
  const names = new Set<string>();
  for (const [i, f] of rubric.entries()) {
    if (!f || typeof f.name !== "string" || f.name === "") throw new Error(`DIQA: rubric[${i}].name must be a non-empty string`);
    if (names.has(f.name)) throw new Error(`DIQA: rubric field "${f.name}" appears twice`);
    names.add(f.name);
    if (!(typeof f.weight === "number" && f.weight > 0 && Number.isFinite(f.weight)))
      throw new Error(`DIQA: rubric field "${f.name}": weight must be a number > 0, got ${f.weight}`);
    if (!Array.isArray(f.keywords) || (f.keywords as readonly unknown[]).some((k) => typeof k !== "string" || k === ""))
      throw new Error(`DIQA: rubric field "${f.name}": keywords must be non-empty strings`);
    for (const [j, c] of (f.concepts ?? []).entries()) {
      if (!Array.isArray(c) || c.length === 0 || c.some((k) => typeof k !== "string" || k === "")) {
        throw new Error(`DIQA: rubric field "${f.name}": concepts[${j}] must be a non-empty array of non-empty strings`);
      }
    }
  }
}

/** DIQA of one answer against an optional reference (see the module comment for the exact rule). */
export function diqaScore(answer: string, reference: string | null | undefined, opts: DiqaOptions = {}): DiqaDetail {
  const rubric = opts.rubric ?? DEFAULT_MEDICAL_RUBRIC;
  checkRubric(rubric);
  const penalty = opts.penalty ?? 1;
  if (!(penalty >= 0)) throw new Error(`DIQA: penalty must be >= 0, got ${penalty}`);
  const negations = opts.negations ?? DEFAULT_NEGATIONS;
  const ans = analyse(answer);
  const ref = reference === null || reference === undefined ? null : analyse(reference);
  const addresses = (a: Analysed, f: RubricField) =>
    f.keywords.some((k) => occurrences(a.text, k.normalize("NFKC").toLowerCase()).length > 0) ||
    (f.concepts ?? []).some((c) => c.some((s) => occurrences(a.text, s.normalize("NFKC").toLowerCase()).length > 0));
  let total = 0;
  let gained = 0;
  let lost = 0;
  const fields = rubric.map((f): FieldDetail => {
    const required = ref === null || opts.required === "all" || addresses(ref, f);
    const addressed = addresses(ans, f);
    const matched: string[] = [];
    const missing: string[] = [];
    const contradicted: string[] = [];
    let refConcepts = 0;
    if (ref !== null) {
      for (const c of f.concepts ?? []) {
        const rp = conceptPolarity(ref, c, negations);
        if (rp.size === 0) continue;
        refConcepts++;
        const ap = conceptPolarity(ans, c, negations);
        if ([...rp].some((p) => ap.has(p))) matched.push(c[0]);
        else {
          missing.push(c[0]);
          if (rp.size === 1 && ap.size === 1) contradicted.push(c[0]);
        }
      }
    }
    const score = refConcepts > 0 ? matched.length / refConcepts : addressed ? 1 : 0;
    if (required) {
      total += f.weight;
      gained += f.weight * score;
      if (contradicted.length > 0) lost += penalty * f.weight;
    }
    return { name: f.name, weight: f.weight, required, addressed, score, matched, missing, contradicted };
  });
  return { diqa: total === 0 ? null : Math.max(0, (gained - lost) / total), fields };
}

/** Corpus DIQA. */
export interface DiqaResult {
  /** Mean DIQA over answers with a required field. */
  diqa: number;
  /** Share of scored answers with at least one contradicted field. */
  contradictionRate: number;
  perSample: DiqaDetail[];
}

/** DIQA over answers, each against its reference (or against the whole rubric when references are not given). */
export function diqa(answers: readonly string[], references: readonly (string | null)[] | null = null, opts: DiqaOptions = {}): DiqaResult {
  if (answers.length === 0) throw new Error("DIQA: no answers");
  if (references && references.length !== answers.length) throw new Error(`DIQA: ${answers.length} answers but ${references.length} references`);
  const perSample = answers.map((a, i) => diqaScore(a, references ? references[i] : null, opts));
  const scored = perSample.filter((d) => d.diqa !== null);
  return {
    diqa: scored.length === 0 ? 0 : scored.reduce((s, d) => s + d.diqa!, 0) / scored.length,
    contradictionRate: scored.length === 0 ? 0 : scored.filter((d) => d.fields.some((f) => f.required && f.contradicted.length > 0)).length / scored.length,
    perSample,
  };
}
