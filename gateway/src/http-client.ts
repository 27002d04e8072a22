/**
 * undici's Agent with its `request` API, loaded without undici's index. The index also loads fetch,
 * WebSocket, EventSource, the HTTP cache, the proxy agents and the mocks, which the gateway never
 * uses: about 9 MB of resident memory in every task. undici is pinned (package.json), and a test
 * runs every request of the gateway through this module, so a layout change in an update fails CI.
 */
import type { Agent as UndiciAgent, buildConnector as BuildConnector } from 'undici';
import AgentImplementation from 'undici/lib/dispatcher/agent';
import DispatcherImplementation from 'undici/lib/dispatcher/dispatcher';
import buildConnectorImplementation from 'undici/lib/core/connect';
import requestApi from 'undici/lib/api/api-request';
import { isIP } from 'node:net';
import { type AddressPolicy, guardedLookup, ProviderAddressError, refusal } from './provider-address';

// What undici's index does for its dispatchers (`Object.assign(Dispatcher.prototype, api)`), for
// the one API the gateway calls.
Object.assign(DispatcherImplementation.prototype, { request: requestApi });

/** undici's keep-alive connection pool per origin, as `import { Agent } from 'undici'` gives it. */
export const Agent = AgentImplementation as unknown as typeof UndiciAgent;
export type Agent = UndiciAgent;
const buildConnector = buildConnectorImplementation as unknown as typeof BuildConnector;

export interface DispatcherOptions {
  readonly policy: AddressPolicy;
  /** Extra trusted CA certificates (tests: a throwaway CA; the container uses Node's own store). */
  readonly ca?: string;
  /** Connections per provider origin. @default 256 */
  readonly connections?: number;
}

/**
 * The gateway's connection pools to the providers: keep-alive, HTTP/1.1, and every connection
 * checked against the address policy (provider-address.ts) before it is opened: an IP literal here,
 * a name through a lookup that refuses if any of its addresses is refused.
 */
export function createDispatcher(options: DispatcherOptions): Agent {
  const connect = buildConnector({
    timeout: 10_000,
    lookup: guardedLookup(options.policy),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  } as BuildConnector.BuildOptions);
  const guarded: BuildConnector.connector = (connectOptions, callback) => {
    const host = connectOptions.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      const why = refusal(host, options.policy);
      if (why !== undefined) {
        callback(new ProviderAddressError(host, why), null);
        return;
      }
    }
    connect(connectOptions, callback);
  };
  return new Agent({
    keepAliveTimeout: 30_000,
    connections: options.connections ?? 256,
    pipelining: 1,
    connect: guarded,
  });
}
