// The shared backend suite against wireguard-go (Debian's wireguard-go), over its UAPI socket.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generatePrivateKey, keyToBase64 } from '../../../overlay/wireguard/keys.js';
import { findExecutable } from '../../../overlay/wireguard/probe.js';
import { UapiBackend } from '../../../overlay/wireguard/uapi-backend.js';
import { UapiConnection } from '../../../overlay/wireguard/uapi-connection.js';
import { parseGet } from '../../../overlay/wireguard/uapi-protocol.js';
import type { PeerOp } from '../../../overlay/drivers.js';
import { useOwnNetns } from '../../helpers/netns-lab.js';
import { backendSuite } from './backend-suite.js';

const ifname = `s0u${process.pid.toString(36)}`;
const runDir = `/run/sub0-test-${process.pid}`;

if (!findExecutable('wireguard-go')) {
  t.fail('wireguard-go is not installed (Debian: apt-get install wireguard-go); the UAPI backend cannot be tested');
} else {
  await useOwnNetns(t, 'wgu');
  t.teardown(() => rmSync(runDir, { recursive: true, force: true })); // after the namespace's processes are gone
  backendSuite(t, { ifname, open: async () => new UapiBackend({ runDir }) });

  t.test('wireguard-go outlives a closed backend, and a new backend drives the same daemon', async (t) => {
    const name = `${ifname}b`;
    const pidOf = () => Number(readFileSync(`${runDir}/wireguard-go-${name}.pid`, 'utf8'));
    const priv = keyToBase64(generatePrivateKey());
    const a = new UapiBackend({ runDir });
    await a.ensureInterface(name, priv, 51830);
    const pid = pidOf();
    await a.close();
    t.ok(existsSync(`/var/run/wireguard/${name}.sock`), 'socket still there after close');
    const b = new UapiBackend({ runDir });
    await b.ensureInterface(name, priv, 51830);
    t.equal(pidOf(), pid, 'same daemon: not respawned');
    await b.deleteInterface(name);
    t.notOk(existsSync(`/var/run/wireguard/${name}.sock`), 'socket removed with the daemon');
    await b.close();
  });

  t.test('wireguard-go dies mid-transaction: the apply fails with a coded error; the next ensure starts it again and the apply converges', async (t) => {
    const name = `${ifname}d`;
    const pidOf = () => Number(readFileSync(`${runDir}/wireguard-go-${name}.pid`, 'utf8'));
    const priv = keyToBase64(generatePrivateKey());
    const b = new UapiBackend({ runDir });
    t.teardown(async () => {
      await b.deleteInterface(name).catch(() => undefined);
      await b.close();
    });
    await b.ensureInterface(name, priv, 51832);
    const first = pidOf();
    const ops: PeerOp[] = Array.from({ length: 3000 }, (_, i) => ({ op: 'peer-add', peer: { publicKey: keyToBase64(generatePrivateKey()), endpoints: [`198.18.${i >> 8}.${i & 255}:51820`], allowedIps: [`100.66.${i >> 8}.${i & 255}/32`], keepalive: 0 } }));
    const applying = b.apply(name, ops);
    process.kill(first, 'SIGKILL'); // while it reads the transaction
    await t.rejects(applying, { code: 'driver' }, 'the apply fails with the driver code (the socket closed under it)');
    await b.ensureInterface(name, priv, 51832);
    t.not(pidOf(), first, 'a new wireguard-go');
    await b.apply(name, ops);
    t.equal((await b.observe(name)).peers.size, 3000, 'and the same transaction, sent again, converges');
  });

  t.test('a UAPI socket that stalls mid-reply: the request times out, the connection is dropped, a new one works', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sub0-uapi-stall-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'stall.sock');
    let stall = true;
    const server = createServer((c) => {
      c.on('data', () => {
        c.write('private_key=' + 'a'.repeat(64) + '\nlisten_port=51820\n'); // half a reply...
        if (!stall) c.write('errno=0\n\n'); // ...then, once the fault is gone, its end
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    t.teardown(() => server.close());
    const conn = await UapiConnection.connect(path, 300);
    await t.rejects(conn.request('get=1\n\n'), { code: 'timeout', message: /no UAPI reply within 300 ms/ }, 'a reply that never ends is a timeout');
    t.notOk(conn.alive, 'the connection is dropped (its stream is out of step)');
    await t.rejects(conn.request('get=1\n\n'), { code: 'timeout' }, 'and refuses further requests with the same error');
    stall = false;
    const again = await UapiConnection.connect(path, 300);
    t.equal(parseGet(await again.request('get=1\n\n')).listenPort, 51820, 'once the fault is gone, a new connection gets whole replies');
    again.close();
  });

  t.test('a UAPI socket whose interface lives in another namespace is refused', async (t) => {
    // The socket of the suite's own device is global; pretend it is foreign by asking for it
    // from a namespace where that interface does not exist.
    const name = `${ifname}c`;
    const a = new UapiBackend({ runDir });
    await a.ensureInterface(name, keyToBase64(generatePrivateKey()), 51831);
    const { createNetns, deleteNetns, enterNetns } = await import('../../../lab/netns.js');
    const other = `s0-wguo-${process.pid}`;
    createNetns(other);
    const back = await enterNetns(other);
    const b = new UapiBackend({ runDir });
    try {
      await t.rejects(b.ensureInterface(name, keyToBase64(generatePrivateKey()), 51831), /another network namespace/);
    } finally {
      await b.close();
      back();
      deleteNetns(other);
    }
    await a.deleteInterface(name);
    await a.close();
  });
}
