/**
 * `@nomyo/core`: end-to-end encrypted OpenAI-compatible chat completions, on Web Crypto and fetch.
 * Runs unchanged in Node.js (>= 20) and browsers. Start with {@link SecureChatCompletion}, or
 * {@link createSecureFetch} for the OpenAI SDK; what it protects and what not is in SECURITY.md.
 *
 * @module @nomyo/core
 */
// Web Crypto's type names for projects without lib "DOM" (a side effect of types only).
import './web-crypto-types.js';
export { SecureChatCompletion } from './client/secure-chat-completion.js';
export type {
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionCreateParamsNonStreaming,
  ChatMessageParam,
  ChatMessageLike,
  ChatCompletionCreateParamsLike,
  ChatCompletionCreateParamsStreamingLike,
  ChatCompletionCreateParamsNonStreamingLike,
  RequestOptions,
  SecureChatCompletionOptions,
} from './client/secure-chat-completion.js';
export { ChatCompletionStream, type StreamMetadata } from './client/chat-stream.js';
export type { ChatCompletionChunk, ChatCompletionChunkChoice } from './protocol/stream/chunk.js';
export { SecureCompletionClient } from './client/secure-completion-client.js';
export type { SecureCompletionClientOptions, SendOptions, SecureChatCompletionResult } from './client/secure-completion-client.js';
export type { GenerateKeysOptions } from './client/secure-completion-client.js';
export type { ClientKeyPair } from './keys/client-keys.js';
export type { ServerKey } from './keys/server-key.js';
export { parseFingerprint, type TrustStore } from './keys/pinning.js';
export type {
  ChatCompletion,
  ChatCompletionChoice,
  ChatCompletionMessage,
  ChatCompletionMessageCustomToolCall,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageToolCall,
  CompletionUsage,
  SecureMetadata,
} from './protocol/completion.js';
export type { EncryptedPackage, EncryptedPayload } from './protocol/package.js';
export type { OwnedBytes, ByteSource, Placement } from './memory/owned-bytes.js';
export { SECURITY_TIERS, type SecurityTier } from './protocol/constants.js';
export type { ProtocolVersion } from './protocol/constants.js';
export type { ProtocolOption } from './keys/protocol-choice.js';
export type { SecureMemory, MemoryProtectionInfo } from './memory/secure-memory.js';
export { getMemoryProtection, type SecureMemoryOption } from './memory/select.js';
export { SecureByteContext } from './memory/context.js';
export { sanitizeDetail } from './transport/detail.js';
export type { FetchFn } from './transport/exchange.js';
export * from './errors.js';
export { createSecureFetch, PROTECTION_HEADERS } from './client/secure-fetch.js';
export type { SecureFetch, SecureFetchOptions } from './client/secure-fetch.js';
