import { describe, expect, it } from 'vitest';
import { countWords } from '../src/echo-model.js';

/** The definition the token counts always had. */
const bySplit = (text: string) => text.split(/\s+/).filter((w) => w !== '').length;

describe('countWords', () => {
  it('counts as splitting on /\\s+/ does, for every BMP character as a separator', () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const text = `a${ch}b${ch}${ch}c ${ch}`;
      expect(countWords(text), `U+${c.toString(16)}`).toBe(bySplit(text));
    }
  });

  it('counts as splitting does on random text', () => {
    const alphabet = ['a', 'é', ' ', '\n', '\t', '\u00a0', '\u2003', '\u3000', '\ufeff', '😀', '\u200b', 'x'];
    for (let n = 0; n < 2000; n++) {
      let text = '';
      for (let i = Math.floor(Math.random() * 40); i > 0; i--) text += alphabet[Math.floor(Math.random() * alphabet.length)];
      expect(countWords(text)).toBe(bySplit(text));
    }
  });
});

describe('echoCompletion token counts', () => {
  it('counts the words of the prompt and of the completion, as counting the texts does', async () => {
    const { echoCompletion } = await import('../src/echo-model.js');
    for (const messages of [
      [{ role: 'user', content: 'hello  world\n' }],
      [{ role: 'user', content: ' lead' }, { role: 'assistant', content: 'x' }, { role: 'user', content: '' }],
      [{ role: 'user', content: [{ type: 'text', text: 'a b' }, { type: 'text', text: 'c' }] }],
      [{ role: 'user', content: 'q' }, { role: 'tool', content: 'tool said  this' }],
      [{ role: 'system', content: 'only system' }],
    ]) {
      const answer = echoCompletion({ model: 'm', messages } as never, { payloadId: 'p' });
      const content = answer.choices[0]!.message.content ?? '';
      const prompt = messages.reduce((n, m) => n + bySplit(typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(' ')), 0);
      expect(answer.usage).toEqual({ prompt_tokens: prompt, completion_tokens: bySplit(content), total_tokens: prompt + bySplit(content) });
    }
  });
});
