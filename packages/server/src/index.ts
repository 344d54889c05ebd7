/**
 * @nomyo/server: a reference NOMYO router speaking secure-completion protocols v1 and v2 (the
 * router's side of docs/protocol.md; `protocol: 1` for a v1-only router), with a
 * deterministic echo model or an OpenAI-compatible upstream, and hooks that let client test
 * suites script failures and inspect the wire. Running it for real: docs/deployment.md.
 *
 * @module @nomyo/server
 */
export { createServer, startServer } from './server.js';
export { echoModel, echoModelWith, echoCompletion, TOOL_CALL_PREFIX } from './echo-model.js';
export { STREAM_HEADERS } from './answer-stream.js';
export { HttpError, UpstreamError } from './http-error.js';
export { PROCESSING_TIME_HEADER, DEFAULT_BODY_LIMIT } from './constants.js';
export type {
  ChatRequest,
  CompletionModel,
  InterceptAction,
  InterceptedRequest,
  Interceptor,
  LogEvent,
  ModelContext,
  NomyoServer,
  RequestRecord,
  RequestSummary,
  ResponseRecord,
  ServerOptions,
  ServerStats,
  UpstreamReport,
} from './types.js';
