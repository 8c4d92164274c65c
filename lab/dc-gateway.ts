/**
 * The lab's nano data center as its nodes see it: an address on the lab's underlay (the bridge
 * namespace's 10.77.0.1) where services that run in this process's own namespace (the broker on
 * loopback) are reachable. A listening socket is created inside the bridge namespace (the thread
 * enters it for the socket() call and leaves at once), and each connection is relayed to the
 * service's loopback address. So no interface or route is ever added to the host's namespace, and
 * lab traffic stays between the lab's namespaces and loopback.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { enterNetns } from './netns.js';

export interface Forward {
  /** host:port inside the namespace, as the nodes dial it. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly close: () => Promise<void>;
}

/**
 * Listens on `host:port` inside network namespace `netns` and relays every connection to
 * `target` (reached from this process's own namespace). Closing ends the listener and every
 * relayed connection.
 */
export async function forwardIntoNetns(netns: string, host: string, port: number, target: { host: string; port: number }): Promise<Forward> {
  const open = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(target.port, target.host);
    open.add(inbound);
    open.add(outbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  const back = await enterNetns(netns);
  try {
    // With an IP literal, listen() creates and binds the socket synchronously: in `netns`.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } finally {
    back();
  }
  const a = server.address() as AddressInfo;
  return {
    listen: { host: a.address, port: a.port },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
