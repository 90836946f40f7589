/**
 * Errors of the API. Two kinds:
 * - expected failures of a request (a full queue, a bad image, an unknown id) are `UserError`s in a payload's
 *   `errors`: see {@link UserFailure} and {@link toUserError};
 * - everything else surfaces in the top-level `errors` with a stable `extensions.code` from {@link ErrorCode};
 *   {@link normaliseError} is the one place that decides what a client sees, never throws, and hides internals.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ModelError } from '../model/index.ts';
import type { UserError, UserErrorCode } from './graphql/generated.ts';

/** The stable codes of the top-level errors. New codes may be added; existing ones never change meaning. */
export const ERROR_CODES = [
  /** The document cannot be parsed. */
  'GRAPHQL_PARSE_FAILED',
  /** The document does not validate against the schema. */
  'GRAPHQL_VALIDATION_FAILED',
  /** A variable or argument has the wrong type. */
  'BAD_USER_INPUT',
  /** The operation is deeper, costlier or has more aliases than the server allows, or asks for introspection. */
  'QUERY_TOO_COMPLEX',
  /** No valid API key (or a revoked one). */
  'UNAUTHENTICATED',
  /** The key lacks the scope for what was asked (e.g. acting for a Discord user). */
  'FORBIDDEN',
  /** The caller sent too many requests. */
  'RATE_LIMITED',
  /** The server is starting, shutting down, or its database is unreachable; retry later. */
  'SERVICE_UNAVAILABLE',
  /** A fault of the server; the message says nothing more, the logs have the details under `extensions.errorId`. */
  'INTERNAL_SERVER_ERROR',
  /** The operation name does not match an operation of the document, or the request is malformed. */
  'BAD_REQUEST',
  /** A subscription to an id that is not among the caller's data. */
  'NOT_FOUND',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A top-level error the server raises on purpose; its message is safe to show. */
export class ApiError extends GraphQLError {
  constructor(code: ErrorCode, message: string) {
    const status = HTTP_STATUS[code];
    super(message, { extensions: { code, ...(status === undefined ? {} : { http: { status } }) } });
  }
}

/** HTTP status of a request that fails as a whole with this code (context errors: no key, a bad key...). */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  BAD_REQUEST: 400,
};

/** An expected failure of one request, turned into a payload `UserError` by the resolver that catches it. */
export class UserFailure extends Error {
  override readonly name = 'UserFailure';
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly field: string[] | null = null,
  ) {
    super(message);
  }

  toUserError(): UserError {
    return { code: this.code, message: this.message, field: this.field };
  }
}

/**
 * The payload error for an error thrown while serving a request, or null when it is not an expected failure.
 * Model errors map by code; `field` names the input at fault when known.
 */
export function toUserError(error: unknown, field: string[] | null = null): UserError | null {
  if (error instanceof UserFailure) return error.toUserError();
  if (error instanceof ModelError) {
    const code = modelErrorCode(error);
    if (code === null) return null;
    return { code, message: error.message, field };
  }
  const dbCode = (error as { name?: unknown; code?: unknown } | null)?.name === 'DbError' ? (error as { code: string }).code : undefined;
  if (dbCode === 'NOT_FOUND') return { code: 'NOT_FOUND', message: (error as Error).message, field };
  if (dbCode === 'INVALID_INPUT' || dbCode === 'FIELD_TOO_LONG') {
    return { code: 'INVALID_INPUT', message: (error as Error).message, field };
  }
  return null;
}

/** The UserErrorCode of a runtime error, or null for faults (a bad bundle, onnxruntime failing, disposal). */
export function modelErrorCode(error: ModelError): UserErrorCode | null {
  switch (error.code) {
    case 'INVALID_IMAGE':
      return 'INVALID_IMAGE';
    case 'IMAGE_TOO_LARGE':
      return 'IMAGE_TOO_LARGE';
    case 'PROMPT_TOO_LONG':
      return 'PROMPT_TOO_LONG';
    case 'INVALID_REQUEST':
      return 'INVALID_INPUT';
    case 'QUEUE_FULL':
      return 'QUEUE_FULL';
    case 'CANCELLED':
      return 'CANCELLED';
    case 'INFERENCE_FAILED':
      return 'MODEL_FAILED';
    case 'BUNDLE_INVALID':
    case 'PROVIDER_UNAVAILABLE':
    case 'MODEL_DISPOSED':
      return null;
  }
}

const PASS_THROUGH = new Set<string>([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'QUERY_TOO_COMPLEX',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'BAD_REQUEST',
  'NOT_FOUND',
  // Apollo's own codes for malformed requests, which carry no internals.
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * What a client sees of an error: errors raised on purpose and GraphQL's own request errors keep their message and
 * code; anything else becomes INTERNAL_SERVER_ERROR with an id to find it in the logs. Never throws.
 */
export function normaliseError(
  formatted: GraphQLFormattedError,
  original: unknown,
  report: (errorId: string, error: unknown) => void,
): GraphQLFormattedError {
  try {
    const inner = unwrap(original);
    // A rule's own code (QUERY_TOO_COMPLEX) wins over the generic one Apollo wraps it in.
    const innerCode = inner instanceof GraphQLError && typeof inner.extensions.code === 'string' ? inner.extensions.code : undefined;
    const outerCode = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : undefined;
    const code = innerCode !== undefined && PASS_THROUGH.has(innerCode) ? innerCode : outerCode;
    if (isUnavailable(inner)) {
      return {
        message: 'the service is unavailable; retry later',
        ...(formatted.path === undefined ? {} : { path: formatted.path }),
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      };
    }
    if (code !== undefined && PASS_THROUGH.has(code) && !(inner instanceof Error && !(inner instanceof GraphQLError))) {
      const mapped = code === 'OPERATION_RESOLUTION_FAILURE' || code.startsWith('PERSISTED_QUERY') ? 'BAD_REQUEST' : code;
      return {
        message: formatted.message,
        ...(formatted.locations === undefined ? {} : { locations: formatted.locations }),
        ...(formatted.path === undefined ? {} : { path: formatted.path }),
        extensions: { code: mapped },
      };
    }
    // GraphQL's own errors about the request (bad variables, coercion) have no original error.
    if (inner === undefined || (inner instanceof GraphQLError && inner.originalError === undefined && code === undefined)) {
      return {
        message: formatted.message,
        ...(formatted.locations === undefined ? {} : { locations: formatted.locations }),
        ...(formatted.path === undefined ? {} : { path: formatted.path }),
        extensions: { code: formatted.path === undefined ? 'GRAPHQL_VALIDATION_FAILED' : 'BAD_USER_INPUT' },
      };
    }
    const errorId = randomId();
    report(errorId, inner);
    return {
      message: 'internal server error',
      ...(formatted.path === undefined ? {} : { path: formatted.path }),
      extensions: { code: 'INTERNAL_SERVER_ERROR', errorId },
    };
  } catch {
    return { message: 'internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  }
}

function unwrap(error: unknown): unknown {
  let current = error;
  for (let i = 0; i < 4; i += 1) {
    if (current instanceof GraphQLError && current.originalError !== undefined && current.originalError !== null) {
      current = current.originalError;
    } else break;
  }
  return current;
}

function isUnavailable(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown } | null;
  return (e?.name === 'DbError' && e.code === 'DATABASE_UNAVAILABLE') || (e instanceof ModelError && e.code === 'MODEL_DISPOSED');
}

function randomId(): string {
  return Math.random().toString(36).slice(2, 10) + Date.now().toString(36).slice(-4);
}
