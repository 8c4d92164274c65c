/** A ConfigSink on a directory: `<dir>/<node>.signed`, each replaced whole (writeFileAtomic). */
import { readdir, readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../../overlay/atomic-file.js';
import { join } from 'node:path';
import type { NodeId } from '../../fabric/schema.js';
import type { ConfigSink } from './config-sink.js';

const EXT = '.signed';

export class DirectorySink implements ConfigSink {
  constructor(readonly dir: string) {}

  path(node: NodeId): string {
    return join(this.dir, `${node}${EXT}`);
  }

  async publish(node: NodeId, wire: Uint8Array): Promise<void> {
    writeFileAtomic(this.path(node), wire, { mode: 0o644 });
  }

  async withdraw(node: NodeId): Promise<void> {
    await rm(this.path(node), { force: true });
  }

  async current(): Promise<ReadonlyMap<NodeId, Uint8Array>> {
    const out = new Map<NodeId, Uint8Array>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (!name.endsWith(EXT) || name.startsWith('.')) continue;
      out.set(name.slice(0, -EXT.length), await readFile(join(this.dir, name)));
    }
    return out;
  }
}
