/**
 * Nothing waits forever on netlink: a request the kernel never answers fails with a timeout
 * naming it, and the socket keeps serving the requests that follow.
 */
import t from 'tap';
import { RawNetlinkSocket } from 'netlink';
import { NlSocket } from '../../../overlay/netlink/nl-socket.js';

// A user-space peer on NETLINK_USERSOCK that reads every request and answers none.
const NETLINK_USERSOCK = 2;
const NETLINK_ROUTE = 0;
const RTM_GETLINK = 18;

t.test('a request without an answer fails at its deadline, naming it', async (t) => {
  const silent = new RawNetlinkSocket(NETLINK_USERSOCK);
  let heard = 0;
  let answering = false;
  silent.on('message', (msg: Buffer, rinfo: { port: number }) => {
    heard++;
    if (!answering) return;
    // An ACK: NLMSG_ERROR with errno 0, then the request's header.
    const ack = Buffer.alloc(36);
    ack.writeUInt32LE(36, 0);
    ack.writeUInt16LE(2, 4);
    ack.writeUInt32LE(msg.readUInt32LE(8), 8);
    ack.writeInt32LE(0, 16);
    msg.copy(ack, 20, 0, 16);
    silent.send(ack, { port: rinfo.port });
  });
  t.teardown(() => silent.close());
  const s = new NlSocket(NETLINK_USERSOCK, { timeoutMs: 300, peer: silent.address().port });
  t.teardown(() => s.close());
  const t0 = performance.now();
  await t.rejects(s.request({ type: 0x10, body: new Uint8Array(4) }, 'a probe that nobody answers'), { code: 'timeout', message: /a probe that nobody answers: no netlink answer in 300 ms/ });
  t.ok(performance.now() - t0 >= 290, 'after the deadline, not before');
  t.equal(heard, 1, 'the peer got the request (it just never answers)');
  answering = true;
  t.same(await s.request({ type: 0x10, body: new Uint8Array(4) }, 'once the peer answers'), [], 'the fault gone, the same socket is answered');
});

t.test('the kernel answers within the deadline', async (t) => {
  const s = new NlSocket(NETLINK_ROUTE, { timeoutMs: 2000 });
  t.teardown(() => s.close());
  // ifinfomsg: family, pad, type, index, flags, change (16 bytes)
  const links = await s.dump({ type: RTM_GETLINK, body: new Uint8Array(16) }, 'link dump');
  t.ok(links.length >= 1, `the dump answered (${links.length} links, lo at least)`);
});
