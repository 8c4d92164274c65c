/**
 * The node's uplink, brought up by the node program (one Node start less at boot than doing it in
 * /init: Node takes seconds to start under emulation): the static address of the settings, or
 * DHCP on every interface (busybox udhcpc, one per interface, kept running: it retries until a
 * lease comes and renews it). Idempotent: a restarted node program finds it up.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { run } from '../../overlay/acl/exec.js';
import { isAlive, readPid } from '../../overlay/pid.js';
import type { NetworkSettings } from '../settings.js';
import { DRIVERS_LOADED, initDone } from './init-flags.js';

const WAIT_SAY_MS = 10_000;

async function ip(...args: string[]): Promise<{ ok: boolean; err: string }> {
  const r = await run('ip', args);
  return { ok: r.code === 0, err: r.stderr.trim() };
}

/** The first global IPv4 address, as `addr/len on ifname`. */
export function uplink(): { address: string; cidr: string; ifname: string } | undefined {
  for (const [ifname, list] of Object.entries(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && a.cidr) return { address: a.address, cidr: a.cidr, ifname };
  return undefined;
}

/** A udhcpc already running for the interface (an empty or stale pid file is none). */
const alive = (pidFile: string) => {
  const pid = readPid(pidFile);
  return pid !== undefined && isAlive(pid);
};

export async function bringUp(s: NetworkSettings, say: (line: string) => void): Promise<string> {
  await initDone(DRIVERS_LOADED, 'the device drivers to load', say);
  const st = s.static;
  if (st) {
    const up = await ip('link', 'set', st.interface, 'up');
    if (!up.ok) throw new Error(`static network: interface ${st.interface}: ${up.err || 'cannot bring it up'} (interfaces: ${readdirSync('/sys/class/net').join(', ')})`);
    const have = networkInterfaces()[st.interface]?.some((a) => a.cidr === st.address);
    if (!have) {
      const add = await ip('addr', 'add', st.address, 'dev', st.interface);
      if (!add.ok) throw new Error(`static network: ${st.address} on ${st.interface}: ${add.err}`);
    }
    if (st.gateway) {
      const gw = await ip('route', 'replace', 'default', 'via', st.gateway);
      if (!gw.ok) throw new Error(`static network: default route via ${st.gateway}: ${gw.err}`);
    }
    if (st.dns.length) writeFileSync('/etc/resolv.conf', st.dns.map((d) => `nameserver ${d}\n`).join(''));
    say(`network: ${st.address} on ${st.interface} (static)`);
    return st.address.split('/')[0]!;
  }
  const ifaces = readdirSync('/sys/class/net').filter((n) => n !== 'lo');
  for (const n of ifaces) {
    const pid = `/run/udhcpc.${n}.pid`;
    if (existsSync(pid) && alive(pid)) continue;
    await ip('link', 'set', n, 'up');
    const log = openSync(`/run/udhcpc.${n}.log`, 'a');
    spawn('udhcpc', ['-f', '-i', n, '-s', '/etc/sub0/udhcpc.sh', '-p', pid, '-t', '5', '-T', '2', '-A', '5'], { detached: true, stdio: ['ignore', log, log] }).unref();
  }
  let said = Date.now();
  for (let u = uplink(); ; u = uplink()) {
    if (u) {
      say(`network: ${u.cidr} on ${u.ifname} (DHCP)`);
      return u.address;
    }
    if (Date.now() - said > WAIT_SAY_MS) {
      said = Date.now();
      say(`waiting for a DHCP lease on ${ifaces.length ? ifaces.join(', ') : 'no interface: no network device has a driver (see above)'}...`);
      for (const n of ifaces) {
        const last = existsSync(`/run/udhcpc.${n}.log`) ? readFileSync(`/run/udhcpc.${n}.log`, 'utf8').trim().split('\n').at(-1) : '';
        if (last) say(`  ${n}: ${last}`);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
