#!/usr/bin/env node
/**
 * The boot image's node program (/opt/sub0/node.js), run by /init as `node.js run SETTINGS`:
 * brings the uplink up (uplink.ts), loads or creates the node's keys on the stick's state
 * partition, prints its identity, the exact registration line and its QR code, then runs the
 * agent (which waits until the broker admits it).
 * Bad or missing settings are said on the console, and the node retries (a stick configured
 * elsewhere and plugged back in, or a reboot, clears it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderUnicodeCompact } from 'uqr';
import { syncPath } from '../../overlay/atomic-file.js';
import { loadOrCreateIdentity } from '../../overlay/agent/identity.js';
import { runAgent } from '../../overlay/agent/run.js';
import { loadOrCreateNodeKey } from '../../overlay/wireguard/keys.js';
import { defaultNodeId, parseSettings, registerLine, type NetworkSettings } from '../settings.js';
import { initDone, STICK_READY } from './init-flags.js';
import { hypervisorCheck } from './hypervisor-check.js';
import { bringUp } from './uplink.js';

const STATE_DIR = '/var/lib/sub0/agent';
const RETRY_MS = 10_000;
const say = (line: string) => process.stdout.write(`sub0: ${line}\n`);

function load(file: string): NetworkSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the settings (${(e as NodeJS.ErrnoException).code ?? e}): run 'sub0 image configure usb.img --network FILE' on the stick`);
  }
  return parseSettings(text, file);
}

/** New keys reach the stick before anything else happens: a machine may lose power at any time. */
function syncDir(dir: string): void {
  for (const f of readdirSync(dir)) syncPath(join(dir, f));
  syncPath(dir);
}

async function run(file: string): Promise<void> {
  await initDone(STICK_READY, "the boot stick's partitions", say);
  let s: NetworkSettings | undefined;
  while (!s) {
    try {
      s = load(file);
    } catch (e) {
      say((e as Error).message);
      say(`retrying in ${RETRY_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  const address = await bringUp(s, say);
  const wg = loadOrCreateNodeKey(STATE_DIR);
  const id = loadOrCreateIdentity(STATE_DIR);
  if (wg.created || id.created) syncDir(STATE_DIR);
  const node = s.node ?? defaultNodeId(id.publicKeyHex);
  const line = registerLine(s, node, wg.publicKey, id.publicKeyHex, address);
  say(`${wg.created || id.created ? 'new keys made' : 'keys loaded'} (kept on the stick's state partition)`);
  say(`node ${node} of DVCI ${s.dvci} on network ${s.network}`);
  say(`wireguard key ${wg.publicKey}`);
  say(`identity key ${id.publicKeyHex}`);
  say('register this node on chain (add --suri or --multisig for the operator):');
  process.stdout.write(`  ${line}\n${renderUnicodeCompact(line, { border: 1 })}\n`);
  say(`ready: waiting to be admitted by ${s.brokers.join(', ')}`);
  await runAgent({
    broker: s.brokers,
    network: s.network,
    trust: s.controllers,
    node,
    stateDir: STATE_DIR,
    logFormat: 'text',
  }, { onRunning: () => void hypervisorCheck(say) });
}

const [cmd, file = '/mnt/esp/sub0/network.json'] = process.argv.slice(2);
try {
  if (cmd === 'run') await run(file);
  else throw new Error(`usage: node.js run SETTINGS (got ${cmd ?? 'nothing'})`);
} catch (e) {
  process.stderr.write(`sub0: ${(e as Error).message}\n`);
  process.exit(1);
}
