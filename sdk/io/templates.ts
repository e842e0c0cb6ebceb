/**
 * Named chat templates (LLaMA-Factory's `template` option) for models whose tokenizer_config.json has none or
 * a different one. Each is a Hugging Face Jinja chat template; pick the one of the model's family, since the
 * special tokens it writes must be tokens of that tokenizer.
 */

/** ChatML as Qwen2/Qwen2.5 format it, with Qwen's default system prompt. */
const QWEN =
  "{%- for message in messages %}" +
  "{%- if loop.first and message['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Llama 3's header/eot format. */
const LLAMA3 =
  "{{- bos_token }}" +
  "{%- for message in messages %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/** DeepSeek-R1 (and its Qwen/Llama distills): reasoning dropped from past turns, the reply opens with <think>. */
const DEEPSEEK_R1 =
  "{{- bos_token }}" +
  "{%- for message in messages %}{%- if message['role'] == 'system' %}{{- message['content'] }}{%- endif %}{%- endfor %}" +
  "{%- for message in messages %}" +
  "{%- if message['role'] == 'user' %}{{- '<｜User｜>' + message['content'] }}" +
  "{%- elif message['role'] == 'assistant' %}" +
  "{%- set content = message['content'] %}" +
  "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}" +
  "{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}" +
  "{%- endif %}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}";

/** Templates selectable by name (recipe `template`, or `templateName` in chat options). */
export const CHAT_TEMPLATES: Readonly<Record<string, string>> = {
  qwen: QWEN,
  chatml: QWEN,
  llama3: LLAMA3,
  deepseekr1: DEEPSEEK_R1,
};
