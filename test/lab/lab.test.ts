/**
 * The namespace lab itself: what it builds, that destroy() removes all of it (processes, UAPI
 * sockets, namespaces, mounts, files), and that a lab whose process died is swept by the next.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import t from 'tap';
import { Lab } from '../../lab/lab.js';
import { netnsExists } from '../../lab/netns.js';
import { ping } from '../../lab/traffic.js';
import { useLab } from '../helpers/netns-lab.js';

const root = `/run/sub0-labtest-${process.pid}`;
t.teardown(() => execFileSync('rm', ['-rf', root]));

t.test('nodes on one bridge reach each other over the underlay; names are unique', async (t) => {
  const lab = useLab(t, { nodes: ['a', 'b', 'c'], tag: 'lt', root });
  t.equal(new Set(lab.nodes.map((n) => n.ifname)).size, 3, 'one interface name per node');
  t.ok(lab.nodes.every((n) => n.ifname.length <= 15 && n.netns.includes(String(process.pid))), 'names fit Linux and carry our pid');
  t.ok(await ping(lab, 'a', lab.node('a').underlay, lab.node('c').underlay), 'a -> c over the bridge');
  lab.addSlotAddresses('b', ['100.96.7.7/32', 'fd00::7/128']);
  t.match(lab.exec('b', 'ip', ['addr', 'show', 'lo']), /100\.96\.7\.7\/32[\s\S]*fd00::7\/128/);
  t.ok(lab.nodes.every((n) => n.publicKey.length === 44), 'each node has its own key in its state dir');
});

t.test('destroy() removes processes, wireguard-go and its socket, namespaces, mount and files', async (t) => {
  const lab = Lab.create({ nodes: ['a'], tag: 'ld', root });
  const n = lab.node('a');
  // A wireguard-go daemon inside the lab, as an agent would leave it (detached, not our child).
  lab.exec('a', process.execPath, ['--import', 'tsx', '-e', `
    const { UapiBackend } = await import(${JSON.stringify(new URL('../../overlay/wireguard/uapi-backend.ts', import.meta.url).pathname)});
    const b = new UapiBackend({ runDir: ${JSON.stringify(n.stateDir)} });
    await b.ensureInterface(${JSON.stringify(n.ifname)}, ${JSON.stringify(Buffer.alloc(32, 7).toString('base64'))}, 51820);
    await b.close();`]);
  t.ok(existsSync(`/var/run/wireguard/${n.ifname}.sock`), 'wireguard-go runs in the lab');
  const sleeper = lab.spawn('a', 'sleep', ['600']);
  lab.destroy();
  t.notOk(existsSync(`/var/run/wireguard/${n.ifname}.sock`), 'its UAPI socket is gone');
  t.notOk(netnsExists(n.netns), 'the node namespace is gone');
  t.notOk(netnsExists(lab.bridgeNs), 'the bridge namespace is gone');
  t.notOk(existsSync(lab.dir), 'the lab dir is gone');
  t.notMatch(execFileSync('mount', { encoding: 'utf8' }), new RegExp(lab.pinDir), 'the bpffs is unmounted');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'processes inside were killed');
  lab.destroy();
  t.pass('destroy() twice is fine');
});

t.test('a lab left by a killed process is swept by the next lab', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
    const { Lab } = await import(${JSON.stringify(new URL('../../lab/lab.ts', import.meta.url).pathname)});
    const lab = Lab.create({ nodes: ['a', 'b'], tag: 'lk', root: ${JSON.stringify(root)} });
    console.log(JSON.stringify({ dir: lab.dir, ns: lab.nodes.map((n) => n.netns).concat(lab.bridgeNs) }));
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<{ dir: string; ns: string[] }>((r) => child.stdout!.once('data', (d) => r(JSON.parse(String(d)))));
  t.ok(info.ns.every(netnsExists), 'the orphan lab exists');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const next = useLab(t, { nodes: ['a'], tag: 'ln', root });
  t.ok(info.ns.every((ns) => !netnsExists(ns)), 'its namespaces were swept');
  t.notOk(existsSync(info.dir), 'its dir was swept');
  t.same(readdirSync(root), [next.id], 'only the live lab remains');
});
