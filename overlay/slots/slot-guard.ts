/**
 * Anti-spoofing for slots: a frame from a slot's tap must carry the slot's MAC and, for IP, one of
 * the slot's own overlay addresses as its source (IPv6 link-local too: neighbour discovery needs
 * it, and it is never routed); anything else is dropped before routing. One nftables table in the
 * agent's namespace, `inet sub0_slots`: its prerouting chain (priority raw) jumps, by input
 * interface, to one small chain per tap. Both families, where the reverse-path filter covers
 * IPv4 only. Every change is one atomic `nft -f` transaction and idempotent.
 */
import { Sub0Error } from '../../fabric/errors.js';
import { run } from '../acl/exec.js';

const TABLE = 'inet sub0_slots';
const NFT_TIMEOUT_MS = 10_000;

const chainOf = (tap: string) => `g_${tap}`;

/** The table, its dispatch map and its hook: made if missing, never flushed (other taps' entries stay). */
const BASE = [
  `add table ${TABLE}`,
  `add map ${TABLE} taps { type ifname : verdict; }`,
  `add chain ${TABLE} pre { type filter hook prerouting priority raw; policy accept; }`,
  `flush chain ${TABLE} pre`,
  `add rule ${TABLE} pre iifname vmap @taps`,
];

function checkTap(tap: string): void {
  if (!/^[A-Za-z0-9_]{1,15}$/.test(tap)) throw new Sub0Error('invalid-input', `"${tap}" is not a tap name the slot guard takes`);
}

async function nft(script: string[], what: string): Promise<void> {
  const r = await run('nft', ['-f', '-'], `${script.join('\n')}\n`, NFT_TIMEOUT_MS);
  if (r.code !== 0) throw new Sub0Error('driver', `nft: cannot ${what}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** Pins tap `tap` to MAC `mac` and source addresses `ipv4`/`ipv6` (host addresses, with or without /32 and /128). */
export async function guardSlot(tap: string, mac: string, ipv4: string, ipv6: string): Promise<void> {
  checkTap(tap);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new Sub0Error('invalid-input', `"${mac}" is not a MAC address`);
  const v4 = ipv4.split('/')[0]!;
  const v6 = ipv6.split('/')[0]!;
  const c = chainOf(tap);
  await nft(
    [
      ...BASE,
      `add chain ${TABLE} ${c}`,
      `flush chain ${TABLE} ${c}`,
      `add rule ${TABLE} ${c} ether saddr != ${mac} counter drop`,
      `add rule ${TABLE} ${c} meta nfproto ipv4 ip saddr != ${v4} counter drop`,
      `add rule ${TABLE} ${c} meta nfproto ipv6 ip6 saddr != { ${v6}, fe80::/10 } counter drop`,
      `add element ${TABLE} taps { "${tap}" : jump ${c} }`,
    ],
    `guard slot tap ${tap}`,
  );
}

/** Removes tap `tap`'s guard; no error when it has none. */
export async function unguardSlot(tap: string): Promise<void> {
  checkTap(tap);
  const c = chainOf(tap);
  // Made first, so that the removal never fails on what is already gone.
  await nft([...BASE, `add chain ${TABLE} ${c}`, `add element ${TABLE} taps { "${tap}" : jump ${c} }`, `delete element ${TABLE} taps { "${tap}" }`, `delete chain ${TABLE} ${c}`], `remove the guard of slot tap ${tap}`);
}
