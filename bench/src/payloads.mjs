/** Requests and answers whose serialized plaintext is about `bytes` long. */
export const SIZES = [
  ['1 KiB', 1024],
  ['100 KiB', 100 * 1024],
  ['5 MiB', 5 * 1024 * 1024],
  ['10 MiB', 10 * 1024 * 1024 - 256],
];

// Text with a realistic mix (mostly ASCII, some multi-byte), deterministic.
function text(bytes) {
  const unit = 'The patient reports mild headaches; BP 120/80. Notes: no known allergies. ';
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, Math.max(0, bytes - 120));
}

export function request(bytes) {
  return { model: 'echo', messages: [{ role: 'user', content: text(bytes) }] };
}

export function answer(bytes) {
  return {
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1765250000,
    model: 'echo',
    choices: [{ index: 0, message: { role: 'assistant', content: text(bytes) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}
