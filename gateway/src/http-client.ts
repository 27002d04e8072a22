/**
 * undici's Agent with its `request` API, loaded without undici's index. The index also loads fetch,
 * WebSocket, EventSource, the HTTP cache, the proxy agents and the mocks, which the gateway never
 * uses: about 9 MB of resident memory in every task. undici is pinned (package.json), and a test
 * runs every request of the gateway through this module, so a layout change in an update fails CI.
 */
import type { Agent as UndiciAgent } from 'undici';
import AgentImplementation from 'undici/lib/dispatcher/agent';
import DispatcherImplementation from 'undici/lib/dispatcher/dispatcher';
import requestApi from 'undici/lib/api/api-request';

// What undici's index does for its dispatchers (`Object.assign(Dispatcher.prototype, api)`), for
// the one API the gateway calls.
Object.assign(DispatcherImplementation.prototype, { request: requestApi });

/** undici's keep-alive connection pool per origin, as `import { Agent } from 'undici'` gives it. */
export const Agent = AgentImplementation as unknown as typeof UndiciAgent;
export type Agent = UndiciAgent;
