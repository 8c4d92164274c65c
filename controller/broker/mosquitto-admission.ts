/**
 * Admission from the chain on a Mosquitto broker (Debian's 2.0.x, no plugin): the controller
 * writes Mosquitto's password file and ACL file from the admitted nodes and makes the broker
 * reload them (SIGHUP). On reload Mosquitto re-checks every connected client against the new
 * files and disconnects those no longer allowed, so a retired node is cut off at once and cannot
 * log in again.
 *
 * The password file holds PBKDF2-SHA512 hashes (Mosquitto's `$7$` format) of the passwords
 * derived from each node's identity key; the ACL file grants each node its own config topic (read)
 * and status topic (write), spelled out per user rather than with %u patterns. The broker must
 * run with `use_username_as_clientid true` (mosquittoConf below), so a node cannot take over
 * another node's session by borrowing its client id.
 */
import { pbkdf2Sync, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CONTROLLER_LOGIN, OBSERVER_LOGIN, expectedBrokerPassword } from '../../fabric/broker-login.js';
import type { SigningKey } from '../../fabric/envelope.js';
import { Sub0Error } from '../../fabric/errors.js';
import { configTopic, networkTree, observerTree, statusTopic } from '../../fabric/topics.js';
import { writeFileAtomic } from '../../overlay/atomic-file.js';
import type { Admission, BrokerAdmission } from './admission.js';

export interface MosquittoAdmissionOptions {
  /** Where passwd and acl are written (the broker's password_file and acl_file). */
  readonly dir: string;
  /** The broker's pid file, to signal a reload; without it, the files are only written. */
  readonly pidFile?: string;
  readonly controllerKey: SigningKey;
  readonly adminPassword: string;
  readonly log: Logger;
}

export const PASSWD_FILE = 'passwd';
export const ACL_FILE = 'acl';

export class MosquittoAdmission implements BrokerAdmission {
  /** node/key -> password file line (PBKDF2 costs ~0.1 ms, the X25519 agreement ~1 ms). */
  private readonly lines = new Map<string, string>();
  private written: { passwd: string; acl: string } | undefined;

  constructor(private readonly o: MosquittoAdmissionOptions) {}

  get passwdPath(): string {
    return join(this.o.dir, PASSWD_FILE);
  }

  get aclPath(): string {
    return join(this.o.dir, ACL_FILE);
  }

  async admit(network: string, nodes: Admission): Promise<void> {
    const passwd = [passwdLine(CONTROLLER_LOGIN, this.o.adminPassword, 'controller'), passwdLine(OBSERVER_LOGIN, this.o.adminPassword, 'observer')];
    const acl = [
      `# written by the sub0 controller from the chain; do not edit`,
      `user ${CONTROLLER_LOGIN}`,
      `topic readwrite ${networkTree(network)}`,
      '',
      `user ${OBSERVER_LOGIN}`,
      `topic read ${networkTree(network)}`,
      `topic readwrite ${observerTree(network)}`,
      '',
    ];
    const refused: string[] = [];
    for (const [node, key] of [...nodes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      let line = this.lines.get(`${network}/${node}/${key}`);
      if (line === undefined) {
        try {
          line = passwdLine(node, expectedBrokerPassword(this.o.controllerKey, key, network, node), key);
        } catch (e) {
          refused.push(`${node}: ${(e as Error).message}`);
          continue;
        }
        this.lines.set(`${network}/${node}/${key}`, line);
      }
      passwd.push(line);
      acl.push(`user ${node}`, `topic read ${configTopic(network, node)}`, `topic write ${statusTopic(network, node)}`, '');
    }
    for (const r of refused) this.o.log.warn(`broker access refused: ${r}`);
    const next = { passwd: `${passwd.join('\n')}\n`, acl: `${acl.join('\n')}\n` };
    if (this.written && this.written.passwd === next.passwd && this.written.acl === next.acl) return;
    // ACL first: a node is never admitted before its topics are fenced.
    writeFileAtomic(this.aclPath, next.acl, { mode: 0o640 });
    writeFileAtomic(this.passwdPath, next.passwd, { mode: 0o640 });
    this.written = next;
    this.reload();
    this.o.log.info({ nodes: nodes.size, dir: this.o.dir }, 'mosquitto admission written');
  }

  /** SIGHUP: Mosquitto reloads both files and re-checks every connected client. */
  private reload(): void {
    if (!this.o.pidFile) return;
    let pid: number;
    try {
      pid = Number(readFileSync(this.o.pidFile, 'utf8').trim());
    } catch (e) {
      throw new Sub0Error('driver', 'cannot read the broker pid to reload it', { cause: e, where: this.o.pidFile });
    }
    try {
      process.kill(pid, 'SIGHUP');
    } catch (e) {
      throw new Sub0Error('driver', `cannot signal the broker (pid ${pid}) to reload`, { cause: e, where: this.o.pidFile });
    }
  }
}

/**
 * One password file line in Mosquitto's `$7$` format: PBKDF2-HMAC-SHA512, 101 iterations, a
 * 12-byte salt, a 64-byte hash. The salt derives from the user and its key, so an unchanged
 * admission rewrites identical files.
 */
export function passwdLine(user: string, password: string, saltSeed: string): string {
  const salt = createHash('sha256').update(`${user}\n${saltSeed}`).digest().subarray(0, 12);
  const hash = pbkdf2Sync(password, salt, 101, 64, 'sha512');
  return `${user}:$7$101$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** A mosquitto.conf for a broker whose admission this controller writes (tests, lab, docs). */
export function mosquittoConf(o: { readonly host: string; readonly port: number; readonly dir: string; readonly pidFile: string; readonly maxConnections?: number; readonly user?: string }): string {
  return [
    '# sub0: admission from the chain (passwd and acl written by the controller)',
    `pid_file ${o.pidFile}`,
    // Started as root, Mosquitto drops to this user, which must be able to read passwd and acl.
    ...(o.user ? [`user ${o.user}`] : []),
    'persistence false',
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${join(o.dir, PASSWD_FILE)}`,
    `acl_file ${join(o.dir, ACL_FILE)}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    `listener ${o.port} ${o.host}`,
    // Listener options: after their listener line.
    'use_username_as_clientid true',
    `max_connections ${o.maxConnections ?? -1}`,
    '',
  ].join('\n');
}
