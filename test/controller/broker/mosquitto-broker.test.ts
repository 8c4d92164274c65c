/**
 * The broker suite on Mosquitto (Debian's 2.0), its password and ACL files written by the
 * controller's MosquittoAdmission, seen by mosquitto_sub and mosquitto_pub.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { MosquittoAdmission } from '../../../controller/broker/mosquitto-admission.js';
import { generateSigningKey } from '../../../fabric/envelope.js';
import { Mosquitto } from '../../../lab/mosquitto.js';
import { brokerSuite, NETWORK, type Outside } from './broker-suite.js';

let m: Mosquitto;
const log = pino({ level: process.env.SUB0_TEST_LOG ?? 'silent' });
const conn = (user: string, password: string, clientId?: string) => ['-h', m.host, '-p', String(m.port), '-V', 'mqttv311', '-u', user, '-P', password, ...(clientId ? ['-i', clientId] : [])];

const outside: Outside = {
  async login(user, password, clientId) {
    const r = spawnSync('mosquitto_sub', [...conn(user, password, clientId), '-t', `sub0/${NETWORK}/probe`, '-E'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? 'ok' : 'refused';
  },
  async listen(user, password, filter, o) {
    const r = spawnSync('mosquitto_sub', [...conn(user, password), '-t', filter, '-v', '-C', String(o.count), '-W', String(Math.max(1, Math.ceil(o.ms / 1000)))], { encoding: 'utf8', timeout: o.ms + 10_000 });
    if (/Connection error/.test(r.stderr)) throw new Error(`${user} cannot log in: ${r.stderr.trim()}`);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ topic: l.slice(0, l.indexOf(' ')), payload: l.slice(l.indexOf(' ') + 1) }));
  },
  async publish(user, password, topic, payload, retain) {
    const r = spawnSync('mosquitto_pub', [...conn(user, password), '-t', topic, '-m', payload, '-q', '1', ...(retain ? ['-r'] : [])], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`mosquitto_pub: ${r.stderr.trim()}`);
  },
  async hold(user, password, filter, clientId) {
    const p = spawn('mosquitto_sub', [...conn(user, password, clientId), '-t', filter, '-v', '-q', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const got: string[] = [];
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) got.push(l.slice(l.indexOf(' ') + 1));
    });
    const dropped = new Promise<void>((r) => p.once('exit', () => r()));
    // Subscribed once the broker delivers something, or simply connected: wait for the connection.
    await new Promise((r) => setTimeout(r, 300));
    return {
      dropped,
      received: () => got,
      close: async () => {
        if (p.exitCode === null) {
          p.kill();
          await dropped;
        }
      },
    };
  },
};

brokerSuite(t, {
  foreignClientId: 'replaced',
  outside,
  async start(t) {
    const dir = mkdtempSync(join(tmpdir(), 'sub0-mosquitto-'));
    const controllerKey = generateSigningKey();
    const adminPassword = 'cd'.repeat(32);
    const admission = new MosquittoAdmission({ dir, pidFile: join(dir, 'mosquitto.pid'), controllerKey, adminPassword, log });
    // The broker refuses to start without its files: write them (the controller alone) first.
    await new MosquittoAdmission({ dir, controllerKey, adminPassword, log }).admit(NETWORK, new Map());
    m = await Mosquitto.start({ dir });
    t.teardown(async () => {
      await m.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    return { admission, controllerKey, adminPassword };
  },
});
