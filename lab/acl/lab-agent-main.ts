/**
 * The process the ACL tests and benchmarks run inside a lab namespace (spawned by lab-agent.ts
 * through `nsenter --net=`): it holds an ACL driver and small TCP/UDP echo endpoints, and answers
 * one JSON command per stdin line with one JSON line on stdout. The driver acts in the netns of its
 * process, which is why it has to live here rather than in the test process.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { createAclDriver, type SelectedAclDriver } from '../../overlay/acl/index.js';

type Args = Record<string, unknown>;
let driver: SelectedAclDriver | undefined;
const servers: (Server | UdpSocket)[] = [];
const conns = new Map<number, Socket>();
let nextConn = 1;

function need(): SelectedAclDriver {
  if (!driver) throw new Error('no driver: send create first');
  return driver;
}

/** Resolves true once `sock` gets data back within `ms`, false otherwise. */
function echoOnce(sock: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(ok);
    };
    const onData = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    sock.on('data', onData);
    sock.write('ping');
  });
}

function connect(host: string, port: number, ms: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(undefined);
    }, ms);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

const handlers: Record<string, (a: Args) => Promise<unknown>> = {
  async create(a) {
    driver = await createAclDriver(a as Parameters<typeof createAclDriver>[0]);
    return { kind: driver.kind, fallbackReason: driver.fallbackReason };
  },
  attach: async (a) => need().attach(a.ifname as string, a.guarded as string[]),
  apply: async (a) => need().apply(a.ops as never),
  observe: async (a) => [...(await need().observe({ fresh: a.fresh === true, ...(Array.isArray(a.keys) ? { keys: a.keys as string[] } : {}) })).entries()],
  destroy: async () => need().destroy(),
  async listen(a) {
    const srv = createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('error', () => {});
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen({ port: a.port as number, host: '::', ipv6Only: false }, r));
  },
  async listenUdp(a) {
    for (const type of ['udp4', 'udp6'] as const) {
      const s = createSocket({ type, ipv6Only: type === 'udp6' });
      s.on('message', (m, from) => s.send(m, from.port, from.address));
      servers.push(s);
      await new Promise<void>((r) => s.bind(a.port as number, r));
    }
  },
  async connect(a) {
    const s = await connect(a.host as string, a.port as number, (a.timeoutMs as number) ?? 1000);
    if (!s) return false;
    const ok = await echoOnce(s, (a.timeoutMs as number) ?? 1000);
    s.destroy();
    return ok;
  },
  async open(a) {
    const s = await connect(a.host as string, a.port as number, (a.timeoutMs as number) ?? 1000);
    if (!s) return null;
    s.on('error', () => {});
    const id = nextConn++;
    conns.set(id, s);
    return id;
  },
  async echo(a) {
    const s = conns.get(a.id as number);
    return s ? echoOnce(s, (a.timeoutMs as number) ?? 1000) : false;
  },
  async udp(a) {
    const host = a.host as string;
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    try {
      return await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), (a.timeoutMs as number) ?? 1000);
        s.on('message', () => {
          clearTimeout(timer);
          resolve(true);
        });
        s.send('ping', a.port as number, host);
      });
    } finally {
      s.close();
    }
  },
  /**
   * Applies `ops` while probing host:port over UDP every millisecond (from just before the apply);
   * resolves with the ms from the start of the apply to the first echo, or null on timeout.
   */
  async timeToEnforce(a) {
    const host = a.host as string;
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const t0 = performance.now();
    try {
      // The first echo may come before apply() returns (the kernel took the change, the driver
      // still finishing): the answer waits for both, so that no later call overlaps this apply.
      let stop: (v: number | null) => void = () => {};
      const first = new Promise<number | null>((resolve) => {
        const probe = setInterval(() => s.send('probe', a.port as number, host), 1);
        const timer = setTimeout(() => stop(null), (a.timeoutMs as number) ?? 2000);
        stop = (v) => {
          clearInterval(probe);
          clearTimeout(timer);
          resolve(v);
        };
        s.on('message', () => stop(performance.now() - t0));
        s.send('probe', a.port as number, host);
      });
      const applied = need()
        .apply(a.ops as never)
        .catch((e: unknown) => {
          stop(null);
          throw e;
        });
      const [ms] = await Promise.all([first, applied]);
      return ms;
    } finally {
      s.close();
    }
  },
  async exit() {
    for (const c of conns.values()) c.destroy();
    for (const s of servers) s.close();
    setImmediate(() => process.exit(0));
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const { id, cmd, args } = JSON.parse(line) as { id: number; cmd: string; args: Args };
  const h = handlers[cmd];
  const reply = (o: object) => process.stdout.write(JSON.stringify({ id, ...o }) + '\n');
  if (!h) return reply({ ok: false, error: { code: 'invalid-input', message: `unknown command ${cmd}` } });
  h(args ?? {}).then(
    (value) => reply({ ok: true, value: value ?? null }),
    (e: unknown) => reply({ ok: false, error: { code: (e as { code?: string }).code ?? 'internal', message: (e as Error).message } }),
  );
});
rl.on('close', () => process.exit(0));
