// Copied into the project that installed the packed tarballs and run there: one request through the
// installed @nomyo/core, the memory protection it reports, and which native addon file Node loaded.
import { SecureChatCompletion, getMemoryProtection } from '@nomyo/core';

const [url] = process.argv.slice(2);
const client = new SecureChatCompletion({ baseUrl: url, allowHttp: true, maxRetries: 0 });
const answer = await client.create({ model: 'packed', messages: [{ role: 'user', content: 'hello from the packed packages' }] });
await client.dispose();
console.log(
  JSON.stringify({
    content: answer.choices[0].message.content,
    protection: await getMemoryProtection(),
    addons: process.report.getReport().sharedObjects.filter((file) => file.endsWith('.node')),
  }),
);
