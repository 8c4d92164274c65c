/**
 * Test wrappers around overlay/lab: every namespace, process and socket a test creates is torn
 * down in t.teardown, and again on process exit (a test that throws, times out or is interrupted
 * still cleans up). Namespaces carry the test process's pid; leftovers of dead runs are swept.
 */
import type { Test } from 'tap';
import { Lab, type LabOptions } from '../../lab/lab.js';
import { LabMesh } from '../../lab/lab-mesh.js';
import { createNetns, deleteNetns, enterNetns, netnsPids, sweepStaleNetns } from '../../lab/netns.js';

const cleanups = new Set<() => void>();
let hooked = false;

function onExit(fn: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of cleanups) c();
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        for (const c of cleanups) c();
        process.exit(130);
      });
    }
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** A lab torn down when the test ends (pass or fail). */
export function useLab(t: Test, opts: LabOptions): Lab {
  const lab = Lab.create(opts);
  const forget = onExit(() => lab.destroy());
  t.teardown(() => {
    lab.destroy();
    forget();
  });
  return lab;
}

export function useMesh(t: Test, opts: LabOptions): LabMesh {
  return new LabMesh(useLab(t, opts));
}

/**
 * A fresh namespace that this test process itself moves into (setns on the main thread), for
 * driving drivers in-process. On teardown: back to the original namespace, every process inside
 * killed, the namespace deleted.
 */
export async function useOwnNetns(t: Test, tag: string): Promise<string> {
  const name = `s0-${tag}-${process.pid}`;
  sweepStaleNetns();
  deleteNetns(name);
  createNetns(name);
  const back = await enterNetns(name);
  const cleanup = () => {
    back();
    // SIGTERM first: wireguard-go removes its UAPI socket when it exits cleanly.
    const kill = (sig: NodeJS.Signals) => {
      const pids = netnsPids(name).filter((p) => p !== process.pid);
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          /* gone */
        }
      }
      return pids.length;
    };
    if (kill('SIGTERM') > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    kill('SIGKILL');
    deleteNetns(name);
  };
  const forget = onExit(cleanup);
  t.teardown(() => {
    cleanup();
    forget();
  });
  return name;
}
