/**
 * The node agent: loads (or creates) the node's WireGuard key and identity key, opens the drivers,
 * re-applies the last accepted config at once, then follows its config sources: its DVCI's
 * broker(s), where it logs in as itself and reads its own retained config topic, and/or a signed
 * file. Every config passes the ConfigGate first, whatever carried it; a refused one is logged and
 * recorded in status.json and the signed status, and the data plane keeps the previous state. The
 * agent publishes its signed status to every broker. Stopping the agent leaves the data plane as
 * it is (wireguard-go keeps running): an agent restart is invisible on the wire.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { hexToBytes } from '@noble/hashes/utils.js';
import { slotPrefixes } from '../../fabric/address.js';
import { describeOverflow, fitAcl } from '../../fabric/acl-capacity.js';
import { isSub0Error, Sub0Error } from '../../fabric/errors.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { ImageStore } from '../slots/image-store.js';
import { SlotManager } from '../slots/slot-manager.js';
import { enableForwarding, realKvm } from '../slots/slot-net.js';
import { RtnetlinkRouteDriver } from '../routes/rtnetlink-route-driver.js';
import { loadOrCreateNodeKey, keyToBase64 } from '../wireguard/keys.js';
import { openWireguardBackend } from '../wireguard/probe.js';
import { openAclDriver } from './acl-loader.js';
import { ifnameOf, type AgentConfig } from './config.js';
import { ConfigGate } from './config-gate.js';
import { SignedFileSource, type ConfigSource } from './config-source.js';
import { loadOrCreateIdentity } from './identity.js';
import { MqttChannel } from './mqtt-channel.js';
import { StatusReport } from './status-report.js';
import type { Dataplane } from './reconcile-step.js';
import { Reconciler } from './reconciler.js';
import { StatusFile } from './status.js';

export class Agent {
  private constructor(
    readonly config: AgentConfig,
    readonly ifname: string,
    readonly dataplane: Dataplane,
    readonly reconciler: Reconciler,
    readonly status: StatusFile,
    private readonly gate: ConfigGate,
    private readonly sources: readonly ConfigSource[],
    private readonly report: StatusReport | undefined,
    private readonly log: Logger,
    readonly slots: SlotManager | undefined,
    /** Hands an accepted config to what follows it besides the reconciler (the slots). */
    private readonly follow: (c: NodeConfig) => void,
  ) {}

  static async start(config: AgentConfig, log: Logger, source?: ConfigSource): Promise<Agent> {
    const ifname = ifnameOf(config);
    const key = loadOrCreateNodeKey(config.stateDir);
    const privateKey = keyToBase64(key.privateKey);
    const identity = loadOrCreateIdentity(config.stateDir);
    log.info({ ifname, publicKey: key.publicKey, identityKey: identity.publicKeyHex, created: key.created, stateDir: config.stateDir }, 'node keys loaded');

    const wg = await openWireguardBackend({ prefer: config.wgBackend, ifname, runDir: config.stateDir, socketDir: config.socketDir, logger: log });
    const routes = new RtnetlinkRouteDriver();
    const acl = await openAclDriver(config.acl, config.pinDir, log);
    const dataplane: Dataplane = { wg, routes, acl: acl.driver };

    const status = new StatusFile(config.stateDir, {
      pid: process.pid,
      node: config.node,
      ifname,
      publicKey: key.publicKey,
      backends: { wireguard: wg.kind, acl: acl.kind, ...(acl.fallbackReason ? { aclFallbackReason: acl.fallbackReason } : {}) },
    });
    const reconciler = new Reconciler(dataplane, {
      ifname,
      privateKey,
      logger: log,
      resyncMs: config.resyncMs,
      oneInitiator: {},
      onResult: (r) => status.recordResult(r),
    });
    // A config the eBPF maps cannot hold, or with more tuples than the agent expands, would fail
    // every apply: refused at the gate, the previous one kept (the compiler leaves such rules
    // out; this guards against one that did not). The nftables fallback holds tuples: the same bound.
    const applicable = (c: NodeConfig) => {
      const fit = fitAcl(c.acl);
      if (fit.dropped.length > 0) throw new Sub0Error('invalid-input', `the config's ACL ${describeOverflow(fit)} (rules ${fit.dropped.slice(0, 5).join(', ')}${fit.dropped.length > 5 ? ', …' : ''})`);
    };
    const gate = new ConfigGate(config.stateDir, config.trust.map((k) => hexToBytes(k)), config.node, config.network, applicable);
    const channels: MqttChannel[] = config.brokers.map(
      (url): MqttChannel =>
        new MqttChannel({
          url,
          network: config.network!,
          node: config.node!,
          identity: identity.key,
          controllerKeys: () => gate.trustedKeys,
          will: (): Uint8Array => report!.offline(),
          log,
        }),
    );
    const report: StatusReport | undefined =
      channels.length === 0
        ? undefined
        : new StatusReport({
            network: config.network!,
            node: config.node!,
            identity: identity.key,
            wg,
            ifname,
            current: () => ({ status: status.value, accepted: gate.accepted }),
            publish: (wire) => channels.forEach((c) => c.publishStatus(wire)),
            intervalMs: config.statusIntervalMs,
            log,
          });
    if (report) status.onChange = () => report.changed();
    const sources: ConfigSource[] = source ? [source] : [...(config.config ? [new SignedFileSource(config.config)] : []), ...channels];
    // Slots: a VM for each slot assigned here, its tap under the same ACL as the WireGuard interface.
    let guarded: readonly string[] = [];
    let slots: SlotManager | undefined;
    if (config.slots) {
      enableForwarding();
      slots = new SlotManager({
        slotsDir: join(config.stateDir, 'slots'),
        store: new ImageStore(join(config.stateDir, 'images')),
        accel: realKvm() ? 'kvm' : 'tcg',
        log: log.child({ part: 'slots' }),
        attachAcl: async (tap) => {
          // Fail closed: a slot starts only behind the node's ACL.
          if (!acl.driver) throw new Sub0Error('unsupported', 'the ACL is off (--acl off): slots do not start without it');
          if (guarded.length === 0) throw new Sub0Error('unsupported', 'no config applied yet: the ACL of the slots is unknown');
          await acl.driver.attach(tap, guarded);
        },
      });
      const sm = slots;
      sm.onChange = () => status.update({ slots: sm.status() });
      await sm.start();
    }
    const follow = (c: NodeConfig) => {
      guarded = slotPrefixes(c.network);
      slots?.setDesired(c.slots);
    };
    const agent = new Agent(config, ifname, dataplane, reconciler, status, gate, sources, report, log, slots, follow);

    try {
      const persisted = gate.loadPersisted();
      if (persisted) {
        log.info({ revision: persisted.config.revision.number, hash: persisted.hash }, 're-applying the last accepted config');
        status.update({ node: persisted.config.node, accepted: { revision: persisted.config.revision.number, hash: persisted.hash, source: persisted.source, at: Date.now() } });
        reconciler.setDesired(persisted.config, persisted.hash);
        follow(persisted.config);
      }
    } catch (e) {
      agent.reject(e);
    }
    for (const s of agent.sources)
      await s.start(
        (wire, from) => agent.offer(wire, from),
        (p) => {
          if (p) log.error({ source: p.source, code: p.code }, p.message);
          else log.info('the config source reads again');
          status.update({ sourceError: p ? { ...p, at: Date.now() } : undefined });
        },
      );
    report?.start();
    return agent;
  }

  /** Admits one envelope through the gate; a refusal is logged and kept in status, never thrown. */
  offer(wire: Uint8Array | string, source: string): boolean {
    try {
      const t0 = performance.now();
      const outcome = this.gate.offer(wire, source);
      if (outcome.kind === 'duplicate') return true;
      const { config, hash } = outcome.accepted;
      this.log.info({ revision: config.revision.number, hash, source, verifyMs: Math.round(performance.now() - t0) }, 'config accepted');
      this.status.update({ node: config.node, accepted: { revision: config.revision.number, hash, source, at: Date.now() } });
      this.reconciler.setDesired(config, hash);
      this.follow(config);
      return true;
    } catch (e) {
      this.reject(e);
      return false;
    }
  }

  private reject(e: unknown): void {
    const code = isSub0Error(e) ? e.code : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    this.log.error({ code, err: message }, 'config refused; keeping the previous state');
    this.status.update({ lastRejected: { code, message, at: Date.now() } });
  }

  /** Stops following configs (saying "offline" to the brokers) and closes the drivers; the data plane stays up. */
  async stop(): Promise<void> {
    const last = await this.report?.stop();
    for (const s of this.sources) await (s instanceof MqttChannel ? s.stop(last) : s.stop());
    await this.reconciler.stop();
    await this.slots?.close();
    await this.dataplane.wg.close();
    await this.dataplane.routes.close();
  }
}
