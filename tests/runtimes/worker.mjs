// A Cloudflare Worker that runs one scenario.mjs step per request: POST {"step": name, "args": [...]}.
// workerd-host.mjs bundles it the way wrangler does and runs it in workerd through miniflare.
import * as steps from './scenario.mjs';

export default {
  async fetch(request) {
    const { step, args } = await request.json();
    return Response.json((await steps[step](...args)) ?? null);
  },
};
