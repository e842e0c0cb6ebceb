/**
 * LLM-as-judge: an OpenAI-compatible chat endpoint (`tunelab serve`, vLLM, llama.cpp's server, OpenAI) grades each
 * answer against a rubric, or picks the better of two answers (pairwise A/B, optionally in both orders to cancel the
 * position bias). Verdicts are cached on disk under sha256(model + messages), so re-running an evaluation is free.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { GenerationMetric, GenerationSample } from "./generation-metric";

/** Options of an LLM judge. */
export interface JudgeOptions {
  /** Base URL of the API, e.g. "http://127.0.0.1:8000/v1" (POST {baseURL}/chat/completions). */
  baseURL: string;
  /** Model name sent in the request. */
  model: string;
  /** Bearer token, if the server wants one. */
  apiKey?: string;
  /** What a good answer is (inserted into the grading prompt). */
  rubric?: string;
  /** Scale of the score the judge gives: 1..max (default 10); verdicts are mapped to [0, 1]. */
  maxScore?: number;
  /** Folder of cached verdicts; none: no cache. */
  cacheDir?: string;
  /** Sampling temperature (default 0). */
  temperature?: number;
  /** Most tokens of a verdict (default 256). */
  maxTokens?: number;
  /** Request timeout in ms (default 120000). */
  timeoutMs?: number;
}

/** One graded answer. */
export interface Verdict {
  /** The score mapped to [0, 1]: (score - 1) / (maxScore - 1). */
  value: number;
  /** The judge's score on its own scale. */
  score: number;
  /** The judge's reply. */
  raw: string;
  cached: boolean;
}

/** One pairwise judgement. */
export interface PairVerdict {
  winner: "A" | "B" | "tie";
  /** The replies (two when judged in both orders). */
  raw: string[];
  cached: boolean;
}

type Message = { role: "system" | "user"; content: string };

const DEFAULT_RUBRIC = "Correctness first (agreement with the reference answer, if given), then completeness, then clarity.";

/** A judge bound to one endpoint and model. */
export class LlmJudge {
  constructor(readonly options: JudgeOptions) {
    if (typeof options.baseURL !== "string" || !/^https?:\/\//.test(options.baseURL))
      throw new Error(`llmJudge: baseURL must be an http(s) URL, got ${JSON.stringify(options.baseURL)}`);
    if (typeof options.model !== "string" || options.model === "") throw new Error("llmJudge: model must be a non-empty string");
    const max = options.maxScore ?? 10;
    if (!Number.isInteger(max) || max < 2) throw new Error(`llmJudge: maxScore must be an integer >= 2, got ${max}`);
  }

  /** The cache key of a request: sha256 of the model and messages. */
  key(messages: readonly Message[]): string {
    return createHash("sha256")
      .update(JSON.stringify({ model: this.options.model, messages }))
      .digest("hex");
  }

  /** Sends messages (or reads the cached reply). */
  async complete(messages: readonly Message[]): Promise<{ text: string; cached: boolean }> {
    const key = this.key(messages);
    const file = this.options.cacheDir ? join(this.options.cacheDir, `${key}.json`) : null;
    if (file && existsSync(file)) return { text: (JSON.parse(readFileSync(file, "utf8")) as { reply: string }).reply, cached: true };
    const url = this.options.baseURL.replace(/\/+$/, "") + "/chat/completions";
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
      body: JSON.stringify({ model: this.options.model, messages, temperature: this.options.temperature ?? 0, max_tokens: this.options.maxTokens ?? 256 }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 120_000),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`llmJudge: ${url} answered ${res.status}: ${body.slice(0, 300)}`);
    let text: unknown;
    try {
      text = (JSON.parse(body) as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
    } catch {
      text = undefined;
    }
    if (typeof text !== "string") throw new Error(`llmJudge: ${url} did not return choices[0].message.content: ${body.slice(0, 300)}`);
    if (file) {
      mkdirSync(this.options.cacheDir!, { recursive: true });
      writeFileSync(file, JSON.stringify({ model: this.options.model, messages, reply: text }, null, 1));
    }
    return { text, cached: false };
  }

  /** The grading messages of one answer. */
  gradeMessages(sample: GenerationSample): Message[] {
    const max = this.options.maxScore ?? 10;
    const ref =
      sample.reference === undefined
        ? ""
        : `\n\n[Reference answer]\n${typeof sample.reference === "string" ? sample.reference : sample.reference.join("\n---\n")}`;
    return [
      { role: "system", content: `You are an impartial grader. Rubric: ${this.options.rubric ?? DEFAULT_RUBRIC}` },
      {
        role: "user",
        content: `[Question]\n${sample.prompt ?? ""}${ref}\n\n[Answer to grade]\n${sample.prediction}\n\nGive a score from 1 to ${max}. Reply with JSON only: {"score": <integer>, "reason": "<one sentence>"}`,
      },
    ];
  }

  /** Grades one answer against the rubric. */
  async grade(sample: GenerationSample): Promise<Verdict> {
    const max = this.options.maxScore ?? 10;
    const { text, cached } = await this.complete(this.gradeMessages(sample));
    const score = parseScore(text);
    if (score === null || score < 1 || score > max) throw new Error(`llmJudge: no score 1..${max} in the judge's reply: ${JSON.stringify(text.slice(0, 200))}`);
    return { value: (score - 1) / (max - 1), score, raw: text, cached };
  }

  /** The pairwise messages: which of A and B answers better. */
  pairMessages(prompt: string, a: string, b: string, reference?: string): Message[] {
    const ref = reference === undefined ? "" : `\n\n[Reference answer]\n${reference}`;
    return [
      { role: "system", content: `You are an impartial judge comparing two answers. Rubric: ${this.options.rubric ?? DEFAULT_RUBRIC}` },
      {
        role: "user",
        content: `[Question]\n${prompt}${ref}\n\n[Answer A]\n${a}\n\n[Answer B]\n${b}\n\nWhich answer is better? Reply with JSON only: {"winner": "A" | "B" | "tie"}`,
      },
    ];
  }

  /**
   * Judges answer a against answer b. With `swap` (default true) it also asks with the answers swapped, and a side
   * wins only when both orders agree; otherwise the verdict is a tie.
   */
  async pairwise(prompt: string, a: string, b: string, opts: { reference?: string; swap?: boolean } = {}): Promise<PairVerdict> {
    const first = await this.complete(this.pairMessages(prompt, a, b, opts.reference));
    const w1 = parseWinner(first.text);
    if (opts.swap === false) return { winner: w1, raw: [first.text], cached: first.cached };
    const second = await this.complete(this.pairMessages(prompt, b, a, opts.reference));
    const w2 = parseWinner(second.text);
    const unswapped = w2 === "A" ? "B" : w2 === "B" ? "A" : "tie";
    return { winner: w1 === unswapped ? w1 : "tie", raw: [first.text, second.text], cached: first.cached && second.cached };
  }

  /** Win rates of b over a on paired samples: b wins, a wins, ties, and (b wins + ties/2) / n. */
  async compare(
    samples: ReadonlyArray<{ prompt: string; a: string; b: string; reference?: string }>,
    opts: { swap?: boolean } = {},
  ): Promise<{ winRateB: number; winsA: number; winsB: number; ties: number; verdicts: PairVerdict[] }> {
    if (samples.length === 0) throw new Error("llmJudge.compare: no samples");
    const verdicts: PairVerdict[] = [];
    for (const s of samples) verdicts.push(await this.pairwise(s.prompt, s.a, s.b, { reference: s.reference, swap: opts.swap }));
    const winsA = verdicts.filter((v) => v.winner === "A").length;
    const winsB = verdicts.filter((v) => v.winner === "B").length;
    const ties = verdicts.length - winsA - winsB;
    return { winRateB: (winsB + ties / 2) / verdicts.length, winsA, winsB, ties, verdicts };
  }

  /** The judge as a per-sample generation metric named `name` (default "judge"), value in [0, 1]. */
  metric(name = "judge"): GenerationMetric {
    return { name, perSample: async (s) => (await this.grade(s)).value };
  }
}

/** A judge for an OpenAI-compatible endpoint. */
export function llmJudge(options: JudgeOptions): LlmJudge {
  return new LlmJudge(options);
}

/** The score in a judge's reply: a JSON {"score": n} anywhere in it, else "score: n" or "[[n]]". */
export function parseScore(text: string): number | null {
  const json = text.match(/\{[^{}]*"score"\s*:\s*(-?\d+(?:\.\d+)?)[^{}]*\}/);
  const m = json ?? text.match(/score\s*[:=]\s*(-?\d+(?:\.\d+)?)/i) ?? text.match(/\[\[(\d+(?:\.\d+)?)\]\]/);
  return m ? Number(m[1]) : null;
}

/** The winner in a pairwise reply: {"winner": "A"|"B"|"tie"}, else [[A]] / [[B]] / [[C]] (MT-Bench's tie); else tie. */
export function parseWinner(text: string): "A" | "B" | "tie" {
  const m = text.match(/"winner"\s*:\s*"(A|B|tie)"/i) ?? text.match(/\[\[(A|B|C)\]\]/);
  if (!m) return "tie";
  const w = m[1].toUpperCase();
  return w === "A" ? "A" : w === "B" ? "B" : "tie";
}
