/**
 * One error class for the whole project, with a machine-readable code and an optional cause
 * (the shape of MQTT.js' ErrorWithReasonCode and hono's HTTPException). Callers branch on
 * `code`, never on message text.
 */
export type Sub0ErrorCode =
  | 'invalid-input' // a file, flag, chain entry or wire message failed its schema
  | 'bad-signature' // a signed envelope did not verify against the trusted key
  | 'stale-revision' // a config older than the one already applied
  | 'not-found'
  | 'chain' // the chain refused or failed a call
  | 'permission' // the chain (or the OS) refused for lack of rights
  | 'driver' // a kernel / device driver operation failed
  | 'unsupported' // the capability is missing on this machine
  | 'timeout'
  | 'internal';

export class Sub0Error extends Error {
  readonly code: Sub0ErrorCode;
  /** Where the problem is: a file path, a chain item, a JSON path. */
  readonly where: string | undefined;

  constructor(code: Sub0ErrorCode, message: string, opts: { cause?: unknown; where?: string } = {}) {
    super(opts.where ? `${opts.where}: ${message}` : message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'Sub0Error';
    this.code = code;
    this.where = opts.where;
  }
}

export function isSub0Error(e: unknown, code?: Sub0ErrorCode): e is Sub0Error {
  return e instanceof Sub0Error && (code === undefined || e.code === code);
}
