/**
 * Netlink attributes (TLVs): a minimal encoder and decoder for what the `netlink` package leaves
 * as raw buffers (IFLA_LINKINFO) and for the WireGuard generic netlink family, whose nested
 * arrays the package's generated code cannot parse (the kernel numbers every element 0).
 */
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

/** One attribute, padded to 4 bytes. `data` may be several buffers (a nested attribute's children). */
export function attr(type: number, data: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = data instanceof Uint8Array ? [data] : data;
  let len = 4;
  for (const p of parts) len += p.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  let off = 4;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function nested(type: number, children: readonly Uint8Array[]): Buffer {
  return attr(type | NLA_F_NESTED, children);
}

export function u8(type: number, v: number): Buffer {
  return attr(type, Buffer.of(v));
}

export function u16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return attr(type, b);
}

export function u32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}

/** A NUL-terminated string attribute. */
export function str(type: number, s: string): Buffer {
  return attr(type, Buffer.from(`${s}\0`, 'utf8'));
}

export function flag(type: number): Buffer {
  return attr(type, Buffer.alloc(0));
}

/** Parses a run of attributes into (type, payload) pairs, in order; flags bits are dropped. */
export function parseAttrs(buf: Buffer): { type: number; data: Buffer }[] {
  const out: { type: number; data: Buffer }[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, data: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

/** The last attribute of each type (later ones win, as in the kernel's nla_parse). */
export function attrMap(buf: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of parseAttrs(buf)) m.set(a.type, a.data);
  return m;
}

export function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}
