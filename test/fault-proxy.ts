// A TCP proxy a test controls, put between Latchkey and a real PostgreSQL or Redis, to inject
// faults for real: drop every connection, pause (accept and hold bytes without answering, as a
// SIGSTOPped server does), refuse new connections, and restore. No mock of either protocol.
import net, { type AddressInfo } from 'node:net';

export type ProxyState = 'open' | 'paused' | 'refusing';

export interface FaultProxy {
  /** host:port to give the server instead of the real service's. */
  readonly port: number;
  readonly state: ProxyState;
  /** Connections currently relayed. */
  readonly connections: number;
  /** Destroys every relayed connection, both sides, at once (a backend terminated, a cable cut). */
  drop(): void;
  /** Holds every byte in both directions and accepts new connections that then hear nothing. */
  pause(): void;
  /** New connections are reset at once, and existing ones dropped (the service is down). */
  refuse(): void;
  /** Relays again; bytes held while paused are delivered. */
  restore(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/** Starts a proxy on 127.0.0.1 (a free port) to `target`. */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let state: ProxyState = 'open';
  const pairs = new Set<Pair>();

  const relay = (pair: Pair) => {
    const { client, upstream } = pair;
    const forget = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.pipe(upstream);
    upstream.pipe(client);
    if (state === 'paused') hold(pair);
  };
  const hold = (pair: Pair) => {
    pair.client.pause();
    pair.upstream.pause();
  };
  const release = (pair: Pair) => {
    pair.client.resume();
    pair.upstream.resume();
  };

  const server = net.createServer((client) => {
    if (state === 'refusing') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    relay(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const dropAll = () => {
    for (const pair of pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    get state() {
      return state;
    },
    get connections() {
      return pairs.size;
    },
    drop: dropAll,
    pause() {
      state = 'paused';
      pairs.forEach(hold);
    },
    refuse() {
      state = 'refusing';
      dropAll();
    },
    restore() {
      state = 'open';
      pairs.forEach(release);
    },
    async close() {
      dropAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
