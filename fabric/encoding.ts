/**
 * Canonical encoding (RFC 8785 JSON canonicalization) and content hash of NodeConfigs. Two
 * controllers that compile the same block produce byte-identical encodings, hence equal hashes:
 * that is what lets them publish only on change, and lets any one of them die.
 */
import canonicalize from 'canonicalize';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { sha256Hex } from './digest.js';
import type { NodeConfig } from './node-config.js';

export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new TypeError('value has no JSON encoding');
  return s;
}

export function encodeConfig(config: NodeConfig): Uint8Array {
  return utf8ToBytes(canonicalJson(config));
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
