/**
 * Real packets between lab namespaces: ICMP with iputils' ping, TCP with small Node programs run
 * inside a node's namespace (a client bound to a slot address, an echo server, a long-lived flow
 * that reports every echo). Packets only ever go between the lab's own namespaces.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Lab } from './lab.js';

const node = process.execPath;

const TCP_CONNECT = `
const [src, dst, port, ms] = process.argv.slice(1);
const s = require('net').connect({ host: dst, port: +port, localAddress: src });
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, +ms);
s.on('connect', () => { s.write('hi\\n'); });
s.on('data', () => { clearTimeout(t); console.log('ok'); process.exit(0); });
s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(2); });`;

const ECHO_SERVER = `
const port = +process.argv[1];
const srv = require('net').createServer((c) => { c.on('error', () => {}); c.pipe(c); });
srv.listen({ port, host: '::' }, () => console.log('listening'));`;

/** Sends a line every interval ms on one connection; prints "echo" for each reply, "closed" at the end. */
const FLOW = `
const [src, dst, port, every] = process.argv.slice(1);
const s = require('net').connect({ host: dst, port: +port, localAddress: src });
s.setNoDelay(true);
s.on('connect', () => { console.log('connected'); setInterval(() => { s.write('x\\n'); console.log('sent'); }, +every); });
s.on('data', () => console.log('echo'));
s.on('error', (e) => console.log('error ' + e.code));
s.on('close', () => { console.log('closed'); process.exit(0); });`;

/** One ICMP echo from `src` to `dst` inside the node's namespace; true when answered in time. */
export function ping(lab: Lab, nodeId: string, src: string, dst: string, waitS = 1): Promise<boolean> {
  const p = lab.spawn(nodeId, 'ping', [...(dst.includes(':') ? ['-6'] : []), '-n', '-q', '-c', '1', '-W', String(waitS), '-I', src, dst], { stdio: 'ignore' });
  return new Promise((r) => p.once('exit', (code) => r(code === 0)));
}

/** Connects from `src` to `dst:port` and waits for one echoed line; true when it came in time. */
export function tcpConnect(lab: Lab, nodeId: string, src: string, dst: string, port: number, timeoutMs = 1000): Promise<boolean> {
  const p = lab.spawn(nodeId, node, ['-e', TCP_CONNECT, src, dst, String(port), String(timeoutMs)], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((r) => p.once('exit', (code) => r(code === 0)));
}

/** An echo server on every address of the node, on `port`; resolves once it listens. */
export async function echoServer(lab: Lab, nodeId: string, port: number): Promise<ChildProcess> {
  const p = lab.spawn(nodeId, node, ['-e', ECHO_SERVER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await firstLine(p, 'listening');
  return p;
}

export interface Flow {
  /** Echo replies received so far. */
  echoes(): number;
  /** Lines sent so far (one every `everyMs`, whether or not they get through). */
  sent(): number;
  /** Resolves once `echoes()` (or `sent()`) reaches `n`; rejects if the flow ends first. */
  until(what: 'echo' | 'sent', n: number): Promise<void>;
  /** performance.now() of the last echo. */
  lastEchoAt(): number;
  readonly connected: Promise<boolean>;
  stop(): void;
}

/** A long-lived TCP connection from `src` to `dst:port` that sends every `everyMs` and counts echoes. */
export function startFlow(lab: Lab, nodeId: string, src: string, dst: string, port: number, everyMs = 20): Flow {
  const p = lab.spawn(nodeId, node, ['-e', FLOW, src, dst, String(port), String(everyMs)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let echoes = 0;
  let sent = 0;
  let last = 0;
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  let resolveConnected: (ok: boolean) => void = () => undefined;
  const connected = new Promise<boolean>((r) => (resolveConnected = r));
  createInterface({ input: p.stdout! }).on('line', (l) => {
    if (l === 'connected') resolveConnected(true);
    else if (l === 'echo') {
      echoes++;
      last = performance.now();
    } else if (l === 'sent') sent++;
    else if (l === 'closed' || l.startsWith('error')) resolveConnected(false);
    wake();
  });
  p.once('exit', () => {
    ended = true;
    resolveConnected(false);
    wake();
  });
  const until = (what: 'echo' | 'sent', n: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if ((what === 'echo' ? echoes : sent) >= n) {
          waiters.delete(check);
          resolve();
        } else if (ended) {
          waiters.delete(check);
          reject(new Error(`the flow ended at ${echoes} echoes, ${sent} sent (waiting for ${n} ${what})`));
        }
      };
      waiters.add(check);
      check();
    });
  return { echoes: () => echoes, sent: () => sent, until, lastEchoAt: () => last, connected, stop: () => void p.kill('SIGKILL') };
}

function firstLine(p: ChildProcess, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: p.stdout! });
    rl.on('line', (l) => {
      if (l === want) {
        rl.close();
        resolve();
      }
    });
    p.once('exit', (code) => reject(new Error(`exited with ${code} before "${want}"`)));
  });
}

export interface PingFlow {
  /** Stops the flow; resolves with what ping counted. */
  stop(): Promise<{ sent: number; received: number; lost: number }>;
}

/** A steady ping from `src` to `dst` (every `everyMs`), counted by ping itself when stopped. */
export function startPingFlow(lab: Lab, nodeId: string, src: string, dst: string, everyMs = 20): PingFlow {
  const v6 = dst.includes(':');
  const p = lab.spawn(nodeId, 'ping', [...(v6 ? ['-6'] : ['-4']), '-n', '-q', '-i', String(everyMs / 1000), '-W', '1', '-I', src, dst], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    async stop() {
      p.kill('SIGINT'); // ping prints its summary on SIGINT
      await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      if (!m) throw new Error(`ping printed no summary: ${out.trim().slice(-200)}`);
      const sent = Number(m[1]);
      const received = Number(m[2]);
      return { sent, received, lost: sent - received };
    },
  };
}
