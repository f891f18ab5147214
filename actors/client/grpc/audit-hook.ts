/**
 * The audit log's hook on the gRPC router: every unary handler is wrapped so that, once its call
 * ends, a record is handed to the audit sink when src/audit/audit-record.ts says the call is
 * recorded. The identity is what the auth layer resolved for the call (AuthFront.callerOf tells
 * the call through noteCaller), or the name an Authenticate call tries. Calls the member's own
 * JSON gateway makes carry the HTTP path and the HTTP client's address, vouched for by a secret
 * that never leaves this process, so they are recorded under those instead of the gateway's.
 */
import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { EtcdError, GrpcCode } from '../../../src/api/errors.js';
import type { WireMessage } from '../../../src/api/proto-wire.js';
import {
  authenticateMethod,
  isAudited,
  outcomeOf,
  revisionOf,
  subjectOf,
  type AuditRecord,
} from '../../../src/audit/audit-record.js';
import type { AuthInfo } from '../../../src/auth/types.js';
import type { AuditFields, AuditSink } from '../../audit/audit-log.js';
import type { GrpcHandlers, UnaryContext, UnaryHandler } from './router.js';

/** Metadata the JSON gateway adds to the calls it makes, read only with the secret beside it. */
export const gatewayAuditHeaders = {
  secret: 'tsetcd-audit-gateway',
  path: 'tsetcd-audit-path',
  remote: 'tsetcd-audit-remote',
} as const;

/** Known only inside this process (thread): the gateway sends it, the hook checks it. */
export const gatewayAuditSecret = randomBytes(16).toString('hex');

/** A call's context as the handler sees it, plus the identity the auth layer resolved. */
class AuditedContext implements UnaryContext {
  identity: string | undefined;
  identitySource: AuditRecord['identity_source'];

  constructor(private readonly inner: UnaryContext) {}

  get metadata(): grpc.Metadata {
    return this.inner.metadata;
  }
  get requestBytes(): number {
    return this.inner.requestBytes;
  }
  get peer(): string {
    return this.inner.peer;
  }
  get signal(): AbortSignal {
    return this.inner.signal;
  }
  get token(): string | undefined {
    return this.inner.token;
  }
  get commonName(): string | undefined {
    return this.inner.commonName;
  }
  header(name: string): string | undefined {
    return this.inner.header?.(name);
  }

  noteCaller(caller: AuthInfo, source: 'token' | 'certificate'): void {
    this.identity = caller.username;
    this.identitySource = source;
  }
}

function statusOf(error: unknown): { code: number; message: string } {
  if (error instanceof EtcdError) return { code: error.code as number, message: error.message };
  return { code: GrpcCode.unknown, message: error instanceof Error ? error.message : String(error) };
}

/** Method (or gateway path) and remote address a record names. */
function origin(method: string, context: AuditedContext): { method: string; remote: string } {
  const secret = context.header(gatewayAuditHeaders.secret);
  if (secret !== gatewayAuditSecret) return { method, remote: context.peer };
  return {
    method: context.header(gatewayAuditHeaders.path) ?? method,
    remote: context.header(gatewayAuditHeaders.remote) ?? context.peer,
  };
}

function fields(
  method: string,
  request: WireMessage,
  context: AuditedContext,
  code: number,
  outcome: AuditFields['outcome'],
): AuditFields {
  const record: AuditFields = { ...origin(method, context), outcome, code };
  if (method === authenticateMethod && typeof request.name === 'string' && request.name !== '') {
    record.identity = request.name;
    record.identity_source = 'password';
  } else if (context.identity !== undefined) {
    record.identity = context.identity;
    record.identity_source = context.identitySource;
  }
  return { ...record, ...subjectOf(method, request) };
}

function auditedHandler(method: string, handler: UnaryHandler, sink: AuditSink): UnaryHandler {
  return async (request, inner) => {
    const context = new AuditedContext(inner);
    let response: WireMessage;
    try {
      response = await handler(request, context);
    } catch (error) {
      const { code, message } = statusOf(error);
      const outcome = outcomeOf(code, message);
      if (isAudited(method, outcome)) sink.record(fields(method, request, context, code, outcome));
      throw error;
    }
    if (isAudited(method, 'ok')) {
      const record = fields(method, request, context, GrpcCode.ok, 'ok');
      const revision = method === authenticateMethod ? undefined : revisionOf(response);
      sink.record(revision === undefined ? record : { ...record, revision });
    }
    return response;
  };
}

/** The handlers with every unary one wrapped; streaming ones are left as they are. */
export function auditedHandlers(handlers: GrpcHandlers, streaming: readonly string[], sink: AuditSink): GrpcHandlers {
  const wrapped: Record<string, unknown> = { ...handlers };
  for (const [method, handler] of Object.entries(handlers)) {
    if (handler === undefined || streaming.includes(method)) continue;
    wrapped[method] = auditedHandler(`/${method}`, handler as UnaryHandler, sink);
  }
  return wrapped as GrpcHandlers;
}
