// The shared backend suite against wireguard-go (Debian's wireguard-go), over its UAPI socket.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import t from 'tap';
import { generatePrivateKey, keyToBase64 } from '../../../overlay/wireguard/keys.js';
import { findExecutable } from '../../../overlay/wireguard/probe.js';
import { UapiBackend } from '../../../overlay/wireguard/uapi-backend.js';
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
