/**
 * The parsers at sub0's trust boundaries, as fuzz targets: each takes bytes from outside and must
 * either return or throw the project's own coded error (Sub0Error); any other exception is a
 * crash (one bad message taking a process down), and a run past HANG_MS a hang. Each target has
 * valid seeds that its inputs are mutated from (fast-check is not coverage-guided: mutating
 * valid inputs is what reaches past the first checks), besides fully random bytes.
 *
 *   envelope     a signed config's wire bytes (the agent's gate: verifyConfig)
 *   node-config  a config payload, signed by the trusted key: reaches NodeConfig's schema
 *   node-status  a node status payload, signed by the node's key (verifyStatus)
 *   uapi-get     wireguard-go's reply to `get=1` (parseGet)
 *   netlink      a datagram from the kernel (decodeReplies, then a WireGuard device dump parse)
 *   chain-attr   a Uniques attribute's storage key and value (decodeAttribute)
 *   chain-entry  an item's attributes (decodeEntry, for each kind)
 *   snapshot     a chain snapshot in JSON (parseSnapshot, then the compiler)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as fc from 'fast-check';
import { compile } from '../../fabric/compile.js';
import { canonicalJson, encodeConfig } from '../../fabric/encoding.js';
import { seal, signingKeyFromSecret } from '../../fabric/envelope.js';
import { isSub0Error } from '../../fabric/errors.js';
import { blankStatus, STATUS_MAGIC, verifyStatus } from '../../fabric/node-status.js';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import { CONFIG_MAGIC, signConfig, verifyConfig } from '../../fabric/signing.js';
import { AccountFormat, decodeAttribute, decodeEntry, encodeEntry } from '../../controller/chain/uniques-codec.js';
import { attr, nested, u16, u32 } from '../../overlay/netlink/attrs.js';
import { decodeReplies } from '../../overlay/netlink/nl-socket.js';
import { parseDeviceDump } from '../../overlay/wireguard/kernel-protocol.js';
import { parseGet } from '../../overlay/wireguard/uapi-protocol.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export const HANG_MS = 2_000;
export const CORPUS = fileURLToPath(new URL('./corpus', import.meta.url));

export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs to mutate from. */
  readonly seeds: readonly Uint8Array[];
  /** Parses `input`; throws only Sub0Error (checked by the harness). */
  run(input: Uint8Array): void;
  /** Inputs built with the format's structure, where byte mutants rarely stay well-formed. */
  readonly structured?: fc.Arbitrary<Uint8Array>;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => Buffer.from(b).toString('utf8');

// Fixed keys: the same inputs give the same results in every run (a corpus replays).
const controller = signingKeyFromSecret('11'.repeat(32));
const nodeKey = signingKeyFromSecret('22'.repeat(32));

const labSnapshotText = readFileSync(fileURLToPath(new URL('../../fabric/examples/lab.json', import.meta.url)), 'utf8');
const lab = parseSnapshot(JSON.parse(labSnapshotText)).snapshot;
const labConfigs = [...compile(lab).configs.values()];

function nlmsg(type: number, flags: number, seq: number, body: Uint8Array): Buffer {
  const len = 16 + body.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.set(body, 16);
  return b;
}

/** A WireGuard GET_DEVICE reply: genl header, private key, port, one peer with an endpoint and two allowed IPs. */
function deviceDump(): Buffer {
  const sockaddr = Buffer.alloc(16);
  sockaddr.writeUInt16LE(2, 0);
  sockaddr.writeUInt16BE(51820, 2);
  sockaddr.set([192, 0, 2, 1], 4);
  const allowed = (ip: number[], bits: number) => nested(0, [u16(1, ip.length === 4 ? 2 : 10), attr(2, Buffer.from(ip)), attr(3, Buffer.from([bits]))]);
  const peer = nested(0, [attr(1, Buffer.alloc(32, 7)), attr(4, sockaddr), u16(6, 25), attr(7, Buffer.alloc(16, 1)), nested(9, [allowed([100, 64, 0, 1], 32), allowed([0xfd, 0, ...Array(13).fill(0), 1], 128)])]);
  const genl = Buffer.from([1, 1, 0, 0]);
  return Buffer.concat([nlmsg(0x1c, 2, 7, Buffer.concat([genl, attr(3, Buffer.alloc(32, 9)), u16(6, 51820), u32(7, 0), nested(8, [peer])])), nlmsg(3, 2, 7, Buffer.alloc(4))]);
}

const ERROR_ACK = nlmsg(2, 0x200, 9, Buffer.concat([Buffer.from([0xea, 0xff, 0xff, 0xff]), Buffer.alloc(16), attr(1, Buffer.from('bad thing\0'))]));

const accounts = new AccountFormat(42);
const entrySeeds = [
  ...lab.dvcis.map((e) => ['dvci', e] as const),
  ...lab.nodes.map((e) => ['node', e] as const),
  ...lab.slots.map((e) => ['slot', e] as const),
  ...lab.rules.map((e) => ['rule', e] as const),
].map(([kind, e]) => text(JSON.stringify({ kind, attrs: Object.fromEntries([...encodeEntry(kind, e as never, accounts)].map(([k, v]) => [k, Buffer.from(v).toString('base64')])) })));

/** Netlink attribute trees of WireGuard's types, with payloads of any length (short ones included). */
const nlAttrs: fc.Arbitrary<Buffer> = fc.letrec<{ tree: Buffer; leaf: Buffer; node: Buffer }>((tie) => ({
  leaf: fc.tuple(fc.nat(10), fc.uint8Array({ maxLength: 40 })).map(([type, data]) => attr(type, data)),
  node: fc.tuple(fc.nat(10), fc.array(tie('tree'), { maxLength: 4 })).map(([type, kids]) => nested(type, kids)),
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('node')),
})).tree;
const nlDatagram = fc
  .array(fc.tuple(fc.constantFrom(2, 3, 0x1c, 0x1c, 0x1c), fc.nat(0xffff), fc.array(nlAttrs, { maxLength: 6 })), { minLength: 1, maxLength: 3 })
  .map((msgs) => Buffer.concat(msgs.map(([type, flags, attrs]) => nlmsg(type, flags, 7, Buffer.concat([Buffer.from([1, 1, 0, 0]), ...attrs])))));

/** `get=1` replies: known keys (and unknown ones) with values of any shape. */
const UAPI_KEYS = ['private_key', 'listen_port', 'fwmark', 'public_key', 'preshared_key', 'endpoint', 'allowed_ip', 'last_handshake_time_sec', 'last_handshake_time_nsec', 'tx_bytes', 'rx_bytes', 'persistent_keepalive_interval', 'protocol_version', 'errno', 'x'];
const uapiValue = fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('a'.repeat(64), '1.2.3.4:5', '[fd00::1]:51820', '100.64.0.1/32', 'fd00::/129', '-1', '99999999999999999999', '0'), fc.nat().map(String));
const uapiReply = fc.array(fc.tuple(fc.constantFrom(...UAPI_KEYS), uapiValue), { maxLength: 20 }).map((kv) => text(`${kv.map(([k, v]) => `${k}=${v}`).join('\n')}\nerrno=0\n\n`));

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'envelope',
    seeds: labConfigs.slice(0, 2).map((c) => signConfig(c, controller)),
    run: (input) => void verifyConfig(input, [controller.publicKey]),
  },
  {
    name: 'node-config',
    seeds: labConfigs.slice(0, 2).map((c) => encodeConfig(c)),
    run: (input) => void verifyConfig(seal(CONFIG_MAGIC, input, controller), [controller.publicKey]),
  },
  {
    name: 'node-status',
    seeds: [text(canonicalJson({ ...blankStatus('lab', 'n1', { wireguard: 'uapi', acl: 'ebpf' }), at: 5, handshakes: [{ node: 'n2', ageS: 3 }], slots: [{ slot: 'web-1', phase: 'running', upS: 9, restarts: 0, error: null }] }))],
    run: (input) => void verifyStatus(seal(STATUS_MAGIC, input, nodeKey), bytesToHex(nodeKey.publicKey), 'n1'),
  },
  {
    name: 'uapi-get',
    seeds: [
      text(
        `private_key=${'a'.repeat(64)}\nlisten_port=51820\nfwmark=0\npublic_key=${'b'.repeat(64)}\npreshared_key=${'0'.repeat(64)}\nprotocol_version=1\nendpoint=192.0.2.1:51820\n` +
          `last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\nallowed_ip=100.64.0.1/32\nallowed_ip=fd00::1/128\nerrno=0\n\n`,
      ),
    ],
    run: (input) => void parseGet(str(input)),
    structured: uapiReply,
  },
  {
    name: 'netlink',
    seeds: [deviceDump(), ERROR_ACK],
    run: (input) => {
      const parts = decodeReplies(Buffer.from(input)).flatMap((r) => (r.kind === 'part' ? [r.message.data] : []));
      parseDeviceDump(parts);
    },
    structured: nlDatagram,
  },
  {
    name: 'chain-attr',
    // A storage key (16 hash bytes, Some(item), 16 hash bytes, a compact-prefixed name) and its value.
    seeds: [text(`${'00'.repeat(16)}012a000000${'00'.repeat(16)}086964|0x086e31`)],
    run: (input) => {
      const [key = '', value = ''] = str(input).split('|');
      decodeAttribute(key, 0, value);
    },
  },
  {
    name: 'chain-entry',
    seeds: entrySeeds,
    run: (input) => {
      let raw: { kind?: unknown; attrs?: unknown };
      try {
        raw = JSON.parse(str(input)) as typeof raw;
      } catch {
        return; // not this target's input: the chain hands over attributes, not text
      }
      if (!raw || typeof raw !== 'object' || !['dvci', 'node', 'slot', 'rule'].includes(raw.kind as string) || !raw.attrs || typeof raw.attrs !== 'object') return;
      const attrs = new Map(Object.entries(raw.attrs as Record<string, unknown>).map(([k, v]) => [k, Buffer.from(String(v), 'base64')]));
      decodeEntry(raw.kind as 'node', { item: 1, owner: new Uint8Array(32), attrs }, accounts.text(new Uint8Array(32)), 'nodes[item 1]', [], accounts);
    },
  },
  {
    name: 'snapshot',
    seeds: [text(labSnapshotText)],
    run: (input) => {
      let raw: unknown;
      try {
        raw = JSON.parse(str(input));
      } catch {
        return; // the chain reader builds the object; JSON syntax is not at the boundary
      }
      compile(parseSnapshot(raw).snapshot);
    },
  },
];

/** Runs one input; returns a failure description, or undefined when it only threw a coded error. */
export function runOne(target: FuzzTarget, input: Uint8Array): string | undefined {
  const t0 = performance.now();
  try {
    target.run(input);
  } catch (e) {
    if (!isSub0Error(e)) return `${target.name}: ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`;
  }
  const ms = performance.now() - t0;
  return ms > HANG_MS ? `${target.name}: ${ms.toFixed(0)} ms on one input (a hang)` : undefined;
}

// ---------------------------------------------------------------- inputs

/** Byte-level edits of a seed: flips, deletions, insertions, repeats, truncation. */
function mutateBytes(seed: Uint8Array, edits: readonly [number, number, number, number][]): Uint8Array {
  let b = Buffer.from(seed);
  for (const [kind, at, len, v] of edits) {
    const i = b.length ? at % b.length : 0;
    switch (kind % 5) {
      case 0:
        if (b.length) b[i] = v & 255;
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + (len % 16)))]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, i), Buffer.from([v & 255]), b.subarray(i)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 1 + (len % 64)), b.subarray(i)]);
        break;
      default:
        b = b.subarray(0, i);
    }
  }
  return b;
}

/** Values that break parsers: bad addresses, huge and odd numbers, long and odd strings. */
const nasty = fc.oneof(
  fc.constantFrom('999.1.1.1/32', ':/128', '1.2.3.4/33', 'fd00::/129', '::ffff:1.2.3.4/128', '', ' ', '\u0000', '../..', 'a'.repeat(5000), '-1', '1e309', '0x10', 'NaN', '__proto__', 'constructor'),
  fc.constantFrom(-1, 0, 1.5, 2 ** 32, 2 ** 53, Number.MAX_VALUE, -0),
  fc.constantFrom(null, true, [], {}),
  fc.jsonValue({ maxDepth: 3 }),
);

/** JSON-level edits of a seed (a value replaced, a key dropped, an element repeated), then re-encoded. */
function mutateJson(seed: Uint8Array, edits: readonly [number, number, unknown][]): Uint8Array | undefined {
  let root: unknown;
  try {
    root = JSON.parse(str(seed));
  } catch {
    return undefined;
  }
  for (const [kind, at, value] of edits) {
    const slots: [Record<string, unknown> | unknown[], string | number][] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach((x, i) => (slots.push([v, i]), walk(x)));
      else if (v && typeof v === 'object') for (const k of Object.keys(v)) slots.push([v as Record<string, unknown>, k]), walk((v as Record<string, unknown>)[k]);
    };
    walk(root);
    if (slots.length === 0) continue;
    const [parent, key] = slots[at % slots.length]!;
    if (kind % 3 === 0) (parent as Record<string | number, unknown>)[key] = value;
    else if (kind % 3 === 1) Array.isArray(parent) ? parent.splice(key as number, 1) : delete (parent as Record<string, unknown>)[key as string];
    else if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
  }
  return text(JSON.stringify(root));
}

/** Inputs for a target: random bytes, byte-level mutants of its seeds, JSON-level mutants. */
export function inputs(target: FuzzTarget): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...target.seeds);
  const byteEdits = fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 8 });
  const jsonEdits = fc.array(fc.tuple(fc.nat(), fc.nat(), nasty), { minLength: 1, maxLength: 4 });
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
    ...(target.structured ? [{ weight: 6, arbitrary: target.structured }] : []),
    { weight: 4, arbitrary: fc.tuple(seed, byteEdits).map(([s, e]) => mutateBytes(s, e)) },
    { weight: 4, arbitrary: fc.tuple(seed, jsonEdits).map(([s, e]) => mutateJson(s, e) ?? mutateBytes(s, e.map(([k, a]) => [k, a, a, k]))) },
  );
}
