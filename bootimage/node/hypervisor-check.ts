/**
 * Says on the console whether this node can run slots: QEMU starts from the stick's sub0-sys
 * partition (its version), and whether the machine offers KVM or slots run emulated (TCG).
 * Once the agent runs, at the lowest CPU priority: a QEMU start costs seconds under emulation,
 * and the node's joining must not wait for it.
 */
import { run } from '../../overlay/acl/exec.js';
import { realKvm } from '../../overlay/slots/slot-net.js';

const QEMU = 'qemu-system-x86_64';

export async function hypervisorCheck(say: (line: string) => void): Promise<void> {
  const r = await run(QEMU, ['--version'], undefined, 60_000, 19).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (r.code !== 0) {
    say(`hypervisor: QEMU does not start (${(r.stderr || r.stdout).trim().split('\n')[0] ?? `exit ${r.code}`}): slots cannot run`);
    return;
  }
  const version = r.stdout.split('\n')[0]!.trim();
  const kvm = realKvm();
  say(`hypervisor: ${version}; ${kvm ? 'KVM available' : 'no KVM on this machine: slots run emulated (TCG)'}`);
}
