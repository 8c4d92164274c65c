/**
 * /init starts the node program while it still loads drivers and mounts the stick in the
 * background (Node takes seconds to start under emulation, USB enumeration as long): it leaves a
 * file under /run/sub0 when each is done, and the node program waits for the one it needs.
 */
import { existsSync } from 'node:fs';

/** The stick's ESP (settings) and state partition (keys) are mounted. */
export const STICK_READY = '/run/sub0/stick.ready';
/** Every device's driver is loaded (the NICs among them). */
export const DRIVERS_LOADED = '/run/sub0/coldplug.done';

const SAY_AFTER_MS = 10_000;
const POLL_MS = 20;

export async function initDone(flag: string, what: string, say: (line: string) => void): Promise<void> {
  const since = Date.now();
  let said = false;
  while (!existsSync(flag)) {
    if (!said && Date.now() - since > SAY_AFTER_MS) {
      said = true;
      say(`waiting for ${what}...`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
