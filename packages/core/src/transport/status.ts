/** From an HTTP status to the error class the protocol names for it. */
import {
  APIError,
  AuthenticationError,
  ForbiddenError,
  InvalidRequestError,
  RateLimitError,
  ServerError,
  ServiceUnavailableError,
  type SealedErrorObject,
} from '../errors.js';
import { detailFromBody } from './detail.js';
import { parseRetryAfter } from './retry.js';

/** What an error knows of its request besides the response: the error object sealed for it, its payload id. */
export interface ErrorContext {
  error?: SealedErrorObject | undefined;
  payloadId?: string | undefined;
}

/** The error for a non-200 response with this body (its `detail` sanitized). */
export function errorFromStatus(status: number, body: string, headers: Headers, context: ErrorContext = {}): APIError {
  return errorForStatus(status, detailFromBody(body), headers, context);
}

/** The error for `status` with a `detail` already sanitized. */
export function errorForStatus(status: number, detail: string | undefined, headers: Headers, context: ErrorContext = {}): APIError {
  const init = { detail, headers, ...context };
  switch (status) {
    case 400:
      return new InvalidRequestError(status, init);
    case 401:
      return new AuthenticationError(status, init);
    case 403:
      return new ForbiddenError(status, init);
    case 429:
      return new RateLimitError(status, { ...init, retryAfter: parseRetryAfter(headers) });
    case 500:
      return new ServerError(status, init);
    case 503:
      return new ServiceUnavailableError(status, { ...init, retryAfter: parseRetryAfter(headers) });
    default:
      return new APIError(status, init);
  }
}
