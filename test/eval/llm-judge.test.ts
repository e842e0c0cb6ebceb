/** The LLM judge against a local OpenAI-compatible server started by the test: grading, caching, pairwise A/B. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { llmJudge, parseScore, parseWinner } from "../../sdk/eval/llm-judge";
import { scoreGeneration } from "../../sdk/eval/generation-report";

type Body = { model: string; messages: Array<{ role: string; content: string }> };

/** A fake judge: a graded answer mentioning Paris scores 9, others 3; pairwise prefers the answer mentioning Paris. */
async function startServer(opts: { positionBiased?: boolean } = {}): Promise<{ server: Server; url: string; requests: Body[] }> {
  const requests: Body[] = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
        res.writeHead(404).end("not found");
        return;
      }
      const body = JSON.parse(data) as Body;
      requests.push(body);
      const user = body.messages[body.messages.length - 1].content;
      let reply: string;
      if (user.includes("[Answer to grade]")) {
        const answer = user.split("[Answer to grade]")[1];
        reply = answer.includes("Paris") || answer.includes("巴黎") ? 'Sure. {"score": 9, "reason": "correct"}' : '{"score": 3, "reason": "wrong"}';
      } else {
        const a = user.split("[Answer A]")[1].split("[Answer B]")[0];
        reply = opts.positionBiased ? '{"winner": "A"}' : a.includes("Paris") ? '{"winner": "A"}' : '{"winner": "B"}';
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: "x",
          object: "chat.completion",
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: reply }, finish_reason: "stop" }],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, requests };
}

test("grades answers through the endpoint, maps scores to [0, 1] and caches verdicts by (model, prompt) hash", async () => {
  const { server, url, requests } = await startServer();
  try {
    const cacheDir = mkdtempSync(join(tmpdir(), "judge-"));
    const judge = llmJudge({ baseURL: url, model: "judge-1", cacheDir, rubric: "Is the capital right?" });
    const sample = { prompt: "Capital of France?", prediction: "Paris.", reference: "Paris" };
    const v = await judge.grade(sample);
    assert.deepEqual([v.score, v.value, v.cached], [9, 8 / 9, false]);
    assert.equal(requests[0].model, "judge-1");
    assert.ok(requests[0].messages[0].content.includes("Is the capital right?"));
    const again = await judge.grade(sample);
    assert.equal(again.cached, true);
    assert.equal(requests.length, 1, "the second verdict came from the cache");
    assert.equal(readdirSync(cacheDir).length, 1);
    // another model is another cache key
    await llmJudge({ baseURL: url, model: "judge-2", cacheDir }).grade(sample);
    assert.equal(requests.length, 2);
    // as a metric of a report: mean of (9-1)/9 and (3-1)/9
    const r = await scoreGeneration([sample, { prompt: "法国首都？", prediction: "伦敦", reference: "巴黎" }], { metrics: [judge.metric()], bootstrap: false });
    assert.ok(Math.abs(r.get("judge") - (8 / 9 + 2 / 9) / 2) < 1e-12);
  } finally {
    server.close();
  }
});

test("pairwise A/B in both orders; a position-biased judge yields ties", async () => {
  const fair = await startServer();
  const biased = await startServer({ positionBiased: true });
  try {
    const pairs = [
      { prompt: "Capital of France?", a: "Lyon", b: "Paris" },
      { prompt: "Capital of France?", a: "Paris", b: "Rome" },
      { prompt: "Capital of France?", a: "Berlin", b: "Paris, of course" },
    ];
    const r = await llmJudge({ baseURL: fair.url, model: "j" }).compare(pairs);
    assert.deepEqual([r.winsA, r.winsB, r.ties], [1, 2, 0]);
    assert.equal(r.winRateB, 2 / 3);
    assert.equal(fair.requests.length, 6, "each pair asked in both orders");
    const rb = await llmJudge({ baseURL: biased.url, model: "j" }).compare(pairs);
    assert.deepEqual([rb.winsA, rb.winsB, rb.ties], [0, 0, 3]);
    const once = await llmJudge({ baseURL: biased.url, model: "j" }).pairwise("q", "x", "y", { swap: false });
    assert.equal(once.winner, "A");
  } finally {
    fair.server.close();
    biased.server.close();
  }
});

test("bad replies and endpoints fail with clear errors; reply parsing", async () => {
  const { server, url } = await startServer();
  try {
    await assert.rejects(llmJudge({ baseURL: url.replace("/v1", "/nope"), model: "j" }).grade({ prediction: "x" }), /answered 404/);
    assert.throws(() => llmJudge({ baseURL: "localhost:1", model: "j" }), /baseURL must be an http\(s\) URL/);
  } finally {
    server.close();
  }
  assert.equal(parseScore('{"reason": "ok", "score": 7}'), 7);
  assert.equal(parseScore("Score: 4/10"), 4);
  assert.equal(parseScore("Rating: [[6]]"), 6);
  assert.equal(parseScore("no idea"), null);
  assert.equal(parseWinner('{"winner": "b"}'), "B");
  assert.equal(parseWinner("[[C]]"), "tie");
});
