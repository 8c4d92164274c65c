/**
 * Problems found in a chain snapshot. Each one names the entry it concerns; the entry is left out
 * and everything else still compiles (zod-style issues, with partial results).
 */
export type IssueCode =
  | 'invalid-entry' // the entry does not match its schema
  | 'bad-key' // not a WireGuard public key (base64 of 32 bytes)
  | 'duplicate-id' // a second entry with an id already taken
  | 'duplicate-key' // a second node with a WireGuard key already taken
  | 'unknown-dvci' // a node names a DVCI that does not exist
  | 'unknown-node' // a slot is assigned to a node that does not exist
  | 'unknown-slot' // a rule names a slot that does not exist
  | 'not-owner' // a rule opens a slot that its owner does not own
  | 'overlapping-ports' // a rule's port ranges overlap each other
  | 'impossible-resources' // a slot asks for resources no node can give
  | 'over-capacity' // a slot does not fit in what its host has left
  | 'address-collision' // two entries hashed to one address; the newer one was moved (warning)
  | 'empty-selector' // a rule matches no slot today (warning)
  | 'acl-over-capacity'; // a node's ACL needs more kernel entries than its map holds; rules left out

export type IssueSeverity = 'error' | 'warning';

export interface Issue {
  readonly code: IssueCode;
  readonly severity: IssueSeverity;
  /** Where in the snapshot: `nodes[3].wgPublicKey`, `rules[12].ports[1]`. */
  readonly path: string;
  readonly message: string;
  /** The id of the entry concerned, when it has one that could be read. */
  readonly entryId?: string;
}

export function issue(code: IssueCode, path: string, message: string, entryId?: string, severity: IssueSeverity = 'error'): Issue {
  return entryId === undefined ? { code, severity, path, message } : { code, severity, path, message, entryId };
}

/** `nodes[3]` + [`endpoints`, 0] -> `nodes[3].endpoints[0]` */
export function joinPath(base: string, segments: readonly PropertyKey[]): string {
  let out = base;
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : `.${String(s)}`;
  return out;
}

export function formatIssue(i: Issue): string {
  return `${i.severity} ${i.code} at ${i.path}${i.entryId ? ` (${i.entryId})` : ''}: ${i.message}`;
}
