/**
 * Reads every storage entry under a key prefix at one block, page by page, with the two RPCs
 * every Substrate node serves: `state_getKeysPaged` for the keys and `state_queryStorageAt` for
 * their values. The next page of keys is requested while the values of this one are in flight.
 * Knows nothing about what the entries mean; the bench uses it as the raw-read baseline.
 */
export type RawRpc = <T>(method: string, params: unknown[]) => Promise<T>;

export const PAGE_SIZE = 1000;

/** One page of [key, value] pairs, both 0x-hex; value is null when the key vanished meanwhile. */
export type StoragePage = readonly (readonly [string, string | null])[];

export async function* storagePages(rpc: RawRpc, prefix: string, at: string, pageSize = PAGE_SIZE): AsyncGenerator<StoragePage> {
  const keysAfter = (start: string) => rpc<string[]>('state_getKeysPaged', [prefix, pageSize, start, at]);
  let next: Promise<string[]> | undefined = keysAfter(prefix);
  while (next) {
    const keys: string[] = await next;
    next = keys.length === pageSize ? keysAfter(keys[keys.length - 1]!) : undefined;
    if (keys.length === 0) break;
    yield await valuesOf(rpc, keys, at);
  }
}

async function valuesOf(rpc: RawRpc, keys: readonly string[], at: string): Promise<StoragePage> {
  const sets = await rpc<{ block: string; changes: [string, string | null][] }[]>('state_queryStorageAt', [keys, at]);
  const byKey = new Map<string, string | null>();
  for (const set of sets) for (const [k, v] of set.changes) byKey.set(k, v);
  // A node may leave out keys whose value is empty: map by key, in the order asked.
  return keys.map((k) => [k, byKey.get(k) ?? null] as const);
}

/** Reads a whole prefix into one list (for the bench's baseline and small collections). */
export async function readPrefix(rpc: RawRpc, prefix: string, at: string, pageSize = PAGE_SIZE): Promise<StoragePage> {
  const out: (readonly [string, string | null])[] = [];
  for await (const page of storagePages(rpc, prefix, at, pageSize)) out.push(...page);
  return out;
}
