/**
 * `sub0 lab up|down|ping|exec`: the whole system on this machine (lab/control-lab.ts), as the
 * README's first command. `up` shows each start-up step, then what to try next, and stays up
 * until Ctrl-C or `sub0 lab down` (or, with --detach, runs in the background); either way it
 * removes everything it made when it stops.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Sub0Error } from '../fabric/errors.js';
import { verifyConfig } from '../fabric/signing.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { labHome, sub0Home } from '../controller/chain/home.js';
import { ACCEPTED_FILE } from '../overlay/agent/config-gate.js';
import { pino } from 'pino';
import { ControlLab, LAB_NETWORK } from '../lab/control-lab.js';
import { Lab } from '../lab/lab.js';
import { readLabRecord, removeLabRecord, runningLab, writeLabRecord, type LabRecord } from '../lab/lab-record.js';
import { netnsPath } from '../lab/netns.js';
import { REPO, sub0Program } from '../lab/programs.js';
import { action, printJson } from './output.js';
import { buildSlotImage, type SlotImage } from '../bootimage/build/slot-image.js';
import { defaultImageCache } from '../bootimage/paths.js';
import { OpsConsole } from '../lab/ops-console.js';
import { slotFiles } from '../overlay/slots/slot-vm.js';

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('a whole sub0 network on this machine: chain, broker, controller, nodes in network namespaces');

  lab
    .command('up')
    .description('start the lab and keep it up until Ctrl-C or `sub0 lab down` (needs root)')
    .option('--nodes <n>', 'how many nodes', '3')
    .option('--broker <kind>', 'embedded (aedes in the controller) or mosquitto', 'embedded')
    .option('--vm-slots', 'run the slots as VMs (QEMU) booting a small test image built first, instead of addresses on each node')
    .option('--detach', 'run in the background; `sub0 lab down` stops it')
    .action(action(async (o: { nodes: string; broker: string; vmSlots?: boolean; detach?: boolean }) => {
      const nodes = Number(o.nodes);
      if (!/^\d{1,3}$/.test(o.nodes) || nodes < 1 || nodes > 200) throw new Sub0Error('invalid-input', `--nodes must be 1 to 200, got "${o.nodes}"`);
      if (o.broker !== 'embedded' && o.broker !== 'mosquitto') throw new Sub0Error('invalid-input', `--broker must be embedded or mosquitto, got "${o.broker}"`);
      preflight(o.broker, !!o.vmSlots);
      const prior = readLabRecord();
      if (prior?.live) throw new Sub0Error('invalid-input', `a lab is already up (pid ${prior.record.pid}): \`sub0 lab down\` first`);
      if (o.detach) return detach(nodes, o.broker, !!o.vmSlots);
      await up(nodes, o.broker, !!o.vmSlots);
    }));

  lab
    .command('down')
    .description('stop the lab and remove everything it made')
    .action(action(async () => {
      const r = readLabRecord();
      if (r?.live) {
        process.kill(r.record.pid, 'SIGTERM');
        const until = Date.now() + 60_000;
        while (readLabRecord()?.live && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
        if (readLabRecord()?.live) throw new Sub0Error('timeout', `the lab (pid ${r.record.pid}) did not stop in 60 s`);
      }
      // A lab that died leaves namespaces and processes: the sweep removes them.
      Lab.sweepStale();
      removeLabRecord();
      process.stdout.write(r ? 'lab stopped; everything it made is removed\n' : 'no lab was running\n');
    }));

  lab
    .command('ping')
    .description('ping from a slot (or node) to a slot (or node) across the mesh, e.g. `sub0 lab ping web-1 rpc-1`')
    .argument('<from>', 'slot or node id')
    .argument('<to>', 'slot or node id')
    .option('-6', 'over IPv6')
    .option('-c, --count <n>', 'echo requests', '3')
    .action(action(async (from: string, to: string, o: { 6?: boolean; count: string }) => {
      const rec = runningLab();
      const a = locate(rec, from);
      const b = locate(rec, to);
      const fam = o[6] ? 'v6' : 'v4';
      const count = String(Math.min(100, Number(o.count) || 3));
      let code: number;
      if (a.vm) {
        // From inside the slot's VM: typed on its out-of-band console.
        process.stdout.write(`${from} (${a[fam]}, a VM on ${a.node}) -> ${to} (${b[fam]} on ${b.node})\n`);
        const c = await OpsConsole.open(a.vm);
        try {
          await c.ready(10_000);
          const r = await c.run(`ping ${o[6] ? '-6 ' : ''}-c ${count} -W 2 ${b[fam]}`, 10_000 + 2_000 * Number(count));
          process.stdout.write(r.output.endsWith('\n') || !r.output ? r.output : `${r.output}\n`);
          code = r.code;
        } finally {
          c.close();
        }
      } else {
        const args = ['ping', ...(o[6] ? ['-6'] : []), '-n', '-c', count, '-W', '1', '-I', a[fam], b[fam]];
        process.stdout.write(`${from} (${a[fam]} on ${a.node}) -> ${to} (${b[fam]} on ${b.node})\n`);
        code = spawnSync('nsenter', [`--net=${netnsPath(nodeOf(rec, a.node).netns)}`, '--', ...args], { stdio: 'inherit' }).status ?? 1;
      }
      if (code !== 0) process.stdout.write('no answer: the ACL drops what no rule allows (`sub0 chain snapshot` lists the rules)\n');
      process.exitCode = code;
    }));

  lab
    .command('exec')
    .description('run a command in a node\'s network namespace, e.g. `sub0 lab exec n1 -- wg show`')
    .argument('<node>', 'node id')
    .argument('<command...>', 'the command and its arguments')
    .action(action((node: string, command: string[]) => {
      const rec = runningLab();
      const r = spawnSync('nsenter', [`--net=${netnsPath(nodeOf(rec, node).netns)}`, '--', ...command], { stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
    }));

  lab
    .command('show')
    .description('the running lab: chain, broker, nodes')
    .option('--json', 'machine-readable output')
    .action(action((o: { json?: boolean }) => {
      const rec = runningLab();
      if (o.json) return printJson(rec);
      process.stdout.write(summary(rec));
    }));
}

function nodeOf(rec: LabRecord, id: string): LabRecord['nodes'][number] {
  const n = rec.nodes.find((x) => x.id === id);
  if (!n) throw new Sub0Error('not-found', `no lab node "${id}" (nodes: ${rec.nodes.map((x) => x.id).join(', ')})`);
  return n;
}

/**
 * A slot's (or a node's own overlay) addresses, from the config its node accepted; for a slot
 * that runs as a VM, its console too.
 */
function locate(rec: LabRecord, id: string): { node: string; v4: string; v6: string; vm?: string } {
  const trusted = [hexToBytes(rec.controllerKey)];
  const host = (c: string) => c.slice(0, c.indexOf('/'));
  for (const n of rec.nodes) {
    let config;
    try {
      config = verifyConfig(readFileSync(join(n.stateDir, ACCEPTED_FILE)), trusted).config;
    } catch {
      continue;
    }
    if (n.id === id) {
      const v4 = config.interface.addresses.find((a) => !a.includes(':'));
      const v6 = config.interface.addresses.find((a) => a.includes(':'));
      if (v4 && v6) return { node: n.id, v4: host(v4), v6: host(v6) };
    }
    const s = config.slots.find((x) => x.id === id);
    if (s) {
      const ops = slotFiles(join(n.stateDir, 'slots'), s.id).ops;
      return { node: n.id, v4: host(s.ipv4), v6: host(s.ipv6), ...(rec.vmSlots ? { vm: ops } : {}) };
    }
  }
  throw new Sub0Error('not-found', `"${id}" is neither a slot running on a lab node nor a lab node`);
}

/** What `lab up` needs from the machine, checked before anything is created. */
function preflight(broker: string, vmSlots: boolean): void {
  if (process.getuid?.() !== 0) throw new Sub0Error('permission', 'the lab creates network namespaces and WireGuard interfaces: run it as root');
  const missing = ['ip', 'nsenter', 'ping', ...(broker === 'mosquitto' ? ['mosquitto'] : []), ...(vmSlots ? ['qemu-system-x86_64', 'dpkg-deb', 'apt-get'] : [])].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  const wg = existsSync('/sys/module/wireguard') || spawnSync('sh', ['-c', 'command -v wireguard-go']).status === 0;
  if (!wg) missing.push('wireguard-go (or the wireguard kernel module)');
  if (missing.length) throw new Sub0Error('unsupported', `missing: ${missing.join(', ')} (bash scripts/setup.sh installs them)`);
}

async function up(nodes: number, broker: 'embedded' | 'mosquitto', vmSlots: boolean): Promise<void> {
  const home = labHome(sub0Home());
  mkdirSync(home, { recursive: true });
  const logFile = join(home, 'lab.log');
  // The lab's own logs (chain, controller, broker) go to a file; the terminal shows the steps.
  const log = pino({ level: 'info', base: { name: 'sub0-lab' } }, pino.destination({ dest: logFile, sync: true }));
  const t0 = Date.now();
  let step = 0;
  const progress = (line: string) => process.stdout.write(`[lab ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${++step}. ${line}\n`);
  process.stdout.write(`Starting a sub0 lab with ${nodes} node(s)${vmSlots ? ', slots as VMs' : ''}; its logs go to ${logFile}\n`);
  let lab: ControlLab | undefined;
  let stopping = false;
  const teardown = async () => {
    await lab?.destroy();
    removeLabRecord();
    process.stdout.write('lab stopped; everything it made is removed.\n');
    process.exit(0);
  };
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${why}: stopping the lab...\n`);
    if (lab) void teardown(); // still starting: up() tears down once the start returns
  };
  process.on('SIGINT', () => stop('Ctrl-C'));
  process.on('SIGTERM', () => stop('asked to stop'));
  writeLabRecord({ ...placeholder(), pid: process.pid });
  try {
    let image: SlotImage | undefined;
    if (vmSlots) {
      const cache = defaultImageCache();
      progress(`the test slot image (Debian's kernel, busybox; inputs cached in ${cache})`);
      image = await buildSlotImage({ out: join(home, 'slot-image'), cache });
    }
    if (!stopping) lab = await ControlLab.start({ home, nodes, broker, log, progress, ...(image ? { vmSlots: image } : {}) });
  } catch (e) {
    removeLabRecord();
    throw e;
  }
  if (stopping || !lab) return teardown();
  const rec: LabRecord = {
    pid: process.pid,
    ready: true,
    network: LAB_NETWORK,
    chain: { endpoint: lab.chain.endpoint, registry: lab.chain.registry },
    broker: { url: lab.brokerUrl, nodeUrl: lab.nodeBrokerUrl, kind: broker },
    controllerDir: lab.controllerDir,
    controllerKey: lab.controllerKeyHex,
    nodes: lab.nodes.map((n) => ({ id: n.id, netns: n.netns, ifname: n.ifname, stateDir: n.stateDir, underlay: n.underlay })),
    vmSlots,
  };
  writeLabRecord(rec);
  process.stdout.write(`\nThe lab is up (${((Date.now() - t0) / 1000).toFixed(1)} s).\n${summary(rec)}\n${nextSteps(lab, vmSlots)}`);
  await new Promise(() => undefined); // until a signal
}

/** The record of a lab still starting: it says a lab runs (so a second one is refused). */
function placeholder(): LabRecord {
  return { pid: process.pid, ready: false, network: LAB_NETWORK, chain: { endpoint: '', registry: '' }, broker: { url: '', nodeUrl: '', kind: 'embedded' }, controllerDir: '', controllerKey: '', nodes: [] };
}

function summary(rec: LabRecord): string {
  return [
    `  chain        ${rec.chain.endpoint} (registry ${rec.chain.registry}, network "${rec.network}")`,
    `  broker       ${rec.broker.url} (${rec.broker.kind}); nodes reach it at ${rec.broker.nodeUrl}`,
    `  controller   key ${rec.controllerKey.slice(0, 16)}…, state in ${rec.controllerDir}`,
    `  nodes        ${rec.nodes.map((n) => `${n.id} (${n.underlay})`).join(', ')}`,
    ...(rec.vmSlots ? ['  slots        VMs run by their nodes\' agents (QEMU), consoles in <node state>/slots/<slot>/'] : []),
    '',
  ].join('\n');
}

function nextSteps(lab: ControlLab, vmSlots: boolean): string {
  const slots = lab.nodes.length >= 3 ? ['web-1', 'rpc-1', 'db-1'] : undefined;
  const lines = ['Try this next (in another terminal):', `  sub0 mesh status                      nodes, applied config, handshakes, ACL entries${vmSlots ? ', slot VMs' : ''}`];
  if (vmSlots) lines.push(`  sub0 slot status --state-dir ${lab.node('n1').stateDir}   n1's VMs: phase, uptime, restarts`);
  if (slots) {
    lines.push(
      `  sub0 lab ping ${slots[0]} ${slots[1]}              allowed by rule ping-rpc: it answers${vmSlots ? ' (typed inside the web-1 VM)' : ''}`,
      `  sub0 lab ping ${slots[0]} ${slots[2]}               no rule allows it: dropped`,
      `  sub0 acl allow web-db --from slot:${slots[0]} --to slot:${slots[2]} --proto icmp --suri //Alice`,
      `  sub0 lab ping ${slots[0]} ${slots[2]}               now it answers (the rule is on chain, enforced on n1 and n3 only)`,
      '  sub0 acl revoke web-db --suri //Alice',
      '  sub0 audit n1                         each rule n1 enforces, with the transaction behind it',
    );
  } else lines.push('  sub0 lab ping n1 n2                   node to node across the WireGuard mesh');
  lines.push(
    '  sub0 node quarantine n2 --suri //Alice  cut n2 off: its peers drop it (the gatekeeper does this to a silent node)',
    '  sub0 node readmit n2 --suri //Alice     and take it back',
  );
  lines.push('  sub0 chain snapshot                   what the chain holds', '  sub0 lab down                         (or Ctrl-C here) stops it and removes everything', '');
  return lines.join('\n');
}

/** Starts `sub0 lab up` in the background, shows its progress, returns once it is up. */
async function detach(nodes: number, broker: string, vmSlots: boolean): Promise<void> {
  const home = labHome(sub0Home());
  mkdirSync(home, { recursive: true });
  const out = join(home, 'lab.out');
  const fd = openSync(out, 'w');
  const [cmd, ...pre] = sub0Program();
  const child = spawn(cmd!, [...pre, 'lab', 'up', '--nodes', String(nodes), '--broker', broker, ...(vmSlots ? ['--vm-slots'] : [])], { cwd: REPO, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  let shown = 0;
  const show = () => {
    const text = readFileSync(out, 'utf8');
    process.stdout.write(text.slice(shown));
    shown = text.length;
  };
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  for (;;) {
    show();
    const r = readLabRecord();
    if (r?.live && r.record.ready && r.record.pid === child.pid) break;
    if (exited !== undefined) throw new Sub0Error('driver', `the lab did not start (exit ${exited}); see ${out}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  // The next steps are printed last by the lab itself: wait for them.
  while (!readFileSync(out, 'utf8').includes('sub0 lab down')) await new Promise((res) => setTimeout(res, 50));
  show();
  process.stdout.write(`(running in the background as pid ${child.pid}; its output goes to ${out}, ${statSync(out).size} bytes so far)\n`);
  process.exit(0);
}
