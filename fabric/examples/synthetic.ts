/**
 * Synthetic networks of any size, for benchmarks and scale tests: `nodes` nodes in DVCIs of
 * `nodesPerDvci`, `slotsPerNode` slots each, `rulesPerSlot` rules into each slot. Deterministic
 * (seeded), and shaped like a real network: most rules stay inside a DVCI, some cross it.
 */
export interface SyntheticOptions {
  readonly nodes: number;
  readonly slotsPerNode?: number;
  readonly rulesPerSlot?: number;
  readonly nodesPerDvci?: number;
  /** Share of rules whose source is in another DVCI (0..1). */
  readonly crossDvci?: number;
  readonly seed?: number;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** mulberry32: a tiny seeded PRNG, so every run builds the same network. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function account(i: number): string {
  let s = '5';
  let x = i + 1;
  for (let k = 0; k < 47; k++) {
    s += B58[(x + k * 7) % 58];
    x = Math.floor(x / 3) + k;
  }
  return s;
}

function wgKey(i: number): string {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, i + 1);
  bytes[31] = 0x40;
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A raw snapshot (plain JSON, as a chain adapter or a file would give it). */
export function syntheticSnapshot(o: SyntheticOptions): Record<string, unknown> {
  const slotsPerNode = o.slotsPerNode ?? 10;
  const rulesPerSlot = o.rulesPerSlot ?? 10;
  const perDvci = o.nodesPerDvci ?? 100;
  const cross = o.crossDvci ?? 0.2;
  const rand = prng(o.seed ?? 1);
  const operator = account(0);
  const dvciCount = Math.ceil(o.nodes / perDvci);
  const dvcis = Array.from({ length: dvciCount }, (_, d) => ({ id: `dc${d}`, operator }));
  const nodes = Array.from({ length: o.nodes }, (_, n) => ({
    id: `n${n}`,
    seq: n,
    owner: account(1 + (n % 5000)),
    dvci: `dc${Math.floor(n / perDvci)}`,
    wgPublicKey: wgKey(n),
    endpoints: [`198.18.${(n >> 8) & 255}.${n & 255}:51820`],
    state: 'active',
  }));
  const slots = [];
  for (let n = 0; n < o.nodes; n++) {
    for (let k = 0; k < slotsPerNode; k++) {
      const i = n * slotsPerNode + k;
      slots.push({
        id: `s${i}`,
        seq: i,
        owner: account(1 + (i % 5000)),
        node: `n${n}`,
        state: 'assigned',
        vcpus: 1 + (i % 4),
        memoryMiB: 1024,
        diskGiB: 20,
        image: 'debian-12',
        groups: [`g${i % 100}`],
      });
    }
  }
  const rules = [];
  const total = slots.length;
  for (let i = 0; i < total; i++) {
    const dst = slots[i]!;
    const n = Math.floor(i / slotsPerNode);
    const dvciBase = Math.floor(n / perDvci) * perDvci * slotsPerNode;
    const dvciSlots = Math.min(perDvci * slotsPerNode, total - dvciBase);
    for (let r = 0; r < rulesPerSlot; r++) {
      const src = rand() < cross ? Math.floor(rand() * total) : dvciBase + Math.floor(rand() * dvciSlots);
      const port = 1024 + Math.floor(rand() * 60000);
      rules.push({
        id: `r${i}-${r}`,
        owner: dst.owner,
        from: `slot:s${src === i ? (i + 1) % total : src}`,
        to: `slot:${dst.id}`,
        proto: r % 4 === 3 ? 'udp' : 'tcp',
        ports: [r % 2 ? `${port}` : `${port}-${Math.min(65535, port + 10)}`],
      });
    }
  }
  return {
    network: { id: 'bench', operator },
    block: { number: 1, hash: `0x${'ab'.repeat(32)}` },
    dvcis,
    nodes,
    slots,
    rules,
  };
}
