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

/** An error as data: its code kept (status files, signed statuses), its message cut to `max` characters. */
export interface CodedError {
  readonly code: Sub0ErrorCode;
  readonly message: string;
}

export function codedError(e: unknown, max = 2000): CodedError {
  const message = e instanceof Error ? e.message : String(e);
  return { code: isSub0Error(e) ? e.code : 'internal', message: message.length > max ? `${message.slice(0, max - 1)}…` : message };
}

/**
 * Many failures of one batch as one line: how many, the first few, how many more. A batch of
 * 10,000 failing ops is summarized, never logged whole.
 */
export function summarize(errors: readonly string[], shown = 3): string {
  if (errors.length <= shown) return errors.join('; ');
  return `${errors.length} failed, first: ${errors.slice(0, shown).join('; ')} (and ${errors.length - shown} more)`;
}
