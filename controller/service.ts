/**
 * The controller as a service: the chain follower and compiler (controller.ts), the sink it
 * publishes to (a broker, or a directory for tests and air-gapped sites), and the broker's
 * admission from the chain (the embedded aedes broker, or a Mosquitto whose password and ACL
 * files it writes). `sub0 controller` and `sub0 lab up` both run it.
 *
 * Order within a pass: admission first, then publication. A node the chain just registered can
 * log in by the time its config is there; a retired node is cut off as its config is withdrawn.
 * When the broker comes back without this controller's session (it restarted empty), everything
 * is published again from the state held, without reading the chain.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { CONTROLLER_LOGIN } from '../fabric/broker-login.js';
import type { SigningKey } from '../fabric/envelope.js';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { HealthPolicy } from '../fabric/health.js';
import type { BlockRef, ChainSnapshot } from '../fabric/schema.js';
import { Gatekeeper } from './gatekeeper.js';
import { MqttLink } from '../overlay/mqtt/mqtt-link.js';
import { AUDIT_FILE } from './audit/audit-index.js';
import { AuditLog } from './audit/audit-log.js';
import { admissionOf, sameAdmission, type Admission, type BrokerAdmission } from './broker/admission.js';
import { EmbeddedBroker } from './broker/embedded-broker.js';
import { MosquittoAdmission } from './broker/mosquitto-admission.js';
import type { ChainClient } from './chain/client.js';
import type { LogosRegistry } from './chain/registry.js';
import { Controller, type PassRecord } from './controller.js';
import type { ConfigSink } from './publish/config-sink.js';
import { DirectorySink } from './publish/directory-sink.js';
import { MqttSink } from './publish/mqtt-sink.js';
import { Publisher, type PublishReport } from './publish/publisher.js';

export type BrokerChoice =
  /** aedes in this process, serving on these addresses (port 0: any free one). */
  | { readonly kind: 'embedded'; readonly listen: readonly { readonly host: string; readonly port: number }[] }
  /** A broker elsewhere (Mosquitto), with its admission files written here when `mosquitto` is set. */
  | { readonly kind: 'external'; readonly url: string; readonly mosquitto?: { readonly dir: string; readonly pidFile?: string } };

export interface ControllerServiceOptions {
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  readonly key: SigningKey;
  /** The controller's login secret at the broker. */
  readonly adminSecret: string;
  readonly cursorFile: string;
  readonly log: Logger;
  /** Publish to a broker (and admit nodes to it) ... */
  readonly broker?: BrokerChoice;
  /** ... and/or write one signed file per node here. */
  readonly out?: string;
  readonly fullReadMs?: number;
  /** Watch the nodes through their statuses (needs a broker); quarantine with `signer` when given. */
  readonly gatekeeper?: { readonly policy: HealthPolicy; readonly signer?: KeyringPair; readonly staggerMs?: number };
  readonly onPublished?: (block: BlockRef, report: PublishReport) => void;
  readonly onPass?: (pass: PassRecord) => void;
}

export class ControllerService {
  private constructor(
    readonly controller: Controller,
    /** The embedded broker, when it runs here. */
    readonly broker: EmbeddedBroker | undefined,
    /** Where this controller reaches its broker (loopback for an embedded one). */
    readonly brokerUrl: string | undefined,
    /** The addresses the embedded broker serves on. */
    readonly listening: readonly string[],
    private readonly link: MqttLink | undefined,
    /** The gatekeeper, when it runs here. */
    readonly gatekeeper: Gatekeeper | undefined,
  ) {}

  static async start(o: ControllerServiceOptions): Promise<ControllerService> {
    const log = o.log;
    let broker: EmbeddedBroker | undefined;
    let brokerUrl: string | undefined;
    const listening: string[] = [];
    const admissions: BrokerAdmission[] = [];
    if (o.broker?.kind === 'embedded') {
      broker = await EmbeddedBroker.start({ controllerKey: o.key, adminPassword: o.adminSecret, log });
      for (const l of o.broker.listen) {
        const a = await broker.listen(l.host, l.port);
        listening.push(a.url);
        brokerUrl ??= a.url.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]');
      }
      admissions.push(broker);
    } else if (o.broker?.kind === 'external') {
      brokerUrl = o.broker.url;
      if (o.broker.mosquitto) {
        const m = new MosquittoAdmission({ ...o.broker.mosquitto, controllerKey: o.key, adminPassword: o.adminSecret, log });
        admissions.push(m);
      }
    }
    const sinks: ConfigSink[] = [];
    let mqtt: MqttSink | undefined;
    let link: MqttLink | undefined;
    if (brokerUrl) {
      link = new MqttLink({ url: brokerUrl, clientId: `${CONTROLLER_LOGIN}-${bytesToHex(o.key.publicKey).slice(0, 16)}`, username: CONTROLLER_LOGIN, password: () => o.adminSecret, log: log.child({ component: 'mqtt' }) });
      mqtt = new MqttSink(link, undefined, log);
      sinks.push(mqtt);
    }
    if (o.out) sinks.push(new DirectorySink(o.out));
    if (sinks.length === 0) throw new Error('ControllerService: nothing to publish to (give a broker or an output directory)');
    const publisher = new Publisher(sinks.length === 1 ? sinks[0]! : fanOut(sinks), o.key);

    const gatekeeper = link && o.gatekeeper ? new Gatekeeper({ link, registry: o.registry, key: o.key, policy: o.gatekeeper.policy, ...(o.gatekeeper.signer ? { signer: o.gatekeeper.signer } : {}), ...(o.gatekeeper.staggerMs !== undefined ? { staggerMs: o.gatekeeper.staggerMs } : {}), log }) : undefined;
    let compiled: ChainSnapshot | undefined;
    let admitted: { network: string; nodes: Admission } | undefined;
    // The audit trail sits beside the follower's cursor: it is complete up to it.
    const audit = AuditLog.open({ file: join(dirname(o.cursorFile), AUDIT_FILE), cursorFile: o.cursorFile, client: o.client, registry: o.registry.locator, log: log.child({ component: 'audit' }) });
    const controller = await Controller.start({
      client: o.client,
      registry: o.registry,
      publisher,
      cursorFile: o.cursorFile,
      log,
      ...(o.fullReadMs !== undefined ? { fullReadMs: o.fullReadMs } : {}),
      onPublished: (block, report) => {
        if (gatekeeper && compiled) gatekeeper.update(compiled, publisher.publishedRefs());
        o.onPublished?.(block, report);
      },
      ...(o.onPass ? { onPass: o.onPass } : {}),
      onBlock: (b) => audit.append(b),
      beforePublish: async (snapshot, result) => {
        compiled = snapshot;
        const network = snapshot.network.id;
        if (mqtt) mqtt.network = network;
        const nodes = admissionOf(snapshot, result);
        if (admitted?.network === network && sameAdmission(admitted.nodes, nodes)) return;
        for (const a of admissions) await a.admit(network, nodes);
        admitted = { network, nodes };
        log.info({ network, admitted: nodes.size }, 'broker admission from the chain');
      },
    });
    mqtt?.onReset(() => {
      publisher.reset();
      controller.republish();
    });
    return new ControllerService(controller, broker, brokerUrl, listening, link, gatekeeper);
  }

  async stop(): Promise<void> {
    await this.gatekeeper?.stop();
    await this.controller.stop();
    await this.link?.close();
    await this.broker?.close();
  }
}

/** One sink that writes to several (a broker and a directory): every write goes to each. */
function fanOut(sinks: readonly ConfigSink[]): ConfigSink {
  return {
    publish: async (node, wire) => {
      for (const s of sinks) await s.publish(node, wire);
    },
    withdraw: async (node) => {
      for (const s of sinks) await s.withdraw(node);
    },
    // What the first sink holds decides; the others are rewritten where it differs.
    current: () => sinks[0]!.current(),
  };
}
