/** Requests and answers whose serialized plaintext is about `bytes` long. */
export const SIZES = [
  ['1 KiB', 1024],
  ['100 KiB', 100 * 1024],
  ['5 MiB', 5 * 1024 * 1024],
  ['10 MiB', 10 * 1024 * 1024 - 256],
];

/**
 * The texts, deterministic. `plain`: ASCII prose with nothing JSON escapes (what the bench always
 * sent, so figures stay comparable). `letter`: as a clinical letter or a contract has it, with
 * lines, quotes and non-ASCII letters, so JSON escapes and multi-byte UTF-8 cost what they cost.
 * `code`: source code, ASCII with an escape every few bytes (line breaks, tabs, quotes, backslashes).
 * `cjk`: a Chinese clinical note, three UTF-8 bytes a character, full-width punctuation (whose UTF-8
 * starts with 0xEF, as U+FFFD's does) and a line break per sentence: a two-byte string in V8.
 */
const UNITS = {
  plain: 'The patient reports mild headaches; BP 120/80. Notes: no known allergies. ',
  letter: 'The patient reports mild headaches; BP 120/80 mmHg, 37.2 °C.\nNotes: "no known allergies", Überweisung an Dr. Müller.\n',
  cjk: '患者于二〇二六年十一月入院，主诉胸痛（持续约三小时），伴出汗、恶心。既往史：高血压十年，规律服药。\n',
  code: 'export function dose(weightKg) {\n\tif (weightKg <= 0) throw new Error("weight: \\"" + weightKg + "\\"");\n\treturn Math.round(weightKg * 0.15 * 10) / 10;\n}\n',
};
export const TEXT_KINDS = Object.keys(UNITS);

/** Text whose JSON string (escapes and UTF-8 included) takes about `bytes - 120` bytes: the rest is the request around it. */
function text(bytes, kind) {
  const unit = UNITS[kind];
  const unitBytes = new TextEncoder().encode(JSON.stringify(unit)).length - 2;
  const room = Math.max(0, bytes - 120);
  const units = Math.floor(room / unitBytes);
  // repeat() and + build a rope, which V8 copies into one flat string on first use: inside the first
  // request measured. A document read from a file or a form is flat already, so this is made flat here.
  return flat(unit.repeat(units) + 'x'.repeat(room - units * unitBytes));
}

/** `s` as one flat string (decoding makes a new one; a rope stays a rope until something flattens it). */
function flat(s) {
  return new TextDecoder().decode(new TextEncoder().encode(s));
}

export function request(bytes, kind = 'plain') {
  return { model: 'echo', messages: [{ role: 'user', content: text(bytes, kind) }] };
}

export function answer(bytes, kind = 'plain') {
  return {
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1765250000,
    model: 'echo',
    choices: [{ index: 0, message: { role: 'assistant', content: text(bytes, kind) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}
