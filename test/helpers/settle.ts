import type { MemoryNetwork } from './memory-udp.js';

/**
 * Delivers in-memory datagrams until nothing moves for 80 ms, or until
 * `done()` holds (at most 10 s). File reads and fsyncs go through libuv's
 * thread pool, which a loaded CI machine slows down, so quiet is measured in
 * real time, and a test that expects a result names it.
 */
export async function settle(net: MemoryNetwork, done?: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  for (let quiet = 0; done ? !done() : quiet < 8; ) {
    if (Date.now() > end) throw new Error('settle: condition not met within 10 s');
    await new Promise((r) => setTimeout(r, quiet === 0 ? 0 : 10));
    quiet = net.flush() === 0 ? quiet + 1 : 0;
  }
  net.flush();
}
