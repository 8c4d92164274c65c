/**
 * Reads what a broker holds retained under some topic filters, once: subscribe, collect, and stop
 * when a marker published right after the subscription comes back. Brokers send the retained
 * messages of a subscription before anything published later (Mosquitto queues them while it
 * handles the SUBSCRIBE); one that streams them lazily (aedes) may deliver some after the marker.
 * So once the marker is back the read goes on until retained messages stop coming for `quietMs`
 * (MQTT 3.1.1 has no "end of retained" signal); callers still tolerate a late one (a redundant
 * republish, a status shown as missing until next time).
 */
import { randomBytes } from 'node:crypto';
import { withDeadline } from '../deadline.js';
import type { MqttLink } from './mqtt-link.js';

/** topic -> payload of every non-empty retained message under `filters`. */
export async function readRetained(link: MqttLink, filters: readonly string[], markerTopic: string, timeoutMs: number, quietMs = 150): Promise<Map<string, Buffer>> {
  await link.waitConnected(timeoutMs);
  const held = new Map<string, Buffer>();
  const nonce = randomBytes(16).toString('hex');
  let synced: () => void = () => undefined;
  const done = new Promise<void>((r) => (synced = r));
  let marked = false;
  let quiet: NodeJS.Timeout | undefined;
  const settle = () => {
    clearTimeout(quiet);
    quiet = setTimeout(synced, quietMs);
  };
  const off = link.onMessage((topic, payload, retained) => {
    if (topic === markerTopic) {
      if (payload.toString() === nonce) {
        marked = true;
        settle();
      }
    } else if (retained) {
      if (payload.length === 0) held.delete(topic);
      else held.set(topic, payload);
      if (marked) settle();
    }
  });
  try {
    await link.subscribe([...filters, markerTopic]);
    await link.publish(markerTopic, nonce, { retain: false });
    await withDeadline(done, timeoutMs, `reading retained messages at ${link.url}`);
  } finally {
    clearTimeout(quiet);
    off();
    await link.unsubscribe([...filters, markerTopic]).catch(() => undefined);
  }
  return held;
}
