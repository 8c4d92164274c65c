/**
 * Canonical encoding (RFC 8785 JSON canonicalization) and content hash of NodeConfigs. Two
 * controllers that compile the same block produce byte-identical encodings, hence equal hashes:
 * that is what lets them publish only on change, and lets any one of them die.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { sha256Hex } from './digest.js';
import type { AclEntry, NodeConfig, Peer } from './node-config.js';

export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new TypeError('value has no JSON encoding');
  return s;
}

export function encodeConfig(config: NodeConfig): Uint8Array {
  return canonicalConfigBytes(config);
}

const q = JSON.stringify;

/**
 * A compilation shares one Peer object among every config that lists it (a DVCI's mesh: each peer
 * in ~100 configs) and one ACL entry between both ends of a rule; configs are immutable, so each
 * object is encoded once, to bytes, and a config is the concatenation of its members' bytes.
 */
const encoded = new WeakMap<object, Buffer>();
const COMMA = Buffer.from(',');

function peerBytes(p: Peer): Buffer {
  let b = encoded.get(p);
  if (b === undefined) encoded.set(p, (b = Buffer.from(`{"allowedIps":${q(p.allowedIps)},"endpoints":${q(p.endpoints)},"keepalive":${q(p.keepalive)},"node":${q(p.node)},"publicKey":${q(p.publicKey)}}`)));
  return b;
}

function aclBytes(e: AclEntry): Buffer {
  let b = encoded.get(e);
  if (b === undefined) encoded.set(e, (b = Buffer.from(`{"dst":${q(e.dst)},"ports":[${q(e.ports[0])},${q(e.ports[1])}],"proto":${q(e.proto)},"rule":${q(e.rule)},"src":${q(e.src)}}`)));
  return b;
}

/** Strings the schema leaves free (slot images): RFC 8785 refuses lone surrogates. */
function freeText(s: string): string {
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new TypeError('a lone surrogate has no canonical JSON encoding');
  return q(s);
}

/**
 * canonicalJson(config) as UTF-8 bytes, written for the NodeConfig shape instead of walked
 * generically: members in sorted order, strings and arrays of strings through JSON.stringify
 * (what RFC 8785 prescribes for them), integers as JSON.stringify writes them. Several times
 * faster than the generic walk on a large config (and a controller encodes every config it
 * republishes); the tests check it against the generic canonicalization on every config they
 * compile.
 */
export function canonicalConfigBytes(c: NodeConfig): Buffer {
  const parts: Buffer[] = [Buffer.from('{"acl":[')];
  for (let i = 0; i < c.acl.length; i++) {
    if (i) parts.push(COMMA);
    parts.push(aclBytes(c.acl[i]!));
  }
  parts.push(Buffer.from(`],"controllers":${q(c.controllers)},"dvci":${q(c.dvci)},"interface":{"addresses":${q(c.interface.addresses)},"listenPort":${q(c.interface.listenPort)}},"mode":${q(c.mode)},"network":${q(c.network)},"node":${q(c.node)},"peers":[`));
  for (let i = 0; i < c.peers.length; i++) {
    if (i) parts.push(COMMA);
    parts.push(peerBytes(c.peers[i]!));
  }
  const slots = c.slots.map((s) => `{"diskGiB":${q(s.diskGiB)},"id":${q(s.id)},"image":${freeText(s.image)},"ipv4":${q(s.ipv4)},"ipv6":${q(s.ipv6)},"memoryMiB":${q(s.memoryMiB)},"vcpus":${q(s.vcpus)}}`);
  parts.push(Buffer.from(`],"revision":{"hash":${q(c.revision.hash)},"number":${q(c.revision.number)}},"slots":[${slots.join(',')}],"version":${q(c.version)}}`));
  return Buffer.concat(parts);
}

/** The same, as text. */
export function canonicalConfigJson(c: NodeConfig): string {
  return canonicalConfigBytes(c).toString('utf8');
}

/** Hex sha256 of the canonical encoding. */
export function configHash(config: NodeConfig): string {
  return sha256Hex(encodeConfig(config));
}

/**
 * Hash of what the node must enforce, without the revision stamp: equal across blocks that did
 * not change this node. Controllers publish a node's config only when this changes.
 */
export function contentHash(config: NodeConfig): string {
  const { revision: _revision, ...content } = config;
  return sha256Hex(canonicalJson(content));
}

const REVISION = utf8ToBytes(',"revision":{');

/**
 * contentHash() of a config from its canonical encoding, without encoding it again. In RFC 8785
 * JSON the members are sorted and the revision ({"hash":…,"number":…}, no nested object) is never
 * the first; removing `,"revision":{…}` leaves exactly the canonical encoding of the rest.
 */
export function contentHashOfEncoded(encoded: Uint8Array): string {
  const b = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const at = b.indexOf(REVISION);
  const end = at < 0 ? -1 : b.indexOf(0x7d /* } */, at + REVISION.length);
  if (at < 0 || end < 0) throw new TypeError('not the canonical encoding of a NodeConfig');
  return createHash('sha256').update(b.subarray(0, at)).update(b.subarray(end + 1)).digest('hex');
}
