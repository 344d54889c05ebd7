/**
 * A TypeScript user's code against the installed packages (packages.test.ts compiles it in the app,
 * strict, with and without lib "DOM"): openai's own parameter types and the user's own message
 * interfaces are taken as they are, our own types annotate literals with more fields and stay mutable, `undefined` options pass under exactOptionalPropertyTypes, the
 * result follows `stream`, and each @ts-expect-error is a mistake the types must still catch.
 */
import { SecureChatCompletion, type ChatCompletionCreateParams as OurParams, type ChatCompletionCreateParamsStreaming as OurStreamingParams, type ChatCompletionStream, type ChatMessageParam, type SecureChatCompletionResult } from '@nomyo/core';
import type * as Protocol from '@nomyo/core/protocol';
import type * as Internal from '@nomyo/core/internal';
import { startServer, type CompletionModel } from '@nomyo/server';
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';

export async function useIt(): Promise<unknown[]> {
  const client = new SecureChatCompletion({ baseUrl: 'https://router.example:12434', apiKey: process.env.NOMYO_API_KEY });
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }];
  const tools: ChatCompletionTool[] = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
  const withTools: SecureChatCompletionResult = await client.chat.completions.create({ model: 'm', messages, tools, tool_choice: 'auto' });
  // An agent's loop: the answer's message goes back into the conversation as it is, and each call is
  // answered once narrowed by its type (a function's, or a custom tool's).
  const answer = withTools.choices[0]!.message;
  messages.push(answer);
  for (const call of answer.tool_calls ?? []) {
    // @ts-expect-error a custom tool's call has no function: narrow first
    void call.function.name;
    messages.push({ role: 'tool', tool_call_id: call.id, content: call.type === 'function' ? call.function.name : call.custom.input });
  }
  const whole: ChatCompletionCreateParamsNonStreaming = { model: 'm', messages, temperature: 0.2, response_format: { type: 'json_object' } };
  const fromOpenAI: SecureChatCompletionResult = await client.create(whole);
  const streamed: ChatCompletionCreateParamsStreaming = { model: 'm', messages, stream: true, stream_options: { include_usage: true } };
  const stream: ChatCompletionStream = await client.create(streamed);
  interface MyMessage { role: 'user' | 'assistant'; content: string }
  const mine: MyMessage[] = [{ role: 'user', content: 'x' }];
  const ownTypes: SecureChatCompletionResult = await client.create({ model: 'm', messages: mine, top_k: 40, security_tier: 'high' });
  const tool: ChatCompletionStream = await client.create({ model: 'm', messages: [{ role: 'tool', tool_call_id: 'x', content: 'y' }], stream: true });
  const either: SecureChatCompletionResult | ChatCompletionStream = await client.create({ model: 'm', messages: mine, stream: Math.random() > 0.5 }, { timeout: undefined });
  // Our own types: literals with more fields, mutable arrays, fields read back.
  const ours: OurParams = { model: 'm', messages: [], top_p: 0.9 };
  const history: ChatMessageParam[] = [{ role: 'user', content: 'x' }];
  history.push({ role: 'tool', content: 'y', tool_call_id: 'call_1' });
  ours.messages.push(...history);
  ours['seed'] = 1;
  const callId: unknown = history[1]?.tool_call_id;
  const oursStreamed: OurStreamingParams = { ...ours, stream: true, top_p: 1 };
  const fromOurs: SecureChatCompletionResult | ChatCompletionStream = await client.create(ours);
  const oursStream: ChatCompletionStream = await client.chat.completions.create(oursStreamed);
  // @ts-expect-error a model is needed
  await client.create({ messages: mine });
  // @ts-expect-error a message has a role
  await client.create({ model: 'm', messages: [{ content: 'no role' }] });
  // @ts-expect-error a whole answer is no stream
  const notStream: ChatCompletionStream = await client.create({ model: 'm', messages: mine });

  const model: CompletionModel = async (request) => ({ id: 'x', object: 'chat.completion', created: 1, model: String(request.model), choices: [] });
  const server = await startServer({ model, tls: { cert: 'PEM', key: new Uint8Array(0) } });
  const seen: [typeof Protocol.KEY_ALGORITHM, Internal.OwnedBytes | undefined] = ['RSA-OAEP-SHA256', undefined];
  return [withTools, fromOpenAI, stream, ownTypes, tool, either, notStream, server, seen, callId, fromOurs, oursStream];
}
