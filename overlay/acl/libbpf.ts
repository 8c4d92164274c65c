/**
 * koffi bindings to the system's libbpf.so.1 (Debian 12 ships 1.1; iproute2 depends on it, so it
 * is on every node) and the two libc calls the driver needs. Thin: every function returns what
 * libbpf returns (0 or a negative errno; fds >= 0), and callers turn failures into Sub0Errors via
 * check(). Opened once per process, lazily, because koffi and the library may be missing and
 * createAclDriver() must then fall back instead of failing at import.
 */
import koffi from 'koffi';
import { constants } from 'node:os';
import { Sub0Error } from '../../fabric/errors.js';

type Ptr = unknown;
type Spec = Parameters<typeof koffi.sizeof>[0];

export interface Libbpf {
  /** NULL (null) on failure, with errno set. */
  objectOpenFile(path: string): Ptr;
  objectLoad(obj: Ptr): number;
  objectClose(obj: Ptr): void;
  findMap(obj: Ptr, name: string): Ptr;
  mapSetPinPath(map: Ptr, path: string): number;
  findProgram(obj: Ptr, name: string): Ptr;
  programPin(prog: Ptr, path: string): number;
  objGet(path: string): number;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): number;
  mapLookup(fd: number, key: Uint8Array, value: Uint8Array): number;
  mapDelete(fd: number, key: Uint8Array): number;
  /** key null: the first key. */
  mapNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): number;
  /**
   * bpf_map_update_batch (kernel >= 5.6): `count[0]` keys and values, packed; on return `count[0]`
   * is how many were written (all of them when rc is 0). Absent when the library lacks it.
   */
  readonly mapUpdateBatch: ((fd: number, keys: Uint8Array, values: Uint8Array, count: Uint32Array, flags: number) => number) | undefined;
  objInfo(fd: number, info: Uint8Array, len: Uint32Array): number;
  /** Absent when the library predates the bpf_tc_* API (libbpf < 0.6): tc CLI then. */
  readonly tc: TcApi | undefined;
  errno(): number;
  close(fd: number): number;
  ifIndex(name: string): number;
}

export interface TcApi {
  hookCreate(hook: Uint8Array): number;
  attach(hook: Uint8Array, opts: Uint8Array): number;
  detach(hook: Uint8Array, opts: Uint8Array): number;
  query(hook: Uint8Array, opts: Uint8Array): number;
}

export const BPF_ANY = 0;

let cached: Libbpf | undefined;

/** Opens libbpf.so.1; throws Sub0Error 'unsupported' when it (or koffi) cannot be loaded. */
export function libbpf(): Libbpf {
  if (cached) return cached;
  let lib: ReturnType<typeof koffi.load>;
  let libc: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libbpf.so.1');
    libc = koffi.load('libc.so.6');
  } catch (cause) {
    throw new Sub0Error('unsupported', 'cannot load libbpf.so.1 (Debian package libbpf1)', { cause, where: 'acl/libbpf' });
  }
  const obj = koffi.pointer(koffi.opaque('bpf_object'));
  const map = koffi.pointer(koffi.opaque('bpf_map'));
  const prog = koffi.pointer(koffi.opaque('bpf_program'));
  const f = (name: string, ret: Spec, args: Spec[]) => lib.func(name, ret, args);
  // libbpf logs to stderr by default; its errors come back to us as return codes instead.
  f('libbpf_set_print', 'void *', ['void *'])(null);
  const open = f('bpf_object__open_file', obj, ['str', 'void *']);
  const load = f('bpf_object__load', 'int', [obj]);
  const closeObj = f('bpf_object__close', 'void', [obj]);
  const findMap = f('bpf_object__find_map_by_name', map, [obj, 'str']);
  const setPin = f('bpf_map__set_pin_path', 'int', [map, 'str']);
  const findProg = f('bpf_object__find_program_by_name', prog, [obj, 'str']);
  const pinProg = f('bpf_program__pin', 'int', [prog, 'str']);
  const objGet = f('bpf_obj_get', 'int', ['str']);
  const update = f('bpf_map_update_elem', 'int', ['int', 'void *', 'void *', 'uint64_t']);
  const lookup = f('bpf_map_lookup_elem', 'int', ['int', 'void *', 'void *']);
  const del = f('bpf_map_delete_elem', 'int', ['int', 'void *']);
  const next = f('bpf_map_get_next_key', 'int', ['int', 'void *', 'void *']);
  const info = f('bpf_obj_get_info_by_fd', 'int', ['int', 'void *', 'void *']);
  let updateBatch: Libbpf['mapUpdateBatch'];
  try {
    const ub = f('bpf_map_update_batch', 'int', ['int', 'void *', 'void *', 'void *', 'void *']);
    // struct bpf_map_batch_opts { size_t sz; __u64 elem_flags; __u64 flags; }
    updateBatch = (fd, keys, values, count, flags) => {
      const opts = Buffer.alloc(24);
      opts.writeBigUInt64LE(24n, 0);
      opts.writeBigUInt64LE(BigInt(flags), 8);
      return ub(fd, keys, values, count, opts);
    };
  } catch {
    updateBatch = undefined;
  }
  let tc: TcApi | undefined;
  try {
    const hookCreate = f('bpf_tc_hook_create', 'int', ['void *']);
    const attach = f('bpf_tc_attach', 'int', ['void *', 'void *']);
    const detach = f('bpf_tc_detach', 'int', ['void *', 'void *']);
    const query = f('bpf_tc_query', 'int', ['void *', 'void *']);
    tc = { hookCreate: (h) => hookCreate(h), attach: (h, o) => attach(h, o), detach: (h, o) => detach(h, o), query: (h, o) => query(h, o) };
  } catch {
    tc = undefined;
  }
  const close = libc.func('close', 'int', ['int']);
  const ifIndex = libc.func('if_nametoindex', 'uint', ['str']);
  cached = {
    objectOpenFile: (path) => open(path, null),
    objectLoad: (o) => load(o),
    objectClose: (o) => closeObj(o),
    findMap: (o, name) => findMap(o, name),
    mapSetPinPath: (m, path) => setPin(m, path),
    findProgram: (o, name) => findProg(o, name),
    programPin: (p, path) => pinProg(p, path),
    objGet: (path) => objGet(path),
    mapUpdate: (fd, k, v, flags) => update(fd, k, v, flags),
    mapLookup: (fd, k, v) => lookup(fd, k, v),
    mapDelete: (fd, k) => del(fd, k),
    mapNextKey: (fd, k, n) => next(fd, k, n),
    mapUpdateBatch: updateBatch,
    objInfo: (fd, i, len) => info(fd, i, len),
    tc,
    errno: () => koffi.errno(),
    close: (fd) => close(fd),
    ifIndex: (name) => ifIndex(name),
  };
  return cached;
}

/** The errno name of a negative return code: -2 -> 'ENOENT'. */
export function errnoName(rc: number): string {
  const n = Math.abs(rc);
  for (const [name, v] of Object.entries(constants.errno)) if (v === n) return name;
  return `errno ${n}`;
}

export const ENOENT = constants.errno.ENOENT;
export const EEXIST = constants.errno.EEXIST;

/** Throws Sub0Error 'driver' naming the call and its target when rc < 0; returns rc otherwise. */
export function check(rc: number, what: string, where: string): number {
  if (rc < 0) throw new Sub0Error('driver', `${what} failed: ${errnoName(rc)}`, { where });
  return rc;
}
