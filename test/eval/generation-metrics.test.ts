/** Generation metrics on hand-checked Chinese and English cases (BLEU's agreement with NLTK is in reference-agreement). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bleu, chrf, rouge } from "../../sdk/eval/overlap";
import { distinctN, exactMatch, repetitionOne, repetitionRate, splitThink, stopRate, thinkClosedRate } from "../../sdk/eval/generation-stats";
import { evalTokens } from "../../sdk/eval/text-units";

const close = (a: number, b: number, msg = "") => assert.ok(Math.abs(a - b) < 1e-12, `${msg} expected ${b}, got ${a}`);

test("tokens: one per CJK character, one per word or number elsewhere, punctuation apart", () => {
  assert.deepEqual(evalTokens("净利润增长12.5%，达到3,000万元"), ["净", "利", "润", "增", "长", "12.5", "%", "，", "达", "到", "3,000", "万", "元"]);
  assert.deepEqual(evalTokens("It's up 12.5%."), ["It's", "up", "12.5", "%", "."]);
  assert.deepEqual(evalTokens("GPT4 和 R1 模型", { lowercase: true }), ["gpt4", "和", "r1", "模", "型"]);
  assert.deepEqual(evalTokens("   "), []);
});

test("ROUGE-1/2/L F by hand, English and Chinese", () => {
  // the cat sat on the mat / the cat is on the mat: unigram overlap 5/6, bigram 3/5, LCS 5 of 6
  const en = rouge({ hypotheses: ["the cat sat on the mat"], references: [["the cat is on the mat"]] });
  close(en.rouge1, 5 / 6);
  close(en.rouge2, 3 / 5);
  close(en.rougeL, 5 / 6);
  // 今天天气很好 / 今天天气不错: characters 今 天 天 气 shared (4 of 6), bigrams 今天 天天 天气 (3 of 5), LCS 4
  const zh = rouge({ hypotheses: ["今天天气很好"], references: ["今天天气不错"] });
  close(zh.rouge1, 4 / 6);
  close(zh.rouge2, 3 / 5);
  close(zh.rougeL, 4 / 6);
  // the mean over hypotheses, each with its best reference
  const both = rouge({ hypotheses: ["the cat sat on the mat", "今天天气很好"], references: [["x y", "the cat is on the mat"], ["今天天气不错"]] });
  close(both.rouge1, (5 / 6 + 4 / 6) / 2);
});

test("BLEU: identical text scores 1, no shared unigram scores 0, a short hypothesis pays the brevity penalty", () => {
  close(bleu({ hypotheses: ["净利润同比增长百分之十二"], references: [["净利润同比增长百分之十二"]] }), 1);
  assert.equal(bleu({ hypotheses: ["abc"], references: [["xyz"]] }), 0);
  // hypothesis = the first 4 of 6 reference tokens: every precision 1, BP = exp(1 - 6/4)
  close(bleu({ hypotheses: ["a b c d"], references: [["a b c d e f"]] }), Math.exp(1 - 6 / 4));
  assert.throws(() => bleu({ hypotheses: ["a"], references: [] }), /1 hypotheses but 0 reference lists/);
});

test("chrF by hand (sacreBLEU's effective-order averaging), whitespace ignored", () => {
  // ab / abc: order 1 P 1 R 2/3, order 2 P 1 R 1/2, orders 3-6 have no hypothesis n-grams.
  // avgP 1, avgR 7/12, F2 = 5 P R / (4 P + R) = 7/11
  close(chrf({ hypotheses: ["ab"], references: ["abc"] }), 7 / 11);
  close(chrf({ hypotheses: ["a b"], references: ["abc"] }), 7 / 11);
  // 天气很好 / 天气不错: P = R per order: 1/2, 1/3, 0, 0 -> 5/24
  close(chrf({ hypotheses: ["天气很好"], references: ["天气不错"] }), 5 / 24);
  // corpus: statistics summed over both pairs before averaging
  const p = (4 / 6 + 2 / 4) / 4;
  const r = (4 / 7 + 2 / 5) / 4;
  close(chrf({ hypotheses: ["ab", "天气很好"], references: ["abc", "天气不错"] }), (5 * p * r) / (4 * p + r));
  close(chrf({ hypotheses: ["same text"], references: ["same text"] }), 1);
});

test("exact match, distinct-n, repetition, stop rate", () => {
  close(exactMatch(["  Paris ", "paris", "北京。"], ["Paris", "Paris", ["上海", "北京"]]), 1 / 3);
  close(exactMatch(["  Paris ", "paris", "北京。"], ["Paris", "Paris", ["上海", "北京"]], { lowercase: true, ignorePunctuation: true }), 1);
  // bigrams: ab ba ab | ab bc -> 3 distinct of 5
  close(distinctN(["a b a b", "a b c"], 2), 3 / 5);
  close(distinctN(["净利润", "净利"], 1), 3 / 5);
  // 16 characters, 13 4-grams of which the 5 in the second copy repeat the first
  close(repetitionOne("我们再检查一下。我们再检查一下。", 4), 5 / 13);
  close(repetitionOne("the cat the cat the cat", 2), 3 / 5);
  close(repetitionRate(["the cat the cat the cat", "a b"], 2), 3 / 5 / 2);
  close(stopRate(["stop", "length", "stop", "stop"]), 0.75);
  assert.throws(() => stopRate(["eos" as "stop"]), /finishReasons\[0\] must be "stop" or "length"/);
});

test("<think> blocks: closed, closed without the opening tag, unclosed, absent", () => {
  assert.deepEqual(splitThink("<think>\n想想\n</think>\n\n答案是42"), { hasThink: true, closed: true, reasoning: "想想", answer: "答案是42" });
  assert.deepEqual(splitThink("First, 2+2.</think>The answer is 4."), { hasThink: true, closed: true, reasoning: "First, 2+2.", answer: "The answer is 4." });
  assert.deepEqual(splitThink("<think>还在想，还在想"), { hasThink: true, closed: false, reasoning: "还在想，还在想", answer: "" });
  assert.deepEqual(splitThink(" plain answer "), { hasThink: false, closed: false, reasoning: "", answer: "plain answer" });
  close(thinkClosedRate(["<think>a</think>b", "a</think>b", "<think>a", "b"]), 2 / 4);
});

test("the public metrics namespace: import { metrics } from tunelab", async () => {
  const { metrics } = await import("../../sdk");
  const c = metrics.classification(["cat", "dog", "cat", "bird", "dog", "cat"], ["cat", "cat", "cat", "bird", "dog", "dog"]);
  close(c.accuracy, 4 / 6);
  close(c.macro.f1, 13 / 18);
  close(c.micro.f1, 4 / 6);
  close(c.weighted.f1, 4 / 6);
  assert.deepEqual(c.perClass.cat, { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 });
  assert.deepEqual(c.confusion.labels, ["bird", "cat", "dog"]);
  close(metrics.bleu({ hypotheses: ["a b c d"], references: [["a b c d"]] }), 1);
  assert.equal(typeof metrics.rouge, "function");
  assert.equal(typeof metrics.fr, "function");
  assert.equal(typeof metrics.diqa, "function");
  assert.equal(typeof metrics.compare, "function");
  assert.equal(typeof metrics.llmJudge, "function");
});
