import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createTinyModel } from "../../sdk/io/tiny";
import { CHAT_TEMPLATES } from "../../sdk/io/templates";
import { Tokenizer, type ChatMessage } from "../../sdk/io/tokenizer";
import { resolveRecipe } from "../../sdk/train/recipe";
import { tempDir } from "./tmp";

const conversation = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "2+2?" },
  { role: "assistant", content: "<think>\nadd\n</think>\n\n4" },
  { role: "user", content: "3+3?" },
];

test("named templates render as their model families format chats", () => {
  const dir = tempDir();
  createTinyModel({ arch: "llama", out: dir, seed: 0, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1 });
  const tok = Tokenizer.fromDir(dir);
  const render = (templateName: string) => tok.applyChatTemplate(conversation, { templateName, addGenerationPrompt: true });
  assert.equal(
    render("qwen"),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n",
  );
  // Without a system message, Qwen's ChatML adds its default one.
  assert.equal(
    tok.applyChatTemplate([{ role: "user", content: "Hi" }], { templateName: "chatml", addGenerationPrompt: true }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    tok.applyChatTemplate(conversation.slice(1, 3), { templateName: "chatml" }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n",
  );
  const bos = tok.specialTokens.bos_token ?? "";
  assert.equal(
    render("llama3"),
    `${bos}<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>` +
      `<|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n3+3?<|eot_id|>` +
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  assert.equal(render("deepseekr1"), `${bos}Be brief.<｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n`);
  assert.throws(() => render("vicuna"), /no chat template named "vicuna".*deepseekr1/);
});

/**
 * The chat template published in the tokenizer_config.json of DeepSeek's R1 distills
 * (deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B ... -Qwen-32B, -Llama-8B/70B; the version whose generation prompt opens
 * `<think>`, February 2025). Copied from BerriAI/litellm tests/local_testing/test_completion.py
 * (test_bedrock_deepseek_custom_prompt_dict holds a whole R1-Distill-Llama tokenizer_config.json), and checked
 * against ggml-org/llama.cpp models/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja as first committed
 * (the same text broken into lines, from before `<think>` was added to the generation prompt).
 */
const R1_DISTILL_TEMPLATE = fs.readFileSync(
  path.join(__dirname, "..", "..", "..", "test", "io", "fixtures", "deepseek-r1-distill-chat-template.jinja"),
  "utf8",
);

test("the built-in deepseekr1 template is the one published with the DeepSeek-R1 distills", () => {
  assert.equal(CHAT_TEMPLATES.deepseekr1, R1_DISTILL_TEMPLATE);
});

test("the DeepSeek-R1 distill template renders conversations as DeepSeek specifies", () => {
  const dir = tempDir();
  createTinyModel({ arch: "qwen2", out: dir, seed: 0, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, tokenizer: "deepseek_v3" });
  const derived = Tokenizer.fromDir(dir); // tiny-tokenizers' R1 template, derived from the packaged V3 one
  fs.writeFileSync(path.join(dir, "chat_template.jinja"), R1_DISTILL_TEMPLATE);
  const published = Tokenizer.fromDir(dir);
  const bos = published.specialTokens.bos_token;
  assert.equal(bos, "<｜begin▁of▁sentence｜>");
  const eos = "<｜end▁of▁sentence｜>";
  const cases: Array<[ChatMessage[], boolean, string]> = [
    [conversation, true, `${bos}Be brief.<｜User｜>2+2?<｜Assistant｜>\n\n4${eos}<｜User｜>3+3?<｜Assistant｜><think>\n`],
    [conversation.slice(0, 3), false, `${bos}Be brief.<｜User｜>2+2?<｜Assistant｜>\n\n4${eos}`],
    [conversation.slice(1, 2), true, `${bos}<｜User｜>2+2?<｜Assistant｜><think>\n`],
    [
      [
        { role: "user", content: "a" },
        { role: "assistant", content: "no reasoning" },
      ],
      false,
      `${bos}<｜User｜>a<｜Assistant｜>no reasoning${eos}`,
    ],
    [
      [
        { role: "user", content: "a" },
        { role: "assistant", content: "<think>x</think>y</think>z" },
      ],
      false,
      `${bos}<｜User｜>a<｜Assistant｜>z${eos}`,
    ],
  ];
  for (const [messages, addGenerationPrompt, expected] of cases) {
    const what = `${JSON.stringify(messages)} addGenerationPrompt=${addGenerationPrompt}`;
    assert.equal(published.applyChatTemplate(messages, { addGenerationPrompt }), expected, `published template, ${what}`);
    assert.equal(published.applyChatTemplate(messages, { templateName: "deepseekr1", addGenerationPrompt }), expected, `built-in deepseekr1, ${what}`);
    assert.equal(derived.applyChatTemplate(messages, { addGenerationPrompt }), expected, `tiny deepseek_v3 tokenizer, ${what}`);
  }
  // Only the last system message counts, and tool outputs are wrapped in DeepSeek's tool tokens.
  const tools: ChatMessage[] = [
    { role: "system", content: "first" },
    { role: "system", content: "second" },
    { role: "user", content: "weather?" },
    { role: "tool", content: "sunny" },
    { role: "tool", content: "20C" },
    { role: "assistant", content: "Sunny, 20C." },
  ];
  assert.equal(
    published.applyChatTemplate(tools, { templateName: "deepseekr1", addGenerationPrompt: true }),
    `${bos}second<｜User｜>weather?<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>20C<｜tool▁output▁end｜>` +
      `<｜tool▁outputs▁end｜>Sunny, 20C.${eos}<｜Assistant｜><think>\n`,
  );
});

test("a recipe accepts the named templates and refuses others, naming them", () => {
  const base = { model_name_or_path: "m", dataset_path: "d.jsonl", output_dir: "o" };
  assert.equal(resolveRecipe({ ...base, template: "deepseekr1" }).template, "deepseekr1");
  assert.throws(() => resolveRecipe({ ...base, template: "alpaca" }), /template must be unset .* or one of qwen, chatml, llama3, deepseekr1/);
});
