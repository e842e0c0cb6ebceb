/**
 * tunelab's own OpenAI-compatible clients pointed at `tunelab serve`: the back-translation augmenter's translator and
 * the LLM-as-judge metric reach the server, get answers, and the server counts their requests.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { openAITranslator } from "../../sdk/data";
import { llmJudge } from "../../sdk/eval/llm-judge";
import { serve } from "../../sdk/infer/server/server";
import { tempRoot, tinyModel } from "./server-helpers";

const { root, remove } = tempRoot("tunelab-server-clients-");
after(remove);

/** The count of `route` requests answered with `status`, from /metrics. */
async function served(url: string, route: string, status: number): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`tunelab_requests_total{route="${route}",status="${status}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

test("the back-translation translator and the LLM judge can use tunelab serve as their endpoint", async () => {
  const model = tinyModel(root, "clients");
  const server = await serve(model, { port: 0 });
  try {
    const baseURL = `${server.url}/v1`;
    const translator = openAITranslator({ baseURL, model: server.models[0] });
    const translated = await translator.translate("the quick brown fox", "en", "zh");
    assert.equal(typeof translated, "string");
    assert.equal(await served(server.url, "/v1/chat/completions", 200), 1);

    const cacheDir = path.join(root, "verdicts");
    const judge = llmJudge({ baseURL, model: server.models[0], cacheDir, maxTokens: 8 });
    const verdict = await judge.pairwise("Name a colour.", "red", "seven");
    assert.ok(["A", "B", "tie"].includes(verdict.winner), verdict.winner);
    assert.equal(verdict.raw.length, 2, "asked in both orders");
    assert.equal(await served(server.url, "/v1/chat/completions", 200), 3);
    // The verdicts are cached: asking again sends nothing.
    assert.equal((await judge.pairwise("Name a colour.", "red", "seven")).cached, true);
    assert.equal(await served(server.url, "/v1/chat/completions", 200), 3);
    assert.ok(fs.readdirSync(cacheDir).length >= 2);
  } finally {
    await server.close();
  }
});
