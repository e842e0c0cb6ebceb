/**
 * Generation metrics as values: the built-in ones by name and a typed way to add one (`defineMetric`). A metric is
 * either per sample (a number per sample, the corpus figure is their mean) or corpus-level (a function of all the
 * samples, such as BLEU); both can be bootstrapped, because a corpus metric is recomputed on each resample.
 */
import { f1Score } from "./metrics";
import { diqaScore, type DiqaOptions } from "./medical-rubric";
import { factCorrectness, type FactOptions } from "./finance-facts";
import { exactMatchOne, repetitionOne, splitThink, distinctN, type ExactMatchOptions, type StopReason } from "./generation-stats";
import { bleu, chrf, rougePerSample } from "./overlap";
import type { TokenizeOptions } from "./text-units";

/** One generated answer to score. */
export interface GenerationSample {
  prompt?: string;
  /** The model's output (with its reasoning block, if any). */
  prediction: string;
  /** Reference answer(s). */
  reference?: string | readonly string[];
  /** How generation ended (for stop_rate). */
  finishReason?: StopReason;
}

/** A metric of generated answers. Give `perSample` or `corpus` (not both). */
export interface GenerationMetric {
  /** snake_case name used in reports and --metrics. */
  name: string;
  /** Whether larger is better (default true); compare() reports deltas either way. */
  higherIsBetter?: boolean;
  /** Whether it needs references (default false); samples without one are then an error. */
  needsReference?: boolean;
  /** One value per sample (null: not applicable, left out of the mean); may be async (an LLM judge). */
  perSample?: (sample: GenerationSample) => number | null | Promise<number | null>;
  /** The corpus value of a list of samples (deterministic and synchronous, so it can be bootstrapped). */
  corpus?: (samples: readonly GenerationSample[]) => number;
}

/** Checks and returns a custom metric (a typed identity, so mistakes fail where the metric is defined). */
export function defineMetric(metric: GenerationMetric): GenerationMetric {
  if (!metric || typeof metric.name !== "string" || !/^[A-Za-z][A-Za-z0-9_]*$/.test(metric.name)) {
    throw new Error(`defineMetric: name must be letters, digits and _ starting with a letter, got ${JSON.stringify(metric?.name)}`);
  }
  const kinds = [metric.perSample, metric.corpus].filter((f) => f !== undefined);
  if (kinds.length !== 1 || typeof kinds[0] !== "function")
    throw new Error(`defineMetric(${metric.name}): give exactly one of perSample or corpus, as a function`);
  return metric;
}

/** Options of the built-in metrics. */
export interface GenerationMetricOptions extends TokenizeOptions {
  /** Score answer metrics on the text after `</think>` (default true). */
  stripThink?: boolean;
  /** exact_match normalisation. */
  exactMatch?: ExactMatchOptions;
  /** FR extraction and agreement rules. */
  fr?: FactOptions;
  /** DIQA rubric and rules. */
  diqa?: DiqaOptions;
}

const refs = (name: string, s: GenerationSample): string[] => {
  if (s.reference === undefined) throw new Error(`${name}: a sample has no reference (prediction ${JSON.stringify(s.prediction.slice(0, 40))})`);
  return typeof s.reference === "string" ? [s.reference] : [...s.reference];
};

/** The names `builtinMetric` knows, with what each measures. */
export const BUILTIN_METRICS: Readonly<Record<string, string>> = {
  exact_match: "share of answers equal to a reference after normalisation",
  bleu: "corpus BLEU-4 (NLTK corpus_bleu, no smoothing) on evalTokens",
  rouge1: "ROUGE-1 F, mean over answers",
  rouge2: "ROUGE-2 F, mean over answers",
  rougeL: "ROUGE-L F, mean over answers",
  chrf: "corpus chrF (sacreBLEU CHRF, char order 6, beta 2) / 100",
  distinct_1: "distinct unigrams / unigrams over all outputs",
  distinct_2: "distinct bigrams / bigrams over all outputs",
  repetition_4: "share of a whole output's 4-grams repeating an earlier one, mean",
  stop_rate: "share of generations ended by EOS or a stop string before max_new_tokens",
  think_closed: "share of outputs with a closed </think> block",
  fr: "finance fact-correctness rate: agreeing / reference facts, pooled",
  diqa: "medical rubric score in [0, 1], mean over answers",
  accuracy: "classification accuracy of predicted labels (prediction = label)",
  f1_macro: "macro F1 of predicted labels",
  f1_micro: "micro F1 of predicted labels",
};

/** Aliases that expand to several metrics. */
export const METRIC_ALIASES: Readonly<Record<string, readonly string[]>> = {
  rouge: ["rouge1", "rouge2", "rougeL"],
  distinct: ["distinct_1", "distinct_2"],
  repetition: ["repetition_4"],
  em: ["exact_match"],
  f1: ["f1_macro"],
  think: ["think_closed"],
};

/** A built-in metric by name (see BUILTIN_METRICS). */
export function builtinMetric(name: string, opts: GenerationMetricOptions = {}): GenerationMetric {
  const answer = (s: GenerationSample) => (opts.stripThink === false ? s.prediction : splitThink(s.prediction).answer);
  const pairs = (ss: readonly GenerationSample[], name: string) => ({
    hypotheses: ss.map(answer),
    references: ss.map((s) => refs(name, s)),
    lowercase: opts.lowercase,
  });
  switch (name) {
    case "exact_match":
      return { name, needsReference: true, perSample: (s) => exactMatchOne(answer(s), refs(name, s), opts.exactMatch) };
    case "bleu":
      return { name, needsReference: true, corpus: (ss) => bleu(pairs(ss, name)) };
    case "rouge1":
    case "rouge2":
    case "rougeL":
      return {
        name,
        needsReference: true,
        perSample: (s) => rougePerSample({ hypotheses: [answer(s)], references: [refs(name, s)], lowercase: opts.lowercase })[0][name],
      };
    case "chrf":
      return { name, needsReference: true, corpus: (ss) => chrf(pairs(ss, name)) };
    case "distinct_1":
    case "distinct_2":
      return { name, corpus: (ss) => distinctN(ss.map(answer), name === "distinct_1" ? 1 : 2, opts) };
    case "repetition_4":
      return { name, higherIsBetter: false, perSample: (s) => repetitionOne(s.prediction, 4, opts) };
    case "stop_rate":
      return {
        name,
        perSample: (s) => {
          if (s.finishReason === undefined) throw new Error("stop_rate: a sample has no finishReason");
          return s.finishReason === "stop" ? 1 : 0;
        },
      };
    case "think_closed":
      return { name, perSample: (s) => (splitThink(s.prediction).closed ? 1 : 0) };
    case "fr":
      // Pooled like FR itself: agreeing reference facts over all reference facts of the (re)sampled answers.
      return {
        name,
        needsReference: true,
        corpus: (ss) => {
          let hit = 0;
          let all = 0;
          for (const s of ss) {
            const d = factCorrectness(answer(s), refs(name, s)[0], opts.fr);
            hit += d.matched.length;
            all += d.referenceFacts.length;
          }
          return all === 0 ? 0 : hit / all;
        },
      };
    case "diqa":
      return { name, perSample: (s) => diqaScore(answer(s), s.reference === undefined ? null : refs(name, s)[0], opts.diqa).diqa };
    case "accuracy":
      return { name, needsReference: true, perSample: (s) => (answer(s) === refs(name, s)[0] ? 1 : 0) };
    case "f1_macro":
    case "f1_micro":
      return {
        name,
        needsReference: true,
        corpus: (ss) =>
          f1Score(
            ss.map((s) => refs(name, s)[0]),
            ss.map(answer),
            { average: name === "f1_macro" ? "macro" : "micro" },
          ),
      };
    default:
      throw new Error(`unknown metric "${name}"; known: ${[...Object.keys(BUILTIN_METRICS), ...Object.keys(METRIC_ALIASES)].join(", ")}`);
  }
}

/** Metrics from names, aliases and custom metric values, in order, without duplicates. */
export function resolveMetrics(metrics: readonly (string | GenerationMetric)[], opts: GenerationMetricOptions = {}): GenerationMetric[] {
  const out: GenerationMetric[] = [];
  const seen = new Set<string>();
  for (const m of metrics) {
    const list = typeof m === "string" ? (METRIC_ALIASES[m] ?? [m]).map((n) => builtinMetric(n, opts)) : [defineMetric(m)];
    for (const x of list) {
      if (seen.has(x.name)) continue;
      seen.add(x.name);
      out.push(x);
    }
  }
  if (out.length === 0) throw new Error("no metrics given");
  return out;
}
