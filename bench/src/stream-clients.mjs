/**
 * The clients of `pnpm bench stream` and the one conversation every stream asks for: @nomyo/core
 * through the router, the openai SDK from the upstream (directly or through the relay). A module of
 * their own because the fresh client process of stream-throughput.mjs makes them too.
 */
import { SecureChatCompletion } from '@nomyo/core';
import OpenAI from 'openai';

export const MESSAGES = [{ role: 'user', content: 'Tell me about streams.' }];
export const nomyoClient = (url) => new SecureChatCompletion({ baseUrl: url, allowHttp: true, keySize: 2048, maxRetries: 0 });
export const openaiClient = (url) => new OpenAI({ baseURL: url, apiKey: 'bench', maxRetries: 0 });
