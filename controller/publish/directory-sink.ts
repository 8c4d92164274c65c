/** A ConfigSink on a directory: `<dir>/<node>.json`, each replaced whole (writeFileAtomic). */
import { readdir, readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../../overlay/atomic-file.js';
import { join } from 'node:path';
import type { NodeId } from '../../fabric/schema.js';
import type { ConfigSink } from './config-sink.js';

export class DirectorySink implements ConfigSink {
  constructor(readonly dir: string) {}

  path(node: NodeId): string {
    return join(this.dir, `${node}.json`);
  }

  async publish(node: NodeId, wire: string): Promise<void> {
    writeFileAtomic(this.path(node), wire, { mode: 0o644 });
  }

  async withdraw(node: NodeId): Promise<void> {
    await rm(this.path(node), { force: true });
  }

  async current(): Promise<ReadonlyMap<NodeId, string>> {
    const out = new Map<NodeId, string>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      out.set(name.slice(0, -'.json'.length), await readFile(join(this.dir, name), 'utf8'));
    }
    return out;
  }
}
