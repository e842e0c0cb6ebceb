import { test } from "node:test";
import assert from "node:assert/strict";
import { createTinyModel } from "../../sdk/io/tiny";
import { Tokenizer } from "../../sdk/io/tokenizer";
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
  assert.equal(render("chatml"), render("qwen"));
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

test("the built-in deepseekr1 template renders as the DeepSeek-R1 tokenizer's own template", () => {
  const dir = tempDir();
  createTinyModel({ arch: "qwen2", out: dir, seed: 0, hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, tokenizer: "deepseek_v3" });
  const tok = Tokenizer.fromDir(dir);
  for (const addGenerationPrompt of [true, false]) {
    const messages = addGenerationPrompt ? conversation : conversation.slice(0, 3);
    assert.equal(
      tok.applyChatTemplate(messages, { templateName: "deepseekr1", addGenerationPrompt }),
      tok.applyChatTemplate(messages, { addGenerationPrompt }),
    );
  }
});

test("a recipe accepts the named templates and refuses others, naming them", () => {
  const base = { model_name_or_path: "m", dataset_path: "d.jsonl", output_dir: "o" };
  assert.equal(resolveRecipe({ ...base, template: "deepseekr1" }).template, "deepseekr1");
  assert.throws(() => resolveRecipe({ ...base, template: "alpaca" }), /template must be unset .* or one of qwen, chatml, llama3, deepseekr1/);
});
