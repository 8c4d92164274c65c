/**
 * The 3-node mesh the lab tests share: n1 hosts web-1, n2 rpc-1, n3 db-1, one agent per node
 * namespace, configs compiled by fabric from a snapshot built here (real node keys, lab
 * endpoints). Echo servers listen on every node for the TCP checks.
 */
import type { Test } from 'tap';
import type { NodeConfig } from '../../../fabric/node-config.js';
import type { LabMesh, MeshSpec, RuleSpec } from '../../../lab/lab-mesh.js';
import { echoServer } from '../../../lab/traffic.js';
import { useMesh } from '../../helpers/netns-lab.js';

export const SLOTS = [
  { id: 'web-1', node: 'n1', groups: ['web'] },
  { id: 'rpc-1', node: 'n2', groups: ['rpc'] },
  { id: 'db-1', node: 'n3', groups: ['db'] },
] as const;

export const RULES: readonly RuleSpec[] = [
  { id: 'web-to-rpc', from: 'group:web', to: 'group:rpc', proto: 'tcp', ports: ['9944'] },
  { id: 'rpc-to-db', from: 'slot:rpc-1', to: 'slot:db-1', proto: 'tcp', ports: ['5432'] },
  { id: 'ping-rpc', from: 'slot:web-1', to: 'slot:rpc-1', proto: 'icmp' },
];

/** Every node listens on these (TCP echo), whether a rule allows them or not. */
export const PORTS: Readonly<Record<string, readonly number[]>> = { n1: [8080], n2: [9944, 9945], n3: [5432] };

export interface Fixture {
  readonly mesh: LabMesh;
  /** Publishes a spec (slots default to SLOTS) and waits until every node converged to it. */
  converge(spec: Omit<MeshSpec, 'slots'> & { slots?: MeshSpec['slots'] }): Promise<ReadonlyMap<string, NodeConfig>>;
  /** A slot's host addresses: { v4, v6 } without prefix length. */
  slot(id: string): { v4: string; v6: string; node: string };
  /** A node's own overlay addresses. */
  nodeAddr(id: string): { v4: string; v6: string };
}

export async function meshFixture(t: Test, tag: string): Promise<Fixture> {
  const mesh = useMesh(t, { nodes: ['n1', 'n2', 'n3'], tag });
  let last: ReadonlyMap<string, NodeConfig> | undefined;
  const converge: Fixture['converge'] = async (spec) => {
    const configs = mesh.publish({ slots: SLOTS, ...spec });
    await mesh.waitAll(configs, 20_000);
    last = configs;
    return configs;
  };
  const host = (c: string) => c.slice(0, c.indexOf('/'));
  const fx: Fixture = {
    mesh,
    converge,
    slot(id) {
      for (const [node, c] of last!) {
        const s = c.slots.find((x) => x.id === id);
        if (s) return { v4: host(s.ipv4), v6: host(s.ipv6), node };
      }
      throw new Error(`slot ${id} is not placed`);
    },
    nodeAddr(id) {
      const a = last!.get(id)!.interface.addresses;
      return { v4: host(a.find((x) => !x.includes(':'))!), v6: host(a.find((x) => x.includes(':'))!) };
    },
  };
  const first = mesh.publish({ block: 10, slots: SLOTS, rules: RULES });
  for (const n of mesh.lab.nodes) mesh.startAgent(n.id, { resyncMs: 2000 });
  for (const [node, ports] of Object.entries(PORTS)) for (const p of ports) await echoServer(mesh.lab, node, p);
  await mesh.waitAll(first, 30_000);
  last = first;
  return fx;
}
