/**
 * The embedded broker's thread (embedded-broker.ts starts it): an AedesBroker, driven by messages
 * from the controller's thread: listen, admit, close. Its logs go back to that thread as pino
 * lines, so the controller's logger writes them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { signingKeyFromSecret } from '../../fabric/envelope.js';
import { AedesBroker } from './aedes-broker.js';

export interface WorkerInit {
  readonly controllerSecretHex: string;
  readonly adminPassword: string;
  readonly level: string;
}

export type WorkerRequest =
  | { readonly id: number; readonly op: 'listen'; readonly host: string; readonly port: number }
  | { readonly id: number; readonly op: 'admit'; readonly network: string; readonly nodes: readonly (readonly [string, string])[] }
  | { readonly id: number; readonly op: 'close' };

export type WorkerResult = { readonly id: number; readonly ok: true; readonly value?: unknown } | { readonly id: number; readonly ok: false; readonly error: string };
export type WorkerReply = WorkerResult | { readonly log: string };

const port = parentPort!;
const init = workerData as WorkerInit;
const log = pino({ level: init.level }, { write: (line: string) => port.postMessage({ log: line } satisfies WorkerReply) });
const broker = await AedesBroker.start({ controllerKey: signingKeyFromSecret(init.controllerSecretHex), adminPassword: init.adminPassword, log });

port.on('message', async (m: WorkerRequest) => {
  try {
    let value: unknown;
    if (m.op === 'listen') value = await broker.listen(m.host, m.port);
    else if (m.op === 'admit') await broker.admit(m.network, new Map(m.nodes));
    else await broker.close();
    port.postMessage({ id: m.id, ok: true, value } satisfies WorkerReply);
    if (m.op === 'close') port.close();
  } catch (e) {
    port.postMessage({ id: m.id, ok: false, error: (e as Error).message } satisfies WorkerReply);
  }
});
port.postMessage({ id: 0, ok: true } satisfies WorkerReply);
